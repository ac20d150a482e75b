"""Is a new server ready? What `pulumi up` runs after each new instance (components/readiness.py),
with no Pulumi here: the command that waits for first boot over SSH, what its report says,
and the wait until the public address serves the app by every name (flasklab.probes,
the same probes the rehearsal uses).

The wait runs on the teacher's machine as its own process, `python -m flasklab.readiness`
(a pulumi-command local Command made with the instance, so it runs for new servers only):
it reads a WaitSpec as JSON on its standard input, prints what it found and, last, a
Verdict as one JSON line. It exits 1 when the server does not serve and the stack is one
student's (that fails `pulumi up` with the report); for a class it exits 0, so that one
student's failure leaves every student's result in the outputs."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from flasklab import compose, contract, probes
from flasklab.probes import Expectation, Site
from flasklab.settings import Settings

# Run over SSH as the login user: waits for cloud-init (its exit status is not the verdict:
# 2 means recoverable errors, e.g. deprecated keys, which do not stop a server from
# serving), then flasklab-status, whose exit status is (0 ready, 1 failed with the report).
# The command ends with flasklab-status's exit status after a marker, and exits 0 itself:
# the verdict is the wait's (below), the same for a stack of one student and for a class.
STATUS_EXIT_MARKER = "flasklab-check: flasklab-status exited "
READY_COMMAND = f'cloud-init status --wait > /dev/null 2>&1; flasklab-status; echo "{STATUS_EXIT_MARKER}$?"'
# Run over SSH by the class check: flasklab-status (first boot's state and, once ready, the
# self-signed certificate) without waiting, its exit status, then every process (whether
# the app runs under its manager).
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


def wait_until_serving(
    site: Site, expect: Expectation, timeout: float, certified: Site | None = None
) -> list[str]:
    """Poll until every name serves (then []), or the timeout passes (then the problems
    of the last try). Only the pages: what the rehearsal checks further is the same
    user-data's, already proven. `certified`: the site over HTTPS with a trusted
    certificate, which counts too (a Let's Encrypt server that got its certificate
    redirects plain HTTP there)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probes.SiteCheck()
        probes.app_pages(site, expect, found)
        if found.problems and certified is not None:
            over_https = probes.SiteCheck()
            probes.app_pages(certified, expect, over_https)
            if not over_https.problems:
                return []
        if not found.problems or time.monotonic() > deadline:
            return found.problems
        time.sleep(POLL_SECONDS)


def _not_serving_texts(settings: Settings, public_ip: str) -> tuple[str, str]:
    """What a report of a server that does not serve says before and after its problems."""
    names = ", ".join(settings.server_names)
    whose = f"{settings.student}'s server: " if settings.student else ""
    intro = f"flasklab: {whose}{compose.boot_url(settings)} is not served at {public_ip} (names: {names}):"
    hint = (
        f"  The server itself says it is ready, so check what lies between: the security group "
        f"opens {', '.join(map(str, settings.open_ports))} to {', '.join(settings.web_cidrs)} "
        f"(is this machine's address among them?), and readyPath {settings.app.ready_path!r}."
    )
    return intro, hint


@dataclass(frozen=True)
class WaitSpec:
    """What the wait for one new server needs, as plain data (it crosses a process)."""

    who: str  # "ana's server" or "the server"
    address: str
    names: tuple[str, ...]
    https: bool
    ca_pem: str
    verify: bool
    path: str
    page_marker: str | None
    timeout_seconds: float
    # The class's servers report; a lone server's failure fails `pulumi up`.
    in_class: bool
    # flasklab-status's report over SSH (READY_COMMAND's output); None: no SSH.
    status_output: str | None
    not_serving_intro: str
    not_serving_hint: str
    # Where EC2 can say whether the instance runs at all ('' : not asked).
    instance_id: str = ""
    region: str = ""
    http_port: int = 80
    https_port: int = 443
    # False for an exercise's server (stage app, bare or broken): nothing serves until the student
    # makes it, so first boot's result is the whole wait.
    serves: bool = True
    # tls letsencrypt: plain HTTP until the server has its certificate, then HTTPS (its
    # timer asks as soon as DNS points at it, maybe during this wait).
    https_once_certified: bool = False

    def certified_site(self) -> Site | None:
        """The site over HTTPS with a certificate this machine trusts, when that counts too."""
        if not self.https_once_certified:
            return None
        return dataclasses.replace(self.site(), https=True, ca_pem="", verify=True)

    def site(self) -> Site:
        return Site(
            self.address,
            self.names,
            self.https,
            ca_pem=self.ca_pem,
            verify=self.verify,
            http_port=self.http_port,
            https_port=self.https_port,
        )

    def expectation(self) -> Expectation:
        return Expectation(path=self.path, page_marker=self.page_marker)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WaitSpec:
        values: dict[str, Any] = json.loads(text)
        values["names"] = tuple(values["names"])
        return cls(**values)


