"""Stopped is a state, not a failure: `class status`, `class check` and `class sheet` ask EC2
(moto) for each server's state first, use the address it has now, say why a stopped one
stopped and whether one was built from an older config; and the stop schedule's failed
stops (its dead-letter queue) reach `class status`. Every class command names its class
by --stack (course and region from the stack file) and matches tags exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from flasklab import plan
from flasklab.__main__ import main
from flasklab.classroom import account, check
from flasklab.classroom.check_server import Row, passed
from flasklab.stacks import load_stack_servers
from flasklab.stop_schedule import dead_letter_queue_name
from tests.test_account import COURSE, REGION, launch, public_ips, states, stray

# What `pulumi up` left in the outputs: addresses a stop and start has since changed.
OLD_ADDRESSES = {"ana": "192.0.2.1", "ben": "192.0.2.2", "carla": "192.0.2.3"}


@pytest.fixture
def class_demo(ec2) -> dict[str, str]:
    """class-demo's three servers, each tagged as `pulumi up` tags them; ben's stack now says
    another config than the one ben's server was built from."""
    ids = {}
    for settings in load_stack_servers("class-demo"):
        built = {plan.TAG_BUILD: "aaaa1111", plan.TAG_CONFIG: "aaaa1111"}
        if settings.student == "ben":
            built[plan.TAG_CONFIG] = "bbbb2222"
        ids[settings.student] = launch(ec2, plan.tags(settings) | built).instance_id
    return ids


@pytest.fixture
def outputs_file(tmp_path) -> Path:
    students = {
        student: {
            "publicIp": address,
            "serverNames": [f"{student}.practica_flask"],
            "hostsLine": f"{address} {student}.practica_flask",
            "sshCommand": f"ssh admin@{address}",
            "url": f"http://{student}.practica_flask/",
        }
        for student, address in OLD_ADDRESSES.items()
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"students": students}))
    return path


@pytest.fixture
def probed(monkeypatch) -> list[tuple[str, str]]:
    """The servers `class check` probes, as (student, address): recorded, each passing,
    and never sent a packet (moto's addresses are not this machine's)."""
    seen: list[tuple[str, str]] = []

    def record(servers, jobs, timeout, ssh, on_done=lambda row: None):
        seen.extend((server.student, server.address) for server in servers)
        return [Row(s.student, s.address, {key: passed() for key in check.CHECKS}) for s in servers]

    monkeypatch.setattr(check, "check_servers", record)
    return seen


def csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return {row["student"]: row for row in csv.DictReader(file)}


def test_check_reports_a_stopped_server_as_stopped_and_probes_the_others_where_they_are_now(
    ec2, class_demo, outputs_file, probed, tmp_path, capsys
):
    ec2.stop_instances(InstanceIds=[class_demo["ana"]])
    report = tmp_path / "check.csv"
    # No --region: the stack file's aws:region (eu-west-1) is where EC2 is asked.
    status = main(
        ["class", "check", "--stack", "class-demo", "--outputs", str(outputs_file), "--csv", str(report)]
    )
    out = capsys.readouterr().out
    assert status == 0, out  # stopped is not a failure
    ips = public_ips(ec2)
    assert sorted(probed) == [("ben", ips[class_demo["ben"]]), ("carla", ips[class_demo["carla"]])]
    rows = csv_rows(report)
    assert rows["ana"]["result"] == "stopped" and rows["ana"]["reachable"] == "stopped"
    assert "stopped since 20" in rows["ana"]["problems"]
    assert (
        "stopped by a StopInstances call (the teacher, `class stop` or the stop schedule)"
        in rows["ana"]["problems"]
    )
    assert "python -m flasklab class start --stack class-demo --student ana" in rows["ana"]["problems"]
    assert rows["ben"]["result"] == rows["carla"]["result"] == "ok"
    assert (
        rows["ben"]["drift"]
        == "built from an older config: `python -m flasklab class rebuild --stack class-demo ben` applies it"
    )
    assert rows["carla"]["drift"] == ""
    assert "2 of 3 servers pass every check; 0 fail; 1 stopped (not checked)" in out
    assert "refused" not in out and "No route" not in out


def test_check_fails_a_server_ec2_no_longer_has(ec2, class_demo, outputs_file, probed, tmp_path, capsys):
    ec2.terminate_instances(InstanceIds=[class_demo["carla"]])
    report = tmp_path / "check.csv"
    assert (
        main(
            ["class", "check", "--stack", "class-demo", "--outputs", str(outputs_file), "--csv", str(report)]
        )
        == 1
    )
    assert "EC2 has no instance of carla" in csv_rows(report)["carla"]["problems"]
    assert [student for student, _ in probed] == ["ana", "ben"]


