"""Boot a stack's exact user-data in a Debian container and prove it serves.

The rendered user-data is seeded through cloud-init's NoCloud datasource into a copy
of the cached image and booted with systemd-nspawn: real systemd as PID 1, real
cloud-init, nothing of the user-data skipped or rewritten. The container shares the
host's network, so its web server answers on this machine's port 80, and the app is
checked the way a student checks it once the hosts line is pasted: by server name.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flasklab import plan
from flasklab.app_secrets import AppSecrets, generate_locally
from flasklab.rehearsal import report
from flasklab.rehearsal.image import LOCAL_CA_DIR, ensure_image
from flasklab.render import logs, render_user_data, tls_dir, units
from flasklab.settings import Settings

RUNS_DIR = Path("/var/lib/flasklab/runs")
BOOT_TIMEOUT = 900  # seconds; a slow mirror can make first-boot installs long
# After cloud-init is done, how long the app may still take to answer.
ANSWER_GRACE = 30
HTTP_PORT = 80
HTTPS_PORT = 443
# The sample app's page says this; a git-hosted app is only required to answer 200.
SAMPLE_APP_MARKER = "<h1>Flask app deployed</h1>"
SAMPLE_APP_STATIC_FILE = "style.css"
# Static files must come from the web server itself, which sends them with the recipes'
# 30-day expiry; Flask's own static route would say no-cache.
STATIC_CACHE_CONTROL = "max-age=2592000"
OTHER_HOST = "not-this-server.invalid"
# Headers every site sends (templates/partials), and the Server header without a version.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "strict-origin-when-cross-origin",
}
SERVER_HEADERS = {"nginx": "nginx", "apache": "Apache"}
HSTS = "max-age=31536000"
# The sample app's migration writes this row (sample_app/application.py).
MIGRATION_NOTE = "written by the migration (flask init-db)"


class RehearsalRefused(Exception):
    """The rehearsal cannot run on this machine as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """What one rehearsal boots and what it expects to be served."""

    name: str
    codename: str
    user_data: str
    server_names: tuple[str, ...]
    page_marker: str | None
    units: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    # Host folders the container sees read-only at the same path (file:// app repositories).
    read_only_binds: tuple[str, ...] = ()
    # URL path of a static file the web server must serve itself ('' for none).
    static_file: str = ""
    web_server: str = "nginx"
    # HTTPS with a certificate made on the server: the path of that certificate inside
    # the container ('' for plain HTTP), which the checks trust for the server names.
    certificate: str = ""
    # The sample app's database page must show this server ('' for no check) on this port.
    database_label: str = ""
    database_port: int = 0

    @property
    def host_ports(self) -> tuple[int, ...]:
        """Ports of this machine the container's servers listen on (it shares the network)."""
        return (
            HTTP_PORT,
            *((HTTPS_PORT,) if self.certificate else ()),
            *((self.database_port,) if self.database_port else ()),
        )


def target_for(settings: Settings, app_secrets: AppSecrets | None = None) -> Target:
    """What to boot for these settings, with throwaway secrets unless some are given."""
    app_secrets = app_secrets or generate_locally(settings)
    sample_app = not settings.app.repo
    return Target(
        name=settings.stack,
        codename=settings.debian_codename,
        user_data=render_user_data(settings, app_secrets),
        server_names=settings.server_names,
        page_marker=SAMPLE_APP_MARKER if sample_app else None,
        units=tuple(units(settings)),
        logs=tuple(logs(settings)),
        read_only_binds=(settings.app.repo.removeprefix("file://"),)
        if settings.app.repo.startswith("file://")
        else (),
        static_file=""
        if settings.app.repo or not settings.app.static_dir
        else f"{settings.app.static_url}/{SAMPLE_APP_STATIC_FILE}",
        web_server=settings.recipe.web_server.name,
        # Let's Encrypt cannot issue offline: such a rehearsal serves plain HTTP, as a
        # server whose DNS does not point at it yet.
        certificate=f"{tls_dir(settings)}/fullchain.pem" if settings.tls.name == "self-signed" else "",
        database_label=settings.database.label if settings.database and sample_app else "",
        database_port=settings.database.port if settings.database else 0,
    )


@dataclass
class Outcome:
    cloud_init_seconds: float | None = None
    first_response_seconds: float | None = None
    cloud_init_errors: list[str] = field(default_factory=list)
    http_problems: list[str] = field(default_factory=list)
    first_response: str = ""
    first_headers: dict[str, str] = field(default_factory=dict)
    failure: str = ""

    @property
    def ok(self) -> bool:
        return not (self.failure or self.cloud_init_errors or self.http_problems)


