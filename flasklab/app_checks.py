"""Stage 2 of loading settings (flasklab/settings.py), for what the app is given: its
environment (appEnv, appMigrate), its database and the secrets a teacher chose, HTTPS
(tls, tlsEmail) and the exercise (stage, fault, language). Each check reads the coerced
values only and yields every problem, with how to fix it."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from flasklab.app_secrets import FORBIDDEN_IN_CHOSEN, MIN_CHOSEN_LENGTH, RULES
from flasklab.contract import LINE_BREAKS
from flasklab.faults import FAULTS, applicable
from flasklab.network_settings import why_not_public
from flasklab.recipes import DATABASES, RECIPES, STAGES, TLS_MODES
from flasklab.rubric_texts import LANGUAGES
from flasklab.settings_coercion import Values, server_names_of, text_of

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Characters an env-file value cannot hold and still read the same to sh, systemd and
# python-dotenv (the file is KEY='value').
_ENV_VALUE_FORBIDDEN = ("'", "\\", *LINE_BREAKS)
# Names flasklab itself writes into the app's env file, and the setting that sets each.
RESERVED_ENV = {
    "SECRET_KEY": "secretKey",
    "DATABASE_URL": "database and databasePassword",
    "FLASK_SESSION_COOKIE_SECURE": "tls",
}
_EMAIL = re.compile(r"^[^@\s'\\\x00-\x1f\x7f]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")


def app_settings_problems(values: Values) -> Iterator[str]:
    """appEnv (its names, its values, the names flasklab writes itself) and appMigrate."""
    app_env = values["appEnv"] or {}
    for name, value in app_env.items():
        if not _ENV_NAME.fullmatch(name):
            yield (
                f"appEnv: {name!r} is not an environment variable name; use letters, digits and "
                f"'_', not starting with a digit, e.g. SECRET_KEY."
            )
        if isinstance(value, str) and any(char in value for char in _ENV_VALUE_FORBIDDEN):
            # Never echo the value: it may be a secret.
            yield (
                f"appEnv.{name}: the value holds a single quote, a backslash or a line break, which "
                f"the env file cannot carry unchanged to every program that reads it. Choose a "
                f"value without them (a generated password: letters and digits)."
            )
    for name, setting in RESERVED_ENV.items():
        if name in app_env:
            yield (
                f"appEnv.{name}: flasklab writes {name} into the env file itself, from {setting}; "
                f"remove it with `pulumi config rm --path appEnv.{name}`."
            )
    if any(char in text_of(values, "appMigrate") for char in LINE_BREAKS):
        yield "appMigrate must be one command line, e.g. `flask db upgrade`."


def database_and_secret_problems(values: Values, secret_keys: Collection[str]) -> Iterator[str]:
    """database, and each secret the teacher chose (flasklab.app_secrets.RULES)."""
    database = DATABASES.get(values["database"] or "")
    if values["database"] != "none" and database is None:
        yield (
            f"database: {values['database']!r} is not a database flasklab installs. Use none, mariadb "
            f"(MySQL, tutorial 003) or postgresql (tutorial 004): `pulumi config set database mariadb`."
        )
    for rule in RULES:
        key, value = rule.setting, values[rule.setting] or ""
        if not value:
            continue
        if key not in secret_keys:
            yield (
                f"{key} is stored in plain text in the stack's file. Set it as a secret: "
                f"`pulumi config set --secret {key}` (it asks for the value), or remove it with "
                f"`pulumi config rm {key}` to have one generated."
            )
        if any(char in value for char in FORBIDDEN_IN_CHOSEN):
            yield (
                f"{key}: the value holds a quote, a backslash or a line break, which the env file and "
                f"the database's SQL cannot carry unchanged. Choose one with letters, digits and "
                f"punctuation other than those, or remove it to have one generated."
            )
        elif len(value) < MIN_CHOSEN_LENGTH:
            yield f"{key}: use at least {MIN_CHOSEN_LENGTH} characters, or remove it to have one generated."
        if rule.needs_database and database is None:
            yield (
                f"{key} is set but database is none: set database (mariadb or postgresql) "
                f"or remove it with `pulumi config rm {key}`."
            )


def tls_problems(values: Values) -> Iterator[str]:
    """tls and tlsEmail, with the ports and server names HTTPS needs (from the values)."""
    tls = TLS_MODES.get(values["tls"] or "")
    tls_email = text_of(values, "tlsEmail")
    ports = values["openPorts"] or []
    if tls is None:
        yield (
            f"tls: {values['tls']!r} is not a way flasklab sets up HTTPS. Use none, self-signed "
            f"(browsers warn; fine for names in /etc/hosts) or letsencrypt (a real public domain)."
        )
    elif tls.name != "none" and 443 not in ports:
        yield (
            f"tls {tls.name} serves HTTPS on port 443, which openPorts does not open: "
            f"`pulumi config set --path 'openPorts[{len(ports)}]' 443`."
        )
    if tls is not None and tls.name == "letsencrypt":
        yield from _letsencrypt_problems(ports, tls_email, server_names_of(values))
    elif tls_email and tls is not None:
        yield "tlsEmail is only used with tls letsencrypt; remove it with `pulumi config rm tlsEmail`."


def exercise_problems(values: Values) -> Iterator[str]:
    """stage and language."""
    if values["stage"] not in STAGES:
        yield (
            f"stage: {values['stage']!r} is not a stage. Use finished (the default), app (the student "
            f"writes the service and the site), bare (the student does everything) or broken (a finished "
            f"server with one fault to find and fix)."
        )
    yield from _fault_problems(values)
    if values["language"] not in LANGUAGES:
        languages = ", ".join(LANGUAGES)
        yield f"language: {values['language']!r} is not one of the rubric's languages: {languages}."


def _fault_problems(values: Values) -> Iterator[str]:
    fault = values["fault"] or ""
    if not fault:
        return
    if fault not in FAULTS:
        yield f"fault: {fault!r} is not a fault of the catalogue: {', '.join(FAULTS)} (see docs/faults.md)."
    elif values["stage"] != "broken":
        yield (
            f"fault: {fault} is only applied at stage broken; set stage broken too (or, in a roster, "
            f"give the student's row the stage broken), or remove the fault."
        )
    elif values["recipe"] in RECIPES and fault not in _applicable(values):
        yield (
            f"fault: {fault} does not apply to this server (recipe {values['recipe']}, database "
            f"{values['database']}); it can have: {', '.join(_applicable(values))}."
        )


def _applicable(values: Values) -> list[str]:
    database = values["database"] not in (None, "none")
    return applicable(values["recipe"], database, not text_of(values, "appRepo"))


def _letsencrypt_problems(ports: list[int], email: str, names: list[str]) -> Iterator[str]:
    if 80 not in ports:
        yield (
            "tls letsencrypt needs port 80 open: Let's Encrypt checks the domain over "
            "http://NAME/.well-known/acme-challenge/. Add 80 to openPorts."
        )
    if not _EMAIL.fullmatch(email):
        yield (
            "tls letsencrypt needs tlsEmail, the address Let's Encrypt writes to before a "
            "certificate expires (one address: no blanks, quotes, backslashes or control characters): "
            "`pulumi config set tlsEmail teacher@your-school.org`."
        )
    for name in names:
        reason = why_not_public(name)
        if reason:
            yield (
                f"tls letsencrypt: {name!r} {reason}, so it cannot be a public domain. Let's Encrypt "
                f"only issues certificates for names that public DNS resolves to the server, never "
                f"for names that exist only in /etc/hosts. Use a domain you control (e.g. "
                f"flask.your-school.org, with a DNS A record for the server's IP), or tls self-signed."
            )