def test_without_aws_check_says_so_and_goes_by_the_outputs(outputs_file, probed, tmp_path, capsys):
    report = tmp_path / "check.csv"
    assert (
        main(
            ["class", "check", "--stack", "class-demo", "--outputs", str(outputs_file), "--csv", str(report)]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "EC2 was not asked for the servers' state (no AWS credentials found" in captured.out
    assert "Traceback" not in captured.out + captured.err
    assert sorted(probed) == sorted(OLD_ADDRESSES.items())


def test_the_sheet_gives_running_servers_their_address_now_and_says_which_are_stopped(
    ec2, class_demo, outputs_file, tmp_path
):
    ec2.stop_instances(InstanceIds=[class_demo["ana"]])
    folder = tmp_path / "sheet"
    assert (
        main(
            ["class", "sheet", "--stack", "class-demo", "--outputs", str(outputs_file), "--out", str(folder)]
        )
        == 0
    )
    ips = public_ips(ec2)
    hosts = (folder / "hosts").read_text()
    assert f"{ips[class_demo['ben']]} ben.practica_flask" in hosts
    assert "# ana: stopped since 20" in hosts
    assert not any(address in hosts for address in OLD_ADDRESSES.values())
    rows = csv_rows(folder / "students.csv")
    assert rows["ana"]["status"].startswith("stopped since 20")
    assert "class start --stack class-demo --student ana" in rows["ana"]["status"]
    assert rows["ben"]["sshCommand"] == f"ssh admin@{ips[class_demo['ben']]}"
    assert "built from an older config" in rows["ben"]["status"]
    assert "built from an older config" not in rows["carla"]["status"]


def test_the_sheet_says_which_servers_ec2_no_longer_has(ec2, class_demo, outputs_file, tmp_path):
    ec2.terminate_instances(InstanceIds=[class_demo["carla"]])
    folder = tmp_path / "sheet"
    assert (
        main(
            ["class", "sheet", "--stack", "class-demo", "--outputs", str(outputs_file), "--out", str(folder)]
        )
        == 0
    )
    status = csv_rows(folder / "students.csv")["carla"]["status"]
    assert status == "EC2 has no instance of carla (terminated or swept?): `pulumi up` makes it anew"
    hosts = (folder / "hosts").read_text()
    assert "# carla: EC2 has no instance of carla (terminated or swept?), no address now" in hosts
    assert OLD_ADDRESSES["carla"] not in hosts


def test_status_says_why_a_server_stopped_its_drift_and_its_last_failed_scheduled_stop(
    ec2, class_demo, capsys
):
    ec2.stop_instances(InstanceIds=[class_demo["ana"]])
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=dead_letter_queue_name("class-demo"))["QueueUrl"]
    schedule_arn = f"arn:aws:scheduler:{REGION}:123456789012:schedule/flasklab-class-demo/stop-carla"
    for code in ("Throttling", "IncorrectInstanceState"):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"InstanceIds": [class_demo["carla"]]}),
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": code},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": f"{code} (as EC2 said it)"},
                "SCHEDULE_ARN": {"DataType": "String", "StringValue": schedule_arn},
            },
        )
    for _ in range(2):  # the messages stay for the next look
        assert main(["class", "status", "--stack", "class-demo"]) == 0
        out = capsys.readouterr().out
        rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
        assert "IncorrectInstanceState" in rows["carla"] or "Throttling" in rows["carla"]
        assert "UTC" in rows["carla"] and rows["ben"].rstrip("│ ").endswith("-")
        assert "ana: stopped since 20" in out and "stopped by a StopInstances call" in out
        assert (
            "ben: built from an older config: `python -m flasklab class rebuild --stack class-demo ben`"
            in out
        )
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 2


