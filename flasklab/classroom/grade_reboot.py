"""`class grade --reboot`: reboot a student's server over SSH, as the student would
(`sudo systemctl reboot`), and wait, within a deadline, until it is back: SSH answers from
a new boot and systemd has finished starting what is enabled.

A new boot is told by the boot's own marks (the kernel's boot id and when PID 1 started):
an EC2 instance gets a new boot id; a container (the rehearsal) a new PID 1. Checking
before the reboot's SSH goes down would otherwise look like "back already".
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from flasklab.classroom.check_server import Server, SshOptions, ssh_command, ssh_failure

DEFAULT_REBOOT_TIMEOUT = 300.0
REBOOT_COMMAND = "sudo -n systemctl reboot"
BOOT_MARK_COMMAND = "cat /proc/sys/kernel/random/boot_id && cut -d' ' -f22 /proc/1/stat"
# Waits until systemd has started every enabled unit (prints running, or degraded).
BOOTED_COMMAND = "timeout {seconds} systemctl is-system-running --wait"
POLL_SECONDS = 2.0
ATTEMPT_SECONDS = 15.0


@dataclass(frozen=True)
class Rebooted:
    back: bool
    evidence: str  # the commands and what they showed, or why it is not back


def _ssh(
    server: Server, ssh: SshOptions, command: str, seconds: float
) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ssh_command(server, seconds, ssh, command),
            capture_output=True,
            text=True,
            timeout=seconds,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None


def boot_mark(server: Server, ssh: SshOptions, seconds: float) -> str | None:
    """This boot's marks, or None when SSH does not answer."""
    done = _ssh(server, ssh, BOOT_MARK_COMMAND, seconds)
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    return " ".join(done.stdout.split())


def reboot_and_wait(server: Server, timeout: float, ssh: SshOptions) -> Rebooted:
    """Reboot the server and wait until it is back, all within `timeout` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    if server.key_file is None:
        return Rebooted(False, "not rebooted: no SSH key for this server (give the stack's with --ssh-key)")
    before = _ssh(server, ssh, BOOT_MARK_COMMAND, min(ATTEMPT_SECONDS, timeout))
    if before is None or before.returncode != 0:
        why = (
            "no answer in time" if before is None else "; ".join(ssh_failure(before.stderr, server).problems)
        )
        return Rebooted(False, f"not rebooted: SSH before the reboot: {why}")
    mark = " ".join(before.stdout.split())
    # SSH drops as the server goes down: exit 255 here is the reboot, not a failure.
    asked = _ssh(server, ssh, REBOOT_COMMAND, min(ATTEMPT_SECONDS, timeout))
    if asked is not None and asked.returncode not in (0, 255):
        return Rebooted(False, f"$ {REBOOT_COMMAND}\n{asked.stderr.strip()[-300:] or asked.returncode}")
    while (left := deadline - time.monotonic()) > 0:
        now = boot_mark(server, ssh, min(ATTEMPT_SECONDS, left))
        if now is not None and now != mark:
            return _booted(server, ssh, deadline, started)
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    return Rebooted(False, f"$ {REBOOT_COMMAND}\nSSH did not answer from a new boot within {timeout:g} s")


def _booted(server: Server, ssh: SshOptions, deadline: float, started: float) -> Rebooted:
    """SSH is back: wait for systemd to start what is enabled, then say how long it took."""
    left = max(1, int(deadline - time.monotonic()))
    done = _ssh(server, ssh, BOOTED_COMMAND.format(seconds=left), left + 5)
    state = "no answer in time" if done is None else (done.stdout.strip() or done.stderr.strip()[-200:])
    took = time.monotonic() - started
    evidence = f"$ {REBOOT_COMMAND}\nback after {took:.0f} s; systemctl is-system-running: {state}"
    if state not in ("running", "degraded"):
        return Rebooted(False, evidence + " (still starting at the deadline)")
    return Rebooted(True, evidence)
