"""`class handout --mail [--send]`: each student's page and key, mailed to the email in the
people file (flasklab/people.py), one mail per student, to them alone.

A dry run by default: it prints what would go to whom. `--send` sends over SMTP with
STARTTLS (never in the clear: the mails carry private keys), with the server and the
account from the environment (SMTP_VARIABLES), so that no password is ever on a command
line, in a shell's history or in a log. A student without an email is reported, never
guessed; a failed mail is reported for that student and the others still go.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

SMTP_HOST = "FLASKLAB_SMTP_HOST"
SMTP_PORT = "FLASKLAB_SMTP_PORT"
SMTP_USER = "FLASKLAB_SMTP_USER"
SMTP_PASSWORD = "FLASKLAB_SMTP_PASSWORD"
SMTP_FROM = "FLASKLAB_SMTP_FROM"
# A CA bundle to trust instead of the system's (a school's own mail server's CA).
SMTP_CA_FILE = "FLASKLAB_SMTP_CA_FILE"
SMTP_VARIABLES = (SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_FROM, SMTP_CA_FILE)
SUBMISSION_PORT = 587  # mail submission with STARTTLS (RFC 6409)
TIMEOUT_SECONDS = 30


class MailError(Exception):
    """Nothing can be sent (the settings, the server or the account); the message says why."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    sender: str
    ca_file: str
    password: str = field(default="", repr=False)

    def where(self) -> str:
        return f"{self.host}:{self.port}" + (f" as {self.user}" if self.user else "")


