"""What `pulumi up` tells the teacher about each student's server, and how it is read back.

A class stack (a `roster`) exports `students`, one entry per student, and the secret
`sshPrivateKeys` for the students whose key the stack made. A stack of one student
exports the same facts at the top level. The Pulumi program writes the entries with
`student_entry` and `class sheet`/`class check` read them with `read_outputs`, so the
key names live only here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flasklab.settings import PROJECT_DIR

STUDENTS = "students"
SSH_PRIVATE_KEYS = "sshPrivateKeys"
# One student's entry in `students`, and the same keys at the top level of a single stack.
PUBLIC_IP = "publicIp"
PUBLIC_DNS = "publicDns"
SERVER_NAMES = "serverNames"
URL = "url"
HOSTS_LINE = "hostsLine"
SSH_COMMAND = "sshCommand"
INSTANCE_ID = "instanceId"
FIRST_BOOT_SECONDS = "firstBootSeconds"
# What the wait for each new server found (flasklab.readiness.Verdict's summary).
READINESS = "readiness"
RESTART_COMMAND = "restartCommand"
SSH_PRIVATE_KEY = "sshPrivateKey"  # a single stack's own key
# Where `class sheet` and `class check` write, a folder per stack (not for the repository).
SHEETS_DIR = PROJECT_DIR / "sheets"


def add_outputs_argument(parser: argparse.ArgumentParser) -> None:
    """--outputs, for the commands that read a stack's outputs (their --stack is
    flasklab.classroom.account.add_class_arguments's)."""
    parser.add_argument(
        "--outputs",
        type=Path,
        help="its outputs saved with `pulumi stack output --json --show-secrets` (default: ask Pulumi)",
    )


class OutputsError(Exception):
    """The outputs cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class StudentAccess:
    """One student's server as `pulumi up` left it."""

    student: str
    public_ip: str
    server_names: tuple[str, ...]
    url: str
    hosts_line: str
    ssh_command: str
    instance_id: str = ""
    first_boot_seconds: float | None = None
    # The stack's own private key for this server ('' when the teacher's key is used).
    ssh_private_key: str = field(default="", repr=False)


def student_entry(
    public_ip: str,
    public_dns: str,
    server_names: list[str],
    url: str,
    hosts_line: str,
    ssh_command: str,
    instance_id: str,
    restart_command: str,
) -> dict[str, Any]:
    """A class stack's `students` entry for one student (never a secret in it)."""
    return {
        PUBLIC_IP: public_ip,
        PUBLIC_DNS: public_dns,
        SERVER_NAMES: list(server_names),
        URL: url,
        HOSTS_LINE: hosts_line,
        SSH_COMMAND: ssh_command,
        INSTANCE_ID: instance_id,
        RESTART_COMMAND: restart_command,
    }


def parse_outputs(outputs: Mapping[str, Any], stack: str) -> list[StudentAccess]:
    """Every student's access, from `pulumi stack output --json --show-secrets`."""
    if STUDENTS in outputs:
        keys = outputs.get(SSH_PRIVATE_KEYS) or {}
        ready = outputs.get(FIRST_BOOT_SECONDS) or {}
        return [
            _access(student, entry, keys.get(student, ""), ready.get(student))
            for student, entry in sorted(outputs[STUDENTS].items())
        ]
    if PUBLIC_IP not in outputs:
        raise OutputsError(
            f"stack {stack} has no server in its outputs (no {STUDENTS} and no {PUBLIC_IP}): "
            f"run `pulumi up` for it first."
        )
    return [_access(stack, outputs, outputs.get(SSH_PRIVATE_KEY, ""), outputs.get(FIRST_BOOT_SECONDS))]


def _access(student: str, entry: Mapping[str, Any], key: str, first_boot: Any) -> StudentAccess:
    hosts_line = str(entry.get(HOSTS_LINE, ""))
    names = entry.get(SERVER_NAMES) or hosts_line.split()[1:]
    return StudentAccess(
        student=student,
        public_ip=str(entry.get(PUBLIC_IP, "")),
        server_names=tuple(names),
        url=str(entry.get(URL, "")),
        hosts_line=hosts_line,
        ssh_command=str(entry.get(SSH_COMMAND, "")),
        instance_id=str(entry.get(INSTANCE_ID, "")),
        first_boot_seconds=float(first_boot) if isinstance(first_boot, int | float) else None,
        ssh_private_key=str(key or ""),
    )


def read_outputs(stack: str, outputs_file: Path | None = None) -> list[StudentAccess]:
    """The stack's students: from a saved `pulumi stack output --json --show-secrets` file,
    or from the Pulumi CLI."""
    if outputs_file is not None:
        try:
            outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OutputsError(
                f"{outputs_file} cannot be read as the stack's outputs ({error}). Save them with "
                f"`pulumi stack output --stack {stack} --json --show-secrets > {outputs_file}`."
            ) from None
    else:
        outputs = _outputs_from_pulumi(stack)
    if not isinstance(outputs, dict):
        raise OutputsError(f"the outputs of stack {stack} are not a JSON object of outputs.")
    return parse_outputs(outputs, stack)


def _outputs_from_pulumi(stack: str) -> Any:
    if shutil.which("pulumi") is None:
        raise OutputsError(
            "the Pulumi CLI is not installed here. Install it, or save the outputs where it is, with "
            f"`pulumi stack output --stack {stack} --json --show-secrets > outputs.json`, and pass "
            f"--outputs outputs.json."
        )
    done = subprocess.run(
        ["pulumi", "stack", "output", "--stack", stack, "--json", "--show-secrets"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise OutputsError(
            f"`pulumi stack output --stack {stack}` failed: {done.stderr.strip()}. Check the stack's name "
            f"(`pulumi stack ls`) and that you are logged in to its backend (`pulumi login`)."
        )
    try:
        return json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise OutputsError(
            f"`pulumi stack output --stack {stack} --json` printed no JSON ({done.stdout[:200]!r}). Save the "
            f"outputs with `pulumi stack output --stack {stack} --json --show-secrets > outputs.json` and "
            f"pass --outputs outputs.json."
        ) from None
