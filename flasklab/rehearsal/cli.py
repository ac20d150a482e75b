"""The rehearse command: rehearse a stack, print the report, exit 0 only if it serves."""

from __future__ import annotations

import signal
import sys

from flasklab import plan
from flasklab.rehearsal import report
from flasklab.rehearsal.report import Outcome
from flasklab.rehearsal.run import LOCALHOST, Rehearsal, RehearsalRefused
from flasklab.rehearsal.target import target_for
from flasklab.settings import Settings


def stop_on_sigterm() -> None:
    """A rehearsal killed with SIGTERM cleans up like one stopped with Ctrl-C: the container
    runs in its own session and would otherwise outlive this process."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def rehearse(settings: Settings, keep: bool = False) -> int:
    stop_on_sigterm()
    rehearsal = Rehearsal(target_for(settings))
    try:
        rehearsal.prepare()
    except (RehearsalRefused, RuntimeError) as error:
        print(error, file=sys.stderr)
        return 2
    try:
        rehearsal.boot()
        outcome = rehearsal.wait()
        print(rehearsal.report(outcome, hosts_line=plan.hosts_line(settings, LOCALHOST)))
        if keep:
            container = rehearsal.container
            nspawn_pid = container.process.pid if container.process else None
            print(
                report.keep_instructions(
                    container.machine, container.leader_pid(), nspawn_pid, str(rehearsal.root)
                )
            )
            return 0 if outcome.ok else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        outcome = Outcome(failure="interrupted")
    rehearsal.stop()
    rehearsal.remove()
    return 0 if outcome.ok else 1
