"""What a rehearsed server's own files say, read from outside: the functions of
flasklab.server_status (the code `flasklab-status` runs on a server) over the
container's root folder, with the contract's step marker, and cloud-init's timings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from flasklab import server_status
from flasklab.contract import IDLE_STOP_SAYS, NOTE_MARKER, STEP_MARKER
from flasklab.recipes import IDLE_STOP_UNIT
from flasklab.server_status import Evidence


def steps(root: Path) -> list[str]:
    """The deploy steps the server started, in order."""
    return server_status.steps(root, STEP_MARKER)


def current_step(root: Path) -> str:
    started = steps(root)
    return started[-1] if started else ""


def gather(root: Path, units: tuple[str, ...], logs: tuple[str, ...], deploy_failed: bool) -> Evidence:
    """Everything worth showing about a failed first boot, as flasklab-status shows it."""
    return server_status.gather(root, STEP_MARKER, list(units), list(logs), deploy_failed, NOTE_MARKER)


def notes(root: Path) -> list[str]:
    """What the deploy script noted for the teacher (e.g. packages it built from source)."""
    return server_status.notes(root, NOTE_MARKER)


def cloud_init_blame(root: Path, top: int = 8) -> str:
    """cloud-init's own per-module timings, slowest first (`cloud-init analyze blame`)."""
    result = subprocess.run(
        ["chroot", str(root), "cloud-init", "analyze", "blame", "-i", "/var/log/cloud-init.log"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line.strip() for line in result.stdout.splitlines() if "s (" in line]
    return "\n".join(f"    {line}" for line in lines[:top]) or "    (no timings recorded)"


def idle_stop_said(root: Path) -> str:
    """Why the idle stop powered the server off, in its own words ('' if it did not)."""
    journal = server_status.unit_journal(root, IDLE_STOP_UNIT, lines=5)
    said = [line.split(IDLE_STOP_SAYS, 1)[1] for line in journal.splitlines() if IDLE_STOP_SAYS in line]
    return said[-1] if said else ""