def wait_spec(
    settings: Settings, public_ip: str, status_output: str | None, instance_id: str = "", region: str = ""
) -> WaitSpec:
    """The wait for a new server of these settings at this address; with SSH, what the
    server reported of its first boot."""
    site = site_at(settings, public_ip, certificate_in(status_output or ""))
    expect = expectation(settings)
    ssh = status_output is not None
    # After SSH saw first boot finish, the app answers at once unless something is in the
    # way; without SSH, the HTTP check is the whole wait.
    timeout = 120 if ssh else settings.ready_timeout_minutes * 60
    intro, hint = _not_serving_texts(settings, public_ip)
    return WaitSpec(
        who=f"{settings.student}'s server" if settings.student else "the server",
        address=public_ip,
        names=site.names,
        https=site.https,
        ca_pem=site.ca_pem,
        verify=site.verify,
        path=expect.path,
        page_marker=expect.page_marker,
        timeout_seconds=timeout,
        in_class=bool(settings.student),
        status_output=status_output,
        not_serving_intro=intro,
        not_serving_hint=hint,
        instance_id=instance_id,
        region=region,
        serves=settings.stage.answers_after_boot,
        https_once_certified=settings.tls.acme,
    )


@dataclass(frozen=True)
class Verdict:
    """The wait's result, the last line the wait prints (and a stack output's value)."""

    ready: bool
    summary: str  # one line: "ready: first boot took 94 s" or what failed
    first_boot_seconds: int | None = None
    # EC2 said the instance is not running, so nothing was asked of it (not a failure).
    stopped: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def verdict_in(output: str) -> Verdict | None:
    """The Verdict the wait printed last (None if it printed none: it did not run to its end)."""
    for line in reversed((output or "").strip().splitlines()):
        try:
            values = json.loads(line)
            return Verdict(
                bool(values["ready"]),
                str(values["summary"]),
                values.get("first_boot_seconds"),
                bool(values.get("stopped", False)),
            )
        except (ValueError, KeyError, TypeError):
            continue
    return None


def run_wait(spec: WaitSpec) -> tuple[str, Verdict]:
    """The report to print and the verdict: first boot as the server reported it over SSH,
    then the pages at the public address by every name."""
    state, address = instance_state(spec.instance_id, spec.region)
    if state and state != "running":
        summary = f"{state}: not checked (EC2 says the instance is {state})"
        return f"flasklab: {spec.who}: {summary}", Verdict(False, summary, stopped=True)
    if address and address != spec.address:  # started again since the state was written
        spec = dataclasses.replace(spec, address=address)
    seconds = None
    if spec.status_output is not None:
        report = parse_check_output(spec.status_output)
        seconds = first_boot_seconds(report.status_text)
        # No exit marker: an older flasklab's command, which only ended if the server was ready.
        failed = report.status_exit != 0 if STATUS_EXIT_MARKER in spec.status_output else False
        if failed:
            summary = f"first boot failed on {spec.who}: its report follows (flasklab-status)"
            return f"flasklab: {summary}\n{report.status_text}", Verdict(False, summary, seconds)
    if not spec.serves:
        checked = "" if spec.status_output is not None else " (not checked: no SSH key to log in with)"
        summary = f"ready for the exercise{checked}"
        return f"flasklab: {spec.who} is {summary}; it serves once the student makes it", Verdict(
            True, summary, seconds
        )
    problems = wait_until_serving(
        spec.site(), spec.expectation(), spec.timeout_seconds, spec.certified_site()
    )
    if problems:
        text = "\n".join(
            [spec.not_serving_intro, *(f"  - {problem}" for problem in problems), spec.not_serving_hint]
        )
        return text, Verdict(False, f"not served at {spec.address}: {problems[0]}", seconds)
    took = f": first boot took {seconds} s" if seconds is not None else ""
    return f"flasklab: {spec.who} serves at {spec.address}", Verdict(True, f"ready{took}", seconds)


def instance_state(instance_id: str, region: str) -> tuple[str, str]:
    """What EC2 says of the instance: its state and public address ('' when it cannot be
    asked: no id, no credentials, no network). A wait that finds its instance stopped says
    so instead of waiting, and one started again since the state was written asks its new
    address."""
    if not instance_id or not region:
        return "", ""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 2})
    try:
        client = boto3.session.Session(region_name=region).client("ec2", config=config)
        reservations = client.describe_instances(InstanceIds=[instance_id]).get("Reservations", [])
    except (BotoCoreError, ClientError):
        return "", ""
    for instance in (i for r in reservations for i in r.get("Instances", [])):
        return instance.get("State", {}).get("Name", ""), instance.get("PublicIpAddress", "")
    return "", ""


def main() -> int:
    """`python -m flasklab.readiness`: a WaitSpec on standard input (components/readiness.py)."""
    spec = WaitSpec.from_json(sys.stdin.read())
    report, verdict = run_wait(spec)
    print(report)
    print(verdict.to_json())
    return exit_status(spec, verdict)


def exit_status(spec: WaitSpec, verdict: Verdict) -> int:
    """1 fails the command and so `pulumi up`: a lone server that does not serve."""
    return 0 if verdict.ready or verdict.stopped or spec.in_class else 1


if __name__ == "__main__":
    sys.exit(main())
