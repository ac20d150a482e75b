"""Does this address serve the app by its names? One set of probes for every place that
asks: the rehearsal (a container on this machine), and any server reachable by address.

A probe reaches the address the way a student's browser does once the hosts line is
pasted: the connection goes to the address, the request (and TLS's SNI and certificate
check) name the server. Probes know nothing of containers; each returns the problems it
found, as sentences for the teacher ([] when all is well).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from flasklab import contract

# A name no site answers to: the web server must not hand it to the app.
OTHER_HOST = "not-this-server.invalid"
# A page that redirects within the site (/ to /login) still proves the app serves.
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Site:
    """Where a server is and the names it serves."""

    address: str
    names: tuple[str, ...]
    https: bool = False
    # The certificate to trust for HTTPS (a self-signed server's own), as a file or as PEM
    # text; neither: the system's CAs. verify=False: encrypted, but nothing checked.
    ca_file: Path | None = None
    ca_pem: str = ""
    verify: bool = True
    http_port: int = 80
    https_port: int = 443
    # When every probe of this site must be over (time.monotonic()); None: no deadline.
    # Each request then waits at most the time left, so a server that accepts and never
    # answers cannot hold a check past it.
    deadline: float | None = None

    def time_left(self, wanted: float) -> float:
        """`wanted` seconds, or less when the deadline is nearer. Raises OSError once it passed."""
        if self.deadline is None:
            return wanted
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise OSError("no time was left for it")
        return min(wanted, left)

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"

    def url(self, name: str, path: str = "/") -> str:
        return f"{self.scheme}://{name}{path}"


@dataclass(frozen=True)
class Expectation:
    """What the site must show beyond answering 200 for each of its names."""

    # The path that proves the app serves (readyPath), and text its page holds (readyText,
    # or the sample app's heading); None: any page whose answer depends on the name.
    path: str = "/"
    page_marker: str | None = None
    # A static file the web server itself serves, with flasklab's expiry ('' for none).
    static_path: str = ""
    # The security headers, and this Server header without a version ('' for none).
    web_server_header: str = ""
    # The sample app's database page must name this server ('' for no database check).
    database_label: str = ""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: str


@dataclass
class SiteCheck:
    """What check_site found: the problems, and the first good page with its headers."""

    problems: list[str] = field(default_factory=list)
    first_response: str = ""
    first_headers: dict[str, str] = field(default_factory=dict)


class _PinnedConnection(http.client.HTTPConnection):
    """A connection to `address` for a request naming another host, as /etc/hosts makes
    it; over TLS when given a context, with SNI and the certificate checked for the host."""

    def __init__(
        self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext | None
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address
        self.context = context

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        if self.context is not None:
            self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def request(
    site: Site,
    name: str,
    path: str = "/",
    *,
    method: str = "GET",
    json_body: str | None = None,
    https: bool | None = None,
    timeout: float = 5,
) -> Answer:
    """One request to the site for `name` (over HTTPS when the site has it, unless `https`
    says otherwise). Raises OSError when nothing, or nothing valid, answers."""
    secure = site.https if https is None else https
    context = None
    if secure:
        context = ssl.create_default_context(
            cafile=str(site.ca_file) if site.ca_file else None, cadata=site.ca_pem or None
        )
        if not site.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    port = site.https_port if secure else site.http_port
    connection = _PinnedConnection(name, site.address, port, site.time_left(timeout), context)
    headers = {"Host": name}
    if json_body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=json_body.encode() if json_body else None, headers=headers)
        response = connection.getresponse()
        answer_headers = {key.lower(): value for key, value in response.getheaders()}
        return Answer(response.status, answer_headers, response.read().decode(errors="replace"))
    except (http.client.HTTPException, ssl.SSLError, ssl.CertificateError) as error:
        raise OSError(f"no valid answer: {error!r}") from error
    finally:
        connection.close()


def within_site(site: Site, name: str, location: str) -> str | None:
    """The path a redirect leads to when it stays on the site for `name` (a relative
    Location, or the same name over http or https); None when it leads elsewhere."""
    parts = urlsplit(location)
    if parts.netloc and (parts.hostname != name or parts.scheme not in ("http", "https")):
        return None
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return path + (f"?{parts.query}" if parts.query else "")


def ready_page(site: Site, expect: Expectation, name: str, timeout: float = 5) -> tuple[Answer, str]:
    """The page that proves the app serves for `name`: expect.path, after at most
    MAX_REDIRECTS redirects within the site. Returns the last answer and its path."""
    path = expect.path
    answer = request(site, name, path, timeout=timeout)
    for _ in range(MAX_REDIRECTS):
        if answer.status not in REDIRECTS:
            break
        target = within_site(site, name, answer.headers.get("location", ""))
        if target is None:
            break
        path = target
        answer = request(site, name, path, timeout=timeout)
    return answer, path


def serves(site: Site, expect: Expectation, name: str, timeout: float = 2) -> bool:
    """A quick yes or no, for waiting: the app answers for `name`. Without a known page
    text the answer must also depend on the name: a web server's default page answers any
    name and does not count."""
    try:
        answer, _ = ready_page(site, expect, name, timeout)
    except OSError:
        return False
    if not 200 <= answer.status < 300:
        return False
    if expect.page_marker:
        return expect.page_marker in answer.body
    try:
        other = request(site, OTHER_HOST, expect.path, https=False, timeout=timeout)
    except OSError:
        return True
    return (other.status, other.body) != (answer.status, answer.body)


def app_pages(site: Site, expect: Expectation, found: SiteCheck) -> None:
    """Each server name serves the app's page, with the expected headers."""
    for name in site.names:
        url = site.url(name, expect.path)
        try:
            answer, path = ready_page(site, expect, name)
        except OSError as error:
            found.problems.append(f"{url} did not answer: {error}")
            continue
        if path != expect.path:
            url = f"{url} (redirected to {path})"
        if answer.status in REDIRECTS:
            location = answer.headers.get("location", "")
            if within_site(site, name, location) is None:
                found.problems.append(
                    f"{url} redirects away from the site, to {location}: the app is elsewhere"
                )
            else:
                found.problems.append(f"{url} redirects more than {MAX_REDIRECTS} times (last to {location})")
        elif not 200 <= answer.status < 300:
            found.problems.append(f"{url} answered {answer.status}, not 2xx:\n{answer.body[:500]}")
        elif expect.page_marker and expect.page_marker not in answer.body:
            found.problems.append(f"{url} answered 200 without the app's page:\n{answer.body[:500]}")
        else:
            found.problems += headers(site, url, answer.headers, expect.web_server_header)
            if not found.first_response:
                found.first_response, found.first_headers = answer.body, answer.headers


