"""What a rehearsal boots and what it expects to be served, from a stack's settings."""

from __future__ import annotations

from dataclasses import dataclass

from flasklab import compose
from flasklab.app_secrets import AppSecrets
from flasklab.compose import generate_locally
from flasklab.probes import Expectation
from flasklab.readiness import full_expectation
from flasklab.render import render_user_data
from flasklab.settings import Settings


@dataclass(frozen=True)
class Target:
    """One rehearsal: the user-data to boot, the names it serves and what they must show."""

    name: str
    codename: str
    user_data: str
    server_names: tuple[str, ...]
    expect: Expectation
    # systemd units and log files (paths on the server) that explain a failure.
    units: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    # Host folders the container sees read-only at the same path (file:// app repositories).
    read_only_binds: tuple[str, ...] = ()
    # HTTPS with a certificate made on the server: its path there ('' for plain HTTP),
    # which the probes trust for the server names.
    certificate: str = ""
    # tls letsencrypt: the rehearsal runs an ACME server (acme.py) and the site must come
    # to serve HTTPS with the certificate the server got from it.
    acme: bool = False
    # The database's port, which must listen on localhost only (0 for no database).
    database_port: int = 0
    # A public key the login user accepts, as EC2 gives the key pair's ('' for none).
    ssh_public_key: str = ""
    # False for an exercise's server (stage app, bare or broken): first boot is the whole rehearsal.
    serves: bool = True

    @property
    def scheme(self) -> str:
        return "https" if self.certificate or self.acme else "http"

    @property
    def url(self) -> str:
        """The site's address in a rehearsal: HTTPS once the server has its certificate."""
        return f"{self.scheme}://{self.server_names[0]}/"


def asks_for_certificate(settings: Settings) -> bool:
    """Whether the server asks an ACME server for its certificate (tls letsencrypt), which
    the rehearsal then runs (acme.py). An exercise's server asks for none."""
    return settings.tls.acme and settings.stage.serves_app


def target_for(settings: Settings, app_secrets: AppSecrets | None = None) -> Target:
    """What to boot for these settings, with throwaway secrets unless some are given."""
    app_secrets = app_secrets or generate_locally(settings)
    app = settings.app
    return Target(
        name=settings.stack,
        codename=settings.debian_codename,
        user_data=render_user_data(settings, app_secrets),
        server_names=settings.server_names,
        expect=full_expectation(settings),
        units=tuple(compose.units(settings)),
        logs=tuple(compose.logs(settings)),
        read_only_binds=(app.repo.removeprefix("file://"),) if app.repo.startswith("file://") else (),
        # HTTPS from first boot means a certificate the server made itself; Let's Encrypt's
        # comes from the rehearsal's ACME server, once the server asks for it.
        certificate=f"{compose.tls_dir(settings)}/fullchain.pem"
        if settings.tls.enabled_at_boot == "https"
        else "",
        acme=asks_for_certificate(settings),
        database_port=settings.database.port if settings.database else 0,
        serves=settings.stage.answers_after_boot,
    )
