"""One server's checks for `class check`, all within one deadline: the web checks
(flasklab.probes, as the rehearsal and `pulumi up`'s wait use them) and, with a key, the
server's own report over SSH (flasklab-status and `ps`: flasklab.readiness.CHECK_COMMAND).
Every server of the class is checked side by side (check_servers).
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from flasklab import compose, probes, readiness, server_status
from flasklab.plan import LOGIN_USER
from flasklab.settings import Settings

# Column key -> heading, in the table's order.
CHECKS: dict[str, str] = {
    "reachable": "reachable",
    "app": "app by each name",
    "static": "static files",
    "https": "HTTPS",
    "cloud_init": "cloud-init",
    "program": "app under its manager",
}
OK, FAILED, NOT_CHECKED, UNVERIFIED = "ok", "failed", "n/a", "unverified"
# EC2 says the server is not running (stopped, stopping, starting): not probed, and not a
# failure: a class's servers are stopped most of a term (idle stop, the stop schedule).
STOPPED = "stopped"
STYLES = {OK: "green", FAILED: "bold red", NOT_CHECKED: "dim", UNVERIFIED: "yellow", STOPPED: "cyan"}
DEFAULT_JOBS = 100
DEFAULT_TIMEOUT = 20.0
# A check's threads are waited for this much past the deadline (their own requests end
# at it; this covers the bookkeeping after).
GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Result:
    """One check of one server: its state, the table's short cell, and what a teacher
    needs to know when it is not ok."""

    state: str
    cell: str
    problems: tuple[str, ...] = ()


def passed() -> Result:
    return Result(OK, OK)


def failed(cell: str, problems: list[str] | tuple[str, ...]) -> Result:
    return Result(FAILED, cell, tuple(problems))


def not_checked(why: str) -> Result:
    return Result(NOT_CHECKED, why)


def from_problems(problems: list[str], cell: str) -> Result:
    return failed(cell, problems) if problems else passed()


@dataclass(frozen=True)
class Server:
    """One student's server to check: where it is, what it should serve, and its key."""

    student: str
    settings: Settings
    address: str
    names: tuple[str, ...]
    key_file: Path | None = None
    http_port: int = 80
    https_port: int = 443
    ssh_port: int = 22


@dataclass
class Row:
    student: str
    address: str
    results: dict[str, Result]
    # '' when the server runs what its stack says now; else how to apply it (flasklab.plan.drift_note).
    drift: str = ""

    @property
    def failed(self) -> bool:
        return any(result.state == FAILED for result in self.results.values())

    @property
    def stopped(self) -> bool:
        return any(result.state == STOPPED for result in self.results.values())

    @property
    def verdict(self) -> str:
        """The row's result: failed, else stopped, else ok."""
        return FAILED if self.failed else STOPPED if self.stopped else OK


@dataclass(frozen=True)
class SshOptions:
    known_hosts: Path | None = None  # None: ssh's own (~/.ssh/known_hosts)


def ssh_command(
    server: Server, connect_timeout: float, options: SshOptions, command: str = readiness.CHECK_COMMAND
) -> list[str]:
    assert server.key_file is not None
    arguments = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR"]
    arguments += ["-o", f"ConnectTimeout={max(1, int(connect_timeout))}", "-o", "IdentitiesOnly=yes"]
    if options.known_hosts is not None:
        arguments += ["-o", f"UserKnownHostsFile={options.known_hosts}"]
    arguments += ["-p", str(server.ssh_port), "-i", str(server.key_file)]
    return ["ssh", *arguments, f"{LOGIN_USER}@{server.address}", command]


def ssh_failure(stderr: str, server: Server) -> Result:
    """Why ssh could not log in, in a teacher's words."""
    text = stderr.strip()
    if "IDENTIFICATION HAS CHANGED" in text:
        return failed(
            "host key changed",
            [
                f"the SSH host key of {server.address} is not the one seen before (a new server at an "
                f"old address?); if that is expected: ssh-keygen -R {server.address}"
            ],
        )
    if "Permission denied" in text:
        return failed("key refused", [f"{server.address} refused the SSH key {server.key_file}"])
    last = text.splitlines()[-1] if text else "no message"
    if "timed out" in last:
        return failed("timed out", [f"SSH to {server.address} did not answer in time: {last}"])
    return failed("no SSH", [f"ssh to {server.address} failed: {last}"])


def first_boot_result(report: readiness.ServerReport) -> Result:
    """cloud-init and the deploy, as flasklab-status saw them."""
    code = report.status_exit
    summary = [line for line in report.status_text.splitlines() if line.strip()][:8]
    if code == server_status.READY:
        return passed()
    if code == server_status.FAILED:
        return failed("first boot failed", [*summary, "the whole report: run flasklab-status on the server"])
    if code == server_status.BOOTING:
        return failed("still booting", summary)
    if code is None:
        return failed("no report", ["the server's report was cut short (the check ran out of time?)"])
    return failed(
        "no flasklab-status",
        [f"flasklab-status did not run (exit {code}): first boot has not got that far", *summary],
    )


