"""`class sweep` never deletes what is alive, against an emulated account (moto): stacks
known from the stack files and `pulumi stack ls` together, a refusal while listed servers
run and the course has stack files here, a typed confirmation (or --yes after the
listing), and the stop schedules' groups, queues and roles and old snapshots listed too."""

from __future__ import annotations

import json
import sys

import boto3
import pytest

from components.stop_schedule import schedule_policy, trust_policy
from flasklab import plan
from flasklab.__main__ import main
from flasklab.classroom import sweep
from flasklab.stacks import load_stack_servers
from flasklab.stop_schedule import dead_letter_queue_name, role_name, schedule_group_name, tag_values
from tests.test_account import COURSE, REGION, launch, resources_left, states, stray

GONE = "class-2025"  # a stack of COURSE with no stack file
ACCOUNT = "123456789012"  # moto's


@pytest.fixture
def account(ec2) -> dict[str, str]:
    """class-demo's servers (its stack file is here), and a stopped server of a gone stack."""
    servers = load_stack_servers("class-demo")
    ids = {s.student: launch(ec2, plan.tags(s)).instance_id for s in servers}
    ids[GONE] = launch(ec2, stray(servers[0], stack=GONE, student="")).instance_id
    ec2.stop_instances(InstanceIds=[ids[GONE]])
    return ids


def stack_tags(stack: str) -> dict[str, str]:
    return {plan.TAG_MANAGED_BY: plan.MANAGED_BY, plan.TAG_COURSE: COURSE, plan.TAG_STACK: stack}


