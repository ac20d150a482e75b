"""Stack config -> validated settings.

The keys, their types and defaults are declared once, in Pulumi.yaml. This module
reads that declaration, applies the defaults, checks every value and either returns
a Settings or raises ConfigError listing every problem with how to fix it.
Nothing here imports Pulumi: `pulumi up` and `python -m flasklab` share it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from flasklab.recipes import DATABASES, RECIPES, TLS_MODES, DatabaseEngine, Recipe, TlsMode

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT_FILE = PROJECT_DIR / "Pulumi.yaml"
NAMESPACE = "flasklab"

DEBIAN_RELEASES = {"12": "bookworm", "13": "trixie"}

# Host names as Nginx and Apache match them. Unlike DNS host names, an underscore
# is allowed: tutorial 001 serves "practica_flask" through /etc/hosts.
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_SERVER_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_APP_ENTRY = re.compile(rf"^(?P<module>{_IDENTIFIER}(\.{_IDENTIFIER})*):(?P<callable>{_IDENTIFIER}(\(\))?)$")
_GIT_URL = re.compile(r"^(https://|http://|ssh://|git://|file:///|[\w.-]+@[\w.-]+:)\S+$")
_GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[\w./-]+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
_SSH_KEY = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")
_RELATIVE_PATH = re.compile(r"^(?!/)(?!.*\.\.)[\w./-]+$")
_URL_PATH = re.compile(r"^(/[\w.-]+)+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Characters an env-file value cannot hold and still read the same to sh, systemd and
# python-dotenv (the file is KEY='value').
_ENV_VALUE_FORBIDDEN = ("'", "\\", "\n", "\r", "\0")
PYTHON_ENVS = ("venv", "pipenv")
# Settings whose values are secrets: under Pulumi they must be set with --secret.
SECRET_SETTINGS = ("databasePassword", "secretKey")
# Names flasklab itself writes into the app's env file, and the setting that sets each.
RESERVED_ENV = {"SECRET_KEY": "secretKey", "DATABASE_URL": "database and databasePassword"}
_EMAIL = re.compile(r"^[^@\s'\\]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
# Names that exist only in /etc/hosts or inside a network: no public DNS, no Let's Encrypt.
_PRIVATE_SUFFIXES = (
    ".test",
    ".local",
    ".lan",
    ".localhost",
    ".invalid",
    ".example",
    ".internal",
    ".home.arpa",
)
_EC2_HOSTNAME = re.compile(r"(^ip-\d+-\d+-\d+-\d+\.|^ec2-\d+-\d+-\d+-\d+\.|\.amazonaws\.com$)")


class ConfigError(Exception):
    """Every problem found in a stack's config, each with how to fix it."""

    def __init__(self, problems: list[str], stack: str = "") -> None:
        self.problems = problems
        where = f"stack '{stack}'" if stack else "this stack"
        lines = [f"flasklab cannot use the config of {where}; nothing was created:"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class AppSettings:
    name: str
    repo: str  # empty: the sample app that ships with flasklab
    ref: str
    module: str
    callable: str
    requirements: str
    python_env: str
    static_dir: str  # relative to the app's folder; empty: no static files
    static_url: str
    workers: int
    threads: int
    # The app's settings (appEnv), in the order they were given.
    env: tuple[tuple[str, str], ...] = ()
    # A command run once before the app starts (appMigrate); empty: none.
    migrate: str = ""

    @property
    def entry(self) -> str:
        return f"{self.module}:{self.callable}"

    @property
    def user(self) -> str:
        return self.name

    @property
    def dir(self) -> str:
        return f"/var/www/{self.name}"

    @property
    def venv(self) -> str:
        return f"{self.dir}/.venv"

    @property
    def socket(self) -> str:
        return f"/run/{self.name}.sock"

    @property
    def config_dir(self) -> str:
        """flasklab's files for the app that are not part of its repository."""
        return f"/etc/flasklab/{self.name}"

    @property
    def env_file(self) -> str:
        return f"{self.config_dir}/env"

    @property
    def log_dir(self) -> str:
        return f"/var/log/{self.name}"

    @property
    def factory(self) -> bool:
        """The entry names an app factory, e.g. create_app(), that must be called."""
        return self.callable.endswith("()")


@dataclass(frozen=True)
class Settings:
    stack: str
    recipe: Recipe
    debian_release: str
    ami_id: str
    instance_type: str
    root_volume_gib: int
    server_name: str
    server_aliases: tuple[str, ...]
    open_ports: tuple[int, ...]
    ssh_cidrs: tuple[str, ...]
    web_cidrs: tuple[str, ...]
    key_name: str
    ssh_public_key: str
    course: str
    app: AppSettings
    tls: TlsMode
    tls_email: str
    database: DatabaseEngine | None
    # Chosen with `pulumi config set --secret`; empty: generated per stack (flasklab.app_secrets).
    # Never shown: they are secrets.
    chosen_secret_key: str = field(default="", repr=False)
    chosen_database_password: str = field(default="", repr=False)

    @property
    def https(self) -> bool:
        return self.tls.name != "none"

    @property
    def debian_codename(self) -> str:
        return DEBIAN_RELEASES[self.debian_release]

    @property
    def server_names(self) -> tuple[str, ...]:
        return (self.server_name, *self.server_aliases)


@cache
def declared_keys() -> dict[str, dict[str, Any]]:
    """The config keys declared in Pulumi.yaml (its config block, then its mapConfig
    block): name -> {type, description, default}."""
    project = yaml.safe_load(PROJECT_FILE.read_text())
    blocks = (project.get("config") or {}, project.get("mapConfig") or {})
    return {
        key: spec
        for block in blocks
        for key, spec in block.items()
        if ":" not in key and isinstance(spec, dict)
    }


def _coerce(key: str, value: Any, spec: Mapping[str, Any], problems: list[str]) -> Any:
    """Bring a raw value (a string from Pulumi, or YAML from a stack file) to its declared type."""
    kind = spec["type"]
    fix = f"see `pulumi config set {key} ...` in the README"
    if kind == "string":
        if isinstance(value, bool | int | float):
            return str(value)
        if not isinstance(value, str):
            problems.append(f"{key} must be a text value, not {value!r}; {fix}.")
            return None
        return value
    if kind == "integer":
        if isinstance(value, bool):
            problems.append(f"{key} must be a whole number, not {value!r}.")
            return None
        try:
            return int(str(value).strip())
        except ValueError:
            problems.append(
                f"{key} must be a whole number, not {value!r}: e.g. "
                f"`pulumi config set {key} {spec['default']}`."
            )
            return None
    if kind == "array":
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
            except yaml.YAMLError:
                value = None
        if not isinstance(value, list):
            problems.append(
                f"{key} must be a list: set items with `pulumi config set --path '{key}[0]' VALUE`."
            )
            return None
        item_spec = {"type": spec.get("items", {}).get("type", "string"), "default": ""}
        items = [_coerce(f"{key}[{i}]", item, item_spec, problems) for i, item in enumerate(value)]
        return [item.strip() if isinstance(item, str) else item for item in items]
    if kind == "object":
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError:
                value = None
        if not isinstance(value, dict):
            problems.append(
                f"{key} must be a map of names to values: set one with "
                f"`pulumi config set --path {key}.NAME VALUE`."
            )
            return None
        return {
            str(name): _coerce(f"{key}.{name}", item, {"type": "string", "default": ""}, problems)
            for name, item in value.items()
        }
    raise AssertionError(f"Pulumi.yaml declares {key} with unsupported type {kind}")


def _check_cidrs(key: str, cidrs: list[str], problems: list[str]) -> None:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            problems.append(
                f"{key}: {cidr!r} is not a valid CIDR range ({error}). Write an address with its "
                f"prefix length, e.g. 203.0.113.7/32 for one address or 0.0.0.0/0 for everyone."
            )


def _check_server_name(key: str, name: str, problems: list[str]) -> None:
    if not name or len(name) > 253 or not _SERVER_NAME.match(name):
        problems.append(
            f"{key}: {name!r} is not a valid server name. Use lowercase letters, digits, '-' and "
            f"'_' in dot-separated parts that do not start or end with '-', e.g. practica_flask "
            f"or flask.example.org."
        )


def load_settings(raw: Mapping[str, Any], stack: str = "dev", secret_keys: Collection[str] = ()) -> Settings:
    """Validate a stack's config (keys without the 'flasklab:' prefix) into Settings.

    `secret_keys` are the keys whose values are secrets (set with --secret); the secret
    settings are refused in plain text. Raises ConfigError with every problem at once,
    so a teacher fixes a stack in one go.
    """
    declared = declared_keys()
    problems: list[str] = []
    for key in raw:
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            problems.append(
                f"{key} is not a flasklab setting.{hint} Remove it with "
                f"`pulumi config rm {key}`; the settings are listed in Pulumi.yaml and the README."
            )
    values: dict[str, Any] = {}
    for key, spec in declared.items():
        value = raw.get(key)
        values[key] = spec["default"] if value is None else _coerce(key, value, spec, problems)

    recipe = RECIPES.get(values["recipe"] or "")
    if recipe is None:
        problems.append(
            f"recipe: {values['recipe']!r} is not a flasklab recipe. "
            f"Choose one of: {', '.join(sorted(RECIPES))}."
        )

    release = values["debianRelease"]
    if release not in DEBIAN_RELEASES:
        problems.append(
            f'debianRelease: {release!r} is not supported. Use "13" (trixie, the default) '
            f'or "12" (bookworm): `pulumi config set debianRelease 13`.'
        )

    ami_id = (values["amiId"] or "").strip()
    if ami_id and not _AMI_ID.match(ami_id):
        problems.append(
            f"amiId: {ami_id!r} is not an AMI id (ami- followed by 8 or 17 hex digits). Leave it "
            f"empty to use the newest official Debian image: `pulumi config rm amiId`."
        )

    instance_type = values["instanceType"]
    if instance_type is not None and not _INSTANCE_TYPE.match(instance_type):
        problems.append(f"instanceType: {instance_type!r} is not an EC2 instance type, e.g. t2.medium.")

    size = values["rootVolumeGiB"]
    if size is not None and not 8 <= size <= 100:
        problems.append(f"rootVolumeGiB: {size} is out of range; use 8 to 100 (GiB).")

    server_name = values["serverName"] or ""
    _check_server_name("serverName", server_name, problems)
    aliases = values["serverAliases"] or []
    for alias in aliases:
        _check_server_name("serverAliases", alias, problems)
    if server_name in aliases or len(set(aliases)) != len(aliases):
        problems.append("serverAliases repeats a name; list every name once.")

    ports = values["openPorts"] or []
    for port in ports:
        if port is not None and not 1 <= port <= 65535:
            problems.append(f"openPorts: {port} is not a TCP port; use numbers from 1 to 65535.")
    if len(set(ports)) != len(ports):
        problems.append("openPorts repeats a port; list every port once.")

    for key in ("sshCidrs", "webCidrs"):
        _check_cidrs(key, values[key] or [], problems)

    key_name = (values["keyName"] or "").strip()
    public_key = (values["sshPublicKey"] or "").strip()
    if key_name and public_key:
        problems.append(
            "keyName and sshPublicKey are both set; use one: `pulumi config rm sshPublicKey` to use "
            "the existing key pair, or `pulumi config rm keyName` to create one from the public key."
        )
    if public_key and not _SSH_KEY.match(public_key):
        problems.append(
            "sshPublicKey is not an OpenSSH public key; paste the one line of your .pub file "
            "(it starts with ssh-ed25519 or ssh-rsa), never the private key."
        )

    app_name = values["appName"] or ""
    if not _APP_NAME.match(app_name):
        problems.append(
            f"appName: {app_name!r} must start with a lowercase letter and hold only lowercase "
            f"letters, digits and '_' (at most 31), e.g. flask_app: it names a Unix user and a unit."
        )

    repo = (values["appRepo"] or "").strip()
    if repo and not _GIT_URL.match(repo):
        problems.append(
            f"appRepo: {repo!r} is not a git URL; use https://host/owner/repo.git, "
            f"git@host:owner/repo.git or file:///path (or leave it empty for the sample app)."
        )
    ref = (values["appRef"] or "").strip()
    if not _GIT_REF.match(ref):
        problems.append(f"appRef: {ref!r} is not a branch, tag or commit name, e.g. main.")
    entry = _APP_ENTRY.match((values["appEntry"] or "").strip())
    if entry is None:
        problems.append(
            f"appEntry: {values['appEntry']!r} is not module:callable. Write the Python module, a "
            f'colon and the WSGI app in it, e.g. wsgi:app, app:app or "myapp:create_app()".'
        )
    requirements = (values["appRequirements"] or "").strip()
    if not _RELATIVE_PATH.match(requirements):
        problems.append(
            f"appRequirements: {requirements!r} must be a path inside the repository, e.g. requirements.txt."
        )
    workers = values["workers"]
    if workers is not None and not 1 <= workers <= 32:
        problems.append(f"workers: {workers} is out of range; use 1 to 32 (2 per vCPU is usual).")
    threads = values["threads"]
    if threads is not None and not 1 <= threads <= 64:
        problems.append(f"threads: {threads} is out of range; use 1 to 64.")

    python_env = values["pythonEnv"]
    if python_env not in PYTHON_ENVS:
        problems.append(
            f"pythonEnv: {python_env!r} is not a kind of Python environment flasklab makes; "
            f"use venv or pipenv: `pulumi config set pythonEnv venv`."
        )
    static_dir = (values["appStatic"] or "").strip().strip("/")
    if static_dir and not _RELATIVE_PATH.match(static_dir):
        problems.append(
            f"appStatic: {static_dir!r} must be a folder inside the repository, e.g. static or "
            f"app/static (or empty when the app has no static files)."
        )
    static_url = (values["appStaticUrl"] or "").strip().rstrip("/")
    if static_dir and not _URL_PATH.match(static_url):
        problems.append(f"appStaticUrl: {values['appStaticUrl']!r} is not a URL path; write it like /static.")

    app_env = values["appEnv"] or {}
    for name, value in app_env.items():
        if not _ENV_NAME.match(name):
            problems.append(
                f"appEnv: {name!r} is not an environment variable name; use letters, digits and "
                f"'_', not starting with a digit, e.g. SECRET_KEY."
            )
        if isinstance(value, str) and any(char in value for char in _ENV_VALUE_FORBIDDEN):
            # Never echo the value: it may be a secret.
            problems.append(
                f"appEnv.{name}: the value holds a single quote, a backslash or a line break, which "
                f"the env file cannot carry unchanged to every program that reads it. Choose a "
                f"value without them (a generated password: letters and digits)."
            )

    for name, setting in RESERVED_ENV.items():
        if name in app_env:
            problems.append(
                f"appEnv.{name}: flasklab writes {name} into the env file itself, from {setting}; "
                f"remove it with `pulumi config rm --path appEnv.{name}`."
            )

    migrate = (values["appMigrate"] or "").strip()
    if any(char in migrate for char in "\n\r\0"):
        problems.append("appMigrate must be one command line, e.g. `flask db upgrade`.")

    database = DATABASES.get(values["database"] or "")
    if values["database"] != "none" and database is None:
        problems.append(
            f"database: {values['database']!r} is not a database flasklab installs. Use none, mariadb "
            f"(MySQL, tutorial 003) or postgresql (tutorial 004): `pulumi config set database mariadb`."
        )
    for key in SECRET_SETTINGS:
        value = values[key] or ""
        if value and key not in secret_keys:
            problems.append(
                f"{key} is stored in plain text in the stack's file. Set it as a secret: "
                f"`pulumi config set --secret {key}` (it asks for the value), or remove it with "
                f"`pulumi config rm {key}` to have one generated."
            )
        if value and any(char in value for char in (*_ENV_VALUE_FORBIDDEN, '"')):
            problems.append(
                f"{key}: the value holds a quote, a backslash or a line break, which the env file and "
                f"the database's SQL cannot carry unchanged. Choose one with letters, digits and "
                f"punctuation other than those, or remove it to have one generated."
            )
        elif value and len(value) < 12:
            problems.append(f"{key}: use at least 12 characters, or remove it to have one generated.")
    if values["databasePassword"] and database is None:
        problems.append(
            "databasePassword is set but database is none: set database (mariadb or postgresql) "
            "or remove it with `pulumi config rm databasePassword`."
        )

    tls = TLS_MODES.get(values["tls"] or "")
    tls_email = (values["tlsEmail"] or "").strip()
    if tls is None:
        problems.append(
            f"tls: {values['tls']!r} is not a way flasklab sets up HTTPS. Use none, self-signed "
            f"(browsers warn; fine for names in /etc/hosts) or letsencrypt (a real public domain)."
        )
    elif tls.name != "none" and 443 not in ports:
        problems.append(
            f"tls {tls.name} serves HTTPS on port 443, which openPorts does not open: "
            f"`pulumi config set --path 'openPorts[{len(ports)}]' 443`."
        )
    if tls is not None and tls.name == "letsencrypt":
        if 80 not in ports:
            problems.append(
                "tls letsencrypt needs port 80 open: Let's Encrypt checks the domain over "
                "http://NAME/.well-known/acme-challenge/. Add 80 to openPorts."
            )
        if not _EMAIL.match(tls_email):
            problems.append(
                "tls letsencrypt needs tlsEmail, the address Let's Encrypt writes to before a "
                "certificate expires: `pulumi config set tlsEmail teacher@your-school.org`."
            )
        for name in (server_name, *aliases):
            reason = _why_not_public(name)
            if reason:
                problems.append(
                    f"tls letsencrypt: {name!r} {reason}, so it cannot be a public domain. Let's Encrypt "
                    f"only issues certificates for names that public DNS resolves to the server, never "
                    f"for names that exist only in /etc/hosts. Use a domain you control (e.g. "
                    f"flask.your-school.org, with a DNS A record for the server's IP), or tls self-signed."
                )
    elif tls_email and tls is not None:
        problems.append(
            "tlsEmail is only used with tls letsencrypt; remove it with `pulumi config rm tlsEmail`."
        )

    if problems:
        raise ConfigError(problems, stack)

    assert recipe is not None and tls is not None and entry is not None
    return Settings(
        stack=stack,
        recipe=recipe,
        debian_release=release,
        ami_id=ami_id,
        instance_type=instance_type,
        root_volume_gib=size,
        server_name=server_name,
        server_aliases=tuple(aliases),
        open_ports=tuple(ports),
        ssh_cidrs=tuple(values["sshCidrs"]),
        web_cidrs=tuple(values["webCidrs"]),
        key_name=key_name,
        ssh_public_key=public_key,
        course=values["course"],
        app=AppSettings(
            name=app_name,
            repo=repo,
            ref=ref,
            module=entry["module"],
            callable=entry["callable"],
            requirements=requirements,
            python_env=python_env,
            static_dir=static_dir,
            static_url=static_url,
            workers=workers,
            threads=threads,
            env=tuple(app_env.items()),
            migrate=migrate,
        ),
        tls=tls,
        tls_email=tls_email,
        database=database,
        chosen_secret_key=values["secretKey"] or "",
        chosen_database_password=values["databasePassword"] or "",
    )


def _why_not_public(name: str) -> str:
    """Why a server name cannot be a public DNS name ('' if it can be)."""
    if "." not in name:
        return "has no dot"
    if all(label.isdigit() for label in name.split(".")):
        return "is an IP address, not a domain name"
    if "_" in name:
        return "holds an underscore, which DNS host names cannot"
    for suffix in _PRIVATE_SUFFIXES:
        if name.endswith(suffix):
            return f"ends in {suffix}, which is reserved for private use"
    if _EC2_HOSTNAME.search(name):
        return "is one of EC2's own host names, which change with the server and are not yours"
    return ""
