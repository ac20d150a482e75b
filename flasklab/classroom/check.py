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
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from flasklab import compose, probes, readiness, server_status
from flasklab.classroom.outputs import (
    SHEETS_DIR,
    OutputsError,
    StudentAccess,
    add_stack_arguments,
    read_outputs,
)
from flasklab.plan import LOGIN_USER
from flasklab.settings import PROJECT_DIR, ConfigError, Settings
from flasklab.stacks import load_stack_servers

# Column key -> heading, in the table's order.
CHECKS: dict[str, str] = {
    "reachable": "reachable",
    "app": "app by each name",
    "static": "static files",
    "https": "HTTPS",
    "cloud_init": "cloud-init",
    "program": "app under its manager",
}
OK, FAILED, NOT_CHECKED, UNVERIFIED = "ok", "failed", "n/a", "unverified"
STYLES = {OK: "green", FAILED: "bold red", NOT_CHECKED: "dim", UNVERIFIED: "yellow"}
DEFAULT_JOBS = 100
DEFAULT_TIMEOUT = 20.0
# A check's threads are waited for this much past the deadline (their own requests end
# at it; this covers the bookkeeping after).
GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Result:
    """One check of one server: its state, the table's short cell, and what a teacher
    needs to know when it is not ok."""

    state: str
    cell: str
    problems: tuple[str, ...] = ()


def passed() -> Result:
    return Result(OK, OK)


def failed(cell: str, problems: list[str] | tuple[str, ...]) -> Result:
    return Result(FAILED, cell, tuple(problems))


def not_checked(why: str) -> Result:
    return Result(NOT_CHECKED, why)


def from_problems(problems: list[str], cell: str) -> Result:
    return failed(cell, problems) if problems else passed()


@dataclass(frozen=True)
class Server:
    """One student's server to check: where it is, what it should serve, and its key."""

    student: str
    settings: Settings
    address: str
    names: tuple[str, ...]
    key_file: Path | None = None
    http_port: int = 80
    https_port: int = 443
    ssh_port: int = 22


@dataclass
class Row:
    student: str
    address: str
    results: dict[str, Result]

    @property
    def failed(self) -> bool:
        return any(result.state == FAILED for result in self.results.values())


@dataclass(frozen=True)
class SshOptions:
    known_hosts: Path | None = None  # None: ssh's own (~/.ssh/known_hosts)


def ssh_command(
    server: Server, connect_timeout: float, options: SshOptions, command: str = readiness.CHECK_COMMAND
) -> list[str]:
    assert server.key_file is not None
    arguments = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR"]
    arguments += ["-o", f"ConnectTimeout={max(1, int(connect_timeout))}", "-o", "IdentitiesOnly=yes"]
    if options.known_hosts is not None:
        arguments += ["-o", f"UserKnownHostsFile={options.known_hosts}"]
    arguments += ["-p", str(server.ssh_port), "-i", str(server.key_file)]
    return ["ssh", *arguments, f"{LOGIN_USER}@{server.address}", command]


def ssh_failure(stderr: str, server: Server) -> Result:
    """Why ssh could not log in, in a teacher's words."""
    text = stderr.strip()
    if "IDENTIFICATION HAS CHANGED" in text:
        return failed(
            "host key changed",
            [
                f"the SSH host key of {server.address} is not the one seen before (a new server at an "
                f"old address?); if that is expected: ssh-keygen -R {server.address}"
            ],
        )
    if "Permission denied" in text:
        return failed("key refused", [f"{server.address} refused the SSH key {server.key_file}"])
    last = text.splitlines()[-1] if text else "no message"
    if "timed out" in last:
        return failed("timed out", [f"SSH to {server.address} did not answer in time: {last}"])
    return failed("no SSH", [f"ssh to {server.address} failed: {last}"])


def first_boot_result(report: readiness.ServerReport) -> Result:
    """cloud-init and the deploy, as flasklab-status saw them."""
    code = report.status_exit
    summary = [line for line in report.status_text.splitlines() if line.strip()][:8]
    if code == server_status.READY:
        return passed()
    if code == server_status.FAILED:
        return failed("first boot failed", [*summary, "the whole report: run flasklab-status on the server"])
    if code == server_status.BOOTING:
        return failed("still booting", summary)
    if code is None:
        return failed("no report", ["the server's report was cut short (the check ran out of time?)"])
    return failed(
        "no flasklab-status",
        [f"flasklab-status did not run (exit {code}): first boot has not got that far", *summary],
    )


