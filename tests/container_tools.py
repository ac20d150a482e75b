"""Looking inside a running rehearsal container, for the boot tests: commands as a user,
the processes of a user, the login user cloud-init made."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flasklab.rehearsal.run import Rehearsal


def run_inside(rehearsal: Rehearsal, command: str, user: str = "root") -> subprocess.CompletedProcess:
    """A shell command in the running container, as `user` with a login environment."""
    return rehearsal.container.run_inside(command, user)


def login_user(rehearsal: Rehearsal) -> str:
    """The image's default user, as cloud-init made it (the first UID from 1000)."""
    for line in (rehearsal.root / "etc/passwd").read_text().splitlines():
        name, _, uid, *_ = line.split(":")
        if 1000 <= int(uid) < 60000:
            return name
    raise RuntimeError("the container has no login user")


@dataclass(frozen=True)
class ContainerProcess:
    pid: int
    parent: int
    command: str
    parent_name: str


def processes_of(rehearsal: Rehearsal, user: str) -> list[ContainerProcess]:
    """The container's processes running as `user`, each with its parent's command line."""
    uid = next(
        int(line.split(":")[2])
        for line in (rehearsal.root / "etc/passwd").read_text().splitlines()
        if line.split(":")[0] == user
    )
    leader = rehearsal.container.leader_pid()
    if leader is None:
        return []
    # The container's processes are those in its PID namespace (services may have
    # mount namespaces of their own: PrivateTmp).
    namespace = os.readlink(f"/proc/{leader}/ns/pid")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "ns/pid") != namespace or proc.stat().st_uid != uid:
                continue
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            parent_name = Path(f"/proc/{parent}/comm").read_text().strip()
            found.append(ContainerProcess(int(proc.name), parent, command, parent_name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # it ended meanwhile
    return found
