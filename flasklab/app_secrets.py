"""The app's generated secrets: its SECRET_KEY and its database user's password.

Under `pulumi up` they come from pulumi-random resources (components/app_secrets.py),
generated once per stack and kept, encrypted, in its state; a value the teacher set with
`pulumi config set --secret` replaces the generated one. A local render or rehearsal has
no state: it generates throwaway values with generate_locally().
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from urllib.parse import quote

from flasklab.settings import Settings

# Letters and digits only: safe unquoted in URLs, SQL literals and the env file.
ALPHABET = string.ascii_letters + string.digits
SECRET_KEY_LENGTH = 48
DATABASE_PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class AppSecrets:
    secret_key: str = field(repr=False)
    database_password: str = field(default="", repr=False)  # empty: no database


def generate_locally(settings: Settings) -> AppSecrets:
    """Secrets for a render or rehearsal on this machine, or the ones the teacher chose."""

    def generated(length: int) -> str:
        return "".join(secrets.choice(ALPHABET) for _ in range(length))

    return AppSecrets(
        secret_key=settings.chosen_secret_key or generated(SECRET_KEY_LENGTH),
        database_password=(settings.chosen_database_password or generated(DATABASE_PASSWORD_LENGTH))
        if settings.database
        else "",
    )


def database_url(settings: Settings, app_secrets: AppSecrets) -> str:
    """The SQLAlchemy URL of the app's database ('' without one): user and database are
    named after the app, on this server (localhost)."""
    engine = settings.database
    if engine is None:
        return ""
    user = settings.app.name
    password = quote(app_secrets.database_password, safe="")
    return f"{engine.url_scheme}://{user}:{password}@localhost:{engine.port}/{user}{engine.url_query}"