class ServerCheck:
    """All checks of one server, within one deadline: the web part and the SSH part side by
    side (the web part waits for the SSH part only for a self-signed certificate)."""

    def __init__(self, server: Server, timeout: float, ssh: SshOptions) -> None:
        self.server = server
        self.timeout = timeout
        self.ssh = ssh
        self.deadline = 0.0  # set when the check starts, not when it is queued
        self.results: dict[str, Result] = {}
        self.certificate = ""
        self.ssh_done = threading.Event()

    def time_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def run(self) -> Row:
        self.deadline = time.monotonic() + self.timeout
        # Daemon threads: one stuck past the deadline (a server that trickles bytes) is left
        # behind rather than holding the whole check.
        threads = [
            threading.Thread(target=self._guarded, args=(part,), daemon=True)
            for part in (self.check_over_ssh, self.check_web)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.time_left() + GRACE_SECONDS)
        results = dict(self.results)
        late = f"no answer within {self.timeout:g} s"
        for key in CHECKS:
            results.setdefault(key, failed("timed out", [f"{CHECKS[key]}: {late}"]))
        return Row(self.server.student, self.server.address, results)

    def _guarded(self, part: Callable[[], None]) -> None:
        try:
            part()
        except Exception as error:  # a bug must cost one row, not the whole class's check
            for key in CHECKS:
                self.results.setdefault(key, failed("check error", [f"the check itself failed: {error!r}"]))
        finally:
            if part == self.check_over_ssh:
                self.ssh_done.set()

    def check_over_ssh(self) -> None:
        server = self.server
        if server.key_file is None:
            why = not_checked("no SSH key")
            self.results.update(cloud_init=why, program=why)
            return
        try:
            done = subprocess.run(
                ssh_command(server, self.time_left(), self.ssh),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=max(0.1, self.time_left()),
                check=False,
            )
        except subprocess.TimeoutExpired:
            late = failed("timed out", [f"SSH to {server.address} did not answer within {self.timeout:g} s"])
            self.results.update(cloud_init=late, program=late)
            return
        if done.returncode == 255:  # ssh's own failure: the server's commands did not run
            why = ssh_failure(done.stderr, server)
            self.results.update(cloud_init=why, program=why)
            return
        report = readiness.parse_check_output(done.stdout)
        self.certificate = readiness.certificate_in(report.status_text)
        self.results["cloud_init"] = first_boot_result(report)
        settings = server.settings
        self.results["program"] = from_problems(
            probes.runs_under_manager(
                report.processes,
                settings.app.user,
                compose.serving_program(settings),
                settings.recipe.manager,
            ),
            "not running",
        )

    def _site(self, certificate: str = "") -> probes.Site:
        """The site as readiness.site_at makes it (HTTPS unverified without the certificate),
        at this server's names and ports, within the check's deadline."""
        server = self.server
        return dataclasses.replace(
            readiness.site_at(server.settings, server.address, certificate),
            names=server.names,
            http_port=server.http_port,
            https_port=server.https_port,
            deadline=self.deadline,
        )

    def check_web(self) -> None:
        server, settings = self.server, self.server.settings
        https_at_boot = settings.tls.enabled_at_boot == "https"
        port = server.https_port if https_at_boot else server.http_port
        unreachable = probes.reachable(self._site(), port, timeout=self.time_left())
        if unreachable:
            self.results["reachable"] = failed("no", unreachable)
            why = not_checked("unreachable")
            self.results.update(app=why, static=why, https=why)
            return
        self.results["reachable"] = passed()
        expect = dataclasses.replace(readiness.full_expectation(settings), database_label="")
        site = self._web_site(https_at_boot, expect)
        found = probes.SiteCheck()
        probes.app_pages(site, expect, found)
        self.results["app"] = from_problems(found.problems, "not served")
        self.results["static"] = (
            from_problems(probes.static_from_web_server(site, expect.static_path), "from the app")
            if expect.static_path
            else not_checked("no known file")
        )
        if site.https:
            self.results["https"] = self._https_result(site)

    def _web_site(self, https_at_boot: bool, expect: probes.Expectation) -> probes.Site:
        """The site as a student's browser reaches it now; sets the HTTPS result when it
        is already known (not configured, or no trusted certificate yet)."""
        settings = self.server.settings
        if https_at_boot:
            if self.server.key_file is not None:
                # Half the time left at most: a server whose SSH does not answer still gets
                # its web checks (then unverified).
                self.ssh_done.wait(self.time_left() / 2)
            return self._site(certificate=self.certificate)
        if settings.tls.acme:
            # Let's Encrypt: HTTPS once the teacher ran httpsCommand (DNS had to point at it first).
            trusted = dataclasses.replace(self._site(), https=True, verify=True)
            if probes.serves(trusted, expect, trusted.names[0], timeout=self.time_left()):
                return trusted
            self.results["https"] = failed(
                "not yet",
                [
                    f"https://{trusted.names[0]}/ has no trusted certificate yet: once DNS points at "
                    f"{self.server.address}, run `sudo flasklab-letsencrypt` on the server"
                ],
            )
            return self._site()
        self.results["https"] = not_checked("not configured")
        return self._site()

    def _https_result(self, site: probes.Site) -> Result:
        problems = probes.https_redirect(site) + probes.tls_versions(site)
        if problems:
            return failed("failed", problems)
        if not site.verify:
            return Result(
                UNVERIFIED,
                UNVERIFIED,
                (
                    "HTTPS works but its certificate was not checked: without an SSH key the check "
                    "cannot read the server's own certificate (give --ssh-key)",
                ),
            )
        return passed()


