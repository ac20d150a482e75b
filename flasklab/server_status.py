"""flasklab-status: is this server ready, and if not, why.

One code for both places that ask. On the server, flasklab ships this file as it is
(Debian's python3, standard library only) and `flasklab-status` runs it over `/`: a
student or `pulumi up` sees whether first boot finished and, if it failed, the failing
deploy step, its output, the tail of cloud-init's output log and the recipe's unit
journals and logs. The rehearsal reads a container's root folder from outside with the
same functions, and prints the same sections.

It imports nothing of flasklab (flasklab is not installed on the server): what it must
agree on with the deploy script, the step and note markers, is passed in.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUTPUT_LOG = "var/log/cloud-init-output.log"
RESULT_FILE = "var/lib/cloud/data/result.json"
STATUS_FILE = "var/lib/cloud/data/status.json"
# Exit statuses of `flasklab-status`.
READY, FAILED, BOOTING = 0, 1, 2


def read(root: Path, relative: str) -> str:
    try:
        return (root / relative.lstrip("/")).read_text(errors="replace")
    except OSError:
        return ""


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def steps(root: Path, marker: str) -> list[str]:
    """The deploy steps the server started, in order (from cloud-init's output log)."""
    return [line[len(marker) :] for line in read(root, OUTPUT_LOG).splitlines() if line.startswith(marker)]


def notes(root: Path, note_marker: str) -> list[str]:
    """What the deploy script noted for the teacher (packages it built from source, pins too
    old for the release's Python), in order."""
    if not note_marker:
        return []
    lines = read(root, OUTPUT_LOG).splitlines()
    return [line[len(note_marker) :] for line in lines if line.startswith(note_marker)]


def notes_section(noted: list[str]) -> str:
    return section("notes from first boot", "\n".join(f"- {note}" for note in noted)) if noted else ""


# The line that says what went wrong is often far above the end of a long traceback
# (pipenv prints its resolver's cause, then 100 lines of its own): lines with these words
# are kept from the part of the output that is left out.
NAMES_AN_ERROR = re.compile(
    r"\b(error|critical|fatal|failed|could not|cannot|denied|refused|timed out|no such)\b", re.IGNORECASE
)
# Python 3.11+ underlines a traceback's expressions with lines of ~ and ^ alone.
TRACEBACK_UNDERLINE = re.compile(r"^[\s~^]*[~^][\s~^]*$")


def failing_step_output(root: Path, marker: str, max_lines: int = 60) -> str:
    """What the last deploy step printed, up to cloud-init's own lines about the failure:
    its last lines, after the lines naming an error among those left out."""
    lines = read(root, OUTPUT_LOG).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(marker)]
    if not starts:
        return ""
    output = []
    for line in lines[starts[-1] :]:
        if line.startswith("Cloud-init v.") and "finished" in line:
            break
        if not TRACEBACK_UNDERLINE.match(line):
            output.append(line)
    left_out, shown = output[:-max_lines], output[-max_lines:]
    return "\n".join([*errors_left_out(left_out), *shown])


def errors_left_out(left_out: list[str], limit: int = 12) -> list[str]:
    """The lines naming an error among those left out (each once), with a line saying so."""
    naming = list(dict.fromkeys(line for line in left_out if NAMES_AN_ERROR.search(line)))
    if not naming:
        return []
    which = f"the {len(naming)}" if len(naming) <= limit else f"the first {limit} of the {len(naming)}"
    return [
        f"[{len(left_out)} earlier lines left out; {which} that name an error:]",
        *naming[:limit],
        "[... the last lines:]",
    ]


def cloud_init_errors(root: Path) -> list[str] | None:
    """cloud-init's errors once it is done ([] for none), None while it still runs."""
    text = read(root, RESULT_FILE)
    if not text:
        return None
    return [str(error) for error in json.loads(text).get("v1", {}).get("errors", [])]


def deploy_failed(errors: list[str]) -> bool:
    """cloud-init's user scripts (flasklab-deploy, from runcmd) failed. The module is
    scripts-user or scripts_user, by cloud-init's version."""
    return any("scripts-user" in error.replace("_", "-") for error in errors)


def recoverable_errors(root: Path) -> str:
    """cloud-init's warnings (recoverable errors) per stage, as JSON ('' for none)."""
    text = read(root, STATUS_FILE)
    if not text:
        return ""
    recoverable = {
        stage: data.get("recoverable_errors")
        for stage, data in json.loads(text).get("v1", {}).items()
        if isinstance(data, dict) and data.get("recoverable_errors")
    }
    return json.dumps(recoverable, indent=1) if recoverable else ""


