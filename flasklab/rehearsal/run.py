"""One rehearsal: boot a target's user-data in a container, wait for cloud-init, and
check with flasklab.probes that the app is served the way a student reaches it once the
hosts line is pasted, by server name. The container has a network of its own: its
servers answer at the container's address, never on this machine's.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flasklab import plan, probes
from flasklab.rehearsal import acme, report, server_logs
from flasklab.rehearsal.container import Container
from flasklab.rehearsal.report import Outcome
from flasklab.rehearsal.target import Target

BOOT_TIMEOUT = 900  # seconds; a slow mirror can make first-boot installs long
# After cloud-init is done, how long the app may still take to answer.
ANSWER_GRACE = 30
HTTP_PORT = 80
HTTPS_PORT = 443
# What a rehearsal runs on this machine, and the Debian package of each.
PROGRAMS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "slirp4netns": "slirp4netns",
    "ip": "iproute2",
}


class RehearsalRefused(Exception):
    """The rehearsal cannot run on this machine as it is; the message says why and what to do."""


def check_prerequisites(acme_server: bool = False) -> None:
    """What a rehearsal runs here, and pebble & co. for a letsencrypt stack's."""
    problems = []
    if os.geteuid() != 0:
        problems.append("run it as root: it builds a root filesystem and boots a container.")
    programs = {**PROGRAMS, **(acme.PROGRAMS if acme_server else {})}
    for program, package in programs.items():
        if shutil.which(program) is None:
            problems.append(f"{program} is missing: `apt-get install {package}` (or scripts/setup.sh).")
    if problems:
        raise RehearsalRefused("flasklab cannot rehearse here:\n" + "\n".join(f"  - {p}" for p in problems))


def listening_addresses(port: int, proc: Path = Path("/proc/self")) -> list[str]:
    """The local addresses a TCP server listens on at `port`, from the kernel's tables."""
    found = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        path = proc / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found.append(str(ipaddress.ip_address(ordered)))
    return found


