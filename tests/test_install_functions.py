"""The deploy script's install functions (templates/partials/install-functions.sh.j2),
run by dash as on the server, with stand-ins for pip and apt-get that print what the real
ones print: network failures are tried again and nothing else is; a package that must be
built gets the build packages and one more try; a fast path installs nothing extra."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flasklab import contract
from flasklab.recipes import BUILD_PACKAGES
from flasklab.render import render_files, template_environment
from flasklab.stacks import load_stack
from tests.conftest import secrets_for_tests

# What pip 25 printed when its index could not be reached (a refusing proxy), and for a
# misspelt requirement: both end with "No matching distribution found".
UNREACHABLE = (
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after "
    "connection broken by 'ProxyError('Cannot connect to proxy.', NewConnectionError('Failed to "
    "establish a new connection: [Errno 111] Connection refused'))': /simple/flask/\n"
    "ERROR: Could not find a version that satisfies the requirement flask (from versions: none)\n"
    "ERROR: No matching distribution found for flask\n"
)
MISSPELT = (
    "ERROR: Could not find a version that satisfies the requirement flask-no-such==9.9"
    " (from versions: none)\n"
    "ERROR: No matching distribution found for flask-no-such==9.9\n"
)
NO_COMPILER = (
    "  \u00d7 Building wheel for greenlet (pyproject.toml) did not run successfully.\n"
    "      error: command 'x86_64-linux-gnu-g++' failed: No such file or directory\n"
    "  ERROR: Failed building wheel for greenlet\n"
    "ERROR: Failed to build installable wheels for some pyproject.toml based projects (greenlet)\n"
)
NO_PG_CONFIG = (
    "  \u00d7 Getting requirements to build wheel did not run successfully.\n"
    "      Error: pg_config executable not found.\n"
)
BUILT = (
    "  Building wheel for greenlet (pyproject.toml): finished with status 'done'\n"
    "  Building wheel for psycopg2 (pyproject.toml): finished with status 'done'\n"
)
STILL_FAILS = "  ERROR: Failed building wheel for greenlet\nFailed to build greenlet\n"


def functions() -> str:
    text = (
        template_environment()
        .get_template("partials/install-functions.sh.j2")
        .render(build_packages=BUILD_PACKAGES)
    )
    return text


def test_the_deploy_script_ships_these_functions():
    settings = load_stack("dev")
    deploy = next(f for f in render_files(settings, secrets_for_tests(settings)) if f.path.endswith("deploy"))
    assert functions() in deploy.content


def run(tmp_path: Path, outputs: list[tuple[int, str]], call: str) -> subprocess.CompletedProcess:
    """`call` after the functions, with a stand-in `pip` that answers the i-th run with
    outputs[i] (exit status, output, then `PIP_QUIET=<value>` when it is not 1), and
    `sleep` and `apt-get` stand-ins that log their arguments."""
    for index, (status, output) in enumerate(outputs):
        (tmp_path / f"out{index}").write_text(output)
        (tmp_path / f"status{index}").write_text(str(status))
    stand_ins = f"""