def smtp_settings(environ: Mapping[str, str]) -> SmtpSettings:
    """The SMTP server and account from the environment; a MailError naming what is missing."""
    host = environ.get(SMTP_HOST, "").strip()
    user = environ.get(SMTP_USER, "").strip()
    sender = environ.get(SMTP_FROM, "").strip() or (user if "@" in user else "")
    problems = []
    if not host:
        problems.append(f"{SMTP_HOST} (the mail server, e.g. smtp.school.example)")
    if not sender:
        problems.append(f"{SMTP_FROM} (the address the mails come from)")
    if user and not environ.get(SMTP_PASSWORD):
        problems.append(
            f"{SMTP_PASSWORD} (the password of {SMTP_USER}; set it with `read -rs {SMTP_PASSWORD}`)"
        )
    port_text = environ.get(SMTP_PORT, "").strip() or str(SUBMISSION_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        problems.append(f"{SMTP_PORT} as a port number (not {port_text!r}; usually {SUBMISSION_PORT})")
    if problems:
        raise MailError("to send, set in the environment: " + "; ".join(problems) + ". See docs/handouts.md.")
    return SmtpSettings(
        host=host,
        port=int(port_text),
        user=user,
        sender=sender,
        ca_file=environ.get(SMTP_CA_FILE, "").strip(),
        password=environ.get(SMTP_PASSWORD, ""),
    )


def message_of(letter: Letter, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = letter.to
    message["Subject"] = letter.subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(letter.body)
    for path in letter.attachments:
        if path.suffix == ".html":
            message.add_attachment(path.read_text(encoding="utf-8"), subtype="html", filename=path.name)
        else:
            # A key as bytes: a mail client saves it exactly, newline and all.
            message.add_attachment(
                path.read_bytes(), maintype="application", subtype="x-pem-file", filename=path.name
            )
    return message


class Mailer:
    """One connection to the server, made again after a failed mail (the server may have
    closed it); a MailError when the server or the account cannot be used at all."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.connection: smtplib.SMTP | None = None

    def connect(self) -> smtplib.SMTP:
        settings = self.settings
        try:
            connection = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
        except (OSError, smtplib.SMTPException) as error:
            raise MailError(
                f"cannot reach the mail server {settings.host}:{settings.port} ({_reason(error)}). Check "
                f"{SMTP_HOST} and {SMTP_PORT} (mail submission is usually port {SUBMISSION_PORT})."
            ) from None
        try:
            self._secure_and_log_in(connection)
        except BaseException:
            connection.close()
            raise
        self.connection = connection
        return connection

    def _secure_and_log_in(self, connection: smtplib.SMTP) -> None:
        settings = self.settings
        try:
            connection.ehlo()
            if not connection.has_extn("starttls"):
                raise MailError(
                    f"the mail server {settings.host}:{settings.port} does not offer STARTTLS: flasklab "
                    f"never sends private keys or a password in the clear. Use the server's submission "
                    f"port ({SUBMISSION_PORT})."
                )
            context = ssl.create_default_context(cafile=settings.ca_file or None)
            connection.starttls(context=context)
            connection.ehlo()
            if settings.user:
                connection.login(settings.user, settings.password)
        except smtplib.SMTPAuthenticationError as error:
            raise MailError(
                f"the mail server {settings.host} refused the login of {settings.user} "
                f"({error.smtp_code}): check {SMTP_USER} and {SMTP_PASSWORD}. Nothing was sent."
            ) from None
        except (ssl.SSLError, ssl.CertificateError) as error:
            raise MailError(
                f"the mail server {settings.host}'s certificate cannot be trusted ({_reason(error)}). If "
                f"your school has its own certificate authority, set {SMTP_CA_FILE} to its file."
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise MailError(
                f"the mail server {settings.host}:{settings.port} failed before any mail ({_reason(error)})."
            ) from None

    def send(self, message: EmailMessage) -> None:
        connection = self.connection or self.connect()
        try:
            connection.send_message(message)
        except (OSError, smtplib.SMTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None


def _reason(error: BaseException) -> str:
    """An SMTP or network error in one line, without a traceback."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refusals = [f"{code} {_text(reply)}" for code, reply in error.recipients.values()]
        return "refused the address: " + "; ".join(refusals)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    return str(error) or type(error).__name__


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


@dataclass(frozen=True)
class Letter:
    """One student's mail: to them alone, with their page and their key."""

    student: str
    to: str  # '' when the people file has no email for them
    subject: str
    body: str
    attachments: tuple[Path, ...]


# One address, as an LMS exports it: no name, no spaces or line breaks (which could add
# headers), a domain with a dot.
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


def is_address(text: str) -> bool:
    return bool(_ADDRESS.fullmatch(text))


def mail_handouts(
    letters: list[Letter],
    people_file: Path | None,
    send: bool,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Prints what goes (or would go) to whom; 0 when every student got (or would get) their
    mail, 1 when some did not, 2 when nothing could be sent."""
    if people_file is None or not people_file.is_file():
        where = f" ({people_file} does not exist)" if people_file else " (this stack has no roster)"
        print(
            f"no people data{where}: the emails come from the people file beside the roster. Make it "
            f"with `flasklab class roster import EXPORT` from your LMS's class list.",
            file=sys.stderr,
        )
        return 2
    unreachable = [letter for letter in letters if not is_address(letter.to)]
    for letter in unreachable:
        what = f"{letter.to!r} is not an email address" if letter.to else "no email"
        print(
            f"NOT mailed: {letter.student}: {what} in {people_file}; hand them their folder yourself.",
            file=sys.stderr,
        )
    ready = [letter for letter in letters if is_address(letter.to)]
    if not send:
        return _dry_run(ready, environ)
    try:
        settings = smtp_settings(environ)
    except MailError as error:
        print(f"nothing was sent: {error}", file=sys.stderr)
        return 2
    mailer = Mailer(settings)
    try:
        mailer.connect()
    except MailError as error:
        print(f"nothing was sent: {error}", file=sys.stderr)
        return 2
    try:
        failed = _send(ready, mailer, settings.sender)
    finally:
        mailer.close()
    print(f"mailed {len(ready) - failed} of {len(letters)} students via {settings.host}.")
    return 1 if failed or unreachable else 0


def _dry_run(letters: list[Letter], environ: Mapping[str, str]) -> int:
    for letter in letters:
        names = ", ".join(path.name for path in letter.attachments)
        print(f"would mail {letter.student} <{letter.to}>: {letter.subject!r}, attached: {names}")
    try:
        how = f"via {smtp_settings(environ).where()} (STARTTLS)"
    except MailError as error:
        how = f"once the mail server is set: {error}"
    print(f"dry run: nothing was sent. `--mail --send` sends these {len(letters)} mails {how}")
    return 0


def _send(letters: list[Letter], mailer: Mailer, sender: str) -> int:
    """Sends each letter; the number that failed, each reported as it fails."""
    failed = 0
    for number, letter in enumerate(letters):
        try:
            mailer.send(message_of(letter, sender))
        except MailError as error:
            # Connecting again failed: no mail can go now; said once, for every one left.
            left = ", ".join(other.student for other in letters[number:])
            print(f"NOT mailed: {left}: {error}", file=sys.stderr)
            return failed + len(letters) - number
        except (OSError, smtplib.SMTPException) as error:
            failed += 1
            print(f"NOT mailed: {letter.student} <{letter.to}>: {_reason(error)}", file=sys.stderr)
            continue
        print(f"mailed {letter.student} <{letter.to}>")
    return failed
