"""`class grade --stack S [--student NAME ...]`: how far each student got in the exercise,
scored against the rubric (flasklab.rubric), every server at once.

For each server, within one deadline: over SSH (the class check's machinery: its keys,
plan and ssh options) flasklab's own copy of flasklab/server_check.py is piped to
`sudo python3 -` with the server's on-server checkpoints, so the grade is what this
command measured, never what a server's (editable) flasklab-check says; from outside,
the probes: the app by every name through the web server, static files, HTTPS, the
database page. Each run writes its own timestamped CSV (never overwriting another), a
Moodle grade import CSV (flasklab/classroom/grade_export.py) and a page per student with an
index (flasklab/classroom/grade_pages.py). With --reboot, each server is then rebooted and
waited for (flasklab/classroom/grade_reboot.py) and scored on coming back by itself.
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

from flasklab import compose, probes, readiness, rubric, server_check
from flasklab.classroom import grade_reboot
from flasklab.classroom.check import add_server_arguments, key_files, plan_servers, usage_problems
from flasklab.classroom.check_server import Server, SshOptions, ssh_command, ssh_failure
from flasklab.classroom.grade_export import moodle_mapping, write_grades_csv, write_moodle_csv
from flasklab.classroom.grade_pages import write_pages
from flasklab.classroom.grade_results import Grade, Mark
from flasklab.classroom.live import live_servers
from flasklab.classroom.outputs import SHEETS_DIR, OutputsError, read_outputs
from flasklab.people import Person, people_path, read_people
from flasklab.roster import ROSTER_SETTING, roster_path
from flasklab.settings import ConfigError, Settings
from flasklab.stacks import load_stack_servers, stack_config

DEFAULT_TIMEOUT = 60.0
SOURCE = Path(server_check.__file__)


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
    # Once the server is back from `class grade --reboot`'s reboot (survives_reboot_mark).
    "survives_reboot": lambda site, settings, c: answers_by_name(site, settings),
}


def outside_marks(server: Server, deadline: float) -> list[Mark]:
    settings = server.settings
    site = _site(server, deadline)
    marks = []
    for checkpoint in rubric.rubric(settings):
        if checkpoint.where != rubric.OUTSIDE:
            continue
        passed, evidence = probed(site, settings, checkpoint)
        marks.append(_mark(settings, checkpoint, passed, evidence))
    return marks


def probed(site: probes.Site, settings: Settings, checkpoint: rubric.Checkpoint) -> tuple[bool, str]:
    """An outside checkpoint's probe: (passed, what it found, each problem cut short)."""
    try:
        problems = OUTSIDE_PROBES[checkpoint.key](site, settings, checkpoint)
    except OSError as error:
        problems = [f"no answer: {error}"]
    found = " | ".join(" ".join(p.split())[:300] for p in problems) or f"{site.url(site.names[0])}: ok"
    return not problems, found


def survives_reboot_mark(server: Server, reboot_timeout: float, timeout: float, ssh: SshOptions) -> Mark:
    """Reboot the server, wait for it (within reboot_timeout), then: does the app answer by
    every name through the web server again, with nobody logged in?"""
    settings = server.settings
    (checkpoint,) = [c for c in rubric.rubric(settings, reboot=True) if c.key == "survives_reboot"]
    rebooted = grade_reboot.reboot_and_wait(server, reboot_timeout, ssh)
    if not rebooted.back:
        return _mark(settings, checkpoint, False, rebooted.evidence)
    passed, found = probed(_site(server, time.monotonic() + timeout), settings, checkpoint)
    return _mark(settings, checkpoint, passed, f"{rebooted.evidence}\n{found}")


