"""Benchmark: seconds to render the access sheet's HTML page (`class sheet`) of a class
stack of N students, from the outputs the Pulumi program makes for it under Pulumi's mocks
(made once, not timed); each round starts with the template not yet compiled, as a run of
the command does. Also the time to write the whole sheet (hosts file, CSV, page, keys).

    .venv/bin/python benchmarks/class_sheet.py [--students 200] [--rounds 5]

Goal: the page under 1 s for 200 students.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from flasklab.classroom.outputs import parse_outputs
from flasklab.classroom.sheet import ENVIRONMENT, card_of, render_html, write_sheet
from tests.conftest import program_runner, roster_writer

GOAL_SECONDS = 1.0
GOAL_STUDENTS = 200
STACK = "class-demo"


def class_outputs(students: int) -> dict[str, Any]:
    """The outputs of the class-demo stack with a roster of N students, as the program makes them."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as monkeypatch:
        roster_writer(Path(folder), monkeypatch)(
            "student\n" + "".join(f"s{n:03d}\n" for n in range(students))
        )
        return program_runner(monkeypatch)(STACK, roster="rosters/test.csv").outputs


def one_round(outputs: dict[str, Any]) -> tuple[float, float]:
    """(seconds to render the page, seconds to write the whole sheet)."""
    if ENVIRONMENT.cache is not None:
        ENVIRONMENT.cache.clear()  # the template compiled anew, as in a run of the command
    started = time.perf_counter()
    page = render_html(STACK, [card_of(access) for access in parse_outputs(outputs, STACK)])
    rendered = time.perf_counter() - started
    cards = page.count("<article ")
    assert cards == len(outputs["students"]), f"{cards} cards for {len(outputs['students'])} students"
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_sheet(STACK, parse_outputs(outputs, STACK), Path(folder))
        written = time.perf_counter() - started
    return rendered, written


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=GOAL_STUDENTS)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    outputs = class_outputs(args.students)
    rounds = [one_round(outputs) for _ in range(args.rounds)]
    median = statistics.median(page for page, _ in rounds)
    scaled = median * GOAL_STUDENTS / args.students
    verdict = "meets" if scaled < GOAL_SECONDS else "misses"
    print(
        f"rounds (page / whole sheet): {', '.join(f'{page:.3f} s / {whole:.3f} s' for page, whole in rounds)}"
    )
    print(f"whole sheet with its files: {statistics.median(whole for _, whole in rounds):.3f} s median")
    print(
        f"{args.students} students: {median:.3f} s median for the page, {scaled:.3f} s scaled to "
        f"{GOAL_STUDENTS} ({verdict} the goal of {GOAL_SECONDS:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
