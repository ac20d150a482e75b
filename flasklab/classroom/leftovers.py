"""What flasklab left in the account, for `class sweep`: every kind of resource it makes,
found by its tags (managed-by=flasklab, course, stack, student) matched exactly, and
whether it is left over (its stack or student no longer exists; a snapshot, once older
than --snapshot-days); and how each kind is deleted.

EC2's instances, security groups, key pairs and snapshots carry the course as written;
the stop schedule's group, queue and role carry it as IAM accepts it
(flasklab.stop_schedule.tag_value), and are matched so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from flasklab import plan
from flasklab.classroom.account import (
    aws_error_text,
    chunks,
    client_error_message,
    client_like,
    course_filters,
    find_servers,
    is_of,
    tag_map,
)
from flasklab.snapshots import TAG_SNAPSHOT_OF
from flasklab.stop_schedule import tag_value

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

INSTANCE, GROUP, KEY_PAIR = "instance", "security group", "key pair"
SCHEDULES, QUEUE, ROLE, SNAPSHOT = "stop schedules", "failed-stops queue", "IAM role", "snapshot"
# The name every flasklab stop-schedule group, queue and role starts with.
NAME_PREFIX = "flasklab-"
BATCH = 50  # instances per TerminateInstances call and per wait


@dataclass(frozen=True)
class KnownServers:
    """The stacks that exist, and each one's students ('' for a stack of one student);
    None where they cannot be read: its resources are then kept."""

    source: str
    students: dict[str, frozenset[str] | None]
    notes: list[str] = field(default_factory=list)

    def why_stray(self, stack: str, student: str) -> str:
        """Why a resource of this stack and student is left over ('' if it is not)."""
        if stack not in self.students:
            return f"stack {stack or '(none)'} does not exist"
        students = self.students[stack]
        if students is None or student in students:
            return ""
        if not student:
            return f"stack {stack} is now a class stack"
        return f"{student} is not a student of stack {stack}"

    def why_stack_gone(self, stack: str) -> str:
        return "" if stack in self.students else f"stack {stack or '(none)'} does not exist"


@dataclass(frozen=True)
class Stray:
    kind: str
    resource_id: str
    name: str  # as the console shows it: the Name tag, the group's, key pair's, role's or queue's name
    stack: str
    student: str
    why: str
    running: bool = False  # an instance that is running (or starting)


@dataclass
class Found:
    strays: list[Stray] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_strays(
    client: EC2Client, course: str, known: KnownServers, snapshot_days: int, now: datetime
) -> Found:
    """Every left-over resource of the course; a kind that cannot be listed is a note."""
    found = Found()
    found.strays += [
        Stray(
            INSTANCE,
            server.instance_id,
            server.name,
            server.stack,
            server.student,
            why,
            running=server.state in ("running", "pending"),
        )
        for server in find_servers(client, course)
        if (why := known.why_stray(server.stack, server.student))
    ]
    found.strays += _ec2_strays(client, course, known)
    listers: list[tuple[str, Callable[[], Iterator[Stray]]]] = [
        ("stop-schedule groups", lambda: _schedule_groups(client_like(client, "scheduler"), course, known)),
        ("failed-stops queues", lambda: _queues(client_like(client, "sqs"), course, known)),
        ("IAM roles", lambda: _roles(client_like(client, "iam"), course, known)),
        ("EBS snapshots", lambda: _snapshots(client, course, snapshot_days, now)),
    ]
    for what, lister in listers:
        try:
            found.strays += list(lister())
        except (ClientError, BotoCoreError) as error:
            found.notes.append(f"the {what} could not be listed, so none is deleted: {aws_error_text(error)}")
    return found


def _ec2_strays(client: EC2Client, course: str, known: KnownServers) -> Iterator[Stray]:
    groups = client.get_paginator("describe_security_groups").paginate(Filters=course_filters(course))
    for page in groups:
        for group in page.get("SecurityGroups", []):
            yield from _stray(
                GROUP, group["GroupId"], group["GroupName"], tag_map(group.get("Tags")), course, known
            )
    for key in client.describe_key_pairs(Filters=course_filters(course)).get("KeyPairs", []):
        tags = tag_map(key.get("Tags"))
        yield from _stray(KEY_PAIR, key.get("KeyPairId", ""), key.get("KeyName", ""), tags, course, known)


def _stray(
    kind: str, resource_id: str, name: str, tags: Mapping[str, str], course: str, known: KnownServers
) -> Iterator[Stray]:
    if not is_of(tags, course):
        return
    stack, student = tags.get(plan.TAG_STACK, ""), tags.get(plan.TAG_STUDENT, "")
    if why := known.why_stray(stack, student):
        yield Stray(kind, resource_id, name, stack, student, why)


def _stack_stray(
    kind: str, resource_id: str, name: str, tags: Mapping[str, str], course: str, known: KnownServers
) -> Iterator[Stray]:
    """A resource of a whole stack (its stop schedule's group, queue or role)."""
    if tags.get(plan.TAG_MANAGED_BY) != plan.MANAGED_BY or tags.get(plan.TAG_COURSE) != tag_value(course):
        return
    stack = tags.get(plan.TAG_STACK, "")
    if why := known.why_stack_gone(stack):
        yield Stray(kind, resource_id, name, stack, "", why)


def _schedule_groups(scheduler: Any, course: str, known: KnownServers) -> Iterator[Stray]:
    for page in scheduler.get_paginator("list_schedule_groups").paginate(NamePrefix=NAME_PREFIX):
        for group in page.get("ScheduleGroups", []):
            tags = tag_map(scheduler.list_tags_for_resource(ResourceArn=group["Arn"]).get("Tags"))
            yield from _stack_stray(SCHEDULES, group["Name"], group["Name"], tags, course, known)


def _queues(sqs: Any, course: str, known: KnownServers) -> Iterator[Stray]:
    for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=NAME_PREFIX):
        for url in page.get("QueueUrls", []):
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}
            yield from _stack_stray(QUEUE, url, url.rsplit("/", 1)[-1], tags, course, known)


