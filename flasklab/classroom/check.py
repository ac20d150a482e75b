"""`class check --stack S`: is every student's server as it should be? Run it before class
and after the students' exercises.

Every server is checked at once (at most --jobs at a time), each within --timeout seconds
for all its checks together: a server that does not answer, or accepts and never answers,
costs one timeout, not one per request. The web checks are flasklab.probes, the ones the
rehearsal and `pulumi up`'s wait use; over SSH (with a key) the server runs
flasklab-status and `ps` (flasklab.readiness.CHECK_COMMAND).

HTTPS with a self-signed certificate is verified against the certificate the server
prints over SSH; without SSH the connection is encrypted but its certificate is not
checked, and the table says "unverified" (not a failure).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from flasklab.classroom.account import AccountError, add_class_arguments, check_region
from flasklab.classroom.account import Server as Ec2Server
from flasklab.classroom.check_server import (
    CHECKS,
    DEFAULT_JOBS,
    DEFAULT_TIMEOUT,
    FAILED,
    OK,
    STOPPED,
    STYLES,
    UNVERIFIED,
    Result,
    Row,
    Server,
    SshOptions,
    check_servers,
    failed,
    first_boot_result,
    not_checked,
    passed,
)
from flasklab.classroom.live import LiveServers, live_servers
from flasklab.classroom.outputs import (
    SHEETS_DIR,
    OutputsError,
    StudentAccess,
    add_outputs_argument,
    read_outputs,
)
from flasklab.settings import PROJECT_DIR, ConfigError, Settings
from flasklab.stacks import load_stack_servers

# Names other modules and tests use from here.
__all__ = ["CHECKS", "DEFAULT_JOBS", "OK", "Row", "Server", "first_boot_result", "passed", "run"]


def missing_row(student: str, why: str = "") -> Row:
    no_server = not_checked("no server")
    results = {key: no_server for key in CHECKS}
    results["reachable"] = failed(
        "not deployed", [why or f"{student} is on the roster but not in the stack's outputs: run `pulumi up`"]
    )
    return Row(student, "", results)


def stopped_row(student: str, server: Ec2Server, start_command: str) -> Row:
    """A server EC2 says is not running: its state, when and why, not probed."""
    why = not_checked(server.state)
    results = {key: why for key in CHECKS}
    results["reachable"] = Result(STOPPED, server.state, (f"{server.not_running_note}; {start_command}",))
    return Row(student, "", results, drift=server.drift)


@dataclass
class Plan:
    """What to check: the servers, the roster's students without a server (or with one
    EC2 no longer has), those EC2 says are not running, and the servers of students no
    longer on the roster."""

    servers: list[Server] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # student -> why ('' = not in the outputs)
    not_running: dict[str, Ec2Server] = field(default_factory=dict)
    drift: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def plan_servers(
    stack: str,
    settings: list[Settings],
    accesses: list[StudentAccess],
    key_for: Callable[[StudentAccess], Path | None],
    live: LiveServers | None = None,
) -> Plan:
    """Each student's server, at the address EC2 gives it now when EC2 was asked (else the
    outputs')."""
    live = live or LiveServers()
    by_student = {access.student: access for access in accesses}
    plan = Plan()
    for student_settings in settings:
        student = student_settings.student or stack
        access = by_student.pop(student, None)
        ec2 = live.of(student)
        if ec2 is not None and ec2.drift:
            plan.drift[student] = ec2.drift
        if access is None:
            plan.missing[student] = ""
            continue
        if live.asked and ec2 is None:
            plan.missing[student] = (
                f"EC2 has no instance of {student} (terminated or swept?): `pulumi up` makes it anew"
            )
            continue
        if ec2 is not None and not ec2.running:
            plan.not_running[student] = ec2
            continue
        address = ec2.public_ip if ec2 is not None else access.public_ip
        if not address:
            plan.missing[student] = "" if ec2 is None else f"EC2 gives {student}'s server no public address"
            continue
        plan.servers.append(
            Server(
                student=student,
                settings=student_settings,
                address=address,
                names=access.server_names or student_settings.server_names,
                key_file=key_for(access),
            )
        )
    plan.unknown = sorted(by_student)
    return plan


