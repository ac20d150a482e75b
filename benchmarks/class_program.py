"""Benchmark: seconds to evaluate the Pulumi program for a class stack of N students under
Pulumi's mocks (every resource declared, every user-data rendered, outputs resolved).

    .venv/bin/python benchmarks/class_program.py [--students 200] [--rounds 3]

Goal: under 10 s for 200 students, after imports (a class of one student is run first;
its time, mostly importing pulumi_aws, is printed apart: a stack pays it once whatever
its size). Each round runs in a process of its own, as `pulumi up` runs the program once
per process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import program_runner, roster_writer

GOAL_SECONDS = 10.0
GOAL_STUDENTS = 200


def evaluate(students: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds): on a shared machine the CPU time is the steadier figure."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as monkeypatch:
        roster = "student\n" + "".join(f"s{n:03d}\n" for n in range(students))
        roster_writer(Path(folder), monkeypatch)(roster)
        run_program = program_runner(monkeypatch)
        started, cpu_started = time.perf_counter(), time.process_time()
        run = run_program("class-demo", roster="rosters/test.csv")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    instances = len(run.of_type("aws:ec2/instance:Instance"))
    assert instances == students, f"{instances} instances for {students} students"
    return elapsed, cpu


def one_round(students: int) -> tuple[float, float, float]:
    """(imports' seconds, wall seconds, CPU seconds) of a round in a new process."""
    done = subprocess.run(
        [sys.executable, __file__, "--students", str(students), "--one-round"],
        capture_output=True,
        text=True,
        check=True,
    )
    imports, wall, cpu = (float(value) for value in done.stdout.split())
    return imports, wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=GOAL_STUDENTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_round:
        imports, _ = evaluate(1)
        print(imports, *evaluate(args.students))
        return 0
    rounds = [one_round(args.students) for _ in range(args.rounds)]
    median = statistics.median(wall for _, wall, _ in rounds)
    scaled = median * GOAL_STUDENTS / args.students
    verdict = "meets" if scaled < GOAL_SECONDS else "misses"
    print(f"first run of each round, one student (imports): {', '.join(f'{i:.2f} s' for i, _, _ in rounds)}")
    print(f"rounds (wall / CPU): {', '.join(f'{wall:.2f} s / {cpu:.2f} s' for _, wall, cpu in rounds)}")
    print(
        f"{args.students} students: {median:.2f} s median, {scaled:.2f} s scaled to {GOAL_STUDENTS} "
        f"({verdict} the goal of {GOAL_SECONDS:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
