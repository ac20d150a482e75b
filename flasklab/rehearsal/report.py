"""What a rehearsal tells the teacher: timings, cloud-init's own per-module timings and,
on failure, everything needed to fix the stack without a shell on the server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flasklab.rehearsal.run import Outcome, Rehearsal

STEP_PREFIX = "==> flasklab step: "
OUTPUT_LOG = "var/log/cloud-init-output.log"


def _read(root: Path, relative: str) -> str:
    path = root / relative.lstrip("/")
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def steps(root: Path) -> list[str]:
    """The deploy steps the server started, in order (from cloud-init's output log)."""
    return [
        line[len(STEP_PREFIX) :]
        for line in _read(root, OUTPUT_LOG).splitlines()
        if line.startswith(STEP_PREFIX)
    ]


def failing_step_output(root: Path, max_lines: int = 60) -> str:
    """What the last deploy step printed, up to cloud-init's own lines about the failure."""
    lines = _read(root, OUTPUT_LOG).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(STEP_PREFIX)]
    if not starts:
        return ""
    output = []
    for line in lines[starts[-1] :]:
        if line.startswith("Cloud-init v.") and "finished" in line:
            break
        output.append(line)
    return "\n".join(output[-max_lines:])


def current_step(root: Path) -> str:
    started = steps(root)
    return started[-1] if started else ""


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


def _section(title: str, body: str) -> str:
    return f"\n--- {title} ---\n{body.rstrip()}\n"


def render(rehearsal: Rehearsal, outcome: Outcome, hosts_line: str, url: str) -> str:
    root = rehearsal.root
    target = rehearsal.target
    seconds = lambda value: "never" if value is None else f"{value:.1f} s"  # noqa: E731
    verdict = "PASSED" if outcome.ok else "FAILED"
    lines = [
        f"\n=== flasklab rehearsal of stack '{target.name}' (Debian {target.codename}): {verdict} ===",
        f"cloud-init done after:  {seconds(outcome.cloud_init_seconds)}",
        f"first good response:    {seconds(outcome.first_response_seconds)}",
        f"URL:                    {url}",
        f"hosts line (here):      {hosts_line}",
        "slowest cloud-init modules:",
        cloud_init_blame(root),
    ]
    if outcome.ok:
        first = outcome.first_response.strip().splitlines()
        lines.append(_section(f"first response of {url}", "\n".join(first[:20])))
        return "\n".join(lines)

    problems = list(outcome.cloud_init_errors) + outcome.http_problems
    if outcome.failure:
        problems.insert(0, outcome.failure)
    lines.append(_section("what went wrong", "\n".join(f"- {p}" for p in problems)))
    started = steps(root)
    if started and any("scripts-user" in str(error) for error in outcome.cloud_init_errors):
        lines.append(f"failing step: {started[-1]}")
        lines.append(_section("output of the failing step", failing_step_output(root)))
    status = _read(root, "var/lib/cloud/data/status.json")
    if status:
        recoverable = {
            stage: data.get("recoverable_errors")
            for stage, data in json.loads(status).get("v1", {}).items()
            if isinstance(data, dict) and data.get("recoverable_errors")
        }
        if recoverable:
            lines.append(_section("cloud-init warnings", json.dumps(recoverable, indent=1)))
    lines.append(_section(f"tail of /{OUTPUT_LOG}", _tail(_read(root, OUTPUT_LOG), 40)))
    for unit in target.units:
        lines.append(_section(f"journal of {unit}", unit_journal(root, unit)))
    for log in target.logs:
        text = _read(root, log)
        if text.strip():
            lines.append(_section(log, _tail(text, 20)))
    return "\n".join(lines)


def keep_instructions(rehearsal: Rehearsal) -> str:
    pid = rehearsal.leader_pid()
    nspawn = rehearsal.process.pid if rehearsal.process else "?"
    return (
        f"\nThe container {rehearsal.machine} is still running (--keep).\n"
        f"  shell in it:  sudo nsenter --target {pid} --all /bin/bash -l\n"
        f"  stop it:      sudo kill {nspawn} && sudo rm -rf {rehearsal.root}\n"
    )