def other_host_refused(site: Site, app_text: str) -> list[str]:
    """A request for another host name does not reach the app (whose page holds `app_text`)."""
    try:
        answer = request(site, OTHER_HOST)
    except OSError:
        return []  # the web server closed the connection or refused the handshake: good
    if answer.status == 200 and app_text and app_text in answer.body:
        return [f"a request for another host name ({OTHER_HOST}) reached the app"]
    return []


def headers(site: Site, url: str, answer_headers: dict[str, str], web_server_header: str) -> list[str]:
    """The security headers, HSTS over HTTPS, and a Server header that names no version
    (nothing is checked without `web_server_header`)."""
    if not web_server_header:
        return []
    expected = {name.lower(): value for name, value in contract.SECURITY_HEADERS.items()}
    expected["server"] = web_server_header
    if site.https:
        expected["strict-transport-security"] = contract.HSTS
    return [
        f"{url} answered with {name}: {answer_headers.get(name, '(none)')}, not {value}"
        for name, value in expected.items()
        if answer_headers.get(name) != value
    ]


def static_from_web_server(site: Site, path: str) -> list[str]:
    """The web server itself serves the static file, with flasklab's expiry."""
    name = site.names[0]
    url = site.url(name, path)
    try:
        answer = request(site, name, path)
    except OSError as error:
        return [f"{url} did not answer: {error}"]
    if answer.status != 200:
        return [f"{url} answered {answer.status}, not 200"]
    cache_control = answer.headers.get("cache-control", "")
    if contract.STATIC_CACHE_CONTROL not in cache_control:
        return [
            f"{url} came without the web server's {contract.STATIC_EXPIRY_DAYS}-day expiry "
            f"(Cache-Control: {cache_control or 'none'}): the app served it, not the web server"
        ]
    return []


def https_redirect(site: Site) -> list[str]:
    """Plain HTTP answers each name with a permanent redirect to the same address on HTTPS."""
    problems = []
    path = "/health?from=http"
    for name in site.names:
        try:
            answer = request(site, name, path, https=False)
        except OSError as error:
            problems.append(f"http://{name}/ did not answer: {error}")
            continue
        location = answer.headers.get("location", "")
        if answer.status != 301 or location != f"https://{name}{path}":
            problems.append(
                f"http://{name}{path} answered {answer.status} (Location: {location or 'none'}), "
                f"not a redirect to the same address over https"
            )
    return problems


def tls_handshake_succeeds(site: Site, version: ssl.TLSVersion) -> bool:
    """Whether the site completes a TLS handshake of exactly `version`. The client allows
    every cipher and old version, so a refusal is the server's."""
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
            socket.create_connection((site.address, site.https_port), timeout=site.time_left(5)) as raw,
            context.wrap_socket(raw, server_hostname=site.names[0]),
        ):
            return True
    except OSError:  # ssl.SSLError, a refused or reset connection, no time left
        return False


