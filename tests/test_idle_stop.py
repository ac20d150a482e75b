"""Idle servers stop themselves (autoStopIdleMinutes): the setting, the files the server
gets, EC2 stopping (not terminating) an instance that powers off, the script's decision
run on Debian with a stand-in systemctl, and real boots."""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flasklab import compose, probes, server_status
from flasklab.contract import IDLE_STOP_SAYS
from flasklab.recipes import IDLE_STOP_FILES, IDLE_STOP_STEP, IDLE_STOP_UNIT
from flasklab.rehearsal import server_logs
from flasklab.rehearsal.run import Rehearsal
from flasklab.render import RenderedFile, render_files
from flasklab.settings import ConfigError
from flasklab.stacks import load_stack
from tests import config_tools
from tests.conftest import EXAMPLE_STACKS, STUDENT_STACKS, boot_prerequisites_missing, secrets_for_tests
from tests.test_program import INSTANCE
from tests.test_readiness_boot import boot_with_key, run_over_ssh

SCRIPT = IDLE_STOP_FILES[0].path


def files_by_path(settings) -> dict[str, RenderedFile]:
    return {file.path: file for file in render_files(settings, secrets_for_tests(settings))}


@pytest.mark.parametrize("value", ["-1", "1441", "soon"])
def test_an_idle_time_out_of_range_is_refused_with_its_fix(value):
    with pytest.raises(ConfigError) as caught:
        load_stack("dev", {"autoStopIdleMinutes": value})
    [problem] = caught.value.problems
    assert problem.startswith("autoStopIdleMinutes")
    assert "pulumi config set autoStopIdleMinutes" in problem


def test_zero_turns_the_idle_stop_off():
    settings = load_stack("dev", {"autoStopIdleMinutes": "0"})
    assert not {file.path for file in IDLE_STOP_FILES} & set(files_by_path(settings))
    assert IDLE_STOP_STEP not in compose.deploy_steps(settings)
    assert "flasklab-idle-stop" not in files_by_path(settings)["/usr/local/sbin/flasklab-deploy"].content


@pytest.mark.parametrize("stack", STUDENT_STACKS)
def test_by_default_the_timer_is_enabled_first_and_reads_the_sites_own_access_log(stack):
    settings = load_stack(stack)
    files = files_by_path(settings)
    assert {file.path for file in IDLE_STOP_FILES} <= set(files)
    # First, so that a server whose first boot fails stops too.
    assert compose.deploy_steps(settings)[0] == IDLE_STOP_STEP
    deploy = files["/usr/local/sbin/flasklab-deploy"].content
    assert "systemctl enable --now flasklab-idle-stop.timer" in deploy
    script = files[SCRIPT].content
    assert f"idle_seconds={settings.auto_stop_idle_minutes * 60}\n" in script
    [read] = re.findall(r"^access_log=(\S+)$", script, re.MULTILINE)
    # The path every site file of the app (HTTP and HTTPS) logs its requests to.
    sites = [settings.recipe.web_server.http_site.path, settings.recipe.web_server.https_site.path]
    logged = set()
    for file in files.values():
        if file.path in {compose.for_app(site, settings) for site in sites}:
            logged |= set(re.findall(r"^\s*(?:access_log|CustomLog) ([^\s;]+)", file.content, re.MULTILINE))
    assert logged == {read}


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_an_instance_that_powers_itself_off_is_stopped_not_terminated(run_program, stack):
    instances = run_program(stack).of_type(INSTANCE)
    assert instances
    for instance in instances:
        assert instance["inputs"]["instanceInitiatedShutdownBehavior"] == "stop"


# The script's decision, on Debian's own sh and tools, with processes named as sshd names
# its sessions' and a stand-in systemctl that notes what it was asked.
SYSTEMCTL = '#!/bin/sh\necho "$*" >> /check/systemctl.log\n'
ACCESS_LOG = "/var/log/nginx/flask_app.access.log"
BOOT_RESULT = "/var/lib/cloud/data/result.json"
LAST_LOGIN = "/run/flasklab-idle-stop/last-login"