def test_status_says_a_failed_scheduled_start_was_a_start(ec2, class_demo, capsys, monkeypatch):
    """startSchedule's failures reach the same queue: the schedule's name says which it was,
    and whose (ben's names the instance ben had before a rebuild)."""
    monkeypatch.setenv("COLUMNS", "250")  # one line per row
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=dead_letter_queue_name("class-demo"))["QueueUrl"]
    instances = {**class_demo, "ben": "i-0aaaaaaaaaaaaaaaa"}
    for student, verb in (("ben", "start"), ("carla", "stop")):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"InstanceIds": [instances[student]]}),
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": "InsufficientInstanceCapacity"},
                "SCHEDULE_ARN": {
                    "DataType": "String",
                    "StringValue": f"arn:aws:scheduler:{REGION}:123456789012:schedule/flasklab-class-demo/"
                    f"{verb}-{student}",
                },
            },
        )
    assert main(["class", "status", "--stack", "class-demo"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "last failed scheduled stop/start" in out
    assert "start of 20" in rows["ben"] and "InsufficientInstanceCapacity" in rows["ben"]
    assert "stop of 20" in rows["carla"]
    assert rows["ana"].rstrip("│ ").endswith("-")


def test_ec2s_stop_reasons_in_a_teachers_words():
    instance = {
        "InstanceId": "i-1",
        "State": {"Name": "stopped"},
        "StateReason": {"Code": "Client.InstanceInitiatedShutdown"},
        "StateTransitionReason": "User initiated (2026-11-30 21:14:02 GMT)",
        "Tags": [],
    }
    note = account.server_of(instance).not_running_note
    why = "it stopped itself (idle stop, autoStopIdleMinutes, or a shutdown on it)"
    assert note == f"stopped since 2026-11-30 21:14 UTC: {why}"
    pending = account.server_of({**instance, "State": {"Name": "pending"}})
    assert pending.not_running_note == "starting: check again in a minute"


def test_a_stack_names_its_class_course_and_region(ec2, class_demo, capsys):
    [ana] = [s for s in load_stack_servers("class-demo") if s.student == "ana"]
    other_stack = launch(ec2, stray(ana, stack="class-2025", student="")).instance_id
    assert main(["class", "stop", "--stack", "class-demo"]) == 0
    after = states(ec2)
    assert {after[i] for i in class_demo.values()} == {"stopped"}
    assert after[other_stack] == "running"  # same course, another stack
    assert main(["class", "status", "--course", COURSE, "--region", REGION]) == 0
    assert other_stack in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--course", COURSE],
        ["stop", "--stack", "class-demo"],
        ["sweep", "--course", COURSE],
        ["check", "--stack", "class-demo"],
        ["sheet", "--stack", "class-demo"],
    ],
)
def test_a_region_that_does_not_exist_is_refused_at_once(command, capsys):
    assert main(["class", *command, "--region", "us-east1"]) == 2
    err = capsys.readouterr().err
    assert "--region: 'us-east1' is not an AWS region EC2 has. Did you mean us-east-1?" in err


def test_course_and_stack_are_one_or_the_other(capsys):
    with pytest.raises(SystemExit):
        main(["class", "status", "--course", COURSE, "--stack", "class-demo"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_course_named_with_wildcards_reaches_only_its_own_servers(ec2, capsys):
    [ana] = [s for s in load_stack_servers("class-demo") if s.student == "ana"]
    star = {
        name: launch(ec2, stray(ana, course="daw*", stack="gone-star", student=name)) for name in ("s1", "s2")
    }
    other = {
        name: launch(ec2, stray(ana, course="daw-b", stack="gone-b", student=name)) for name in ("s3", "s4")
    }
    star_ids = {launched.instance_id for launched in star.values()}
    other_ids = {launched.instance_id for launched in other.values()}
    assert main(["class", "status", "--course", "daw*", "--region", REGION]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in star_ids) and not any(i in out for i in other_ids)
    assert main(["class", "stop", "--course", "daw*", "--region", REGION]) == 0
    after = states(ec2)
    assert {after[i] for i in star_ids} == {"stopped"} and {after[i] for i in other_ids} == {"running"}
    assert main(["class", "start", "--course", "daw?b", "--region", REGION]) == 0
    assert "no servers of course daw?b" in capsys.readouterr().out
    assert {states(ec2)[i] for i in star_ids} == {"stopped"}
    assert main(["class", "sweep", "--course", "daw*", "--region", REGION, "--yes"]) == 0
    after = states(ec2)
    assert {after[i] for i in star_ids} == {"terminated"} and {after[i] for i in other_ids} == {"running"}


def test_status_says_when_the_failed_stops_cannot_be_read(ec2, class_demo, monkeypatch, capsys):
    from flasklab.classroom import schedule_failures

    real_client_like = schedule_failures.client_like

    def refusing_sqs(client, service):
        sqs = real_client_like(client, service)

        def refuse(**_):
            http = AWSResponse("https://sqs", 400, {}, MockRawResponse(b""))
            return http, {"Error": {"Code": "AccessDenied", "Message": "not allowed"}, "ResponseMetadata": {}}

        sqs.meta.events.register_first("before-call.sqs.GetQueueUrl", refuse)
        return sqs

    monkeypatch.setattr(schedule_failures, "client_like", refusing_sqs)
    assert main(["class", "status", "--stack", "class-demo"]) == 0
    out = capsys.readouterr().out
    assert (
        "the schedules' failed stops and starts could not be read: your AWS user may not do GetQueueUrl"
        in out
    )
    assert "Traceback" not in out
