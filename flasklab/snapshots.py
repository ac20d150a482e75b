"""The disk of a student's server, kept when its instance goes: before EC2 deletes an
instance (a rebuild, a student taken off the roster, `pulumi destroy --run-program`) its
root volume is snapshotted (components/snapshot_hook.py), and `class snapshots` lists those
snapshots and puts one back, as a second disk, on a server to copy files from.

EBS keeps what a snapshot holds, compressed and incremental, at about $0.05 per GB-month
(us-east-1, 2026); an 8 GiB student disk, mostly Debian, costs well under that a month.
Nothing here imports Pulumi."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flasklab import plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, TagTypeDef

# On every snapshot flasklab makes: the instance it was the disk of, and when.
TAG_SNAPSHOT_OF = "flasklab-snapshot-of"
TAG_SNAPSHOT_DATE = "flasklab-snapshot-date"
# The instance's tags a snapshot keeps, so `class snapshots` and `class sweep` find it.
KEPT_TAGS = (plan.TAG_MANAGED_BY, plan.TAG_COURSE, plan.TAG_STACK, plan.TAG_STUDENT, "Name")
# Until a snapshot is complete the instance is not deleted: at most this long (a first
# snapshot of an 8 GiB disk takes a few minutes).
WAIT_DELAY_SECONDS = 15
WAIT_ATTEMPTS = 120
# Where a snapshot's volume is attached on the server it is restored to (Nitro instances
# show it as an NVMe device: `lsblk` names it).
RESTORE_DEVICE = "/dev/sdf"
RESTORE_MOUNT = "/mnt/restored"


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    stack: str
    student: str
    instance_id: str
    started: datetime | None
    state: str
    size_gib: int


def root_volume_id(outputs: Mapping[str, Any]) -> str:
    """The instance's root volume, as the provider's state holds it ('' if it does not)."""
    devices = outputs.get("rootBlockDevice") or outputs.get("root_block_device") or []
    device = devices[0] if isinstance(devices, list) and devices else devices
    if isinstance(device, Mapping):
        return str(device.get("volumeId") or device.get("volume_id") or "")
    return ""


def root_volume_of(client: EC2Client, instance_id: str) -> str:
    """The root volume EC2 says the instance has ('' if none, or no such instance)."""
    reservations = client.describe_instances(InstanceIds=[instance_id]).get("Reservations", [])
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            root = instance.get("RootDeviceName")
            for mapping in instance.get("BlockDeviceMappings", []):
                if mapping.get("DeviceName") == root:
                    return mapping.get("Ebs", {}).get("VolumeId", "")
    return ""


def snapshot_tags(instance_tags: Mapping[str, str], instance_id: str, now: datetime) -> list[TagTypeDef]:
    kept = {key: value for key, value in instance_tags.items() if key in KEPT_TAGS}
    kept |= {TAG_SNAPSHOT_OF: instance_id, TAG_SNAPSHOT_DATE: now.strftime("%Y-%m-%d")}
    return [{"Key": key, "Value": value} for key, value in kept.items()]


def snapshot_root_volume(
    client: EC2Client, instance_id: str, outputs: Mapping[str, Any], now: datetime | None = None
) -> str:
    """Snapshots the instance's root volume and waits until it is complete; the snapshot's
    id ('' when the instance has no volume left to keep)."""
    volume_id = root_volume_id(outputs) or root_volume_of(client, instance_id)
    if not volume_id:
        return ""
    tags = {str(k): str(v) for k, v in (outputs.get("tags") or {}).items()}
    when = now or datetime.now(UTC)
    snapshot = client.create_snapshot(
        VolumeId=volume_id,
        Description=f"flasklab: the disk of {tags.get('Name', instance_id)} ({instance_id}), before deletion",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": snapshot_tags(tags, instance_id, when)}],
    )
    snapshot_id = snapshot["SnapshotId"]
    client.get_waiter("snapshot_completed").wait(
        SnapshotIds=[snapshot_id], WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": WAIT_ATTEMPTS}
    )
    return snapshot_id


def find_snapshots(client: EC2Client, course: str, stack: str = "", student: str = "") -> list[Snapshot]:
    """The course's snapshots (of one stack and student, if named), newest first."""
    filters: list[FilterTypeDef] = [
        {"Name": f"tag:{plan.TAG_MANAGED_BY}", "Values": [plan.MANAGED_BY]},
        {"Name": "tag-key", "Values": [TAG_SNAPSHOT_OF]},
    ]
    found = []
    for page in client.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters):
        for snapshot in page.get("Snapshots", []):
            tags = {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}
            # Compared here, not in the filter: EC2's filter values treat * and ? as wildcards.
            if tags.get(plan.TAG_COURSE) != course or (stack and tags.get(plan.TAG_STACK) != stack):
                continue
            if student and tags.get(plan.TAG_STUDENT, "") != student:
                continue
            found.append(
                Snapshot(
                    snapshot_id=snapshot["SnapshotId"],
                    stack=tags.get(plan.TAG_STACK, ""),
                    student=tags.get(plan.TAG_STUDENT, ""),
                    instance_id=tags.get(TAG_SNAPSHOT_OF, ""),
                    started=snapshot.get("StartTime"),
                    state=snapshot.get("State", ""),
                    size_gib=snapshot.get("VolumeSize", 0),
                )
            )
    return sorted(found, key=lambda s: s.started or datetime.min.replace(tzinfo=UTC), reverse=True)


def restore_to(client: EC2Client, snapshot_id: str, instance_id: str) -> str:
    """A new volume from the snapshot, in the instance's zone, attached to it as a second
    disk; the volume's id. The instance's own disk is not touched."""
    reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    zone = instance["Placement"]["AvailabilityZone"]
    tags = [t for t in instance.get("Tags", []) if t["Key"] in KEPT_TAGS]
    volume = client.create_volume(
        SnapshotId=snapshot_id,
        AvailabilityZone=zone,
        VolumeType="gp3",
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [*tags, {"Key": TAG_SNAPSHOT_OF, "Value": snapshot_id}]}
        ],
    )
    volume_id = volume["VolumeId"]
    client.get_waiter("volume_available").wait(VolumeIds=[volume_id])
    client.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=RESTORE_DEVICE)
    return volume_id


def mount_commands() -> list[str]:
    """What to run on the server to read the restored disk (Debian's root is partition 1)."""
    return [
        "lsblk -o NAME,SIZE,MOUNTPOINT   # the new disk: the one of that size with no mount point",
        f"sudo mkdir -p {RESTORE_MOUNT}",
        f"sudo mount -o ro,nouuid /dev/DISK1 {RESTORE_MOUNT}   # DISK1: its first partition, e.g. nvme1n1p1",
        f"ls {RESTORE_MOUNT}/srv {RESTORE_MOUNT}/home",
    ]
