"""Every benchmark runs to its end and prints its figures (a smoke run: no timing is
asserted), so a benchmark cannot rot unnoticed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from flasklab.settings import PROJECT_DIR
from tests.conftest import boot_prerequisites_missing

BENCHMARKS_DIR = PROJECT_DIR / "benchmarks"
# Each benchmark's smoke run: its arguments and the line of figures it must print.
SMOKE_RUNS = {
    "first_response.py": ([], r"ratio flasklab / baseline: \d+\.\d\d \((meets|misses) the goal"),
    "class_program.py": (["--students", "20", "--rounds", "1"], r"20 students: \d+\.\d\d s median"),
    "serving.py": (
        ["--seconds", "2", "--rounds", "1"],
        r"ms of CPU per request.*\n(.|\n)*web server / development server: \d+\.\d\d .* errors: \d+ \(",
    ),
    "class_sheet.py": (["--students", "20", "--rounds", "1"], r"20 students: \d+\.\d{3} s median"),
}


def test_every_benchmark_has_a_smoke_run():
    assert sorted(path.name for path in BENCHMARKS_DIR.glob("*.py")) == sorted(SMOKE_RUNS)


@pytest.mark.boot
@pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing())
@pytest.mark.parametrize("benchmark", sorted(SMOKE_RUNS))
def test_benchmark_runs_and_prints_its_figures(benchmark):
    arguments, figures = SMOKE_RUNS[benchmark]
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS_DIR / benchmark), *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert re.search(figures, result.stdout), result.stdout[-3000:]
