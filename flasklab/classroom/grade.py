"""`class grade --stack S [--student NAME ...]`: how far each student got in the exercise,
scored against the rubric (flasklab.rubric), every server at once.

For each server, within one deadline: over SSH (the class check's machinery: its keys,
plan and ssh options) flasklab's own copy of flasklab/server_check.py is piped to
`sudo python3 -` with the server's on-server checkpoints, so the grade is what this
command measured, never what a server's (editable) flasklab-check says; from outside,
the probes: the app by every name through the web server, static files, HTTPS, the
database page. Each run writes its own timestamped CSV (never overwriting another) and a
Moodle grade import CSV (the roster's student as identifier, the grade in percent).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flasklab import probes, readiness, rubric, server_check
from flasklab.classroom.check import add_server_arguments, key_files, plan_servers, usage_problems
from flasklab.classroom.check_server import Server, SshOptions, ssh_command, ssh_failure
from flasklab.classroom.live import live_servers
from flasklab.classroom.outputs import SHEETS_DIR, OutputsError, read_outputs
from flasklab.settings import ConfigError, Settings
from flasklab.stacks import load_stack_servers

DEFAULT_TIMEOUT = 60.0
SOURCE = Path(server_check.__file__)


@dataclass(frozen=True)
class Mark:
    """One checkpoint of one server: passed or not, what showed it, and the hint."""

    key: str
    title: str
    points: int
    passed: bool
    evidence: str
    hint: str


@dataclass(frozen=True)
class Grade:
    student: str
    address: str
    marks: tuple[Mark, ...]

    @property
    def score(self) -> int:
        return sum(mark.points for mark in self.marks if mark.passed)

    @property
    def total(self) -> int:
        return sum(mark.points for mark in self.marks)

    @property
    def percent(self) -> float:
        return round(100 * self.score / self.total, 2) if self.total else 0.0

    def failing(self) -> list[Mark]:
        return [mark for mark in self.marks if not mark.passed]


def remote_command(settings: Settings) -> str:
    """What the login user runs: the checker from stdin, as root, with this server's rubric."""
    spec = json.dumps(rubric.server_spec(settings), separators=(",", ":"))
    return f"sudo -n python3 - --json --spec-json {shlex.quote(spec)}"


def _mark(settings: Settings, checkpoint: rubric.Checkpoint, passed: bool, evidence: str) -> Mark:
    title, hint = rubric.title_and_hint(settings, checkpoint, settings.language)
    return Mark(checkpoint.key, title, checkpoint.points, passed, evidence, hint)


def server_marks(server: Server, deadline: float, ssh: SshOptions) -> list[Mark]:
    """The on-server checkpoints, as flasklab's checker found them over SSH (all failed,
    with why, when it could not run)."""
    settings = server.settings
    checkpoints = [c for c in rubric.rubric(settings) if c.where == rubric.SERVER]
    if server.key_file is None:
        why = "not checked: no SSH key for this server (give the stack's with --ssh-key)"
        return [_mark(settings, c, False, why) for c in checkpoints]
    left = max(1.0, deadline - time.monotonic())
    try:
        done = subprocess.run(
            ssh_command(server, left, ssh, remote_command(settings)),
            input=SOURCE.read_text(),
            capture_output=True,
            text=True,
            timeout=left,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [_mark(settings, c, False, f"SSH to {server.address}: no answer in time") for c in checkpoints]
    try:
        found = {result["key"]: result for result in json.loads(done.stdout.strip().splitlines()[-1])}
    except (ValueError, IndexError, KeyError, TypeError):
        if done.returncode == 255:
            why = "; ".join(ssh_failure(done.stderr, server).problems)
        else:
            why = f"the checker did not run (exit {done.returncode}): {done.stderr.strip()[-300:]}"
        return [_mark(settings, c, False, why) for c in checkpoints]
    return [
        _mark(settings, c, bool(found[c.key]["passed"]), str(found[c.key]["evidence"]))
        if c.key in found
        else _mark(settings, c, False, "the checker did not report it")
        for c in checkpoints
    ]


def _site(server: Server, deadline: float) -> probes.Site:
    """The site as a student's browser reaches it (HTTPS not verified: a self-signed
    certificate is the exercise's, whichever the student made)."""
    site = readiness.site_at(server.settings, server.address)
    https = site.https
    if server.settings.tls.acme:
        # Let's Encrypt: plain HTTP until the server has its certificate (its timer asks once
        # DNS points at it), then HTTPS with the redirect: the site is graded as it serves now.
        https = not probes.reachable(dataclasses.replace(site, deadline=deadline), server.https_port)
    return dataclasses.replace(
        site,
        names=server.names,
        https=https,
        verify=not https,
        http_port=server.http_port,
        https_port=server.https_port,
        deadline=deadline,
    )


def answers_by_name(site: probes.Site, settings: Settings) -> list[str]:
    """Every name answers with the app's page, and the web server, not the app server,
    answered (its Server header); flasklab's own extra headers are not the rubric's."""
    expect = dataclasses.replace(
        readiness.full_expectation(settings), web_server_header="", database_label="", static_path=""
    )
    found = probes.SiteCheck()
    probes.app_pages(site, expect, found)
    if found.problems:
        return found.problems
    server_header = found.first_headers.get("server", "")
    wanted = settings.recipe.web_server.server_header
    if wanted.lower() not in server_header.lower():
        answered_by = server_header or "a server that does not say"
        return [f"{site.url(site.names[0])} was answered by {answered_by}, not {wanted}"]
    return []


OUTSIDE_PROBES: dict[str, Callable[[probes.Site, Settings, rubric.Checkpoint], list[str]]] = {
    "answers_by_name": lambda site, settings, c: answers_by_name(site, settings),
    "static_files": lambda site, settings, c: probes.static_from_web_server(site, c.args["path"]),
    "https": lambda site, settings, c: probes.https_redirect(site) + probes.tls_versions(site),
    "database_page": lambda site, settings, c: probes.database_page(site, c.args["label"]),
}


def outside_marks(server: Server, deadline: float) -> list[Mark]:
    settings = server.settings
    site = _site(server, deadline)
    marks = []
    for checkpoint in rubric.rubric(settings):
        if checkpoint.where != rubric.OUTSIDE:
            continue
        try:
            problems = OUTSIDE_PROBES[checkpoint.key](site, settings, checkpoint)
        except OSError as error:
            problems = [f"no answer: {error}"]
        evidence = " | ".join(" ".join(p.split())[:300] for p in problems) or f"{site.url(site.names[0])}: ok"
        marks.append(_mark(settings, checkpoint, not problems, evidence))
    return marks


def grade_server(server: Server, timeout: float, ssh: SshOptions) -> Grade:
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=2) as both:
        on_server = both.submit(server_marks, server, deadline, ssh)
        outside = both.submit(outside_marks, server, deadline)
        marks = on_server.result() + outside.result()
    return Grade(server.student, server.address, tuple(marks))


