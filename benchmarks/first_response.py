"""Benchmark: seconds from boot to the first good response, flasklab's default stack
against tutorial 001 followed literally (tutorial_001_baseline.yaml), in one run.

    sudo .venv/bin/python benchmarks/first_response.py [--stack dev] [--rounds 1]

Goal: the default stack answers in at most half the baseline's time. Needs what a
rehearsal needs (root, debootstrap, systemd-nspawn, port 80 free).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from flasklab.probes import Expectation
from flasklab.rehearsal import server_logs
from flasklab.rehearsal.cli import stop_on_sigterm
from flasklab.rehearsal.report import Outcome
from flasklab.rehearsal.run import Rehearsal, RehearsalRefused
from flasklab.rehearsal.target import Target, target_for
from flasklab.stacks import DEFAULT_STACK, load_stack

BASELINE = Path(__file__).with_name("tutorial_001_baseline.yaml")
GOAL_RATIO = 0.5


def baseline_target(codename: str) -> Target:
    """Tutorial 001's server, held only to what is compared: it serves the app by name
    (not to the security headers flasklab's own sites send)."""
    return Target(
        name="tutorial-001-baseline",
        codename=codename,
        user_data=BASELINE.read_text(),
        server_names=("practica_flask", "www.practica_flask"),
        expect=Expectation(page_marker="<h1>Aplicacion desplegada</h1>"),
        units=("flask_app.service", "nginx.service"),
    )


def measure(target: Target) -> tuple[Outcome, str]:
    rehearsal = Rehearsal(target)
    rehearsal.prepare()
    try:
        rehearsal.boot()
        outcome = rehearsal.wait()
        blame = server_logs.cloud_init_blame(rehearsal.root, top=4)
        if not outcome.ok:
            print(rehearsal.report(outcome), file=sys.stderr)
        return outcome, blame
    finally:
        rehearsal.stop()
        rehearsal.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--rounds", type=int, default=1, help="boots of each, alternating")
    args = parser.parse_args()
    stop_on_sigterm()
    settings = load_stack(args.stack)
    candidates = {
        f"flasklab stack {args.stack}": target_for(settings),
        "tutorial 001 literally": baseline_target(settings.debian_codename),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    blames: dict[str, str] = {}
    try:
        for _ in range(args.rounds):
            for name, target in candidates.items():
                outcome, blames[name] = measure(target)
                if not outcome.ok or outcome.first_response_seconds is None:
                    print(f"{name}: the rehearsal failed, no time to compare", file=sys.stderr)
                    return 1
                times[name].append(outcome.first_response_seconds)
    except RehearsalRefused as error:
        print(error, file=sys.stderr)
        return 2

    print(
        f"\nseconds from boot to first good response (Debian {settings.debian_codename}, "
        f"median of {args.rounds}):"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"  {name:28} {median:6.1f} s   slowest modules:\n{blames[name]}")
    ours, baseline = medians.values()
    ratio = ours / baseline
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    print(f"ratio flasklab / baseline: {ratio:.2f} ({verdict} the goal of at most {GOAL_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