def check_prerequisites(ports: tuple[int, ...] = (HTTP_PORT,)) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("run it as root (sudo): it builds a root filesystem and boots a container.")
    for program, package in (("debootstrap", "debootstrap"), ("systemd-nspawn", "systemd-container")):
        if shutil.which(program) is None:
            problems.append(f"{program} is missing: `sudo apt-get install {package}` (or scripts/setup.sh).")
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except PermissionError:
                pass  # not root: already reported
            except OSError:
                problems.append(
                    f"port {port} is taken on this machine, and the container's servers need it "
                    f"(it shares this machine's network). See what holds it with "
                    f"`ss -ltnp 'sport = :{port}'` and stop it (another rehearsal left with --keep, "
                    f"or a local web or database server)."
                )
    if problems:
        raise RehearsalRefused("flasklab cannot rehearse here:\n" + "\n".join(f"  - {p}" for p in problems))


def http_get(host: str, path: str = "/", timeout: float = 5) -> tuple[int, str]:
    """GET through the web server on this machine with a Host header, like a browser after
    the hosts line is pasted. Raises OSError when nothing (or nothing valid) answers."""
    status, _, body = http_get_with_headers(host, path, timeout)
    return status, body


def http_get_with_headers(host: str, path: str = "/", timeout: float = 5) -> tuple[int, dict[str, str], str]:
    return site_request(host, path, timeout=timeout)


def site_request(
    host: str,
    path: str = "/",
    *,
    method: str = "GET",
    json_body: str | None = None,
    certificate: Path | None = None,
    timeout: float = 5,
) -> tuple[int, dict[str, str], str]:
    """A request to the web server on this machine for `host`, as a browser sends it once the
    hosts line is pasted: over HTTPS (SNI, and a certificate valid for `host` that must be
    `certificate`) when one is given, else plain HTTP."""
    if certificate is not None:
        context = ssl.create_default_context(cafile=str(certificate))
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, HTTPS_PORT, timeout=timeout, context=context
        )
        port = HTTPS_PORT
    else:
        connection = http.client.HTTPConnection(host, HTTP_PORT, timeout=timeout)
        port = HTTP_PORT
    # As with the hosts line: the name leads to this machine.
    connection._create_connection = lambda address, *args, **kwargs: socket.create_connection(  # type: ignore[attr-defined]
        ("127.0.0.1", port), *args, **kwargs
    )
    headers = {"Host": host}
    if json_body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=json_body.encode() if json_body else None, headers=headers)
        response = connection.getresponse()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer_headers, response.read().decode(errors="replace")
    except (http.client.HTTPException, ssl.SSLError, ssl.CertificateError) as error:
        raise OSError(f"no valid answer: {error!r}") from error
    finally:
        connection.close()