def grade_server(
    server: Server, timeout: float, ssh: SshOptions, reboot_timeout: float | None = None
) -> Grade:
    """The server's grade within `timeout`; with `reboot_timeout`, then its reboot and the
    survives_reboot checkpoint. The other checkpoints are graded before the reboot, as the
    student left the server: a unit not enabled costs service_enabled and survives_reboot,
    not every checkpoint the app's absence after the reboot would fail."""
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=2) as both:
        on_server = both.submit(server_marks, server, deadline, ssh)
        outside = both.submit(outside_marks, server, deadline)
        marks = on_server.result() + outside.result()
    if reboot_timeout is not None:
        marks.append(survives_reboot_mark(server, reboot_timeout, timeout, ssh))
    fault = compose.fault_of(server.settings)
    return Grade(
        server.student, server.address, tuple(marks), server.settings.language, fault.name if fault else ""
    )


def grade_servers(
    servers: list[Server], jobs: int, timeout: float, ssh: SshOptions, reboot_timeout: float | None = None
) -> list[Grade]:
    """Every server's grade, at most `jobs` at a time (a reboot and its wait included),
    each within `timeout` (plus `reboot_timeout` for its reboot)."""
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="class-grade") as pool:
        grades = list(pool.map(lambda server: grade_server(server, timeout, ssh, reboot_timeout), servers))
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser, "graded", DEFAULT_TIMEOUT)
    parser.add_argument("--student", action="append", default=[], help="grade only this student (repeat it)")
    parser.add_argument(
        "--out", type=Path, help="the folder for the CSVs and pages (default sheets/STACK/grades)"
    )
    parser.add_argument(
        "--reboot",
        action="store_true",
        help="after grading, reboot each server (sudo systemctl reboot), wait for it and score "
        "'survives a reboot' (the students' servers really reboot)",
    )
    parser.add_argument(
        "--reboot-timeout",
        type=float,
        default=grade_reboot.DEFAULT_REBOOT_TIMEOUT,
        help="seconds for one server to come back from --reboot "
        f"(default {grade_reboot.DEFAULT_REBOOT_TIMEOUT:g})",
    )


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
    reboot_timeout = args.reboot_timeout if args.reboot else None
    with key_files(accesses, args.ssh_key) as key_for:
        plan = plan_servers(args.stack, wanted, accesses, key_for, live)
        grades = grade_servers(
            plan.servers, args.jobs, args.timeout, SshOptions(args.known_hosts), reboot_timeout
        )
    now = datetime.now(UTC)
    folder = args.out or SHEETS_DIR / args.stack / "grades"
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    grades_csv = new_file(folder, "grades", stamp)
    moodle_csv = grades_csv.with_name("moodle-" + grades_csv.name.removeprefix("grades-"))
    write_grades_csv(grades, grades_csv)
    identifier = write_moodle_csv(grades, moodle_csv, stack_people(args.stack))
    graded_at = now.strftime("%Y-%m-%d %H:%M UTC")
    index = write_pages(args.stack, grades, grades_csv, graded_at, settings[0].language)
    not_graded = {**plan.missing, **{s: f"{e.state}: start it first" for s, e in plan.not_running.items()}}
    show(grades, not_graded, Written(grades_csv, moodle_csv, index, moodle_mapping(identifier)))
    return 0


def stack_people(stack: str) -> dict[str, Person]:
    """The roster's people (the LMS's usernames and emails), when `class roster import` wrote them."""
    value = stack_config(stack).get(ROSTER_SETTING)
    path = people_path(roster_path(str(value))) if value else None
    if path is None or not path.is_file():
        return {}
    try:
        return read_people(path)
    except (OSError, UnicodeDecodeError, KeyError, TypeError, csv.Error) as error:
        print(
            f"flasklab class grade: {path} cannot be read ({error!r}), so the Moodle file has no "
            f"email or username column; `class roster import` writes it again from the LMS's export.",
            file=sys.stderr,
        )
        return {}


@dataclass(frozen=True)
class Written:
    grades_csv: Path
    moodle_csv: Path
    index: Path
    moodle_mapping: str


def show(grades: list[Grade], missing: dict[str, str], written: Written) -> None:
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
    console.print(
        f"Grades: {written.grades_csv}\nPages: {written.index}\nMoodle import: {written.moodle_csv}"
        f" ({written.moodle_mapping})",
        markup=False,
        highlight=False,
    )