def decide(
    tmp_path: Path, uptime_seconds: int, ages: dict[str, int], processes: tuple[str, ...] = ()
) -> tuple[bool, str]:
    """Runs the dev stack's script (threshold 2 minutes) where the files in `ages` were
    last changed that many seconds ago and `processes` run: (whether it powered off, its output)."""
    settings = load_stack("dev", {"autoStopIdleMinutes": "2"})
    (tmp_path / "flasklab-idle-stop").write_text(files_by_path(settings)[SCRIPT].content)
    (tmp_path / "systemctl").write_text(SYSTEMCTL)
    (tmp_path / "uptime").write_text(f"{uptime_seconds}.42 1.00\n")
    touches = [
        f"mkdir -p {shlex.quote(str(Path(path).parent))} && touch -d @$(($(date +%s) - {age})) {path}"
        for path, age in ages.items()
    ]
    setup = [
        "install -m 0755 /check/systemctl /usr/local/bin/",
        *(f"{{ perl -e '$0 = shift; sleep 60' {shlex.quote(name)} & }}" for name in processes),
        "sleep 0.5",
        "mount --bind /check/uptime /proc/uptime",
        "mkdir -p /run/flasklab-idle-stop",
        *touches,
        "RUNTIME_DIRECTORY=/run/flasklab-idle-stop sh /check/flasklab-idle-stop",
        f"if [ -e {LAST_LOGIN} ]; then echo last-login: $(( $(date +%s) - $(stat -c %Y {LAST_LOGIN}) ))s; fi",
    ]
    result = config_tools.in_checkers_image(["sh", "-c", " && ".join(setup)], tmp_path, "trixie")
    assert result.returncode == 0, result.stdout + result.stderr
    log = tmp_path / "systemctl.log"
    asked = log.read_text() if log.exists() else ""
    assert asked in ("", "poweroff\n"), asked
    return asked == "poweroff\n", result.stdout + result.stderr


LONG_AGO = 600


@config_tools.needs_checkers
def test_unused_for_the_threshold_it_powers_off_saying_why(tmp_path):
    powered_off, output = decide(tmp_path, 3600, {BOOT_RESULT: LONG_AGO, ACCESS_LOG: LONG_AGO})
    assert powered_off
    assert f"{IDLE_STOP_SAYS}unused for 10 min (autoStopIdleMinutes 2)" in output


@config_tools.needs_checkers
@pytest.mark.parametrize(
    ("why", "uptime", "ages", "processes"),
    [
        ("a request a minute ago", 3600, {BOOT_RESULT: LONG_AGO, ACCESS_LOG: 60}, ()),
        ("an SSH login ended a minute ago", 3600, {BOOT_RESULT: LONG_AGO, LAST_LOGIN: 60}, ()),
        ("first boot finished a minute ago", 3600, {BOOT_RESULT: 60}, ()),
        ("first boot still runs", 3600, {ACCESS_LOG: LONG_AGO}, ()),
        ("booted a minute ago", 60, {BOOT_RESULT: LONG_AGO, ACCESS_LOG: LONG_AGO}, ()),
        ("an SSH login on a terminal (Debian 12)", 3600, {BOOT_RESULT: LONG_AGO}, ("sshd: admin@pts/0",)),
        (
            "an SSH command without one (Debian 13)",
            3600,
            {BOOT_RESULT: LONG_AGO},
            ("sshd-session: admin@notty",),
        ),
    ],
)
def test_in_use_it_stays_up(tmp_path, why, uptime, ages, processes):
    powered_off, output = decide(tmp_path, uptime, ages, processes)
    assert not powered_off, why
    if processes:  # remembered, for the threshold after the login ends
        assert "last-login: 0s" in output or "last-login: 1s" in output, output


@config_tools.needs_checkers
def test_connections_that_never_logged_in_are_not_use(tmp_path):
    """The internet's scanners knock on port 22 all day; they never get past sshd's login."""
    knocking = ("sshd: unknown [priv]", "sshd-session: root [net]", "sshd: /usr/sbin/sshd -D [listener]")
    assert decide(tmp_path, 3600, {BOOT_RESULT: LONG_AGO}, knocking)[0]


# Real boots: threshold 1 minute, three containers side by side.
IDLE_MINUTES = 1
# The timer runs every minute (65 s apart with its AccuracySec): the decision comes within
# the threshold and a minute and a half.
DECIDE_WITHIN = IDLE_MINUTES * 60 + 90
# Then systemd shuts the server down, which takes seconds, or up to its 90 s stop timeout
# for a unit that hangs (on 2 busy cores, CI once saw both together take over 150 s).
POWER_OFF_WITHIN = 120


