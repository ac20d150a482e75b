"""`class sweep --stack S | --course C [--region R] [--snapshot-days N] [--yes]`: what
flasklab left in the account, and its deletion once the teacher confirms it.

Left over: instances, security groups and key pairs of the course whose stack no longer
exists or whose student is no longer on its stack's roster; the stop schedules (their
group), failed-stops queue and IAM role of a stack that no longer exists; and EBS
snapshots older than --snapshot-days (default 30). A stack exists when its file is in
stacks/ OR `pulumi stack ls` lists it (both are asked: another backend or another clone
must not make a live class look left over). Nothing without the managed-by=flasklab
tag, nor of another course, is ever touched.

Deletion lists exactly what goes first, then needs the course's name typed at the
prompt, or --yes (which still lists first, in the same run). Without a terminal and
without --yes it only lists. It refuses whole while a listed server is running and a
stack file of the course is here: stop those servers first (`class stop`), then sweep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from flasklab.classroom.account import (
    AccountError,
    ClassTarget,
    add_class_arguments,
    aws_errors,
    class_target,
    ec2_client,
)
from flasklab.classroom.leftovers import KnownServers, Stray, delete, find_strays
from flasklab.settings import PROJECT_DIR, ConfigError
from flasklab.stacks import load_stack_servers, stack_course_and_region, stack_names

STACK_FILES = "the stack files in stacks/"
PULUMI_STACK_LS = "`pulumi stack ls`"
DEFAULT_SNAPSHOT_DAYS = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_class_arguments(parser)
    parser.add_argument(
        "--yes", action="store_true", help="delete what is listed without asking (it is still listed first)"
    )
    parser.add_argument(
        "--snapshot-days",
        type=int,
        default=DEFAULT_SNAPSHOT_DAYS,
        help=f"offer snapshots older than this many days (default {DEFAULT_SNAPSHOT_DAYS})",
    )


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
    """The stacks with a file in stacks/, and those `pulumi stack ls` lists (its current
    backend), together: either keeps a stack's resources."""
    files = stack_names()
    if shutil.which("pulumi") is None:
        return files, STACK_FILES, ["the Pulumi CLI is not here: only the stack files say which stacks exist"]
    done = subprocess.run(
        ["pulumi", "stack", "ls", "--json"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    try:
        if done.returncode == 0:
            listed = stacks_of_pulumi_json(done.stdout)
            return sorted({*files, *listed}), f"{STACK_FILES} and {PULUMI_STACK_LS}", []
        why = done.stderr.strip().splitlines()[-1:] or ["no message"]
    except (ValueError, KeyError, TypeError) as error:
        why = [f"its output is not a JSON list of stacks: {error}"]
    return files, STACK_FILES, [f"`pulumi stack ls --json` failed ({why[0]}); used {STACK_FILES} alone"]


def stacks_of_pulumi_json(text: str) -> list[str]:
    """The names in `pulumi stack ls --json` ([{"name": "org/dev", ...}]), without the org."""
    return sorted(str(entry["name"]).rsplit("/", 1)[-1] for entry in json.loads(text))


def course_stack_files(course: str) -> list[str]:
    """The stack files here whose course is this one."""
    found = []
    for stack in stack_names():
        try:
            if stack_course_and_region(stack)[0] == course:
                found.append(stack)
        except ConfigError:
            continue
    return found


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.snapshot_days < 0:
        print(f"--snapshot-days {args.snapshot_days}: give 0 or more days", file=sys.stderr)
        return 2
    try:
        target = class_target(args)
        known = known_servers()
        client = ec2_client(target.region)
        with aws_errors(target.region):
            found = find_strays(client, target.course, known, args.snapshot_days, datetime.now(UTC))
            console.print(f"stacks known from {known.source}: {', '.join(sorted(known.students)) or 'none'}")
            for note in [*known.notes, *found.notes]:
                console.print(note, markup=False, highlight=False)
            strays = found.strays
            if not strays:
                console.print(f"nothing of course {target.course} is left over in {client.meta.region_name}.")
                return 0
            console.print(strays_table(strays))
            refusal = running_refusal(strays, target)
            if refusal:
                console.print(refusal, markup=False, highlight=False)
                # Only a listing was asked for (no terminal to confirm in, no --yes): that is done.
                return 1 if args.yes or sys.stdin.isatty() else 0
            if not confirmed(args.yes, target, len(strays), console):
                return 0
            done, failures = delete(client, strays)
    except AccountError as error:
        print(error, file=sys.stderr)
        return 2
    for line in [*failures, *done]:
        console.print(line, markup=False, highlight=False)
    return 1 if failures else 0


def running_refusal(strays: list[Stray], target: ClassTarget) -> str:
    """Why nothing may be deleted: running servers of a course whose stack files are here
    (a roster edited by mistake, another backend's stack: the class may be in use)."""
    running = [stray for stray in strays if stray.running]
    files = course_stack_files(target.course) if running else []
    if not running or not files:
        return ""
    who = ", ".join(stray.student or stray.stack for stray in running)
    return (
        f"nothing deleted: {len(running)} of these servers are running ({who}) and course "
        f"{target.course} has stack files here ({', '.join(files)}), so they may be in use. If they "
        f"are really left over, stop them first (python -m flasklab class stop --course "
        f"{target.course} --student NAME), then sweep again."
    )


def confirmed(yes: bool, target: ClassTarget, count: int, console: Console) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        console.print(
            f"nothing deleted: to delete these {count}, run sweep in a terminal and type the course's "
            f"name when asked, or add --yes.",
            markup=False,
        )
        return False
    answer = input(
        f"To delete these {count}, type the course's name ({target.course}); anything else keeps them: "
    )
    if answer.strip() != target.course:
        console.print("nothing deleted.")
        return False
    return True


def strays_table(strays: list[Stray]) -> Table:
    table = Table("kind", "id", "name", "stack", "student", "left over because")
    for stray in strays:
        kind = f"{stray.kind} (running)" if stray.running else stray.kind
        table.add_row(kind, stray.resource_id, stray.name, stray.stack, stray.student or "-", stray.why)
    return table
