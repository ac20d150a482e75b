"""The rules for the app's secrets, written once: its SECRET_KEY and its database user's
password, how long and of which characters a generated one is, when a server has one,
and what a value the teacher chooses must be.

Under `pulumi up` the values come from pulumi-random (components/secret_values.py),
generated once per stack and kept, encrypted, in its state; a value the teacher set with
`pulumi config set --secret` replaces the generated one. A local render or rehearsal has
no state: it generates throwaway values with flasklab.compose.generate_locally().
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from flasklab.contract import LINE_BREAKS

# Letters and digits only: safe unquoted in URLs, SQL literals and the env file.
ALPHABET = string.ascii_letters + string.digits
# A value the teacher chooses: at least this long, and without the characters that the
# env file (KEY='value') and the database's SQL ('...') cannot carry unchanged.
MIN_CHOSEN_LENGTH = 12
FORBIDDEN_IN_CHOSEN = ("'", '"', "\\", *LINE_BREAKS)


@dataclass(frozen=True)
class SecretRule:
    """One secret of the app: its field in AppSecrets, the setting that chooses it, the
    length of a generated one, and whether only a server with a database has it."""

    field: str
    setting: str
    length: int
    needs_database: bool

    @property
    def resource_suffix(self) -> str:
        """The pulumi-random resource's name after the component's: `-secret-key`."""
        return self.field.replace("_", "-")


SECRET_KEY = SecretRule("secret_key", "secretKey", length=48, needs_database=False)
DATABASE_PASSWORD = SecretRule("database_password", "databasePassword", length=32, needs_database=True)
RULES = (SECRET_KEY, DATABASE_PASSWORD)
# Settings whose values are secrets: under Pulumi they must be set with --secret.
SECRET_SETTINGS = tuple(rule.setting for rule in RULES)


def rules_for(with_database: bool) -> tuple[SecretRule, ...]:
    """The secrets a server has: a SECRET_KEY always, a database password with a database."""
    return tuple(rule for rule in RULES if with_database or not rule.needs_database)


@dataclass(frozen=True)
class AppSecrets:
    """The values themselves ('' where the server has none). Never shown in a repr."""

    secret_key: str = field(default="", repr=False)
    database_password: str = field(default="", repr=False)

    def value(self, rule: SecretRule) -> str:
        return str(getattr(self, rule.field))


def generated(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))
