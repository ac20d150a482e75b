"""The rehearsals on this machine, each with a record: its number (which names its
network), its container's folder, the processes it started and the process that owns it.

A record whose owner is gone (a rehearsal killed with SIGKILL, or a crash) is cleaned up
by the next rehearsal: its container, slirp4netns and a letsencrypt rehearsal's ACME
server (HELPERS_FILE) are stopped, its network and folder removed. Kept rehearsals
(--keep) are left alone until `python -m flasklab clean`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from flasklab.rehearsal import network

RUNS_DIR = Path("/var/lib/flasklab/runs")
LOCK_FILE = RUNS_DIR / ".lock"
# A run's folder: flasklab-<index>-<stack>.
_RUN_FOLDER = re.compile(r"^flasklab-\d+-")
# In a run's folder: the PIDs of the processes a letsencrypt rehearsal starts beside its
# container (acme.py), one a line. A file of its own, not a field of RunRecord: a record
# must stay readable by every flasklab version that may run rehearsals on this machine.
HELPERS_FILE = "helpers.pids"
# How long a container may take to power off after SIGTERM before it is killed.
STOP_SECONDS = 60


@dataclass
class RunRecord:
    machine: str
    index: int
    owner_pid: int
    owner_started: str  # the owner's start time (/proc/PID/stat), against PID reuse
    container_pid: int = 0  # systemd-nspawn
    outbound_pid: int = 0  # slirp4netns
    kept: bool = False

    @property
    def folder(self) -> Path:
        """The container's root (root/) and its logs."""
        return RUNS_DIR / self.machine

    @property
    def root(self) -> Path:
        return self.folder / "root"

    @property
    def path(self) -> Path:
        return RUNS_DIR / f"{self.machine}.json"

    @property
    def network(self) -> network.Network:
        return network.Network(self.index)

    def save(self) -> None:
        # Whole or not at all: another process may read the records at any moment.
        partial = self.path.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(self.path)


def _started(pid: int) -> str:
    """A process's start time in clock ticks since boot ('' if it is gone or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if fields[0] in ("Z", "X") else fields[19]


def _owner_alive(record: RunRecord) -> bool:
    return _started(record.owner_pid) == record.owner_started


@contextmanager
def locked() -> Iterator[None]:
    """Only one process at a time claims, cleans or releases rehearsals."""
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def records() -> list[RunRecord]:
    found = []
    for path in sorted(RUNS_DIR.glob("*.json")):
        try:
            found.append(RunRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # not a record of this flasklab
    return found


def claim(name: str) -> RunRecord:
    """A new rehearsal's record and network, after cleaning up what dead runs left."""
    with locked():
        clean_up(kept_too=False)
        taken = network.indexes_in_use() | {record.index for record in records()}
        index = next((i for i in range(network.MAX_NETWORKS) if i not in taken), None)
        if index is None:
            raise RuntimeError(
                f"{network.MAX_NETWORKS} rehearsals already run on this machine; stop some "
                f"(python -m flasklab clean stops the kept ones)."
            )
        slug = re.sub(r"[^a-z0-9-]", "-", name.lower())[:40]
        pid = os.getpid()
        record = RunRecord(f"flasklab-{index}-{slug}", index, pid, _started(pid))
        record.save()
        network.create(index)
        return record


def _stop_process(pid: int, seconds: float) -> None:
    """SIGTERM to a process we started in its own session, then SIGKILL if it lingers."""
    if not pid or not _started(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + seconds
        while _started(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _started(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def note_helpers(record: RunRecord, pids: list[int]) -> None:
    (record.folder / HELPERS_FILE).write_text("".join(f"{pid}\n" for pid in pids))


def helper_pids(record: RunRecord) -> list[int]:
    try:
        return [int(line) for line in (record.folder / HELPERS_FILE).read_text().split()]
    except (OSError, ValueError):
        return []


def release(record: RunRecord) -> None:
    """Stop the record's processes, remove its network, folder and record."""
    _stop_process(record.container_pid, STOP_SECONDS)
    _stop_process(record.outbound_pid, 5)
    for pid in helper_pids(record):
        _stop_process(pid, 5)
    network.remove(record.network)
    shutil.rmtree(record.folder, ignore_errors=True)
    record.path.unlink(missing_ok=True)


def clean_up(kept_too: bool) -> list[str]:
    """Release every rehearsal whose owner is gone (and the kept ones, if asked), and
    remove networks and folders no record names. Callers hold the lock. Returns what
    was removed."""
    removed = []
    live = []
    for record in records():
        if _owner_alive(record) or (record.kept and not kept_too):
            live.append(record)
        else:
            release(record)
            removed.append(record.machine)
    for index in network.indexes_in_use() - {record.index for record in live}:
        network.remove(network.Network(index))
        removed.append(network.Network(index).netns)
    machines = {record.machine for record in live}
    for folder in RUNS_DIR.glob("flasklab-*"):
        if folder.is_dir() and _RUN_FOLDER.match(folder.name) and folder.name not in machines:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed
