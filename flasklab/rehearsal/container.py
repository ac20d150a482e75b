"""A rehearsal's container: a copy of the cached image, seeded with the user-data through
cloud-init's NoCloud datasource and booted with systemd-nspawn (real systemd as PID 1,
real cloud-init, nothing of the user-data skipped or rewritten), in a network of its own
(network.py). Only its lifecycle is here: what it must serve is checked by
flasklab.rehearsal.run with flasklab.probes.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from flasklab import server_status
from flasklab.rehearsal import network, package_cache, runs
from flasklab.rehearsal.image import LOCAL_CA_DIR, ensure_image


def rehearsal_environment() -> list[str]:
    """NAME=value pairs a rehearsal's services get (SSH sessions do not: a test that runs
    pip or pipenv over SSH passes them itself): pip's cache where package_cache keeps it,
    and, where this machine trusts a proxy's CA, that CA for pip as vendored by pipenv
    (which ignores the system's CA store)."""
    variables = [f"PIP_CACHE_DIR={package_cache.PIP_CACHE}"]
    if any(LOCAL_CA_DIR.glob("*.crt")):
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        variables += [f"PIP_CERT={bundle}", f"REQUESTS_CA_BUNDLE={bundle}"]
    return variables


class Container:
    """prepare() a copy of the image seeded with the user-data, boot() it, read
    cloud_init_result() until cloud-init is done, stop() it, boot() it again, remove() it."""

    def __init__(
        self,
        name: str,
        codename: str,
        user_data: str,
        read_only_binds: tuple[str, ...] = (),
        progress: Callable[[str], None] = print,
        ssh_public_key: str = "",
    ) -> None:
        self.name = name
        self.ssh_public_key = ssh_public_key
        self.codename = codename
        self.user_data = user_data
        self.read_only_binds = read_only_binds
        self.progress = progress
        self.record: runs.RunRecord | None = None
        self.process: subprocess.Popen | None = None
        self.outbound: subprocess.Popen | None = None
        self.booted_at = 0.0

    @property
    def _record(self) -> runs.RunRecord:
        if self.record is None:
            raise RuntimeError("the container is not prepared")
        return self.record

    @property
    def machine(self) -> str:
        return self._record.machine

    @property
    def root(self) -> Path:
        return self._record.root

    @property
    def record_folder(self) -> Path:
        """The run's folder on this machine: the root, the logs, the rehearsal's own files."""
        return self._record.folder

    @property
    def network(self) -> network.Network:
        return self._record.network

    def note_helpers(self, pids: list[int]) -> None:
        """Processes started for this run (acme.py), stopped with it even if its owner dies."""
        runs.note_helpers(self._record, pids)

    @property
    def console_log(self) -> Path:
        return self._record.folder / "console.log"

    @property
    def address(self) -> str:
        """The container's address, which this machine reaches it at."""
        return self._record.network.container_address

    def prepare(self) -> None:
        image = ensure_image(self.codename, self.progress)
        self.record = runs.claim(self.name)
        self.progress(f"copying the Debian {self.codename} image to {self.root}")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--reflink=auto", str(image), str(self.root)], check=True)
        package_cache.seed(self.root, self.codename)
        self._trust_file_repositories()
        self._set_manager_environment()
        (self.root / "etc/resolv.conf").unlink(missing_ok=True)
        (self.root / "etc/resolv.conf").write_text(f"nameserver {network.OUTBOUND_DNS}\n")
        seed = self.root / "var/lib/cloud/seed/nocloud"
        seed.mkdir(parents=True)
        (seed / "user-data").write_text(self.user_data)
        # NoCloud's meta-data, as EC2's metadata service gives it: the key pair's public key
        # goes to the login user.
        keys = f"public-keys:\n  - {self.ssh_public_key}\n" if self.ssh_public_key else ""
        (seed / "meta-data").write_text(
            f"instance-id: {self.machine}-{int(time.time())}\nlocal-hostname: {self.machine}\n{keys}"
        )

    def _trust_file_repositories(self) -> None:
        """A file:// repository is owned by this machine's root; git would refuse it as
        "dubious ownership" for the app's user. Rehearsal-only, like the proxy CA: on EC2
        there are no file:// repositories."""
        if self.read_only_binds:
            trusted = "".join(
                f"\tdirectory = {path}\n\tdirectory = {path}/.git\n" for path in self.read_only_binds
            )
            (self.root / "etc/gitconfig").write_text(f"[safe]\n{trusted}")

    def _set_manager_environment(self) -> None:
        """Rehearsal-only environment for every service, cloud-init's included."""
        conf = self.root / "etc/systemd/system.conf.d/50-flasklab-rehearsal.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"[Manager]\nDefaultEnvironment={' '.join(rehearsal_environment())}\n")

    def boot(self) -> None:
        record = self._record
        if self.outbound is None:
            self.outbound = network.start_outbound(record.network, record.folder / "outbound.log")
            record.outbound_pid = self.outbound.pid
        # This machine's systemd need not be PID 1: nspawn then needs this folder.
        Path("/run/systemd/nspawn/propagate").mkdir(parents=True, exist_ok=True)
        self.progress(f"booting {self.machine} at {self.address} (console: {self.console_log})")
        self.booted_at = time.monotonic()
        with self.console_log.open("ab") as console:
            self.process = subprocess.Popen(
                [
                    "systemd-nspawn",
                    "--quiet",
                    "--boot",
                    f"--directory={self.root}",
                    "--register=no",
                    "--keep-unit",
                    f"--machine={self.machine}",
                    f"--network-namespace-path={record.network.netns_path}",
                    "--resolv-conf=off",
                    *(f"--bind-ro={path}" for path in self.read_only_binds),
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # --keep outlives this command
            )
        record.container_pid = self.process.pid
        record.save()

    def seconds_since_boot(self) -> float:
        return time.monotonic() - self.booted_at

    def exited(self) -> int | None:
        """nspawn's exit status once the container stopped by itself, else None."""
        return None if self.process is None else self.process.poll()

    def cloud_init_result(self) -> list[str] | None:
        """cloud-init's errors once it is done ([] for none), None while it runs."""
        return server_status.cloud_init_errors(self.root)

    def forget_cloud_init_result(self) -> None:
        """Before booting again: the next result file is the next boot's."""
        (self.root / server_status.RESULT_FILE).unlink(missing_ok=True)

    def leader_pid(self) -> int | None:
        """PID of the container's systemd, as seen from this machine."""
        if self.process is None:
            return None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else None

    def run_inside(
        self, command: str, user: str = "root", timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """A shell command in the running container, as `user` with a login environment."""
        pid = self.leader_pid()
        if pid is None:
            raise RuntimeError(f"{self.machine} is not running")
        return subprocess.run(
            ["nsenter", f"--target={pid}", "--all", "runuser", "--login", user, "--command", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        """Shut the container down cleanly (SIGTERM makes nspawn power it off)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.progress(f"shutting {self.machine} down")
        self.process.terminate()
        try:
            self.process.wait(timeout=runs.STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def keep(self) -> None:
        """Leave the container running after this process ends (--keep)."""
        self._record.kept = True
        self._record.save()

    def remove(self) -> None:
        """Stop everything it runs, keep its downloads, remove its network and folder."""
        if self.record is None:
            return
        self.stop()
        if self.root.exists():
            package_cache.harvest(self.root, self.codename)
        with runs.locked():
            runs.release(self.record)
        for process in (self.process, self.outbound):
            if process is not None and process.poll() is None:
                process.wait()
        self.record = None
