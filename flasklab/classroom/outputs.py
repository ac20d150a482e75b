"""What `pulumi up` tells the teacher about each student's server, and how it is read back.

A class stack (a `roster`) exports `students`, one entry per student, and the secret
`sshPrivateKeys` for the students whose key the stack made. A stack of one student
exports the same facts at the top level. The Pulumi program writes the entries with
`student_entry` and `class sheet`/`class check` read them with `read_outputs`, so the
key names live only here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flasklab.settings import PROJECT_DIR, ConfigError, Settings
from flasklab.stacks import STACKS_DIR, load_stack_servers, stack_names

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
# With dnsZone: the zone's name and what it means for the students (dns_zone_note).
DNS_ZONE = "dnsZone"
# The start links (startLink), secret: a class stack's by student, a single stack's one.
START_LINKS = "startLinks"
START_LINK = "startLink"
# Where `class sheet` and `class check` write, a folder per stack (not for the repository).
SHEETS_DIR = PROJECT_DIR / "sheets"


def add_outputs_argument(parser: argparse.ArgumentParser) -> None:
    """--outputs, for the commands that read a stack's outputs (their --stack is
    flasklab.classroom.account.add_class_arguments's)."""
    parser.add_argument(
        "--outputs",
        type=Path,
        help="its outputs saved with `pulumi stack output --json --show-secrets` (default: ask Pulumi, "
        "and the keys stay in memory; a saved copy holds every private key: keep it outside the project)",
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
    # The student's start link ('' when the outputs have none), and whether the outputs hide it
    # (saved without --show-secrets).
    start_link: str = field(default="", repr=False)
    start_link_hidden: bool = False


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


def dns_zone_note(zone: str) -> str:
    """The dnsZone output: the names are public, so the hosts file is optional."""
    return (
        f"Every server's names are in the DNS zone {zone} and follow its address at every start (TTL 60 s): "
        f"students type the URL, no hosts line needed (the hosts lines still work, until the next stop)."
    )


# What `pulumi stack output --json` writes in place of a secret without --show-secrets.
HIDDEN_SECRET = "[secret]"


def show_secrets_command(stack: str) -> str:
    return f"pulumi stack output --json --show-secrets --stack {stack}"


def parse_outputs(outputs: Any, stack: str) -> list[StudentAccess]:
    """Every student's access, from `pulumi stack output --json --show-secrets`; an
    OutputsError saying what is wrong with anything else."""
    if not isinstance(outputs, dict):
        raise _malformed(stack, "they are not a JSON object of outputs")
    hidden = sorted(key for key in (SSH_PRIVATE_KEYS, SSH_PRIVATE_KEY) if _hides_a_secret(outputs.get(key)))
    if hidden:
        raise OutputsError(
            f"the outputs of stack {stack} were saved without --show-secrets: Pulumi wrote "
            f"{HIDDEN_SECRET!r} in place of {' and '.join(hidden)}, the students' private keys. Leave out "
            f"--outputs (flasklab then asks Pulumi itself, keeping the keys in memory), or run "
            f"`{show_secrets_command(stack)}` and save what it prints outside the project."
        )
    if STUDENTS in outputs:
        entries = _mapping(outputs[STUDENTS], STUDENTS, stack, dict)
        keys = _mapping(outputs.get(SSH_PRIVATE_KEYS) or {}, SSH_PRIVATE_KEYS, stack, str)
        ready = _mapping(outputs.get(FIRST_BOOT_SECONDS) or {}, FIRST_BOOT_SECONDS, stack, int | float | None)
        links = outputs.get(START_LINKS) or {}
        links_hidden = _hides_a_secret(links)
        links = {} if links_hidden else _mapping(links, START_LINKS, stack, str)
        return [
            dataclasses.replace(
                _access(
                    student, entry, keys.get(student, ""), ready.get(student), f"{STUDENTS}.{student}", stack
                ),
                start_link=links.get(student, ""),
                start_link_hidden=links_hidden,
            )
            for student, entry in sorted(entries.items())
        ]
    if PUBLIC_IP not in outputs:
        raise OutputsError(
            f"stack {stack} has no server in its outputs (no {STUDENTS} and no {PUBLIC_IP}): "
            f"run `pulumi up` for it first."
        )
    key = outputs.get(SSH_PRIVATE_KEY) or ""
    if not isinstance(key, str):
        raise _malformed(stack, f"{SSH_PRIVATE_KEY} is not text")
    link = outputs.get(START_LINK) or ""
    if not isinstance(link, str):
        raise _malformed(stack, f"{START_LINK} is not text")
    access = _access(stack, outputs, key, outputs.get(FIRST_BOOT_SECONDS), "the outputs", stack)
    link_hidden = link == HIDDEN_SECRET
    return [
        dataclasses.replace(access, start_link="" if link_hidden else link, start_link_hidden=link_hidden)
    ]


def _hides_a_secret(value: Any) -> bool:
    """Pulumi's placeholder, for the whole output or (in a map) for one student's key."""
    values = value.values() if isinstance(value, dict) else [value]
    return any(item == HIDDEN_SECRET for item in values)


def _malformed(stack: str, what: str) -> OutputsError:
    return OutputsError(
        f"the outputs of stack {stack} are not what `pulumi up` exports: {what}. Get them anew with "
        f"`{show_secrets_command(stack)}` (or leave out --outputs)."
    )


def _mapping(value: Any, name: str, stack: str, kind: Any) -> dict[str, Any]:
    """A map of student -> value of kind, or an OutputsError naming what is not."""
    if not isinstance(value, dict):
        raise _malformed(stack, f"{name} is not a map of students")
    for student, item in value.items():
        if not isinstance(item, kind) or isinstance(item, bool):
            raise _malformed(stack, f"{name}.{student} is {json.dumps(item)[:60]}")
    return value


_TEXT_FIELDS = (PUBLIC_IP, URL, HOSTS_LINE, SSH_COMMAND, INSTANCE_ID)


def _access(
    student: str, entry: Mapping[str, Any], key: str, first_boot: Any, where: str, stack: str
) -> StudentAccess:
    for name in _TEXT_FIELDS:
        if not isinstance(entry.get(name, ""), str | None):
            raise _malformed(stack, f"{where}.{name} is not text")
    hosts_line = str(entry.get(HOSTS_LINE) or "")
    names = entry.get(SERVER_NAMES) or hosts_line.split()[1:]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise _malformed(stack, f"{where}.{SERVER_NAMES} is not a list of names")
    return StudentAccess(
        student=student,
        public_ip=str(entry.get(PUBLIC_IP) or ""),
        server_names=tuple(names),
        url=str(entry.get(URL) or ""),
        hosts_line=hosts_line,
        ssh_command=str(entry.get(SSH_COMMAND) or ""),
        instance_id=str(entry.get(INSTANCE_ID) or ""),
        first_boot_seconds=(
            float(first_boot)
            if isinstance(first_boot, int | float) and not isinstance(first_boot, bool)
            else None
        ),
        ssh_private_key=key,
    )


def check_stack(
    accesses: Sequence[StudentAccess], class_outputs: bool, servers: Sequence[Settings], stack: str
) -> None:
    """An OutputsError if the outputs are plainly another stack's: a class's outputs for a
    stack of one (or the reverse), or no student, or no server name, in common with the
    stack's settings. Some difference is normal: the roster may have changed since the
    last `pulumi up`, and `class check` reports it student by student."""
    is_class = any(settings.student for settings in servers)
    if is_class != class_outputs:
        kind = "a class (a roster)" if is_class else "a single server"
        raise OutputsError(
            f"these outputs are not stack {stack}'s: the stack makes {kind}, the outputs "
            f"{'do not' if is_class else 'do'} list {STUDENTS}. Check --stack and --outputs, or get "
            f"them with `{show_secrets_command(stack)}`."
        )
    if is_class:
        ours = {settings.student for settings in servers}
        theirs = {access.student for access in accesses}
        if not ours & theirs:
            raise OutputsError(
                f"these outputs are not stack {stack}'s: none of their students "
                f"({', '.join(sorted(theirs))}) is on its roster ({', '.join(sorted(ours))}). Check --stack "
                f"and --outputs."
            )
        return
    names = set(accesses[0].server_names)
    if names and not names & set(servers[0].server_names):
        raise OutputsError(
            f"these outputs are not stack {stack}'s: they serve {', '.join(sorted(names))}, the stack "
            f"{', '.join(servers[0].server_names)}. Check --stack and --outputs."
        )


def stack_servers(stack: str) -> list[Settings] | None:
    """The stack's servers as its file says, to know its outputs by; None when its settings
    cannot be read here (a secret in the file): the check is skipped, not the command."""
    if not (STACKS_DIR / f"Pulumi.{stack}.yaml").is_file():
        raise OutputsError(
            f"there is no stack {stack} in this project (no {STACKS_DIR.name}/Pulumi.{stack}.yaml). "
            f"Stacks here: {', '.join(stack_names()) or 'none'}."
        )
    try:
        return load_stack_servers(stack)
    except ConfigError:
        return None


def read_outputs(
    stack: str, outputs_file: Path | None = None, servers: Sequence[Settings] | None = None
) -> list[StudentAccess]:
    """The stack's students: from the Pulumi CLI (the keys stay in memory), or from a saved
    `pulumi stack output --json --show-secrets` file; checked against the stack's settings
    (`servers`, else read from its stack file)."""
    return read_outputs_document(stack, outputs_file, servers)[0]


def read_outputs_document(
    stack: str, outputs_file: Path | None = None, servers: Sequence[Settings] | None = None
) -> tuple[list[StudentAccess], dict[str, Any]]:
    """read_outputs's students, and the outputs themselves for what only some commands
    read (the start links)."""
    if outputs_file is not None:
        try:
            outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:
            raise OutputsError(
                f"{outputs_file} cannot be read as the stack's outputs ({error}). Leave out --outputs "
                f"(flasklab asks Pulumi), or check it holds what `{show_secrets_command(stack)}` prints."
            ) from None
    else:
        outputs = _outputs_from_pulumi(stack)
    accesses = parse_outputs(outputs, stack)
    servers = servers if servers is not None else stack_servers(stack)
    if servers:
        check_stack(accesses, isinstance(outputs, dict) and STUDENTS in outputs, servers, stack)
    return accesses, outputs


def start_links(outputs: dict[str, Any], stack: str) -> dict[str, str]:
    """Student -> their start link, for the links the outputs hold (none when the stack has
    no start link, or its outputs were saved without --show-secrets: "[secret]")."""
    links = outputs.get(START_LINKS)
    if not isinstance(links, dict):
        single = outputs.get(START_LINK)
        links = {stack: single} if STUDENTS not in outputs and single else {}
    return {
        student: link
        for student, link in links.items()
        if isinstance(link, str) and link.startswith("https://")
    }


def _outputs_from_pulumi(stack: str) -> Any:
    if shutil.which("pulumi") is None:
        raise OutputsError(
            "the Pulumi CLI is not installed here. Install it, or where it is run "
            f"`{show_secrets_command(stack)} > ~/{stack}-outputs.json` (outside the project: it holds "
            f"every student's private key) and pass --outputs ~/{stack}-outputs.json."
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
    except (ValueError, RecursionError):
        raise OutputsError(
            f"`{show_secrets_command(stack)}` printed no JSON ({done.stdout[:200]!r}). Run it yourself to "
            f"see why (`pulumi login`? `pulumi stack ls`?)."
        ) from None