def check_servers(
    servers: list[Server],
    jobs: int,
    timeout: float,
    ssh: SshOptions,
    on_done: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    """Every server's row, at most `jobs` servers at a time, each within `timeout`."""
    rows = []
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="class-check") as pool:
        futures = [pool.submit(ServerCheck(server, timeout, ssh).run) for server in servers]
        for future in as_completed(futures):
            row = future.result()
            on_done(row)
            rows.append(row)
    return sorted(rows, key=lambda row: row.student)


def missing_row(student: str) -> Row:
    why = not_checked("no server")
    results = {key: why for key in CHECKS}
    results["reachable"] = failed(
        "not deployed", [f"{student} is on the roster but not in the stack's outputs: run `pulumi up`"]
    )
    return Row(student, "", results)


@dataclass
class Plan:
    """What to check: the servers, the roster's students without a server, and the
    servers of students no longer on the roster."""

    servers: list[Server] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def plan_servers(
    stack: str,
    settings: list[Settings],
    accesses: list[StudentAccess],
    key_for: Callable[[StudentAccess], Path | None],
) -> Plan:
    by_student = {access.student: access for access in accesses}
    plan = Plan()
    for student_settings in settings:
        student = student_settings.student or stack
        access = by_student.pop(student, None)
        if access is None or not access.public_ip:
            plan.missing.append(student)
            continue
        plan.servers.append(
            Server(
                student=student,
                settings=student_settings,
                address=access.public_ip,
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
    for row in rows:
        cells = [Text(row.results[key].cell, style=STYLES[row.results[key].state]) for key in CHECKS]
        result.add_row(row.student, row.address, *cells)
    return result


def failure_lines(rows: list[Row]) -> list[str]:
    """Each failure (and each unverified check) in words, by student."""
    lines = []
    for row in rows:
        noted = [(key, r) for key, r in row.results.items() if r.state in (FAILED, UNVERIFIED) and r.problems]
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
RESULT_COLUMN, PROBLEMS_COLUMN = "result", "problems"


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
        writer.writerow(["student", "address", *CHECKS.values(), RESULT_COLUMN, PROBLEMS_COLUMN])
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
                    FAILED if row.failed else OK,
                    " | ".join(" ".join(problem.split()) for problem in problems),
                ]
            )


def default_csv(stack: str) -> Path:
    return SHEETS_DIR / stack / CHECK_CSV


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help=f"servers checked at once (default {DEFAULT_JOBS})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds for all the checks of one server (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--csv", type=Path, help="where to write the table as CSV (default sheets/STACK/check.csv)"
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
    return problems


def run(args: argparse.Namespace) -> int:
    problems = usage_problems(args)
    if problems:
        print("\n".join(f"flasklab class check: {problem}" for problem in problems), file=sys.stderr)
        return 2
    try:
        settings = load_stack_servers(args.stack)
        accesses = read_outputs(args.stack, args.outputs)
    except (ConfigError, OutputsError) as error:
        print(error, file=sys.stderr)
        return 2
    with key_files(accesses, args.ssh_key) as key_for:
        plan = plan_servers(args.stack, settings, accesses, key_for)
        rows = check_with_progress(plan.servers, args.jobs, args.timeout, SshOptions(args.known_hosts))
    rows = sorted(rows + [missing_row(student) for student in plan.missing], key=lambda row: row.student)
    csv_path = args.csv or default_csv(args.stack)
    write_csv(rows, csv_path)
    report(rows, plan.unknown, csv_path)
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


def report(rows: list[Row], unknown: list[str], csv_path: Path) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table(rows))
    lines = failure_lines(rows)
    if lines:
        console.print("\nWhat failed (and what could not be verified):", markup=False, highlight=False)
        console.print("\n".join(lines), markup=False, highlight=False)
    if unknown:
        console.print(
            f"\nIn the outputs but not on the roster (removed? run `pulumi up`): {', '.join(unknown)}",
            markup=False,
        )
    failing = sum(row.failed for row in rows)
    shown = csv_path.relative_to(PROJECT_DIR) if csv_path.is_relative_to(PROJECT_DIR) else csv_path
    console.print(
        f"\n{len(rows) - failing} of {len(rows)} servers pass every check; {failing} fail. CSV: {shown}",
        markup=False,
        highlight=False,
    )
