"""The probes and the rehearsal's own checks, against servers started here: each can fail,
so a boot that passes them proves something."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flasklab.probes import Expectation, Site, SiteCheck, app_pages, request, serves, tls_handshake_succeeds
from flasklab.rehearsal.run import listening_addresses
from tests.config_tools import self_signed_certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for flask.school.test, made like the servers make theirs."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), "flask.school.test")


@contextmanager
def tls_server(certificate: tuple[Path, Path], oldest: ssl.TLSVersion) -> Iterator[int]:
    """A TLS server on a free local port that accepts versions from `oldest` on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = oldest
    context.load_cert_chain(*map(str, certificate))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def local_site(name: str, port: int, ca_file: Path | None = None) -> Site:
    return Site(address="127.0.0.1", names=(name,), https=True, ca_file=ca_file, https_port=port)


def test_tls_1_1_check_tells_a_server_that_allows_it_from_one_that_refuses_it(certificate):
    with tls_server(certificate, ssl.TLSVersion.TLSv1_1) as port:
        site = local_site("flask.school.test", port)
        assert tls_handshake_succeeds(site, ssl.TLSVersion.TLSv1_1)
        assert tls_handshake_succeeds(site, ssl.TLSVersion.TLSv1_2)
    with tls_server(certificate, ssl.TLSVersion.TLSv1_2) as port:
        site = local_site("flask.school.test", port)
        assert not tls_handshake_succeeds(site, ssl.TLSVersion.TLSv1_1)
        assert tls_handshake_succeeds(site, ssl.TLSVersion.TLSv1_2)


def test_https_check_trusts_only_the_servers_certificate_for_its_names(certificate, tmp_path):
    """A probe verifies the certificate and the name, so a wrong one is an error."""
    with tls_server(certificate, ssl.TLSVersion.TLSv1_2) as port:
        with pytest.raises(OSError, match=r"CERTIFICATE_VERIFY_FAILED|Hostname mismatch"):
            request(local_site("other.school.test", port, certificate[0]), "other.school.test", timeout=2)
        other, _ = self_signed_certificate(tmp_path, "flask.school.test")  # same name, other key
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            request(local_site("flask.school.test", port, other), "flask.school.test", timeout=2)


@pytest.mark.parametrize(("address", "loopback"), [("127.0.0.1", True), ("0.0.0.0", False)])
def test_listening_addresses_tells_localhost_from_every_address(address, loopback):
    with socket.create_server((address, 0)) as listener:
        port = listener.getsockname()[1]
        found = listening_addresses(port)
    assert found == [address]
    assert (found == ["127.0.0.1"]) is loopback


# A course app whose front page sends visitors to its login page, a page that sends them
# to another site, and one that never stops redirecting.
LOGIN_APP_ROUTES = {
    "/": (302, {"Location": "/login"}, ""),
    "/login": (200, {}, "<h1>Log in</h1>"),
    "/away": (302, {"Location": "https://accounts.example.org/"}, ""),
    "/loop": (302, {"Location": "/loop"}, ""),
}


class LoginApp(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, headers, body = LOGIN_APP_ROUTES.get(self.path, (404, {}, "not found"))
        if self.headers["Host"] != "app.school.test":
            status, headers, body = 404, {}, "unknown site"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def login_app() -> Iterator[Site]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoginApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(address="127.0.0.1", names=("app.school.test",), http_port=server.server_address[1])
    finally:
        server.shutdown()
        thread.join()


def test_a_redirect_to_the_login_page_counts_as_serving(login_app):
    expect = Expectation(path="/")
    assert serves(login_app, expect, "app.school.test")
    found = SiteCheck()
    app_pages(login_app, expect, found)
    assert found.problems == [] and found.first_response == "<h1>Log in</h1>"
    assert serves(login_app, Expectation(path="/", page_marker="Log in"), "app.school.test")
    assert not serves(login_app, Expectation(path="/", page_marker="Welcome"), "app.school.test")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/away", "redirects away from the site, to https://accounts.example.org/"),
        ("/loop", "redirects more than 3 times (last to /loop)"),
        ("/missing", "answered 404, not 2xx"),
    ],
)
def test_a_redirect_elsewhere_or_an_error_is_not_serving(login_app, path, problem):
    found = SiteCheck()
    app_pages(login_app, Expectation(path=path), found)
    [reported] = found.problems
    assert problem in reported
    assert not serves(login_app, Expectation(path=path), "app.school.test")