def grade_servers(servers: list[Server], jobs: int, timeout: float, ssh: SshOptions) -> list[Grade]:
    """Every server's grade, at most `jobs` at a time, each within `timeout`."""
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="class-grade") as pool:
        grades = list(pool.map(lambda server: grade_server(server, timeout, ssh), servers))
    return sorted(grades, key=lambda grade: grade.student)


def new_file(folder: Path, stem: str, stamp: str) -> Path:
    """A file of this run that no other run wrote (a second run in the same second gets -2)."""
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = folder / f"{stem}-{stamp}{'' if attempt == 1 else f'-{attempt}'}.csv"
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise OSError(f"{folder}: too many grade files for {stamp}")


def write_grades_csv(grades: list[Grade], path: Path) -> None:
    """One row per student and checkpoint: what it scored and what showed it."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "address", "checkpoint", "title", "points", "scored", "evidence", "hint"])
        for grade in grades:
            for mark in grade.marks:
                scored = mark.points if mark.passed else 0
                evidence = " ".join(mark.evidence.split())
                writer.writerow(
                    [
                        grade.student,
                        grade.address,
                        mark.key,
                        mark.title,
                        mark.points,
                        scored,
                        evidence,
                        mark.hint,
                    ]
                )
            writer.writerow([grade.student, grade.address, "total", "", grade.total, grade.score, "", ""])


MOODLE_COLUMNS = ("student", "grade")


def write_moodle_csv(grades: list[Grade], path: Path) -> None:
    """Moodle's grade import (Grades > Import > CSV file): an identifier column (map it to
    the field the roster's student names are, username or ID number) and a grade, 0-100."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(MOODLE_COLUMNS)
        for grade in grades:
            writer.writerow([grade.student, f"{grade.percent:.2f}"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser, "graded", DEFAULT_TIMEOUT)
    parser.add_argument("--student", action="append", default=[], help="grade only this student (repeat it)")
    parser.add_argument("--out", type=Path, help="the folder for the CSVs (default sheets/STACK/grades)")


def run(args: argparse.Namespace) -> int:
    if problems := usage_problems(args):
        print("\n".join(f"flasklab class grade: {problem}" for problem in problems), file=sys.stderr)
        return 2
    try:
        settings = load_stack_servers(args.stack)
        unknown = sorted(set(args.student) - {s.student or args.stack for s in settings})
        if unknown:
            print(f"flasklab class grade: not on the stack's roster: {', '.join(unknown)}", file=sys.stderr)
            return 2
        accesses = read_outputs(args.stack, args.outputs, settings)
    except (ConfigError, OutputsError) as error:
        print(error, file=sys.stderr)
        return 2
    wanted = [s for s in settings if not args.student or (s.student or args.stack) in args.student]
    # As the class check: a running server graded where EC2 says it is now; a stopped one not.
    live = live_servers(args.stack, args.region)
    with key_files(accesses, args.ssh_key) as key_for:
        plan = plan_servers(args.stack, wanted, accesses, key_for, live)
        grades = grade_servers(plan.servers, args.jobs, args.timeout, SshOptions(args.known_hosts))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = args.out or SHEETS_DIR / args.stack / "grades"
    grades_csv, moodle_csv = new_file(folder, "grades", stamp), new_file(folder, "moodle", stamp)
    write_grades_csv(grades, grades_csv)
    write_moodle_csv(grades, moodle_csv)
    not_graded = {**plan.missing, **{s: f"{e.state}: start it first" for s, e in plan.not_running.items()}}
    show(grades, not_graded, grades_csv, moodle_csv)
    return 0


def show(grades: list[Grade], missing: dict[str, str], grades_csv: Path, moodle_csv: Path) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title="class grade")
    for column in ("student", "address", "score", "%", "failing checkpoints"):
        table.add_column(column)
    for grade in grades:
        failing = ", ".join(mark.key for mark in grade.failing()) or "-"
        table.add_row(
            grade.student, grade.address, f"{grade.score}/{grade.total}", f"{grade.percent:g}", failing
        )
    console.print(table)
    for student, why in sorted(missing.items()):
        why = why or "not in the outputs: run `pulumi up`"
        console.print(f"{student}: not graded ({why})", markup=False)
    console.print(f"Grades: {grades_csv}\nMoodle import: {moodle_csv}", markup=False, highlight=False)
