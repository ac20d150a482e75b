"""One environment, one command: the Pulumi program and the `flasklab` command share the
virtualenv scripts/setup.sh makes, and a Python without flasklab's packages says what to
run instead of a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from flasklab import environment
from flasklab.__main__ import main
from flasklab.settings import PROJECT_DIR

# Runs `python -m flasklab ARGS` in a Python where the named package cannot be imported.
WITHOUT = (
    "import runpy, sys; sys.modules[sys.argv[1]] = None; sys.argv = ['flasklab', *sys.argv[2:]]; "
    "runpy.run_module('flasklab', run_name='__main__', alter_sys=True)"
)


def run_without(package: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, package, *arguments],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("package", "arguments"),
    [
        ("cronsim", ["class", "status", "--course", "daw"]),  # imported with the settings
        ("yaml", ["render", "--stack", "dev"]),
        ("boto3", ["class", "status", "--course", "daw"]),  # imported by the command itself
        ("rich", ["class", "roster", "import", "x.csv"]),
    ],
)
def test_a_python_without_the_packages_says_what_to_run(package, arguments):
    done = run_without(package, *arguments)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"lacks {package}" in done.stderr
    assert f".venv/bin/flasklab {' '.join(arguments)}" in done.stderr


def test_without_a_virtualenv_it_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "PROJECT_DIR", tmp_path)
    message = environment.missing_package_message("cronsim", ["class", "sheet", "--stack", "a"])
    assert "bash scripts/setup.sh" in message
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[pulumi]'" in message
    assert ".venv/bin/flasklab class sheet --stack a" in message


def test_a_missing_module_of_flasklab_itself_is_a_bug_and_raises():
    with pytest.raises(ModuleNotFoundError):
        environment.exit_for_missing_package(ModuleNotFoundError("x", name="flasklab.nothing"))


def test_pulumi_runs_the_program_in_the_virtualenv_setup_makes():
    runtime = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["runtime"]
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": environment.VIRTUALENV}
    setup = (PROJECT_DIR / "scripts" / "setup.sh").read_text()
    assert re.search(rf"python3 -m venv {re.escape(environment.VIRTUALENV)}\b", setup)


def test_the_flasklab_command_is_the_command_line():
    scripts = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"flasklab": "flasklab.__main__:main"}
    installed = Path(sys.executable).parent / "flasklab"  # pip made it in this virtualenv
    done = subprocess.run([str(installed), "class", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: flasklab class")


def test_python_m_flasklab_still_runs(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out