@contextmanager
def key_files(
    accesses: list[StudentAccess], teacher_key: Path | None
) -> Iterator[Callable[[StudentAccess], Path | None]]:
    """Each student's private key as a file ssh reads: the stack's own (written to a private
    folder removed afterwards), or else the teacher's."""
    with tempfile.TemporaryDirectory(prefix="flasklab-check-") as folder:
        paths: dict[str, Path] = {}
        for access in accesses:
            # Saved without --show-secrets, a key reads "[secret]": then there is none.
            if "PRIVATE KEY" in access.ssh_private_key:
                path = Path(folder) / f"{access.student}.pem"
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(access.ssh_private_key.rstrip("\n") + "\n")
                paths[access.student] = path
        yield lambda access: paths.get(access.student, teacher_key)


def table(rows: list[Row]) -> Table:
    result = Table(title="class check")
    result.add_column("student")
    result.add_column("address")
    for heading in CHECKS.values():
        result.add_column(heading)
    result.add_column(BUILD_COLUMN)
    for row in rows:
        cells = [Text(row.results[key].cell, style=STYLES[row.results[key].state]) for key in CHECKS]
        build = Text("older config", style="yellow") if row.drift else Text("current", style="dim")
        result.add_row(row.student, row.address, *cells, build)
    return result


def failure_lines(rows: list[Row]) -> list[str]:
    """Each failure (and each unverified check) in words, by student."""
    lines = []
    for row in rows:
        noted = [
            (key, r)
            for key, r in row.results.items()
            if r.state in (FAILED, UNVERIFIED, STOPPED) and r.problems
        ]
        if not noted:
            continue
        lines.append(f"{row.student} ({row.address or 'no server'}):")
        for key, result in noted:
            for problem in result.problems:
                first, *rest = problem.splitlines()
                lines.append(f"  - {CHECKS[key]}: {first}")
                lines += [f"      {line}" for line in rest[:6]]
    return lines


# The CSV's file name in the stack's sheets folder, and the columns `class sheet` reads back.
CHECK_CSV = "check.csv"
RESULT_COLUMN, PROBLEMS_COLUMN, DRIFT_COLUMN = "result", "problems", "drift"
BUILD_COLUMN = "built from"


def read_results(path: Path) -> dict[str, tuple[bool, str]]:
    """What the last `class check` wrote of each student: (passed, its problems)."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return {
                row["student"]: (row[RESULT_COLUMN] == OK, row[PROBLEMS_COLUMN])
                for row in csv.DictReader(file)
            }
    except (OSError, KeyError, UnicodeDecodeError, csv.Error):
        return {}


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["student", "address", *CHECKS.values(), RESULT_COLUMN, PROBLEMS_COLUMN, DRIFT_COLUMN]
        )
        for row in rows:
            problems = [
                f"{CHECKS[key]}: {problem}"
                for key, result in row.results.items()
                if result.state != OK
                for problem in result.problems
            ]
            writer.writerow(
                [
                    row.student,
                    row.address,
                    *(row.results[key].cell for key in CHECKS),
                    row.verdict,
                    " | ".join(" ".join(problem.split()) for problem in problems),
                    row.drift,
                ]
            )


def default_csv(stack: str) -> Path:
    return SHEETS_DIR / stack / CHECK_CSV


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser, "checked", DEFAULT_TIMEOUT)
    parser.add_argument(
        "--csv", type=Path, help="where to write the table as CSV (default sheets/STACK/check.csv)"
    )


def add_server_arguments(parser: argparse.ArgumentParser, done: str, timeout: float) -> None:
    """What every command that logs in to each student's server takes (check, grade)."""
    add_class_arguments(parser, stack_required=True)
    add_outputs_argument(parser)
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help=f"servers {done} at once (default {DEFAULT_JOBS})"
    )
    parser.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds for one server (default {timeout:g})"
    )
    parser.add_argument(
        "--ssh-key",
        type=Path,
        help="the private key of the stack's keyName or sshPublicKey (the stack's own come from its outputs)",
    )
    parser.add_argument(
        "--known-hosts",
        type=Path,
        help="the known_hosts file for SSH (default: ssh's, ~/.ssh/known_hosts)",
    )


