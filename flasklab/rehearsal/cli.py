"""The rehearse command: rehearse one stack or several side by side (each in its own
container and network), with live progress per stack, a report for each failure (or for
the one stack), and one summary table. Exit status 0 only if every stack serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from flasklab.rehearsal import report, runs
from flasklab.rehearsal.report import Outcome
from flasklab.rehearsal.run import Rehearsal, RehearsalRefused, check_prerequisites
from flasklab.rehearsal.target import asks_for_certificate, target_for
from flasklab.settings import Settings

# Memory one rehearsal may take (its database, web and app servers, apt and pip).
GIB_PER_REHEARSAL = 2


@dataclass
class Result:
    settings: Settings
    outcome: Outcome
    report: str = ""
    hosts_line: str = ""


def default_jobs(count: int) -> int:
    """How many rehearsals at once suit this machine: two per core, within its memory."""
    cores = os.cpu_count() or 1
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(count, 2 * cores, int(memory_gib // GIB_PER_REHEARSAL)))


def stop_on_sigterm() -> None:
    """A rehearsal killed with SIGTERM cleans up like one stopped with Ctrl-C: the container
    runs in its own session and would otherwise outlive this process."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def rehearse_one(
    settings: Settings, keep: bool, progress: Callable[[str], None], cancel: threading.Event
) -> Result:
    """Boot, wait, check and report one stack; remove its container unless kept."""
    if cancel.is_set():
        return Result(settings, Outcome(failure="interrupted"))
    rehearsal = Rehearsal(target_for(settings), progress, cancel)
    try:
        rehearsal.prepare()
        rehearsal.boot()
        outcome = rehearsal.wait()
        result = Result(settings, outcome, rehearsal.report(outcome, kept=keep), rehearsal.hosts_line)
        if keep:
            rehearsal.container.keep()
            result.report += report.keep_instructions(
                rehearsal.container.machine, rehearsal.container.leader_pid()
            )
        return result
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        return Result(settings, Outcome(failure=str(error)))
    finally:
        if not keep:
            rehearsal.remove()


def summary(results: list[Result]) -> Table:
    table = Table(title="flasklab rehearsals")
    for column in ("stack", "Debian", "result", "cloud-init", "first answer"):
        table.add_column(column)
    table.add_column("hosts line", no_wrap=True)
    for result in results:
        outcome = result.outcome
        table.add_row(
            result.settings.stack,
            result.settings.debian_release,
            "[green]passed[/]" if outcome.ok else f"[red]FAILED[/] {(outcome.problems or [''])[0][:60]}",
            _seconds(outcome.cloud_init_seconds),
            _seconds(outcome.first_response_seconds),
            result.hosts_line,
        )
    return table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def rehearse(stacks: list[Settings], keep: bool = False, jobs: int = 0) -> int:
    """The command. Reports go to standard output, progress to standard error."""
    stop_on_sigterm()
    try:
        # pebble & co. only for a stack that asks Let's Encrypt (acme.py).
        check_prerequisites(any(asks_for_certificate(settings) for settings in stacks))
    except RehearsalRefused as error:
        Console(stderr=True).print(str(error), markup=False)
        return 2
    results = _run_all(stacks, keep, jobs or default_jobs(len(stacks)))
    # Off a terminal (CI logs, a file), lines are not cut to 80 columns.
    out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    for result in results:
        if result.report and (len(results) == 1 or not result.outcome.ok):
            out.print(result.report, markup=False)
    out.print(summary(results))
    return 0 if all(result.outcome.ok for result in results) else 1


def _run_all(stacks: list[Settings], keep: bool, jobs: int) -> list[Result]:
    cancel = threading.Event()
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.fields[stack]:<18}"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    results: dict[str, Result] = {}
    live = errors.is_terminal
    with Progress(*columns, console=errors, disable=not live) as progress, ThreadPoolExecutor(jobs) as pool:
        futures = {}
        for settings in stacks:
            task = progress.add_task("waiting for a free slot", stack=settings.stack)
            show = _reporter(progress, task, settings.stack, errors)
            futures[pool.submit(rehearse_one, settings, keep, show, cancel)] = settings
        try:
            for future in as_completed(futures):
                result = future.result()
                results[result.settings.stack] = result
        except KeyboardInterrupt:
            cancel.set()
            errors.print("interrupted: stopping and removing the containers", markup=False)
            for future in futures:
                result = future.result()
                results[result.settings.stack] = result
    return [results[settings.stack] for settings in stacks]


def _reporter(progress: Progress, task: TaskID, stack: str, console: Console) -> Callable[[str], None]:
    """Progress messages of one rehearsal: its row of the live display on a terminal,
    plain lines elsewhere (CI logs)."""

    def show(message: str) -> None:
        progress.update(task, description=message)
        if not console.is_terminal:
            console.print(f"[{stack}] {message}", markup=False)

    return show


def clean() -> int:
    """python -m flasklab clean: stop and remove every rehearsal left running (kept ones,
    and those of a rehearsal that was killed)."""
    with runs.locked():
        removed = runs.clean_up(kept_too=True)
    print("\n".join(f"removed {name}" for name in removed) or "nothing to clean")
    return 0
