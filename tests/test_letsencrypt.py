"""tls letsencrypt without hands: the files a server gets to ask Let's Encrypt by itself
once DNS points at it (flasklab-letsencrypt.timer), and the decision of its script,
flasklab-letsencrypt-when-ready, run with stand-ins for what it asks: EC2's instance
metadata (curl), DNS (getent) and Let's Encrypt (flasklab-letsencrypt); then the
rehearsal's side, without a boot. The whole exchange with a real ACME server is proven by
the rehearsal (tests/test_rehearsal.py, pebble)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from flasklab import compose, probes, readiness
from flasklab.recipes import LETSENCRYPT_FILES
from flasklab.rehearsal import acme, metadata, runs
from flasklab.rehearsal.run import RehearsalRefused, check_prerequisites
from flasklab.rehearsal.target import target_for
from flasklab.render import render_files
from flasklab.stacks import load_stack
from tests.conftest import secrets_for_tests

PUBLIC_IP = "203.0.113.7"
SCRIPT = "/usr/local/sbin/flasklab-letsencrypt-when-ready"
# Let's Encrypt: 5 failed validations per account, per hostname, per hour (sliding window).
FAILED_VALIDATIONS_PER_HOUR = 5

STAND_INS = {
    # IMDSv2: a token for a PUT that asks for one, the address for a GET that shows it.
    "curl": """#!/bin/sh
case "$*" in
    *"-X PUT"*api/token) echo token-1 ;;
    *"X-aws-ec2-metadata-token: token-1"*public-ipv4) [ -n "$PUBLIC_IP" ] && echo "$PUBLIC_IP" || exit 22 ;;
    *) exit 22 ;;
esac
""",
    # getent ahostsv4 NAME: the addresses the test gives the name, in getent's format.
    "getent": """#!/bin/sh
for address in $(grep "^$2 " "$DNS_FILE" | cut -d ' ' -f 2-); do
    printf '%s      STREAM %s\\n' "$address" "$2"
done
""",
    "flasklab-letsencrypt": """#!/bin/sh