def tls_versions(site: Site) -> list[str]:
    """The oldest version flasklab allows is accepted, the one before it refused."""
    oldest = ssl.TLSVersion[f"TLSv{contract.TLS_VERSIONS[0].replace('.', '_')}"]
    name = site.names[0]
    problems = []
    if not tls_handshake_succeeds(site, oldest):
        problems.append(f"https://{name}/ refused a {oldest.name} handshake")
    older = ssl.TLSVersion(oldest.value - 1)
    if tls_handshake_succeeds(site, older):
        problems.append(
            f"https://{name}/ accepted {older.name}; only TLS {' and '.join(contract.TLS_VERSIONS)} should be"
        )
    return problems


def database_page(site: Site, label: str) -> list[str]:
    """The sample app's /db page names the database server, shows the migration's row, and
    writes one row per visit."""
    name = site.names[0]
    pages = []
    for _ in range(2):
        try:
            answer = request(site, name, "/db")
        except OSError as error:
            return [f"/db did not answer: {error}"]
        if answer.status != 200:
            return [f"/db answered {answer.status}, not 200:\n{answer.body[:1500]}"]
        pages.append(answer.body)
    problems = []
    server = re.search(r'<p id="server">([^<]*)</p>', pages[0])
    if not server or label not in server.group(1):
        problems.append(f"/db did not name {label} as its server:\n{pages[0][:800]}")
    if contract.SAMPLE_APP_MIGRATION_NOTE not in pages[0]:
        problems.append(f"/db does not show the migration's row:\n{pages[0][:800]}")
    counts = [int(m.group(1)) for page in pages if (m := re.search(r'<p id="count">(\d+) rows', page))]
    if len(counts) != 2 or counts[1] != counts[0] + 1:
        problems.append(f"two visits to /db did not write one row each (rows: {counts})")
    return problems


def notes_api(site: Site) -> list[str]:
    """POST a note to the sample app's JSON API, then GET it back by the id it answered."""
    name = site.names[0]
    note = {"text": "from flasklab's probe ✓"}
    try:
        created = request(site, name, "/api/notes", method="POST", json_body=json.dumps(note))
        if created.status != 201:
            return [f"POST /api/notes answered {created.status}, not 201:\n{created.body[:800]}"]
        note_id = json.loads(created.body)["id"]
        answer = request(site, name, f"/api/notes/{note_id}")
        if answer.status != 200 or json.loads(answer.body).get("text") != note["text"]:
            return [f"GET /api/notes/{note_id} answered {answer.status}: {answer.body[:300]}"]
    except (OSError, ValueError, KeyError) as error:
        return [f"the JSON API did not work: {error!r}"]
    return []


def check_site(site: Site, expect: Expectation) -> SiteCheck:
    """Every probe the site's expectation calls for."""
    found = SiteCheck()
    app_pages(site, expect, found)
    found.problems += other_host_refused(site, expect.page_marker or found.first_response)
    if site.https:
        found.problems += https_redirect(site) + tls_versions(site)
    if expect.static_path:
        found.problems += static_from_web_server(site, expect.static_path)
    if expect.database_label:
        found.problems += database_page(site, expect.database_label) + notes_api(site)
    return found


def reachable(site: Site, port: int, timeout: float = 5) -> list[str]:
    """Something at the address accepts a TCP connection on `port` (the security group lets
    this machine through, and the server is up)."""
    try:
        with socket.create_connection((site.address, port), timeout=site.time_left(timeout)):
            return []
    except TimeoutError:
        return [f"{site.address} did not answer on port {port}: the server is off, or a firewall drops it"]
    except OSError as error:
        return [f"{site.address} refused port {port} ({error.strerror or error}): nothing listens there"]


@dataclass(frozen=True)
class Process:
    """A process on the server, as `ps` shows it."""

    pid: int
    parent: int
    user: str
    name: str  # the program's name (ps's comm)
    command: str  # its command line (ps's args)


# What `ps` prints for parse_processes (user:32 keeps long user names whole).
PS_COMMAND = "ps -e -o pid=,ppid=,user:32=,comm=,args="


def parse_processes(ps_output: str) -> list[Process]:
    processes = []
    for line in ps_output.splitlines():
        fields = line.split(None, 4)
        if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit():
            processes.append(Process(int(fields[0]), int(fields[1]), *fields[2:]))
    return processes


def runs_under_manager(processes: list[Process], user: str, program: str, manager: str) -> list[str]:
    """The app runs: its user has processes, every one runs `program`, and the top of
    their tree was started by `manager` (systemd, supervisord, apache2)."""
    own = [process for process in processes if process.user == user]
    if not own:
        return [f"nothing runs as {user}: the app is not running (its {manager} stopped it, or it crashed)"]
    names = {process.pid: process.name for process in processes}
    pids = {process.pid for process in own}
    problems = []
    for process in own:
        if program not in process.command:
            problems.append(f"{user} runs {process.command!r}, not {program}")
        elif process.parent not in pids and names.get(process.parent) != manager:
            starter = names.get(process.parent, "an unknown process")
            problems.append(
                f"{program} (pid {process.pid}) was started by {starter}, not by {manager}: "
                f"someone started it by hand"
            )
    return problems