@pytest.mark.boot
@pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing())
def test_an_idle_server_powers_off_while_one_in_use_stays_up(rehearsal_of, tmp_path):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    settings = load_stack("dev", {"autoStopIdleMinutes": str(IDLE_MINUTES)})
    public_key = key.with_suffix(".pub").read_text().strip()
    stop_requests = threading.Event()
    logins: list[subprocess.Popen] = []

    def log_in(rehearsal: Rehearsal) -> None:
        """An open login session, as a student's: `ssh ... sleep 600`."""
        address = rehearsal.container.address
        assert run_over_ssh(key, address, "true").returncode == 0
        logins.append(
            subprocess.Popen(
                ["ssh", *SSH_OPTIONS, "-i", str(key), f"admin@{address}", "sleep 600"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def request(rehearsal: Rehearsal) -> None:
        threading.Thread(target=request_every_20_seconds, args=(rehearsal, stop_requests)).start()

    uses: dict[str, Callable[[Rehearsal], None]] = {
        "idle": lambda rehearsal: None,
        "requested": request,
        "logged in": log_in,
    }

    def boot_and_use(use: Callable[[Rehearsal], None]) -> tuple[Rehearsal, float]:
        """Boots a server, waits until it serves and puts it to use: it, and when it was last used."""
        rehearsal = boot_with_key(rehearsal_of, settings, public_key)
        outcome = rehearsal.wait()
        assert outcome.ok, rehearsal.report(outcome)
        use(rehearsal)
        return rehearsal, time.monotonic()

    try:
        # Side by side, each put to use (or not) as soon as it serves.
        with ThreadPoolExecutor(len(uses)) as pool:
            booted = dict(zip(uses, pool.map(boot_and_use, uses.values()), strict=True))
        idle, requested, logged_in = (booted[name][0] for name in uses)
        last_used = booted["idle"][1]
        deadline = last_used + DECIDE_WITHIN + POWER_OFF_WITHIN
        while idle.container.exited() is None and time.monotonic() < deadline:
            time.sleep(2)
        journal = server_status.unit_journal(idle.root, IDLE_STOP_UNIT, lines=40)
        assert idle.container.exited() == 0, (
            f"the idle server still runs {time.monotonic() - last_used:.0f} s after its last use;"
            f" its idle stop's journal (it was last used at {last_used:.1f}):\n{journal}"
        )
        decided = decided_at(journal)
        assert decided - last_used <= DECIDE_WITHIN, (
            f"the idle stop decided {decided - last_used:.0f} s after the last use, more than the threshold"
            f" and a timer period ({DECIDE_WITHIN} s); its journal (last used at {last_used:.1f}):\n{journal}"
        )
        last_ready = max(ready for _, ready in booted.values())
        time.sleep(max(0.0, last_ready + DECIDE_WITHIN + 30 - time.monotonic()))
        assert requested.container.exited() is None, "a server with a request every 20 s powered off"
        assert logged_in.container.exited() is None, "a server with an open login session powered off"
        for in_use in (requested, logged_in):
            assert not server_logs.idle_stop_said(in_use.root), "a server in use decided to power off"
    finally:
        stop_requests.set()
        for login in logins:
            login.terminate()
            login.wait()
    # Its reason, in the journal, as a rehearsal reads it from outside.
    said = server_logs.idle_stop_said(idle.root)
    assert re.fullmatch(rf"unused for \d+ min \(autoStopIdleMinutes {IDLE_MINUTES}\): no login .*", said), (
        said
    )


def decided_at(journal: str) -> float:
    """When (CLOCK_MONOTONIC, which a container shares with the host) the idle stop decided to
    power off, from its journal in journalctl's short-monotonic output."""
    stamps = re.findall(rf"^\[\s*(\d+\.\d+)\].*{re.escape(IDLE_STOP_SAYS)}", journal, re.MULTILINE)
    assert stamps, f"the idle stop never said it powers off; its journal:\n{journal}"
    return float(stamps[-1])


SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")


def request_every_20_seconds(rehearsal: Rehearsal, stop: threading.Event) -> None:
    while not stop.wait(20):
        probes.serves(rehearsal.site, rehearsal.target.expect, rehearsal.target.server_names[0])
