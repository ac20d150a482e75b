"""flasklab-status's code (flasklab/server_status.py) on a server's files: booting, ready,
failed with the failing step. The boot tests run the shipped command in containers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flasklab import server_status
from flasklab.contract import BUILT_FROM_SOURCE, CANNOT_BUILD, NOTE_MARKER, STEP_MARKER
from flasklab.render import status_module_file
from flasklab.stacks import load_stack

OUTPUT_LOG = """Cloud-init v. 25.1 running 'modules:final'
{marker}put the app in /var/www/flask_app

{marker}create the virtual environment /var/www/flask_app/.venv
ERROR: No matching distribution found for flasklab-no-such-package==9.9
Cloud-init v. 25.1 finished at Sun, 22 Nov 2026 03:00:00 +0000. Up 31.00 seconds
"""


@pytest.fixture
def server(tmp_path) -> Path:
    """A server's root folder in the middle of a first boot that will fail."""
    (tmp_path / "var/log").mkdir(parents=True)
    (tmp_path / server_status.OUTPUT_LOG).write_text(OUTPUT_LOG.format(marker=STEP_MARKER))
    (tmp_path / "var/lib/cloud/data").mkdir(parents=True)
    return tmp_path


def finish(root: Path, errors: list[str]) -> None:
    (root / server_status.RESULT_FILE).write_text(json.dumps({"v1": {"datasource": "x", "errors": errors}}))


def run_status(root: Path) -> tuple[int, str]:
    return server_status.status(root, STEP_MARKER, [], ["/var/log/app.log"], "http://practica_flask/")


def test_while_cloud_init_runs_it_says_booting_and_the_current_step(server):
    code, text = run_status(server)
    assert code == server_status.BOOTING
    assert "still running (now: create the virtual environment /var/www/flask_app/.venv)" in text


def test_a_clean_first_boot_is_ready(server):
    finish(server, [])
    assert run_status(server) == (
        server_status.READY,
        "flasklab: ready: http://practica_flask/ is served (first boot finished without errors).",
    )


def test_a_failed_deploy_names_the_step_and_shows_its_output_and_logs(server):
    finish(
        server, ["('scripts_user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))"]
    )
    (server / "var/log/app.log").write_text("worker failed to boot\n")
    code, text = run_status(server)
    assert code == server_status.FAILED
    assert "failing step: create the virtual environment /var/www/flask_app/.venv" in text
    assert "--- output of the failing step ---" in text
    assert "No matching distribution found for flasklab-no-such-package" in text
    assert "--- /var/log/app.log ---\nworker failed to boot" in text


# pipenv's way of failing (seen in CI): the cause, then a long traceback of its own, its
# expressions underlined as Python 3.13 does.
PIPENV_FAILURE = [
    "Locking [packages] dependencies...",
    "CRITICAL:pipenv.patched.pip._internal.resolution.resolvelib.factory:Could not find a version"
    " that satisfies the requirement sqlalchemy<3,>=2.0 (from versions: none)",
    *[
        f'  File "/usr/lib/python3/dist-packages/pipenv/frame{n}.py", line {n}, in f\n    f()\n    ~^^'
        for n in range(80)
    ],
    "RuntimeError: Failed to lock Pipfile.lock!",
]


def test_a_long_failing_step_keeps_the_lines_that_name_its_error_above_its_last_lines(server):
    step = f"{STEP_MARKER}install pipenv, then the app's packages with pipenv into /var/www/flask_app/.venv"
    (server / server_status.OUTPUT_LOG).write_text("\n".join([step, *PIPENV_FAILURE, ""]))
    output = server_status.failing_step_output(server, STEP_MARKER).splitlines()
    assert len(output) == 1 + 1 + 1 + 60
    assert output[0] == "[104 earlier lines left out; the 1 that name an error:]"
    assert output[1].endswith(
        "Could not find a version that satisfies the requirement sqlalchemy<3,>=2.0 (from versions: none)"
    )
    assert output[-1] == "RuntimeError: Failed to lock Pipfile.lock!"
    assert not any(set(line.strip()) <= {"~", "^"} for line in output)


def test_an_error_outside_the_deploy_script_names_no_step(server):
    finish(server, ["('package_update_upgrade_install', RuntimeError('apt failed'))"])
    code, text = run_status(server)
    assert code == server_status.FAILED
    assert "failing step" not in text and "apt failed" in text


def test_the_shipped_module_runs_as_a_program_with_the_servers_python(server, tmp_path):
    """The file the user-data carries (with flasklab's header line) runs on its own."""
    shipped = tmp_path / "status.py"
    shipped.write_text(status_module_file(load_stack("dev")).content)
    finish(server, [])
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(shipped),
            "--marker",
            STEP_MARKER,
            "--url",
            "http://x/",
            "--root",
            str(server),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (
        0,
        "flasklab: ready: http://x/ is served (first boot finished without errors).",
    )


def test_of_many_lines_naming_an_error_the_first_each_once_are_kept():
    left_out = ["Retrying after connection broken: Failed to establish a new connection"] * 3
    left_out += [f"ERROR: step {n} failed" for n in range(20)] + ["all is well"]
    kept = server_status.errors_left_out(left_out)
    assert kept[0] == "[24 earlier lines left out; the first 12 of the 21 that name an error:]"
    assert kept[1:13] == [left_out[0], *left_out[3:14]]
    assert kept[-1] == "[... the last lines:]"
    assert server_status.errors_left_out(["all is well"] * 100) == []


def note_lines(*notes: str) -> str:
    return "".join(f"{NOTE_MARKER}{note}\n" for note in notes)


def test_a_ready_server_shows_what_first_boot_noted(server):
    built = f"{BUILT_FROM_SOURCE}greenlet psycopg2 (no wheel for Python 3.13; installed the build packages)"
    with (server / server_status.OUTPUT_LOG).open("a") as log:
        log.write(note_lines(built))
    finish(server, [])
    code, text = server_status.status(
        server, STEP_MARKER, [], [], "http://practica_flask/", note_marker=NOTE_MARKER
    )
    assert code == server_status.READY
    assert text.endswith(f"\n--- notes from first boot ---\n- {built}\n")


def test_a_failed_server_shows_its_notes_before_the_failing_steps_output(server):
    """What to do comes first: it is what `pulumi up` and the rehearsal show at the top."""
    too_old = f'greenlet {CANNOT_BUILD}3.13: ... or set debianRelease: "12"'
    with (server / server_status.OUTPUT_LOG).open("a") as log:
        log.write(note_lines(too_old))
    finish(server, ["('scripts_user', RuntimeError('Runparts: 1 failures'))"])
    code, text = server_status.status(
        server, STEP_MARKER, [], [], "http://practica_flask/", note_marker=NOTE_MARKER
    )
    assert code == server_status.FAILED
    notes_at = text.index(f"--- notes from first boot ---\n- {too_old}\n")
    assert notes_at < text.index("failing step: ")