def _roles(iam: Any, course: str, known: KnownServers) -> Iterator[Stray]:
    for page in iam.get_paginator("list_roles").paginate():
        for role in page.get("Roles", []):
            if not role["RoleName"].startswith(NAME_PREFIX):
                continue
            tags = tag_map(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"))
            yield from _stack_stray(ROLE, role["RoleName"], role["RoleName"], tags, course, known)


def _snapshots(client: EC2Client, course: str, snapshot_days: int, now: datetime) -> Iterator[Stray]:
    """Snapshots older than snapshot_days: a younger one is kept even when its stack is
    gone (the disks of a class destroyed at the end of term stay for the grading)."""
    oldest = now - timedelta(days=snapshot_days)
    pages = client.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=course_filters(course)
    )
    for page in pages:
        for snapshot in page.get("Snapshots", []):
            tags = tag_map(snapshot.get("Tags"))
            started = snapshot.get("StartTime")
            if not is_of(tags, course) or started is None or started > oldest:
                continue
            of = tags.get(TAG_SNAPSHOT_OF, snapshot.get("VolumeId", ""))
            yield Stray(
                SNAPSHOT,
                snapshot["SnapshotId"],
                f"of {of}, {started:%Y-%m-%d}",
                tags.get(plan.TAG_STACK, ""),
                tags.get(plan.TAG_STUDENT, ""),
                f"older than {snapshot_days} days ({snapshot.get('VolumeSize', '?')} GiB)",
            )


def delete(client: EC2Client, strays: list[Stray]) -> tuple[list[str], list[str]]:
    """Instances first (their groups are in use until they are gone), then the rest; what
    was done, and what went wrong."""
    instances = [s.resource_id for s in strays if s.kind == INSTANCE]
    for batch in chunks(instances, BATCH):
        client.terminate_instances(InstanceIds=batch)
    for batch in chunks(instances, BATCH):
        client.get_waiter("instance_terminated").wait(InstanceIds=batch)
    done = [f"terminated {len(instances)} instances"] if instances else []
    deleters = _deleters(client)
    failures = []
    deleted = 0
    for stray in strays:
        if stray.kind == INSTANCE:
            continue
        try:
            deleters[stray.kind](stray)
            deleted += 1
        except ClientError as error:
            failures.append(_failure(stray, error))
    done.append(f"deleted {deleted} other resources; {len(failures)} kept")
    return done, failures


def _deleters(client: EC2Client) -> dict[str, Callable[[Stray], object]]:
    scheduler, sqs, iam = (client_like(client, name) for name in ("scheduler", "sqs", "iam"))
    return {
        GROUP: lambda s: client.delete_security_group(GroupId=s.resource_id),
        KEY_PAIR: lambda s: client.delete_key_pair(KeyName=s.name),
        SNAPSHOT: lambda s: client.delete_snapshot(SnapshotId=s.resource_id),
        # Deleting a schedule group deletes its schedules.
        SCHEDULES: lambda s: scheduler.delete_schedule_group(Name=s.resource_id),
        QUEUE: lambda s: sqs.delete_queue(QueueUrl=s.resource_id),
        ROLE: lambda s: _delete_role(iam, s.resource_id),
    }


def _delete_role(iam: Any, name: str) -> None:
    """IAM deletes a role only without policies."""
    for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for attached in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=name)


def _failure(stray: Stray, error: ClientError) -> str:
    if error.response.get("Error", {}).get("Code") == "DependencyViolation":
        return (
            f"{stray.kind} {stray.resource_id} is still in use (by an instance or another group's "
            f"rule), so it is kept: find it in the EC2 console, and run sweep again once it is free."
        )
    return f"{stray.kind} {stray.resource_id} is kept: {client_error_message(error)}"