echo asked >>"$ASKED_FILE"
exit "$LETSENCRYPT_EXIT"
""",
}


@pytest.fixture(scope="module")
def settings():
    return load_stack("t003-supervisor")


@pytest.fixture
def when_ready(settings, tmp_path):
    """run(dns, public_ip, letsencrypt_exit) -> (asked, output): one run of the timer's
    script; `dns` maps each name to the addresses it resolves to."""
    files = {file.path: file for file in render_files(settings, secrets_for_tests(settings))}
    script = tmp_path / "when-ready"
    script.write_text(files[SCRIPT].content)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in STAND_INS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    asked_file = tmp_path / "asked"

    def run(dns: dict[str, list[str]], public_ip: str = PUBLIC_IP, letsencrypt_exit: int = 0):
        (tmp_path / "dns").write_text("".join(f"{n} {' '.join(a)}\n" for n, a in dns.items()))
        asked_file.write_text("")
        result = subprocess.run(
            ["sh", str(script)],
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin",
                "STATE_DIRECTORY": str(state),
                "PUBLIC_IP": public_ip,
                "DNS_FILE": str(tmp_path / "dns"),
                "ASKED_FILE": str(asked_file),
                "LETSENCRYPT_EXIT": str(letsencrypt_exit),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return asked_file.read_text().count("asked"), result.stdout + result.stderr

    run.failures = state / "failures"  # type: ignore[attr-defined]
    return run


def pointing_here(settings, address: str = PUBLIC_IP) -> dict[str, list[str]]:
    return {name: [address] for name in settings.server_names}


def test_the_server_gets_the_timer_its_service_and_script_which_flasklab_wrote(settings):
    files = {file.path: file.content for file in render_files(settings, secrets_for_tests(settings))}
    for server_file in LETSENCRYPT_FILES:
        first_lines = files[server_file.path].splitlines()[:2]
        assert any(line.startswith("# Written by flasklab") for line in first_lines), server_file.path
    assert "letsencrypt.sh" in compose.deploy_steps(settings)
    deploy = files["/usr/local/sbin/flasklab-deploy"]
    assert "systemctl enable --now flasklab-letsencrypt.timer" in deploy
    # The first check right away: a fast first boot would otherwise wait for its first minute.
    assert "systemctl start --no-block flasklab-letsencrypt.service" in deploy
    # flasklab-letsencrypt's success stops the timer, whoever ran it (the teacher too).
    assert "systemctl disable --now --quiet flasklab-letsencrypt.timer" in files[LETSENCRYPT_FILES[0].path]
    without = {file.path for file in render_files(load_stack("dev"), secrets_for_tests(load_stack("dev")))}
    assert not without & {file.path for file in LETSENCRYPT_FILES}


def test_no_request_before_every_name_resolves_to_the_servers_public_address(settings, when_ready):
    name, alias = settings.server_names
    assert when_ready({})[0] == 0
    asked, output = when_ready({name: [PUBLIC_IP], alias: ["198.51.100.1"]})
    assert asked == 0 and f"waiting for DNS: {alias} resolves to 198.51.100.1" in output
    # A name with another address beside this server's: Let's Encrypt may pick either.
    asked, _ = when_ready({name: [PUBLIC_IP, "198.51.100.1"], alias: [PUBLIC_IP]})
    assert asked == 0
    asked, output = when_ready(pointing_here(settings), public_ip="")
    assert asked == 0 and "no public IPv4 address" in output
    asked, _ = when_ready(pointing_here(settings))
    assert asked == 1


def test_after_a_success_nothing_is_counted_against_the_next_run(settings, when_ready):
    assert when_ready(pointing_here(settings))[0] == 1
    assert not when_ready.failures.exists()


def age(path: Path, seconds: float) -> None:
    """As if `seconds` more had passed since the file was last written."""
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_each_refusal_doubles_the_wait_before_the_next_request(settings, when_ready):
    dns = pointing_here(settings)
    assert when_ready(dns, letsencrypt_exit=1)[0] == 1
    asked, output = when_ready(dns, letsencrypt_exit=1)
    assert asked == 0 and "refused 1 time(s) in a row; next try" in output
    age(when_ready.failures, 290)
    assert when_ready(dns, letsencrypt_exit=1)[0] == 0
    age(when_ready.failures, 15)  # 5 min after the first refusal
    assert when_ready(dns, letsencrypt_exit=1)[0] == 1
    age(when_ready.failures, 301)  # the second refusal waits 10 min
    assert when_ready(dns, letsencrypt_exit=1)[0] == 0
    age(when_ready.failures, 300)
    assert when_ready(dns)[0] == 1
    assert not when_ready.failures.exists()


def test_a_server_refused_every_time_stays_under_lets_encrypts_failed_validation_limit(settings, when_ready):
    """Twelve hours of Let's Encrypt refusing every request: in any hour fewer requests than
    the limit allows failures (each request validates each name once), and the waits double
    up to 6 hours. (The timer runs every minute; every 5 is enough here, as every wait is
    a multiple of 5 minutes, and keeps the test short.)"""
    hours, step = 12, 5
    dns, asked_at = pointing_here(settings), []
    for minute in range(0, hours * 60, step):
        if when_ready(dns, letsencrypt_exit=1)[0]:
            asked_at.append(minute)
        if when_ready.failures.exists():
            age(when_ready.failures, step * 60)
    busiest = max(sum(start <= at < start + 60 for at in asked_at) for start in range(hours * 60))
    assert busiest < FAILED_VALIDATIONS_PER_HOUR, asked_at
    waits = [later - earlier for earlier, later in itertools.pairwise(asked_at)]
    assert waits == [5, 10, 20, 40, 80, 160, 360], asked_at


# The rehearsal's side (flasklab/rehearsal/acme.py, metadata.py), without a boot.


@pytest.fixture
def instance_metadata():
    """The rehearsal's IMDSv2 stand-in on a free port of this machine's loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), metadata.handler_for(PUBLIC_IP, "the-token"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def ask(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_the_rehearsals_instance_metadata_gives_the_address_only_with_a_token_as_imdsv2(instance_metadata):
    address_url = instance_metadata + metadata.PUBLIC_IPV4_PATH
    assert ask(address_url)[0] == 401
    assert ask(instance_metadata + metadata.TOKEN_PATH, "PUT")[0] == 400  # no TTL asked
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    status, token = ask(instance_metadata + metadata.TOKEN_PATH, "PUT", ttl)
    assert (status, token) == (200, "the-token")
    assert ask(address_url, headers={"X-aws-ec2-metadata-token": "another"})[0] == 401
    assert ask(address_url, headers={"X-aws-ec2-metadata-token": token}) == (200, PUBLIC_IP)


def test_a_dead_rehearsals_acme_processes_are_stopped_with_its_record(tmp_path, monkeypatch):
    """pebble & co. run in sessions of their own, like the container: when the rehearsal
    that started them dies, the next one's clean-up stops them by the PIDs in its folder."""
    monkeypatch.setattr(runs, "RUNS_DIR", tmp_path)
    record = runs.RunRecord("flasklab-250-acme-test", 250, owner_pid=0, owner_started="")
    record.folder.mkdir()
    helper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        runs.note_helpers(record, [helper.pid])
        assert runs.helper_pids(record) == [helper.pid]
        runs.release(record)
        assert helper.wait(timeout=10) == -signal.SIGTERM
    finally:
        helper.kill()
    assert not record.folder.exists()


def test_a_letsencrypt_stack_is_rehearsed_with_the_acme_server_and_https_by_name(settings):
    target = target_for(settings)
    assert target.acme and target.url == f"https://{settings.server_name}/"
    # The user-data is what EC2 gets: nothing in it knows of pebble or the rehearsal.
    assert acme.ACME_DIRECTORY not in target.user_data and "pebble" not in target.user_data
    assert not target_for(load_stack("t003-supervisor", {"stage": "app"})).acme
    assert not target_for(load_stack("dev")).acme


def test_without_pebble_a_letsencrypt_rehearsal_is_refused_with_the_package_to_install(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda program: None if "pebble" in program else real_which(program))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    check_prerequisites(acme_server=False)  # the other stacks need no pebble
    with pytest.raises(RehearsalRefused) as refused:
        check_prerequisites(acme_server=True)
    assert "pebble is missing: `apt-get install pebble` (or scripts/setup.sh)" in str(refused.value)


def test_pulumi_ups_wait_counts_a_server_that_already_switched_to_https(settings, monkeypatch):
    """With dnsZone the certificate may come while `pulumi up` still waits: plain HTTP then
    only redirects, and the site over HTTPS with a trusted certificate counts as served."""
    spec = readiness.wait_spec(settings, PUBLIC_IP, None)
    certified = spec.certified_site()
    assert not spec.https and certified is not None
    assert (certified.https, certified.verify, certified.ca_pem) == (True, True, "")

    def switched_to_https(site, expect, found):
        if not site.https:
            found.problems.append(f"http://{settings.server_name}/ redirects more than 3 times")

    monkeypatch.setattr(probes, "app_pages", switched_to_https)
    assert readiness.wait_until_serving(spec.site(), spec.expectation(), 0) != []
    assert readiness.wait_until_serving(spec.site(), spec.expectation(), 0, certified=certified) == []
    assert readiness.wait_spec(load_stack("dev"), PUBLIC_IP, None).certified_site() is None