class Rehearsal:
    """A target booted in a container: prepare(), boot(), wait() for cloud-init and the
    app, then stop() and remove(); reboot() boots the same root again."""

    def __init__(
        self,
        target: Target,
        progress: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.target = target
        self._progress = progress or (lambda message: print(message, flush=True))
        self._started = time.monotonic()
        # Set by whoever runs this rehearsal to stop waiting (Ctrl-C with several at once).
        self.cancel = cancel or threading.Event()
        self.container = Container(
            target.name,
            target.codename,
            target.user_data,
            target.read_only_binds,
            self.progress,
            ssh_public_key=target.ssh_public_key,
        )
        # A letsencrypt target's ACME server, instance metadata and their DNS (acme.py).
        self.acme_processes: list[subprocess.Popen] = []

    def progress(self, message: str) -> None:
        self._progress(f"[{time.monotonic() - self._started:6.1f}s] {message}")

    @property
    def root(self) -> Path:
        return self.container.root

    @property
    def site(self) -> probes.Site:
        """The container's site, as the probes reach it: at the container's address."""
        certificate = self.target.certificate
        ca_file = self.root / certificate.lstrip("/") if certificate else None
        if self.target.acme:  # the certificate pebble issued, from pebble's root
            ca_file = self.container.record_folder / acme.ROOT_FILE
        return probes.Site(
            address=self.container.address,
            names=self.target.server_names,
            https=self.target.scheme == "https",
            ca_file=ca_file,
            http_port=HTTP_PORT,
            https_port=HTTPS_PORT,
        )

    def prepare(self) -> None:
        check_prerequisites(self.target.acme)
        self.container.prepare()
        if self.target.acme:
            acme.prepare_root(
                self.root, self.container.record_folder, self.container.address, self.target.server_names
            )

    def boot(self) -> None:
        if self.target.acme and not self.acme_processes:
            self.progress(f"starting pebble, the rehearsal's Let's Encrypt, at {acme.ACME_DIRECTORY}")
            self.acme_processes = acme.start(
                self.container.network, self.container.record_folder, self.container.address
            )
            self.container.note_helpers([process.pid for process in self.acme_processes])
        self.container.boot()

    def wait(self, timeout: float = BOOT_TIMEOUT) -> Outcome:
        """Wait for cloud-init to finish and the app to answer its server name, then check
        everything the target expects."""
        outcome = Outcome()
        self._wait_for_first_boot(outcome, timeout)
        if outcome.cloud_init_seconds is None and not outcome.failure:
            outcome.failure = f"cloud-init did not finish within {timeout:.0f} s"
        # An exercise's server serves once the student makes it: nothing to probe yet.
        if not outcome.cloud_init_errors and not outcome.failure and self.target.serves:
            self.check(outcome)
        return outcome

    def _wait_for_first_boot(self, outcome: Outcome, timeout: float) -> None:
        site, url = self.site, self.target.url
        self.progress(f"waiting for cloud-init and for {url} to answer")
        last_step = ""
        while (elapsed := self.container.seconds_since_boot()) < timeout:
            if outcome.first_response_seconds is None and probes.serves(
                site, self.target.expect, site.names[0]
            ):
                outcome.first_response_seconds = elapsed
                self.progress(f"first good response from {url} after {elapsed:.1f} s")
            if (
                outcome.cloud_init_seconds is None
                and (errors := self.container.cloud_init_result()) is not None
            ):
                outcome.cloud_init_seconds, outcome.cloud_init_errors = elapsed, errors
                self.progress(
                    f"cloud-init finished after {elapsed:.1f} s" + (" with errors" if errors else "")
                )
            if outcome.cloud_init_seconds is not None and (
                not self.target.serves
                or outcome.first_response_seconds is not None
                or outcome.cloud_init_errors
                or elapsed > outcome.cloud_init_seconds + ANSWER_GRACE
            ):
                return
            if (status := self.container.exited()) is not None:
                outcome.failure = self._why_it_stopped(status)
                return
            if self.cancel.is_set():
                outcome.failure = "interrupted"
                return
            if (step := server_logs.current_step(self.root)) and step != last_step:
                self.progress(f"server: {step}")
                last_step = step
            time.sleep(0.5)

    def _why_it_stopped(self, status: int) -> str:
        """A container that stopped by itself: the idle stop's words, or nspawn's status."""
        if said := server_logs.idle_stop_said(self.root):
            return (
                f"the server powered itself off, as autoStopIdleMinutes asks: {said}; rehearse with "
                f"--set autoStopIdleMinutes=0 to keep it up"
            )
        return f"the container stopped by itself (exit {status}); see {self.container.console_log}"

    def check(self, outcome: Outcome) -> None:
        """The probes the target calls for, and that the database listens on localhost only."""
        found = probes.check_site(self.site, self.target.expect)
        outcome.http_problems = found.problems + self._database_listens_locally()
        outcome.first_response, outcome.first_headers = found.first_response, found.first_headers

    def _database_listens_locally(self) -> list[str]:
        port = self.target.database_port
        if not port or not self.target.expect.database_label:
            return []
        addresses = listening_addresses(port, Path(f"/proc/{self.container.leader_pid()}"))
        if addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses):
            return []
        listening = addresses or "nothing"
        return [f"the database should listen on localhost only, on port {port}: it listens on {listening}"]

    def reboot(self, timeout: float = BOOT_TIMEOUT) -> Outcome:
        """Stop the container and boot the same root again, as a student reboots the server."""
        self.container.stop()
        self.container.forget_cloud_init_result()
        self.container.boot()
        return self.wait(timeout)

    def stop(self) -> None:
        self.container.stop()

    def remove(self) -> None:
        self.container.stop()
        acme.stop(self.acme_processes)
        self.container.remove()

    @property
    def hosts_line(self) -> str:
        """The hosts line that leads this machine's browser to the container."""
        return plan.hosts_line_of(self.container.address, self.target.server_names)

    def try_it(self) -> str:
        """A command that reaches the site from this machine, as a browser would."""
        site, name = self.site, self.target.server_names[0]
        port = site.https_port if site.https else site.http_port
        trust = f"--cacert {site.ca_file} " if site.ca_file else ""
        return f"curl {trust}--resolve {name}:{port}:{site.address} {site.url(name)}"

    def report(self, outcome: Outcome, kept: bool = False) -> str:
        """The teacher's report of this rehearsal, with the server's evidence on failure;
        `kept`: its container outlives the report (--keep)."""
        heading = report.Heading(
            stack=self.target.name,
            codename=self.target.codename,
            url=self.target.url,
            address=self.container.address,
            hosts_line=self.hosts_line,
            try_it=self.try_it(),
            blame=server_logs.cloud_init_blame(self.root),
            kept=kept,
        )
        evidence = None
        if not outcome.ok:
            evidence = server_logs.gather(
                self.root, self.target.units, self.target.logs, outcome.deploy_failed
            )
        return report.render(heading, outcome, evidence, server_logs.notes(self.root))
