"""Rehearsals leave this machine alone and run side by side: each container has a network
of its own, nothing listens on this machine's addresses, and what a killed rehearsal left
is removed by the next one."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from flasklab.rehearsal import network, runs
from flasklab.rehearsal.run import listening_addresses
from flasklab.settings import PROJECT_DIR
from flasklab.stacks import load_stack
from tests.conftest import boot_prerequisites_missing

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]


@contextmanager
def held_ports(*ports: int) -> Iterator[None]:
    """This machine's ports, listened on by this test (or already by someone else)."""
    with ExitStack() as stack:
        for port in ports:
            listener = stack.enter_context(socket.socket())
            try:
                listener.bind(("0.0.0.0", port))
                listener.listen()
            except OSError as error:
                assert error.errno == errno.EADDRINUSE, error  # held by another program: as good
        yield


def rehearse_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "flasklab", "rehearse", *arguments]


def test_two_stacks_rehearse_at_once_while_this_machine_holds_ports_80_and_443():
    with held_ports(80, 443):
        result = subprocess.run(
            rehearse_command("--stack", "dev", "--stack", "t004-postgres", "--jobs", "2"),
            capture_output=True,
            text=True,
            cwd=PROJECT_DIR,
            timeout=1200,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if "passed" in line]
    assert len(rows) == 2, result.stdout[-3000:]
    addresses = {line.split("│")[-2].split()[0] for line in rows}
    assert len(addresses) == 2 and all(address.startswith("10.213.") for address in addresses), rows
    # The progress of both went to standard error, one line per step, side by side.
    assert "[dev]" in result.stderr and "[t004-postgres]" in result.stderr


def wait_for_record(process: subprocess.Popen, timeout: float = 300) -> runs.RunRecord:
    """The run record of a rehearsal started as `process`, once its container runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in runs.RUNS_DIR.glob("*.json"):
            record = runs.RunRecord(**json.loads(path.read_text()))
            if record.owner_pid == process.pid and record.container_pid and record.outbound_pid:
                return record
        assert process.poll() is None, "the rehearsal ended before its container ran"
        time.sleep(0.5)
    raise AssertionError("the rehearsal's container did not start")


def leftovers(record: runs.RunRecord) -> list[str]:
    """What of a rehearsal is still on this machine. Its number (so its namespace, link
    and folder names) may meanwhile belong to another rehearsal running side by side: then
    only its own processes count. Read under the runs' lock, as claims and releases are
    made, so that no rehearsal takes the number between two of these reads."""
    with runs.locked():
        return _leftovers(record)


def _leftovers(record: runs.RunRecord) -> list[str]:
    found = []
    for name, pid in (("systemd-nspawn", record.container_pid), ("slirp4netns", record.outbound_pid)):
        if runs._started(pid):
            found.append(f"{name} (pid {pid})")
    # Any stack's rehearsal may take the number: its record is named after its own stack.
    if any(other.index == record.index and other.owner_pid != record.owner_pid for other in runs.records()):
        return found  # the number went to another rehearsal
    if record.network.netns_path.exists():
        found.append(f"namespace {record.network.netns}")
    if (network.SYS_NET / record.network.host_link).exists():
        found.append(f"link {record.network.host_link}")
    if record.folder.exists():
        found.append(f"folder {record.folder}")
    if record.path.exists():
        found.append(f"record {record.path}")
    return found


def test_a_rehearsal_killed_with_sigkill_is_cleaned_up_by_the_next(rehearsal_of):
    killed = subprocess.Popen(
        rehearse_command("--stack", "dev"),
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    record = wait_for_record(killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # The container outlives its owner (read at once, without the runs' lock: a rehearsal
    # starting beside this one may clean it up as soon as it holds the lock).
    assert runs._started(record.container_pid), "a SIGKILL leaves the container running"

    second = rehearsal_of(load_stack("dev"))
    assert second.wait().ok
    second_record = second.container.record
    second.remove()
    assert leftovers(record) == []
    assert leftovers(second_record) == []


def test_the_container_listens_in_its_own_network_only(rehearsal_of):
    """Its web server listens in the container's network namespace and answers at the
    container's address; this machine's own network has none of its sockets."""
    rehearsal = rehearsal_of(load_stack("dev"))
    assert rehearsal.wait().ok
    leader = rehearsal.container.leader_pid()
    assert os.readlink(f"/proc/{leader}/ns/net") != os.readlink("/proc/self/ns/net")
    assert listening_addresses(80, Path(f"/proc/{leader}")), "the container's web server listens"
    assert rehearsal.site.address == rehearsal.container.address
    assert ipaddress.ip_address(rehearsal.site.address) in network.RANGE
