"""`class sweep --course C [--region R] [--yes]`: what flasklab left in the account.

Instances, security groups and key pairs tagged managed-by=flasklab and with the course,
whose stack no longer exists (per `pulumi stack ls` when the CLI is here, else the stack
files in stacks/), or whose student is no longer on the stack's roster. Listed by default;
`--yes` terminates the instances, waits until they are gone, then deletes the security
groups and key pairs. Nothing without the managed-by=flasklab tag is ever touched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from flasklab import plan
from flasklab.classroom.account import (
    AccountError,
    add_account_arguments,
    aws_errors,
    chunks,
    client_error_message,
    course_filters,
    ec2_client,
    find_servers,
    tag_map,
)
from flasklab.settings import PROJECT_DIR, ConfigError
from flasklab.stacks import load_stack_servers, stack_names

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

STACK_FILES = "the stack files in stacks/"
PULUMI_STACK_LS = "`pulumi stack ls`"
BATCH = 50  # instances per TerminateInstances call and per wait


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_account_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="delete what is listed (default: only list it)")


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


@dataclass(frozen=True)
class Stray:
    kind: str  # instance, security group, key pair
    resource_id: str
    name: str  # as the EC2 console shows it: the Name tag, the group's or key pair's name
    stack: str
    student: str
    why: str


def known_servers() -> KnownServers:
    names, source, notes = existing_stacks()
    students: dict[str, frozenset[str] | None] = {}
    for stack in names:
        try:
            students[stack] = frozenset(settings.student for settings in load_stack_servers(stack))
        except ConfigError as error:
            students[stack] = None
            notes.append(f"the students of stack {stack} cannot be read, so its resources are kept: {error}")
    return KnownServers(source, students, notes)


def existing_stacks() -> tuple[list[str], str, list[str]]:
    """The project's stacks: from `pulumi stack ls` when the CLI is here, else the stack files."""
    if shutil.which("pulumi") is None:
        return stack_names(), STACK_FILES, []
    done = subprocess.run(
        ["pulumi", "stack", "ls", "--json"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    try:
        if done.returncode == 0:
            return stacks_of_pulumi_json(done.stdout), PULUMI_STACK_LS, []
        why = done.stderr.strip().splitlines()[-1:] or ["no message"]
    except (ValueError, KeyError, TypeError) as error:
        why = [f"its output is not a JSON list of stacks: {error}"]
    return stack_names(), STACK_FILES, [f"`pulumi stack ls --json` failed ({why[0]}); used {STACK_FILES}"]


def stacks_of_pulumi_json(text: str) -> list[str]:
    """The names in `pulumi stack ls --json` ([{"name": "org/dev", ...}]), without the org."""
    return sorted(str(entry["name"]).rsplit("/", 1)[-1] for entry in json.loads(text))


def find_strays(client: EC2Client, course: str, known: KnownServers) -> list[Stray]:
    strays = [
        Stray("instance", server.instance_id, server.name, server.stack, server.student, why)
        for server in find_servers(client, course)
        if (why := known.why_stray(server.stack, server.student))
    ]
    groups = client.get_paginator("describe_security_groups").paginate(Filters=course_filters(course))
    for page in groups:
        for group in page.get("SecurityGroups", []):
            strays += _stray("security group", group["GroupId"], group["GroupName"], group.get("Tags"), known)
    for key in client.describe_key_pairs(Filters=course_filters(course)).get("KeyPairs", []):
        strays += _stray("key pair", key.get("KeyPairId", ""), key.get("KeyName", ""), key.get("Tags"), known)
    return strays


def _stray(kind: str, resource_id: str, name: str, tags: object, known: KnownServers) -> list[Stray]:
    values = tag_map(tags)
    stack, student = values.get(plan.TAG_STACK, ""), values.get(plan.TAG_STUDENT, "")
    why = known.why_stray(stack, student)
    return [Stray(kind, resource_id, name, stack, student, why)] if why else []


def run(args: argparse.Namespace) -> int:
    console = Console()
    known = known_servers()
    try:
        client = ec2_client(args.region)
        with aws_errors(args.region):
            strays = find_strays(client, args.course, known)
            console.print(f"stacks known from {known.source}: {', '.join(sorted(known.students)) or 'none'}")
            for note in known.notes:
                console.print(note)
            if not strays:
                console.print(f"nothing of course {args.course} is left over in {client.meta.region_name}.")
                return 0
            console.print(strays_table(strays))
            if not args.yes:
                console.print(f"nothing deleted: run again with --yes to delete these {len(strays)}.")
                return 0
            failures = delete(client, strays, console)
    except AccountError as error:
        print(error, file=sys.stderr)
        return 2
    return 1 if failures else 0


def strays_table(strays: list[Stray]) -> Table:
    table = Table("kind", "id", "name", "stack", "student", "left over because")
    for stray in strays:
        table.add_row(
            stray.kind, stray.resource_id, stray.name, stray.stack, stray.student or "-", stray.why
        )  # fmt: skip
    return table


def delete(client: EC2Client, strays: list[Stray], console: Console) -> list[str]:
    """Instances first (their groups are in use until they are gone), then groups and keys."""
    instances = [s.resource_id for s in strays if s.kind == "instance"]
    for batch in chunks(instances, BATCH):
        client.terminate_instances(InstanceIds=batch)
    for batch in chunks(instances, BATCH):
        client.get_waiter("instance_terminated").wait(InstanceIds=batch)
    if instances:
        console.print(f"terminated {len(instances)} instances")
    failures = [problem for stray in strays if (problem := _delete_one(client, stray))]
    for problem in failures:
        console.print(problem)
    deleted = len(strays) - len(instances) - len(failures)
    console.print(f"deleted {deleted} security groups and key pairs; {len(failures)} kept")
    return failures


def _delete_one(client: EC2Client, stray: Stray) -> str:
    """Deletes a security group or key pair; what went wrong, or ''."""
    try:
        if stray.kind == "security group":
            client.delete_security_group(GroupId=stray.resource_id)
        elif stray.kind == "key pair":
            client.delete_key_pair(KeyName=stray.name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DependencyViolation":
            return (
                f"security group {stray.resource_id} is still in use (by an instance or another group's "
                f"rule), so it is kept: find it in the EC2 console, and run sweep again once it is free."
            )
        return f"{stray.kind} {stray.resource_id} is kept: {client_error_message(error)}"
    return ""
