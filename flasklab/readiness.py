"""Is a new server ready? What `pulumi up` runs after each instance (components/readiness.py),
with no Pulumi here: the command that waits for first boot over SSH, what its report says,
and the wait until the public address serves the app by every name (flasklab.probes,
the same probes the rehearsal uses)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from flasklab import compose, contract, probes
from flasklab.probes import Expectation, Site
from flasklab.settings import Settings

# Run over SSH as the login user: waits for cloud-init (its exit status is not the verdict:
# 2 means recoverable errors, e.g. deprecated keys, which do not stop a server from
# serving), then flasklab-status, whose exit status is (0 ready, 1 failed with the report).
READY_COMMAND = "cloud-init status --wait > /dev/null 2>&1; flasklab-status"
# Run over SSH by the class check: flasklab-status (first boot's state and, once ready, the
# self-signed certificate) without waiting, its exit status, then every process (whether
# the app runs under its manager).
STATUS_EXIT_MARKER = "flasklab-check: flasklab-status exited "
CHECK_COMMAND = f'flasklab-status; echo; echo "{STATUS_EXIT_MARKER}$?"; {probes.PS_COMMAND}'
# flasklab-status's ready line says how long first boot took.
_FIRST_BOOT = re.compile(r"first boot took (\d+) s")
_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----", re.DOTALL)
# Between two requests while waiting for the public address to answer.
POLL_SECONDS = 5


@dataclass(frozen=True)
class ServerReport:
    """What CHECK_COMMAND printed: flasklab-status's exit status (None when its output was
    cut short) and text, and the server's processes."""

    status_exit: int | None
    status_text: str
    processes: list[probes.Process]


def parse_check_output(output: str) -> ServerReport:
    status_text, marker, rest = output.partition(STATUS_EXIT_MARKER)
    if not marker:
        return ServerReport(None, status_text.strip(), [])
    code, _, ps_output = rest.partition("\n")
    return ServerReport(
        int(code) if code.strip().isdigit() else None, status_text.strip(), probes.parse_processes(ps_output)
    )


def first_boot_seconds(status_report: str) -> int | None:
    found = _FIRST_BOOT.search(status_report or "")
    return int(found.group(1)) if found else None


def site_at(settings: Settings, public_ip: str, certificate_pem: str = "") -> Site:
    """The server's site as a student reaches it at the public IP, as it serves right after
    first boot (a Let's Encrypt site: plain HTTP until DNS points at it). A self-signed
    certificate is checked against the one the server printed; without it (no SSH) the
    connection is encrypted but the certificate is not checked."""
    https = settings.tls.enabled_at_boot == "https"
    return Site(
        address=public_ip,
        names=settings.server_names,
        https=https,
        ca_pem=certificate_pem,
        verify=not https or bool(certificate_pem),
    )


def certificate_in(status_report: str) -> str:
    """The server's own certificate, if flasklab-status printed it ('' if not)."""
    found = _CERTIFICATE.search(status_report or "")
    return found.group(0) + "\n" if found else ""


def expectation(settings: Settings) -> Expectation:
    return Expectation(path=settings.app.ready_path, page_marker=settings.app.ready_text or None)


def full_expectation(settings: Settings) -> Expectation:
    """Everything the site must show, for the rehearsal and the class check: with the
    sample app, its heading, its static file and its database page."""
    app = settings.app
    sample_app = not app.repo
    return Expectation(
        path=app.ready_path,
        page_marker=app.ready_text
        or (contract.SAMPLE_APP_MARKER if sample_app and app.ready_path == "/" else None),
        static_path=f"{app.static_url}/{contract.SAMPLE_APP_STATIC_FILE}"
        if sample_app and app.static_dir
        else "",
        web_server_header=settings.recipe.web_server.server_header,
        database_label=settings.database.label if settings.database and sample_app else "",
    )


def wait_until_serving(site: Site, expect: Expectation, timeout: float) -> list[str]:
    """Poll until every name serves (then []), or the timeout passes (then the problems
    of the last try). Only the pages: what the rehearsal checks further is the same
    user-data's, already proven."""
    deadline = time.monotonic() + timeout
    while True:
        found = probes.SiteCheck()
        probes.app_pages(site, expect, found)
        if not found.problems or time.monotonic() > deadline:
            return found.problems
        time.sleep(POLL_SECONDS)


def not_serving_report(settings: Settings, public_ip: str, problems: list[str]) -> str:
    names = ", ".join(settings.server_names)
    whose = f"{settings.student}'s server: " if settings.student else ""
    return "\n".join(
        [
            f"flasklab: {whose}{compose.boot_url(settings)} is not served at {public_ip} (names: {names}):",
            *(f"  - {problem}" for problem in problems),
            f"  The server itself says it is ready, so check what lies between: the security group "
            f"opens {', '.join(map(str, settings.open_ports))} to {', '.join(settings.web_cidrs)} "
            f"(is this machine's address among them?), and readyPath {settings.app.ready_path!r}.",
        ]
    )