def make_stop_schedule(stack: str) -> None:
    """What components/stop_schedule.py makes for a stack: its group, queue and role (with
    its inline policy), named and tagged as it names and tags them."""
    tags = tag_values(stack_tags(stack))
    boto3.client("scheduler", region_name=REGION).create_schedule_group(
        Name=schedule_group_name(stack), Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    boto3.client("sqs", region_name=REGION).create_queue(QueueName=dead_letter_queue_name(stack), tags=tags)
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(
        RoleName=role_name(stack),
        AssumeRolePolicyDocument=json.dumps(trust_policy(ACCOUNT)),
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{dead_letter_queue_name(stack)}"
    policy = schedule_policy("aws", ACCOUNT, stack_tags(stack), queue_arn)
    iam.put_role_policy(RoleName=role_name(stack), PolicyName="stop", PolicyDocument=json.dumps(policy))


def stop_schedule_resources() -> tuple[set[str], set[str], set[str]]:
    groups = boto3.client("scheduler", region_name=REGION).list_schedule_groups()["ScheduleGroups"]
    queues = boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", [])
    roles = boto3.client("iam", region_name=REGION).list_roles()["Roles"]
    return (
        {g["Name"] for g in groups},
        {url.rsplit("/", 1)[-1] for url in queues},
        {r["RoleName"] for r in roles},
    )


def snapshot_of(ec2, instance_id: str, stack: str, student: str) -> str:
    """A snapshot as the lead's resource hook takes one before an instance is deleted."""
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    tags = stack_tags(stack) | ({plan.TAG_STUDENT: student} if student else {})
    tags["flasklab-snapshot-of"] = instance_id
    snapshot = ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    return snapshot["SnapshotId"]


def snapshots(ec2) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def sweep_course(*more: str) -> int:
    return main(["class", "sweep", "--course", COURSE, "--region", REGION, *more])


def as_terminal(monkeypatch, answer: str) -> list[str]:
    """stdin a terminal where the teacher types `answer`; the prompts shown."""
    prompts: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answer)
    return prompts


def test_with_every_stack_file_here_nothing_is_left_over(ec2, capsys):
    for settings in load_stack_servers("class-demo"):
        launch(ec2, plan.tags(settings))
    make_stop_schedule("class-demo")
    before = (states(ec2), resources_left(ec2), stop_schedule_resources())
    assert sweep_course("--yes") == 0
    assert f"nothing of course {COURSE} is left over" in capsys.readouterr().out
    assert (states(ec2), resources_left(ec2), stop_schedule_resources()) == before


def test_a_gone_stack_is_listed_then_deleted_only_once_the_course_is_typed(ec2, account, monkeypatch, capsys):
    make_stop_schedule(GONE)
    make_stop_schedule("class-demo")
    before = (states(ec2), resources_left(ec2), stop_schedule_resources())
    # Not a terminal and no --yes: a listing.
    assert sweep_course() == 0
    out = capsys.readouterr().out
    assert account[GONE] in out and "nothing deleted: to delete these 6" in out
    assert account["ana"] not in out
    for name in (schedule_group_name(GONE), dead_letter_queue_name(GONE), role_name(GONE)):
        assert name in out
    assert role_name("class-demo") not in out
    # A terminal, and the wrong answer.
    prompts = as_terminal(monkeypatch, "yes")
    assert sweep_course() == 0
    assert prompts == [f"To delete these 6, type the course's name ({COURSE}); anything else keeps them: "]
    assert (states(ec2), resources_left(ec2), stop_schedule_resources()) == before
    # The course's name: the listing, then exactly what it listed goes.
    as_terminal(monkeypatch, COURSE)
    capsys.readouterr()
    assert sweep_course() == 0
    out = capsys.readouterr().out
    assert out.index(account[GONE]) < out.index("terminated 1 instances")
    after = states(ec2)
    assert after[account[GONE]] == "terminated"
    assert {after[account[s]] for s in ("ana", "ben", "carla")} == {"running"}
    assert stop_schedule_resources() == (
        {schedule_group_name("class-demo")} | ({"default"} & before[2][0]),
        {dead_letter_queue_name("class-demo")},
        {role_name("class-demo")},
    )


def test_yes_lists_what_it_deletes_in_the_same_run(ec2, account, capsys):
    assert sweep_course("--yes") == 0
    out = capsys.readouterr().out
    assert out.index(account[GONE]) < out.index("terminated 1 instances")


def test_a_running_server_of_a_course_with_stack_files_here_refuses_the_whole_sweep(ec2, account, capsys):
    ec2.start_instances(InstanceIds=[account[GONE]])
    make_stop_schedule(GONE)
    before = (states(ec2), resources_left(ec2), stop_schedule_resources())
    assert sweep_course("--yes") == 1
    out = capsys.readouterr().out
    assert "nothing deleted: 1 of these servers are running (class-2025)" in out
    assert "stack files here (" in out and "class-demo" in out and "class stop --course" in out
    assert (states(ec2), resources_left(ec2), stop_schedule_resources()) == before


@pytest.fixture
def pulumi_lists(tmp_path, monkeypatch):
    """A `pulumi` on PATH whose `stack ls --json` lists the given stacks."""

    def listing(*stacks: str) -> None:
        cli = tmp_path / "bin" / "pulumi"
        cli.parent.mkdir(exist_ok=True)
        entries = json.dumps([{"name": f"acme/{stack}"} for stack in stacks])
        cli.write_text(f"#!/bin/sh\necho '{entries}'\n")
        cli.chmod(0o755)
        monkeypatch.setenv("PATH", f"{cli.parent}:/usr/bin:/bin")

    return listing


def test_a_stack_pulumi_lists_or_a_stack_file_keeps_its_resources(ec2, account, pulumi_lists, capsys):
    # Pulumi's backend knows class-2025 (no file here) and not class-demo (a file here): both live.
    pulumi_lists(GONE, "dev")
    before = (states(ec2), resources_left(ec2))
    assert sweep_course("--yes") == 0
    out = capsys.readouterr().out
    assert "stacks known from the stack files in stacks/ and `pulumi stack ls`" in out
    assert f"nothing of course {COURSE} is left over" in out
    assert (states(ec2), resources_left(ec2)) == before
    known = sweep.known_servers()
    assert {GONE, "class-demo", "dev"} <= set(known.students)


def test_snapshots_older_than_the_days_given_are_offered(ec2, account, capsys):
    old_disk = snapshot_of(ec2, account[GONE], GONE, "")
    of_ana = snapshot_of(ec2, account["ana"], "class-demo", "ana")
    other_course = ec2.create_snapshot(
        VolumeId=ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    )
    # Younger than the default 30 days: kept, even of a gone stack (the disks of a class just
    # destroyed stay for the grading).
    assert sweep_course() == 0
    out = capsys.readouterr().out
    assert old_disk not in out and of_ana not in out
    assert sweep_course("--snapshot-days", "0", "--yes") == 0
    out = capsys.readouterr().out
    assert f"of {account[GONE]}" in out and "older than 0 days (8 GiB)" in out
    assert snapshots(ec2) == {other_course["SnapshotId"]}
