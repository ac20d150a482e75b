"""A deleted server's disk is kept (flasklab.snapshots, components/snapshot_hook.py) and can be
put back (`class snapshots`), against an emulated AWS account (moto)."""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from components import snapshot_hook
from flasklab import plan, snapshots
from flasklab.__main__ import main
from flasklab.stacks import load_stack_servers
from tests.conftest import REGION
from tests.test_account import launch_instance

CLASS = {settings.student: settings for settings in load_stack_servers("class-demo")}


def root_volume(ec2_client, instance_id: str) -> str:
    [reservation] = ec2_client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    [instance] = reservation["Instances"]
    [mapping] = [m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == instance["RootDeviceName"]]
    return mapping["Ebs"]["VolumeId"]


def provider_outputs(ec2_client, instance_id: str, tags: dict[str, str]) -> dict:
    """The instance's outputs as the provider keeps them in the state (what a hook gets)."""
    return {"rootBlockDevice": [{"volumeId": root_volume(ec2_client, instance_id)}], "tags": tags}


def test_the_disk_of_a_deleted_server_is_snapshotted_with_whose_it_was(ec2):
    tags = plan.tags(CLASS["ben"])
    instance_id = launch_instance(ec2, tags)
    snapshot_id = snapshots.snapshot_root_volume(ec2, instance_id, provider_outputs(ec2, instance_id, tags))
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["VolumeId"] == root_volume(ec2, instance_id)
    assert snapshot["State"] == "completed"
    kept = {tag["Key"]: tag["Value"] for tag in snapshot["Tags"]}
    assert kept[snapshots.TAG_SNAPSHOT_OF] == instance_id
    assert {key: kept[key] for key in (plan.TAG_COURSE, plan.TAG_STACK, plan.TAG_STUDENT)} == {
        plan.TAG_COURSE: CLASS["ben"].course,
        plan.TAG_STACK: "class-demo",
        plan.TAG_STUDENT: "ben",
    }
    assert plan.TAG_SERVER_NAMES not in kept


def test_without_the_volume_in_the_state_ec2_is_asked_which_it_is(ec2):
    tags = plan.tags(CLASS["ana"])
    instance_id = launch_instance(ec2, tags)
    snapshot_id = snapshots.snapshot_root_volume(ec2, instance_id, {"tags": tags})
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["VolumeId"] == root_volume(ec2, instance_id)


@pytest.fixture
def aws_region_config():
    runtime_config.set_all_config({"aws:region": REGION})
    yield
    runtime_config.set_all_config({})


def hook_args(instance_id: str, outputs: dict) -> pulumi.ResourceHookArgs:
    return pulumi.ResourceHookArgs(
        urn="urn:pulumi:class-demo::flasklab::flasklab:index:StudentServer$aws:ec2/instance:Instance::x",
        id=instance_id,
        name="flasklab-class-demo-ben-instance",
        type="aws:ec2/instance:Instance",
        old_outputs=outputs,
    )


def test_the_hook_snapshots_before_the_delete_and_fails_it_when_it_cannot(ec2, aws_region_config):
    tags = plan.tags(CLASS["ben"])
    instance_id = launch_instance(ec2, tags)
    snapshot_hook._snapshot(hook_args(instance_id, provider_outputs(ec2, instance_id, tags)))
    assert [s["Tags"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] if s.get("Tags")]
    # A volume EC2 does not know: the snapshot cannot be made, so the delete must not go on.
    outputs = {"rootBlockDevice": [{"volumeId": "vol-0123456789abcdef0"}], "tags": tags}
    with pytest.raises(RuntimeError, match=r"is kept: its disk could not be snapshotted"):
        snapshot_hook._snapshot(hook_args(instance_id, outputs))


def test_snapshots_are_found_by_exact_course_stack_and_student(ec2):
    for course, student in (("daw*", "ana"), ("daw-b", "ana"), ("daw*", "ben")):
        tags = plan.tags(CLASS[student]) | {plan.TAG_COURSE: course}
        instance_id = launch_instance(ec2, tags)
        snapshots.snapshot_root_volume(ec2, instance_id, provider_outputs(ec2, instance_id, tags))
    assert sorted(s.student for s in snapshots.find_snapshots(ec2, "daw*", "class-demo")) == ["ana", "ben"]
    assert [s.student for s in snapshots.find_snapshots(ec2, "daw*", "class-demo", "ana")] == ["ana"]
    assert snapshots.find_snapshots(ec2, "daw", "class-demo") == []


def test_class_snapshots_lists_them_and_restores_one_as_a_second_disk(ec2, capsys):
    tags = plan.tags(CLASS["ben"])
    old = launch_instance(ec2, tags)
    snapshot_id = snapshots.snapshot_root_volume(ec2, old, provider_outputs(ec2, old, tags))
    ec2.terminate_instances(InstanceIds=[old])
    new = launch_instance(ec2, tags)  # ben's rebuilt server
    assert main(["class", "snapshots", "--stack", "class-demo"]) == 0
    listing = capsys.readouterr().out
    assert snapshot_id in listing and "ben" in listing and old in listing

    assert main(["class", "snapshots", "--stack", "class-demo", "--restore", snapshot_id]) == 0
    printed = capsys.readouterr().out
    [volume] = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Volumes"]
    assert [a["InstanceId"] for a in volume["Attachments"]] == [new]
    assert volume["VolumeId"] in printed and "sudo mount -o ro" in printed
    assert root_volume(ec2, new) != volume["VolumeId"], "the server's own disk is not touched"


def test_restoring_a_snapshot_of_another_stack_is_refused(ec2, capsys):
    assert main(["class", "snapshots", "--stack", "class-demo", "--restore", "snap-0123456789abcdef0"]) == 2
    assert "is not a snapshot of stack class-demo" in capsys.readouterr().err