calls={tmp_path}/calls
pip() {{
    n=$(wc -l < "$calls" 2>/dev/null || echo 0)
    echo "pip $*" >> "$calls"
    cat {tmp_path}/out$n
    [ "$PIP_QUIET" = 1 ] || echo "PIP_QUIET=$PIP_QUIET"
    return $(cat {tmp_path}/status$n)
}}
sleep() {{ echo "sleep $1" >> {tmp_path}/log; }}
"""
    script = (
        "set -eu\nexport PIP_QUIET=1\n"
        + functions()
        + stand_ins
        # apt-get is called through env: a folder first on PATH holds a stand-in.
        + f'PATH={tmp_path}/bin:$PATH\n{call}\necho "returned $?"\n'
    )
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin/apt-get").write_text(f'#!/bin/sh\necho "apt-get $*" >> {tmp_path}/log\n')
    (tmp_path / "bin/apt-get").chmod(0o755)
    return subprocess.run(["dash", "-c", script], capture_output=True, text=True, timeout=30, check=False)


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().splitlines() if path.exists() else []


def calls(tmp_path: Path) -> int:
    return len((tmp_path / "calls").read_text().splitlines())


def notes(result: subprocess.CompletedProcess) -> list[str]:
    return [
        line[len(contract.NOTE_MARKER) :]
        for line in result.stdout.splitlines()
        if line.startswith(contract.NOTE_MARKER)
    ]


def test_a_network_failure_is_tried_again_with_backoff(tmp_path):
    result = run(
        tmp_path, [(1, UNREACHABLE), (1, UNREACHABLE), (0, "ok\n")], "with_retries pip install flask"
    )
    assert calls(tmp_path) == 3
    assert log(tmp_path) == ["sleep 10", "sleep 30"]
    assert "flasklab: a network error (Retrying (Retry(): trying again in 10 s" in result.stdout
    assert result.stdout.endswith("ok\nreturned 0\n"), result.stdout + result.stderr


def test_the_network_is_tried_a_bounded_number_of_times(tmp_path):
    result = run(tmp_path, [(1, UNREACHABLE)] * 5, 'with_retries pip install flask || echo "failed $?"')
    assert calls(tmp_path) == 4
    assert log(tmp_path) == ["sleep 10", "sleep 30", "sleep 60"]
    assert "failed 1" in result.stdout


@pytest.mark.parametrize("function", ["with_retries", "install_app_packages"])
def test_a_misspelt_requirement_fails_at_once(tmp_path, function):
    result = run(
        tmp_path, [(1, MISSPELT), (0, "")], f'{function} pip install flask-no-such==9.9 || echo "failed $?"'
    )
    assert calls(tmp_path) == 1
    assert log(tmp_path) == []
    assert "No matching distribution found for flask-no-such==9.9" in result.stdout
    assert "failed 1" in result.stdout and notes(result) == []


def test_all_wheels_install_nothing_extra(tmp_path):
    result = run(tmp_path, [(0, "")], "install_app_packages pip install -r requirements.txt")
    assert calls(tmp_path) == 1 and log(tmp_path) == [] and notes(result) == []
    assert result.stdout.endswith("returned 0\n")


def python_version() -> str:
    return subprocess.run(
        ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.parametrize("first_failure", [NO_COMPILER, NO_PG_CONFIG])
def test_a_package_that_must_be_built_gets_the_build_packages_and_one_more_try(tmp_path, first_failure):
    result = run(
        tmp_path, [(1, first_failure), (0, BUILT)], "install_app_packages pip install -r requirements.txt"
    )
    assert calls(tmp_path) == 2
    assert log(tmp_path) == [
        "apt-get install --yes --quiet --no-install-recommends " + " ".join(BUILD_PACKAGES)
    ]
    # pip says what it builds on the second try only, and is quiet again after it.
    assert result.stdout.count("PIP_QUIET=0") == 1
    (note,) = notes(result)
    assert note.startswith(
        f"{contract.BUILT_FROM_SOURCE}greenlet psycopg2 (no wheel for Python {python_version()};"
    )
    assert result.stdout.endswith("returned 0\n")


def test_a_package_that_still_cannot_be_built_names_itself_and_the_ways_out(tmp_path):
    result = run(
        tmp_path,
        [(1, NO_COMPILER), (1, STILL_FAILS)],
        'install_app_packages pip install -r requirements.txt || echo "failed $?"',
    )
    assert calls(tmp_path) == 2
    (note,) = notes(result)
    python = python_version()
    assert note.startswith(f"greenlet {contract.CANNOT_BUILD}{python}, even with the build packages"), note
    assert (
        f"pin a newer version of greenlet in the app's requirements (one with a wheel for Python {python})"
        in note
    )
    assert 'debianRelease: "12"' in note
    assert "failed 1" in result.stdout
