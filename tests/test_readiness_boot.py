"""The exact command `pulumi up` runs on a new server (flasklab.readiness.READY_COMMAND),
run over real SSH, as the login user with the key pair's key, against rehearsed
containers while they boot: a good server is reported ready and then answers at its
address; a broken one fails with the failing deploy step."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path

import pytest

from flasklab import readiness
from flasklab.plan import LOGIN_USER
from flasklab.rehearsal.target import target_for
from flasklab.stacks import load_stack
from tests.conftest import boot_prerequisites_missing, run_the_wait
from tests.test_rehearsal import make_app_repo

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]


def run_over_ssh(key: Path, address: str, command: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`command` as the login user, retrying until SSH answers (pulumi-command's dialing)."""
    deadline = time.monotonic() + timeout
    options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=no"]
    options += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", str(key)]
    while True:
        result = subprocess.run(
            ["ssh", *options, f"{LOGIN_USER}@{address}", command], capture_output=True, text=True, check=False
        )
        if result.returncode != 255 or time.monotonic() > deadline:  # 255: ssh itself failed
            return result
        time.sleep(2)


def boot_with_key(rehearsal_of, settings, public_key: str):
    target = dataclasses.replace(target_for(settings), ssh_public_key=public_key)
    return rehearsal_of(target)


def test_the_ready_command_waits_for_first_boot_and_then_the_app_answers(rehearsal_of, key_pair):
    key, public_key = key_pair
    settings = load_stack("dev", {"tls": "self-signed"})
    rehearsal = boot_with_key(rehearsal_of, settings, public_key)
    # Right after boot, as pulumi-command does once EC2 runs the instance.
    result = run_over_ssh(key, rehearsal.container.address, readiness.READY_COMMAND)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flasklab: ready: https://practica_flask/ is served" in result.stdout
    assert (readiness.first_boot_seconds(result.stdout) or 0) > 0
    # Then the HTTP check from this machine as `pulumi up` runs it, trusting the certificate
    # the server printed.
    spec = readiness.wait_spec(settings, rehearsal.container.address, result.stdout)
    assert spec.https and spec.verify and spec.ca_pem
    wait = run_the_wait(spec)
    assert wait.returncode == 0, wait.stdout + wait.stderr
    verdict = readiness.verdict_in(wait.stdout)
    assert verdict is not None and verdict.ready and (verdict.first_boot_seconds or 0) > 0


def test_the_ready_command_fails_with_the_failing_step_of_a_broken_server(rehearsal_of, key_pair):
    key, public_key = key_pair
    repo = make_app_repo("broken-for-ssh", "Flask>=3.1,<4\nflasklab-no-such-package==9.9\n")
    rehearsal = boot_with_key(rehearsal_of, load_stack("dev", {"appRepo": repo}), public_key)
    result = run_over_ssh(key, rehearsal.container.address, readiness.READY_COMMAND)
    # The command reports (exit 0 with flasklab-status's status); the wait gives the verdict.
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{readiness.STATUS_EXIT_MARKER}1" in result.stdout
    wait = run_the_wait(readiness.wait_spec(load_stack("dev"), rehearsal.container.address, result.stdout))
    assert wait.returncode == 1, "a lone server that failed its first boot fails `pulumi up`"
    assert "flasklab: first boot FAILED" in wait.stdout
    assert "failing step: create the virtual environment /var/www/flask_app/.venv" in wait.stdout
    assert "flasklab-no-such-package" in wait.stdout  # pip's own words
