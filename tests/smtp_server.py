"""A real SMTP server for `class handout --mail`'s tests: aiosmtpd on 127.0.0.1, offering
STARTTLS with a certificate made here (for 127.0.0.1 and localhost) and requiring a login,
recording each mail it accepts with whether it came over TLS after a login."""

from __future__ import annotations

import datetime
import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "teacher@school.example"
PASSWORD = "pw-Kq9-never-printed"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flasklab test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes
    over_tls: bool
    logged_in: bool

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = message_from_bytes(self.raw, policy=policy.default)  # type: ignore[assignment]
        return parsed


@dataclass
class Recorder:
    """aiosmtpd's handler: refuses the addresses in `refused`, records every mail."""

    refused: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
                over_tls=session.ssl is not None,
                logged_in=bool(session.authenticated),
            )
        )
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append(data.login.decode())
            good = data.login == USER.encode() and data.password == PASSWORD.encode()
            # handled=False: aiosmtpd itself answers 535 to a wrong login.
            return AuthResult(success=good, handled=False)
        return AuthResult(success=False, handled=False)


@dataclass
class SmtpServer:
    port: int
    ca_file: Path
    recorder: Recorder

    def environment(self, **changes: str) -> dict[str, str]:
        """The FLASKLAB_SMTP_* variables that send through this server."""
        return {
            "FLASKLAB_SMTP_HOST": "127.0.0.1",
            "FLASKLAB_SMTP_PORT": str(self.port),
            "FLASKLAB_SMTP_USER": USER,
            "FLASKLAB_SMTP_PASSWORD": PASSWORD,
            "FLASKLAB_SMTP_FROM": USER,
            "FLASKLAB_SMTP_CA_FILE": str(self.ca_file),
            **changes,
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_smtp_server(folder: Path, starttls: bool = True) -> Iterator[SmtpServer]:
    import ssl

    cert, key = make_certificate(folder)
    recorder = Recorder()
    tls: dict[str, Any] = {}
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        tls = {"tls_context": context, "require_starttls": True}
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=recorder.authenticate,
        auth_required=starttls,
        **tls,
    )
    controller.start()
    try:
        yield SmtpServer(port, cert, recorder)
    finally:
        controller.stop()