def unit_journal(root: Path, unit: str, lines: int = 25) -> str:
    """The unit's last journal lines (of the system at `root`: a container's from outside)."""
    if shutil.which("journalctl") is None:
        return "(journalctl is not installed here)"
    where = [] if root == Path("/") else [f"--directory={root / 'var/log/journal'}"]
    command = [
        "journalctl",
        *where,
        f"--unit={unit}",
        f"--lines={lines}",
        "--no-pager",
        "--output=short-monotonic",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip()


@dataclass
class Evidence:
    """What the server's files say about a failed first boot."""

    failing_step: str = ""
    failing_step_output: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: str = ""
    output_tail: str = ""
    journals: list[tuple[str, str]] = field(default_factory=list)  # (unit, its journal)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (path, its last lines)


def gather(
    root: Path, marker: str, units: list[str], logs: list[str], failed_deploy: bool, note_marker: str = ""
) -> Evidence:
    started = steps(root, marker)
    failing = started[-1] if failed_deploy and started else ""
    return Evidence(
        failing_step=failing,
        failing_step_output=failing_step_output(root, marker) if failing else "",
        notes=notes(root, note_marker),
        warnings=recoverable_errors(root),
        output_tail=tail(read(root, OUTPUT_LOG), 40),
        journals=[(unit, unit_journal(root, unit)) for unit in units],
        logs=[(log, tail(text, 20)) for log in logs if (text := read(root, log)).strip()],
    )


def section(title: str, body: str) -> str:
    return f"\n--- {title} ---\n{body.rstrip()}\n"


def evidence_sections(evidence: Evidence) -> list[str]:
    """The report of a failure, section by section."""
    # What to do (e.g. pins too old for this Python) before the output it is drawn from.
    lines = [notes_section(evidence.notes)] if evidence.notes else []
    if evidence.failing_step:
        lines.append(f"failing step: {evidence.failing_step}")
        lines.append(section("output of the failing step", evidence.failing_step_output))
    if evidence.warnings:
        lines.append(section("cloud-init warnings", evidence.warnings))
    lines.append(section(f"tail of /{OUTPUT_LOG}", evidence.output_tail))
    lines += [section(f"journal of {unit}", journal) for unit, journal in evidence.journals]
    lines += [section(log, text) for log, text in evidence.logs]
    return lines


def first_boot_seconds(root: Path) -> int | None:
    """Seconds from boot to cloud-init's result, on the running server itself (None from
    outside, or once the server rebooted: then it is not this boot's)."""
    if root != Path("/"):
        return None
    try:
        kernel_booted = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # The system booted when its PID 1 started (in a container, not the kernel's boot).
        init_started = int(Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19])
        finished = (root / RESULT_FILE).stat().st_mtime
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    seconds = int(finished - kernel_booted - init_started / os.sysconf("SC_CLK_TCK"))
    return seconds if seconds >= 0 else None


def status(
    root: Path,
    marker: str,
    units: list[str],
    logs: list[str],
    url: str,
    certificate: str = "",
    note_marker: str = "",
    stage: str = "",
) -> tuple[int, str]:
    """(exit status, text) of the server at `root`: ready, failed with why, or booting.
    A ready server's text says how long first boot took and shows `certificate` (its
    self-signed certificate, which whoever checks it from outside then trusts)."""
    errors = cloud_init_errors(root)
    if errors is None:
        started = steps(root, marker)
        now = f" (now: {started[-1]})" if started else ""
        return BOOTING, f"flasklab: first boot is still running{now}; try again in a minute."
    if not errors:
        # Recoverable errors (cloud-init status --wait exits 2: deprecated keys and the
        # like) do not stop a server from serving: shown, not failed.
        warnings = recoverable_errors(root)
        took = first_boot_seconds(root)
        text = f"flasklab: ready: {url} is served (first boot finished without errors)."
        if stage:  # an exercise: the student makes it serve
            text = f"flasklab: ready for the exercise (stage {stage}; first boot finished without errors)."
        text += f"\nfirst boot took {took} s" if took is not None else ""
        text += notes_section(notes(root, note_marker))
        text += section("cloud-init warnings", warnings) if warnings else ""
        pem = read(root, certificate) if certificate else ""
        return READY, text + (section("the site's certificate", pem) if pem else "")
    lines = ["flasklab: first boot FAILED:", *(f"- {error}" for error in errors)]
    lines += evidence_sections(gather(root, marker, units, logs, deploy_failed(errors), note_marker))
    return FAILED, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flasklab-status", description=__doc__.splitlines()[0])
    parser.add_argument("--marker", required=True, help="the prefix of the deploy steps' lines")
    parser.add_argument("--note-marker", default="", help="the prefix of the deploy script's notes")
    parser.add_argument("--unit", dest="units", action="append", default=[], help="a unit worth showing")
    parser.add_argument("--log", dest="logs", action="append", default=[], help="a log file worth showing")
    parser.add_argument("--url", required=True, help="where the app is served")
    parser.add_argument(
        "--certificate", default="", help="the site's self-signed certificate, shown when ready"
    )
    parser.add_argument(
        "--stage", default="", help="the exercise's stage, when the server does not serve yet"
    )
    parser.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    code, text = status(
        args.root,
        args.marker,
        args.units,
        args.logs,
        args.url,
        args.certificate,
        note_marker=args.note_marker,
        stage=args.stage,
    )
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