def usage_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if args.jobs < 1:
        problems.append(f"--jobs {args.jobs}: give at least 1")
    if args.timeout <= 0:
        problems.append(f"--timeout {args.timeout:g}: give a number of seconds above 0")
    if args.ssh_key is not None and not args.ssh_key.is_file():
        problems.append(f"--ssh-key {args.ssh_key}: there is no such file")
    try:
        check_region(args.region)
    except AccountError as error:
        problems.append(f"--region: {error}")
    return problems


def run(args: argparse.Namespace) -> int:
    problems = usage_problems(args)
    if problems:
        print("\n".join(f"flasklab class check: {problem}" for problem in problems), file=sys.stderr)
        return 2
    try:
        settings = load_stack_servers(args.stack)
        accesses = read_outputs(args.stack, args.outputs, settings)
    except (ConfigError, OutputsError) as error:
        print(error, file=sys.stderr)
        return 2
    live = live_servers(args.stack, args.region)
    with key_files(accesses, args.ssh_key) as key_for:
        plan = plan_servers(args.stack, settings, accesses, key_for, live)
        rows = check_with_progress(plan.servers, args.jobs, args.timeout, SshOptions(args.known_hosts))
    rows += [missing_row(student, why) for student, why in plan.missing.items()]
    rows += [
        stopped_row(student, server, live.start_command(student))
        for student, server in plan.not_running.items()
    ]
    for row in rows:
        row.drift = row.drift or plan.drift.get(row.student, "")
    rows.sort(key=lambda row: row.student)
    csv_path = args.csv or default_csv(args.stack)
    write_csv(rows, csv_path)
    report(rows, plan.unknown, csv_path, live.note)
    # A stopped server is a state, not a failure: only a failed check makes the exit status 1.
    return 1 if any(row.failed for row in rows) else 0


def check_with_progress(servers: list[Server], jobs: int, timeout: float, ssh: SshOptions) -> list[Row]:
    """check_servers, with a live progress bar on a terminal."""
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=True) as progress:
        task = progress.add_task("checking servers", total=len(servers))
        failing = 0

        def done(row: Row) -> None:
            nonlocal failing
            failing += row.failed
            progress.update(task, advance=1, description=f"checking servers ({failing} failing)")

        return check_servers(servers, jobs, timeout, ssh, done)


def report(rows: list[Row], unknown: list[str], csv_path: Path, note: str = "") -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    if note:
        console.print(note, markup=False, highlight=False)
    console.print(table(rows))
    lines = failure_lines(rows)
    if lines:
        heading = "\nWhat failed, what could not be verified, and what is stopped:"
        console.print(heading, markup=False, highlight=False)
        console.print("\n".join(lines), markup=False, highlight=False)
    if unknown:
        console.print(
            f"\nIn the outputs but not on the roster (removed? run `pulumi up`): {', '.join(unknown)}",
            markup=False,
        )
    drifted = [f"{row.student}: {row.drift}" for row in rows if row.drift]
    if drifted:
        console.print("\nBuilt from an older config:\n" + "\n".join(drifted), markup=False, highlight=False)
    failing = sum(row.failed for row in rows)
    stopped = sum(row.verdict == STOPPED for row in rows)
    shown = csv_path.relative_to(PROJECT_DIR) if csv_path.is_relative_to(PROJECT_DIR) else csv_path
    console.print(
        f"\n{len(rows) - failing - stopped} of {len(rows)} servers pass every check; {failing} fail; "
        f"{stopped} stopped (not checked). CSV: {shown}",
        markup=False,
        highlight=False,
    )