class ServerCheck:
    """All checks of one server, within one deadline: the web part and the SSH part side by
    side (the web part waits for the SSH part only for a self-signed certificate)."""

    def __init__(self, server: Server, timeout: float, ssh: SshOptions) -> None:
        self.server = server
        self.timeout = timeout
        self.ssh = ssh
        self.deadline = 0.0  # set when the check starts, not when it is queued
        self.results: dict[str, Result] = {}
        self.certificate = ""
        self.ssh_done = threading.Event()

    def time_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def run(self) -> Row:
        self.deadline = time.monotonic() + self.timeout
        # Daemon threads: one stuck past the deadline (a server that trickles bytes) is left
        # behind rather than holding the whole check.
        threads = [
            threading.Thread(target=self._guarded, args=(part,), daemon=True)
            for part in (self.check_over_ssh, self.check_web)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.time_left() + GRACE_SECONDS)
        results = dict(self.results)
        late = f"no answer within {self.timeout:g} s"
        for key in CHECKS:
            results.setdefault(key, failed("timed out", [f"{CHECKS[key]}: {late}"]))
        return Row(self.server.student, self.server.address, results)

    def _guarded(self, part: Callable[[], None]) -> None:
        try:
            part()
        except Exception as error:  # a bug must cost one row, not the whole class's check
            for key in CHECKS:
                self.results.setdefault(key, failed("check error", [f"the check itself failed: {error!r}"]))
        finally:
            if part == self.check_over_ssh:
                self.ssh_done.set()

    def check_over_ssh(self) -> None:
        server = self.server
        if server.key_file is None:
            why = not_checked("no SSH key")
            self.results.update(cloud_init=why, program=why)
            return
        try:
            done = subprocess.run(
                ssh_command(server, self.time_left(), self.ssh),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=max(0.1, self.time_left()),
                check=False,
            )
        except subprocess.TimeoutExpired:
            late = failed("timed out", [f"SSH to {server.address} did not answer within {self.timeout:g} s"])
            self.results.update(cloud_init=late, program=late)
            return
        if done.returncode == 255:  # ssh's own failure: the server's commands did not run
            why = ssh_failure(done.stderr, server)
            self.results.update(cloud_init=why, program=why)
            return
        report = readiness.parse_check_output(done.stdout)
        self.certificate = readiness.certificate_in(report.status_text)
        self.results["cloud_init"] = first_boot_result(report)
        settings = server.settings
        self.results["program"] = from_problems(
            probes.runs_under_manager(
                report.processes,
                settings.app.user,
                compose.serving_program(settings),
                settings.recipe.manager,
            ),
            "not running",
        )

    def _site(self, certificate: str = "") -> probes.Site:
        """The site as readiness.site_at makes it (HTTPS unverified without the certificate),
        at this server's names and ports, within the check's deadline."""
        server = self.server
        return dataclasses.replace(
            readiness.site_at(server.settings, server.address, certificate),
            names=server.names,
            http_port=server.http_port,
            https_port=server.https_port,
            deadline=self.deadline,
        )

    def check_web(self) -> None:
        server, settings = self.server, self.server.settings
        https_at_boot = settings.tls.enabled_at_boot == "https"
        port = server.https_port if https_at_boot else server.http_port
        unreachable = probes.reachable(self._site(), port, timeout=self.time_left())
        if unreachable:
            self.results["reachable"] = failed("no", unreachable)
            why = not_checked("unreachable")
            self.results.update(app=why, static=why, https=why)
            return
        self.results["reachable"] = passed()
        expect = dataclasses.replace(readiness.full_expectation(settings), database_label="")
        site = self._web_site(https_at_boot, expect)
        found = probes.SiteCheck()
        probes.app_pages(site, expect, found)
        self.results["app"] = from_problems(found.problems, "not served")
        self.results["static"] = (
            from_problems(probes.static_from_web_server(site, expect.static_path), "from the app")
            if expect.static_path
            else not_checked("no known file")
        )
        if site.https:
            self.results["https"] = self._https_result(site)

    def _web_site(self, https_at_boot: bool, expect: probes.Expectation) -> probes.Site:
        """The site as a student's browser reaches it now; sets the HTTPS result when it
        is already known (not configured, or no trusted certificate yet)."""
        settings = self.server.settings
        if https_at_boot:
            if self.server.key_file is not None:
                # Half the time left at most: a server whose SSH does not answer still gets
                # its web checks (then unverified).
                self.ssh_done.wait(self.time_left() / 2)
            return self._site(certificate=self.certificate)
        if settings.tls.acme:
            # Let's Encrypt: HTTPS once DNS points at the server (its timer then gets the
            # certificate), or once the teacher ran httpsCommand.
            trusted = dataclasses.replace(self._site(), https=True, verify=True)
            if probes.serves(trusted, expect, trusted.names[0], timeout=self.time_left()):
                return trusted
            self.results["https"] = failed(
                "not yet",
                [
                    f"https://{trusted.names[0]}/ has no trusted certificate yet: once DNS points at "
                    f"{self.server.address}, the server gets one within minutes (journalctl -u "
                    f"flasklab-letsencrypt), or run `sudo flasklab-letsencrypt` on the server"
                ],
            )
            return self._site()
        self.results["https"] = not_checked("not configured")
        return self._site()

    def _https_result(self, site: probes.Site) -> Result:
        problems = probes.https_redirect(site) + probes.tls_versions(site)
        if problems:
            return failed("failed", problems)
        if not site.verify:
            return Result(
                UNVERIFIED,
                UNVERIFIED,
                (
                    "HTTPS works but its certificate was not checked: without an SSH key the check "
                    "cannot read the server's own certificate (give --ssh-key)",
                ),
            )
        return passed()


def check_servers(
    servers: list[Server],
    jobs: int,
    timeout: float,
    ssh: SshOptions,
    on_done: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    """Every server's row, at most `jobs` servers at a time, each within `timeout`."""
    rows = []
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="class-check") as pool:
        futures = [pool.submit(ServerCheck(server, timeout, ssh).run) for server in servers]
        for future in as_completed(futures):
            row = future.result()
            on_done(row)
            rows.append(row)
    return sorted(rows, key=lambda row: row.student)
