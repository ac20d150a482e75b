"""What a server's own files say about its first boot, read from its root folder: the
deploy steps it started, the failing step's output, cloud-init's timings and warnings,
the journals of its units and its log files. Gathered as plain data for the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from flasklab.contract import STEP_MARKER

OUTPUT_LOG = "var/log/cloud-init-output.log"


def read(root: Path, relative: str) -> str:
    path = root / relative.lstrip("/")
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def steps(root: Path) -> list[str]:
    """The deploy steps the server started, in order (from cloud-init's output log)."""
    return [
        line[len(STEP_MARKER) :]
        for line in read(root, OUTPUT_LOG).splitlines()
        if line.startswith(STEP_MARKER)
    ]


def current_step(root: Path) -> str:
    started = steps(root)
    return started[-1] if started else ""


def failing_step_output(root: Path, max_lines: int = 60) -> str:
    """What the last deploy step printed, up to cloud-init's own lines about the failure."""
    lines = read(root, OUTPUT_LOG).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(STEP_MARKER)]
    if not starts:
        return ""
    output = []
    for line in lines[starts[-1] :]:
        if line.startswith("Cloud-init v.") and "finished" in line:
            break
        output.append(line)
    return "\n".join(output[-max_lines:])


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


def recoverable_errors(root: Path) -> str:
    """cloud-init's warnings (recoverable errors) per stage, as JSON ('' for none)."""
    status = read(root, "var/lib/cloud/data/status.json")
    if not status:
        return ""
    recoverable = {
        stage: data.get("recoverable_errors")
        for stage, data in json.loads(status).get("v1", {}).items()
        if isinstance(data, dict) and data.get("recoverable_errors")
    }
    return json.dumps(recoverable, indent=1) if recoverable else ""


def unit_journal(root: Path, unit: str, lines: int = 25) -> str:
    if shutil.which("journalctl") is None:
        return "(journalctl is not installed here)"
    result = subprocess.run(
        [
            "journalctl",
            f"--directory={root / 'var/log/journal'}",
            f"--unit={unit}",
            f"--lines={lines}",
            "--no-pager",
            "--output=short-monotonic",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return (result.stdout or result.stderr).strip()


@dataclass
class Evidence:
    """What the server's files say, for the report of a failure."""

    failing_step: str = ""
    failing_step_output: str = ""
    warnings: str = ""
    output_tail: str = ""
    journals: list[tuple[str, str]] = field(default_factory=list)  # (unit, journal)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (path, last lines)


def gather(root: Path, units: tuple[str, ...], logs: tuple[str, ...], deploy_failed: bool) -> Evidence:
    """Everything worth showing about a failed first boot."""
    started = steps(root)
    failed_step = started[-1] if deploy_failed and started else ""
    return Evidence(
        failing_step=failed_step,
        failing_step_output=failing_step_output(root) if failed_step else "",
        warnings=recoverable_errors(root),
        output_tail=tail(read(root, OUTPUT_LOG), 40),
        journals=[(unit, unit_journal(root, unit)) for unit in units],
        logs=[(log, tail(text, 20)) for log in logs if (text := read(root, log)).strip()],
    )