def tls_handshake_succeeds(host: str, version: ssl.TLSVersion, port: int = HTTPS_PORT) -> bool:
    """Whether a server on this machine completes a TLS handshake of exactly `version`.
    The client allows every cipher and old version, so a refusal is the server's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are asked for on purpose
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = version
        context.maximum_version = version
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except (ssl.SSLError, ConnectionError):
        return False


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
    """One container: prepare() a copy of the image seeded with the user-data, boot(),
    wait() for cloud-init and the app, stop(); reboot() boots the same root again."""

    def __init__(self, target: Target, progress: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.machine = re.sub(r"[^a-z0-9-]", "-", f"flasklab-{target.name}".lower())[:60]
        self.root = RUNS_DIR / self.machine
        self.console_log = RUNS_DIR / f"{self.machine}.console.log"
        self.process: subprocess.Popen | None = None
        self.booted_at = 0.0
        self._progress = progress or (lambda message: print(message, flush=True))
        self._started = time.monotonic()

    def progress(self, message: str) -> None:
        self._progress(f"[{time.monotonic() - self._started:6.1f}s] {message}")

    # -- setting up -------------------------------------------------------------------

    def prepare(self) -> None:
        check_prerequisites(self.target.host_ports)
        image = ensure_image(self.target.codename, self.progress)
        self.progress(f"copying the Debian {self.target.codename} image to {self.root}")
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        self.remove()
        subprocess.run(["cp", "-a", "--reflink=auto", str(image), str(self.root)], check=True)
        if self.target.read_only_binds:
            # A file:// repository is owned by this machine's root; git would refuse it as
            # "dubious ownership" for the app's user. Rehearsal-only, like the proxy CA:
            # on EC2 there are no file:// repositories.
            trusted = "".join(
                f"\tdirectory = {path}\n\tdirectory = {path}/.git\n" for path in self.target.read_only_binds
            )
            (self.root / "etc/gitconfig").write_text(f"[safe]\n{trusted}")
        if any(LOCAL_CA_DIR.glob("*.crt")):
            # pip as vendored by pipenv ignores the system's CA store, which holds this
            # machine's proxy CA: point it there for every service, cloud-init's included.
            # Rehearsal-only, like the CA itself.
            bundle = "/etc/ssl/certs/ca-certificates.crt"
            conf = self.root / "etc/systemd/system.conf.d/50-flasklab-rehearsal-ca.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(f"[Manager]\nDefaultEnvironment=PIP_CERT={bundle} REQUESTS_CA_BUNDLE={bundle}\n")
        seed = self.root / "var/lib/cloud/seed/nocloud"
        seed.mkdir(parents=True)
        (seed / "user-data").write_text(self.target.user_data)
        (seed / "meta-data").write_text(
            f"instance-id: {self.machine}-{int(time.time())}\nlocal-hostname: {self.machine}\n"
        )

    # -- running ----------------------------------------------------------------------

    def boot(self) -> None:
        # This host's systemd is not PID 1: nspawn needs these (shared/notes/local-boot.md).
        Path("/run/systemd/nspawn/propagate").mkdir(parents=True, exist_ok=True)
        self.progress(f"booting {self.machine} with systemd-nspawn (console: {self.console_log})")
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
                    *(f"--bind-ro={path}" for path in self.target.read_only_binds),
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # --keep outlives this command
            )

    @property
    def result_file(self) -> Path:
        return self.root / "var/lib/cloud/data/result.json"

    def wait(self, timeout: float = BOOT_TIMEOUT) -> Outcome:
        """Wait for cloud-init to finish and the app to answer its server name."""
        outcome = Outcome()
        name = self.target.server_names[0]
        scheme = "https" if self.target.certificate else "http"
        self.progress(f"waiting for cloud-init and for {scheme}://{name}/ to answer")
        last_stage = ""
        while time.monotonic() - self.booted_at < timeout:
            elapsed = time.monotonic() - self.booted_at
            if outcome.first_response_seconds is None and self._page_ok(name):
                outcome.first_response_seconds = elapsed
                self.progress(f"first good response from {scheme}://{name}/ after {elapsed:.1f} s")
            if outcome.cloud_init_seconds is None and self.result_file.exists():
                outcome.cloud_init_seconds = elapsed
                result = json.loads(self.result_file.read_text())
                outcome.cloud_init_errors = list(result.get("v1", {}).get("errors", []))
                self.progress(
                    f"cloud-init finished after {elapsed:.1f} s"
                    + (" with errors" if outcome.cloud_init_errors else "")
                )
            if outcome.cloud_init_seconds is not None and (
                outcome.first_response_seconds is not None
                or outcome.cloud_init_errors
                or elapsed > outcome.cloud_init_seconds + ANSWER_GRACE
            ):
                break
            if self.process is not None and self.process.poll() is not None:
                outcome.failure = (
                    f"the container stopped by itself (exit {self.process.returncode}); "
                    f"see {self.console_log}"
                )
                return outcome
            stage = report.current_step(self.root)
            if stage and stage != last_stage:
                self.progress(f"server: {stage}")
                last_stage = stage
            time.sleep(0.5)
        if outcome.cloud_init_seconds is None:
            outcome.failure = f"cloud-init did not finish within {timeout:.0f} s"
        if not outcome.cloud_init_errors and not outcome.failure:
            outcome.http_problems = self.check_http(outcome)
        return outcome

    def get(self, host: str, path: str = "/", timeout: float = 5) -> tuple[int, dict[str, str], str]:
        """GET the site as a student's browser does: over HTTPS when the site has it."""
        return site_request(host, path, certificate=self.certificate_file, timeout=timeout)

    @property
    def certificate_file(self) -> Path | None:
        """The site's self-signed certificate, as the container's server made it."""
        return self.root / self.target.certificate.lstrip("/") if self.target.certificate else None

    def _page_ok(self, host: str) -> bool:
        """The app answers for its name. Without a known page text, the answer must also
        depend on the name: a web server's default page answers any name and does not count."""
        try:
            status, _, body = self.get(host, timeout=2)
        except OSError:
            return False
        if status != 200:
            return False
        if self.target.page_marker:
            return self.target.page_marker in body
        try:
            other_status, other_body = http_get(OTHER_HOST, timeout=2)
        except OSError:
            return True
        return (other_status, other_body) != (status, body)

    def check_http(self, outcome: Outcome) -> list[str]:
        """Each server name serves the app's page; any other name does not reach it."""
        problems = []
        scheme = "https" if self.target.certificate else "http"
        for name in self.target.server_names:
            url = f"{scheme}://{name}/"
            try:
                status, headers, body = self.get(name)
            except OSError as error:
                problems.append(f"{url} did not answer: {error}")
                continue
            if status != 200:
                problems.append(f"{url} answered {status}, not 200:\n{body[:500]}")
            elif self.target.page_marker and self.target.page_marker not in body:
                problems.append(f"{url} answered 200 without the app's page:\n{body[:500]}")
            else:
                problems += self.check_headers(url, headers)
                if not outcome.first_response:
                    outcome.first_response = body
                    outcome.first_headers = headers
        try:
            status, _, body = self.get(OTHER_HOST)
            if status == 200 and (self.target.page_marker or outcome.first_response) in body:
                problems.append(f"a request for another host name ({OTHER_HOST}) reached the app")
        except OSError:
            pass  # the web server closed the connection or refused the handshake: what we want
        if self.target.certificate:
            problems += self.check_https()
        if self.target.static_file:
            problems += self.check_static(self.target.static_file)
        if self.target.database_label:
            problems += self.check_database()
        return problems

    def check_headers(self, url: str, headers: dict[str, str]) -> list[str]:
        """The security headers, and a Server header that names no version."""
        expected = dict(SECURITY_HEADERS, server=SERVER_HEADERS[self.target.web_server])
        if self.target.certificate:
            expected["strict-transport-security"] = HSTS
        return [
            f"{url} answered with {name}: {headers.get(name, '(none)')}, not {value}"
            for name, value in expected.items()
            if headers.get(name) != value
        ]

    def check_https(self) -> list[str]:
        """Plain HTTP redirects to HTTPS; TLS 1.2 is accepted and TLS 1.1 refused."""
        problems = []
        for name in self.target.server_names:
            try:
                status, headers, _ = http_get_with_headers(name, "/health?from=http")
            except OSError as error:
                problems.append(f"http://{name}/ did not answer: {error}")
                continue
            location = headers.get("location", "")
            if status != 301 or location != f"https://{name}/health?from=http":
                problems.append(
                    f"http://{name}/health?from=http answered {status} (Location: {location or 'none'}), "
                    f"not a redirect to the same address over https"
                )
        name = self.target.server_names[0]
        if not tls_handshake_succeeds(name, ssl.TLSVersion.TLSv1_2):
            problems.append(f"https://{name}/ refused a TLS 1.2 handshake")
        if tls_handshake_succeeds(name, ssl.TLSVersion.TLSv1_1):
            problems.append(f"https://{name}/ accepted TLS 1.1; only 1.2 and 1.3 should be")
        return problems

    def check_database(self) -> list[str]:
        """The sample app's database page writes a row and reads them back, after the
        migration's; its JSON API stores a note; the database listens on localhost only."""
        name = self.target.server_names[0]
        problems = []
        pages = []
        for _ in range(2):
            try:
                status, _, body = self.get(name, "/db")
            except OSError as error:
                return [f"/db did not answer: {error}"]
            if status != 200:
                return [f"/db answered {status}, not 200:\n{body[:1500]}"]
            pages.append(body)
        server = re.search(r'<p id="server">([^<]*)</p>', pages[0])
        if not server or self.target.database_label not in server.group(1):
            problems.append(f"/db did not name {self.target.database_label} as its server:\n{pages[0][:800]}")
        if MIGRATION_NOTE not in pages[0]:
            problems.append(f"/db does not show the migration's row:\n{pages[0][:800]}")
        counts = [int(m.group(1)) for page in pages if (m := re.search(r'<p id="count">(\d+) rows', page))]
        if len(counts) != 2 or counts[1] != counts[0] + 1:
            problems.append(f"two visits to /db did not write one row each (rows: {counts})")
        problems += self.check_notes_api(name)
        addresses = listening_addresses(self.target.database_port, Path(f"/proc/{self.leader_pid()}"))
        if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
            problems.append(
                f"the database should listen on localhost only, on port {self.target.database_port}: "
                f"it listens on {addresses or 'nothing'}"
            )
        return problems

    def check_notes_api(self, name: str) -> list[str]:
        """POST a note to the JSON API, then GET it back by the id it answered."""
        note = {"text": "from the rehearsal ✓"}
        try:
            status, _, body = site_request(
                name,
                "/api/notes",
                method="POST",
                json_body=json.dumps(note),
                certificate=self.certificate_file,
            )
            if status != 201:
                return [f"POST /api/notes answered {status}, not 201:\n{body[:800]}"]
            created = json.loads(body)
            status, _, body = self.get(name, f"/api/notes/{created['id']}")
        except (OSError, ValueError, KeyError) as error:
            return [f"the JSON API did not work: {error!r}"]
        if status != 200 or json.loads(body).get("text") != note["text"]:
            return [f"GET /api/notes/{created['id']} answered {status}: {body[:300]}"]
        return []

    def check_static(self, path: str) -> list[str]:
        """The web server itself serves the static file, with its 30-day expiry."""
        scheme = "https" if self.target.certificate else "http"
        url = f"{scheme}://{self.target.server_names[0]}{path}"
        try:
            status, headers, _ = self.get(self.target.server_names[0], path)
        except OSError as error:
            return [f"{url} did not answer: {error}"]
        if status != 200:
            return [f"{url} answered {status}, not 200"]
        if STATIC_CACHE_CONTROL not in headers.get("cache-control", ""):
            return [
                f"{url} came without the web server's 30-day expiry (Cache-Control: "
                f"{headers.get('cache-control', 'none')}): the app served it, not the web server"
            ]
        return []

    # -- looking inside ---------------------------------------------------------------

    def run_inside(self, command: str, user: str = "root") -> subprocess.CompletedProcess:
        """A shell command in the running container, as `user` with a login environment."""
        pid = self.leader_pid()
        if pid is None:
            raise RuntimeError(f"{self.machine} is not running")
        return subprocess.run(
            ["nsenter", f"--target={pid}", "--all", "runuser", "--login", user, "--command", command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def login_user(self) -> str:
        """The image's default user, as cloud-init made it (the first UID from 1000)."""
        for line in (self.root / "etc/passwd").read_text().splitlines():
            name, _, uid, *_ = line.split(":")
            if 1000 <= int(uid) < 60000:
                return name
        raise RuntimeError("the container has no login user")

    def processes_of(self, user: str) -> list[ContainerProcess]:
        """The container's processes running as `user`, each with its parent's command line."""
        uid = next(
            int(line.split(":")[2])
            for line in (self.root / "etc/passwd").read_text().splitlines()
            if line.split(":")[0] == user
        )
        leader = self.leader_pid()
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
                found.append(
                    ContainerProcess(
                        pid=int(proc.name),
                        parent=parent,
                        command=_command_line(proc),
                        parent_name=Path(f"/proc/{parent}/comm").read_text().strip(),
                    )
                )
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # it ended meanwhile
        return found

    def stop(self) -> None:
        """Shut the container down cleanly (SIGTERM makes nspawn power it off)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.progress(f"shutting {self.machine} down")
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def reboot(self, timeout: float = BOOT_TIMEOUT) -> Outcome:
        """Stop the container and boot the same root again, as a student reboots the server."""
        self.stop()
        self.result_file.unlink(missing_ok=True)
        self.boot()
        return self.wait(timeout)

    def remove(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    def leader_pid(self) -> int | None:
        """PID of the container's systemd, as seen from this machine."""
        if self.process is None:
            return None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else None


@dataclass(frozen=True)
class ContainerProcess:
    pid: int
    parent: int
    command: str
    parent_name: str


def _command_line(proc: Path) -> str:
    return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()


def rehearsed_url(target: Target) -> str:
    """The site's address in a rehearsal: a Let's Encrypt site serves plain HTTP here, as it
    does on a server whose DNS does not point at it yet."""
    return f"{'https' if target.certificate else 'http'}://{target.server_names[0]}/"


def stop_on_sigterm() -> None:
    """A rehearsal killed with SIGTERM cleans up like one stopped with Ctrl-C: the container
    runs in its own session and would otherwise outlive this process."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def rehearse(settings: Settings, keep: bool = False) -> int:
    """The command: rehearse a stack, print the report, exit status 0 only if it serves."""
    stop_on_sigterm()
    target = target_for(settings)
    rehearsal = Rehearsal(target)
    try:
        rehearsal.prepare()
    except (RehearsalRefused, RuntimeError) as error:
        print(error, file=sys.stderr)
        return 2
    try:
        rehearsal.boot()
        outcome = rehearsal.wait()
        print(
            report.render(
                rehearsal,
                outcome,
                hosts_line=plan.hosts_line(settings, "127.0.0.1"),
                url=rehearsed_url(target),
            )
        )
        if keep:
            print(report.keep_instructions(rehearsal))
            return 0 if outcome.ok else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        outcome = Outcome(failure="interrupted")
    rehearsal.stop()
    rehearsal.remove()
    return 0 if outcome.ok else 1
