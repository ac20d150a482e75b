"""Stack config -> validated settings.

The keys, their types and defaults are declared once, in Pulumi.yaml. This module
reads that declaration and loads a stack's config in three stages: coerce every value
to its declared type, check every concern (the machine, its network, the app, its
settings, its database and secrets, HTTPS), then build the Settings. Any problem
raises ConfigError listing every problem at once, each with how to fix it.
Nothing here imports Pulumi: `pulumi up` and `python -m flasklab` share it.
"""

from __future__ import annotations

import difflib
import ipaddress
import keyword
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from flasklab.app_secrets import FORBIDDEN_IN_CHOSEN, MIN_CHOSEN_LENGTH, RULES, AppSecrets
from flasklab.contract import LINE_BREAKS
from flasklab.recipes import DATABASES, RECIPES, STAGES, TLS_MODES, DatabaseEngine, Recipe, Stage, TlsMode
from flasklab.reserved_names import SQL_RESERVED, TAKEN_NAMES
from flasklab.rubric_texts import LANGUAGES
from flasklab.stop_schedule import StopScheduleSettings, stop_schedule_of, stop_schedule_problems

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT_FILE = PROJECT_DIR / "Pulumi.yaml"
NAMESPACE = "flasklab"

DEBIAN_RELEASES = {"12": "bookworm", "13": "trixie"}

# The ranges of the whole-number settings, written once: the checks and their messages
# use them, and a test holds Pulumi.yaml's descriptions ("8 to 100") to them.
RANGES: dict[str, tuple[int, int]] = {
    "rootVolumeGiB": (8, 100),
    "workers": (1, 32),
    "threads": (1, 64),
    "readyTimeoutMinutes": (2, 60),
    "autoStopIdleMinutes": (0, 1440),
}
# What a range's message adds after it.
_RANGE_HINTS = {
    "rootVolumeGiB": " (GiB)",
    "workers": " (2 per vCPU is usual)",
    "readyTimeoutMinutes": " (minutes)",
    "autoStopIdleMinutes": " (minutes; 0 turns the idle stop off: `pulumi config set autoStopIdleMinutes 0`)",
}
PORT_RANGE = (1, 65535)
# appName names a Unix user, a systemd unit and a database user.
APP_NAME_MAX_LENGTH = 31
SERVER_NAME_MAX_LENGTH = 253

# Host names as Nginx and Apache match them. Unlike DNS host names, an underscore
# is allowed: tutorial 001 serves "practica_flask" through /etc/hosts.
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_SERVER_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_APP_NAME = re.compile(rf"^[a-z][a-z0-9_]{{0,{APP_NAME_MAX_LENGTH - 1}}}$")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_APP_ENTRY = re.compile(rf"^(?P<module>{_IDENTIFIER}(\.{_IDENTIFIER})*):(?P<callable>{_IDENTIFIER}(\(\))?)$")
# No control characters: sh drops a NUL as it reads the deploy script, changing the value.
_GIT_URL = re.compile(r"^(https://|http://|ssh://|git://|file:///|[\w.-]+@[\w.-]+:)[^\s\x00-\x1f\x7f]+$")
_GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[\w./-]+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
# EC2 imports RSA and ED25519 public keys only.
_SSH_KEY = re.compile(r"^ssh-(ed25519|rsa) [A-Za-z0-9+/=]+( [^\x00-\x1f\x7f]*)?$")
_RELATIVE_PATH = re.compile(r"^(?!/)(?!.*\.\.)[\w./-]+$")
_URL_PATH = re.compile(r"^(/[\w.-]+)+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----\n.+\n-----END \1 PRIVATE KEY-----", re.DOTALL
)
_READY_PATH = re.compile(r"/[\w./~-]*(\?[\w=&.~%-]*)?")
READY_TEXT_MAX_LENGTH = 200
# Text settings that no pattern holds to one line, with AWS's limits on their length: a
# tag's value (course) and a key pair's name (keyName).
FREE_TEXT_MAX_LENGTH = {"course": 256, "keyName": 255}
# Characters an env-file value cannot hold and still read the same to sh, systemd and
# python-dotenv (the file is KEY='value').
_ENV_VALUE_FORBIDDEN = ("'", "\\", *LINE_BREAKS)
PYTHON_ENVS = ("venv", "pipenv")
# Names flasklab itself writes into the app's env file, and the setting that sets each.
RESERVED_ENV = {
    "SECRET_KEY": "secretKey",
    "DATABASE_URL": "database and databasePassword",
    "FLASK_SESSION_COOKIE_SECURE": "tls",
}
_EMAIL = re.compile(r"^[^@\s'\\\x00-\x1f\x7f]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
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

# A stack's config after coercion: every declared key -> its value in the declared type
# (None where the raw value could not be coerced: a problem says so).
_Values = dict[str, Any]


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
    # What proves the app serves: the path every check requests by each server name, and
    # text its page must hold ('' for any answer; redirects within the site are followed).
    ready_path: str = "/"
    ready_text: str = ""

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
    # The server powers itself off after this many minutes without use (0: never).
    auto_stop_idle_minutes: int
    # Chosen with `pulumi config set --secret`; empty: generated per stack (flasklab.app_secrets).
    # Never shown: they are secrets.
    chosen_secrets: AppSecrets = field(default=AppSecrets(), repr=False)
    # `pulumi up` waits until the server serves (waitForReady), at most this long, logging in
    # with this key when the stack's key pair is not its own ('' for none: HTTP only).
    wait_for_ready: bool = True
    ready_timeout_minutes: int = 20
    ssh_private_key: str = field(default="", repr=False)
    # A class stack's student (a roster row); '' for a stack of one student.
    student: str = ""
    # When EventBridge Scheduler stops the stack's servers (stopSchedule); None: never.
    stop_schedule: StopScheduleSettings | None = None
    # How far the deploy goes (an exercise's starting point), and the rubric's language.
    stage: Stage = STAGES["finished"]
    language: str = "en"

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
    """The config keys declared in Pulumi.yaml's config block: name -> {type, description, default}."""
    project = yaml.safe_load(PROJECT_FILE.read_text())
    return {
        key: spec
        for key, spec in (project.get("config") or {}).items()
        if ":" not in key and isinstance(spec, dict)
    }


def setting_value(raw: Mapping[str, Any], key: str) -> Any:
    """One setting's value in its declared type: its default when unset or unreadable (then
    load_settings says what is wrong with it)."""
    spec = declared_keys()[key]
    value = raw.get(key)
    coerced = None if value is None else _coerce(key, value, spec, [])
    return spec["default"] if coerced is None else coerced


def load_settings(raw: Mapping[str, Any], stack: str = "dev", secret_keys: Collection[str] = ()) -> Settings:
    """Validate a stack's config (keys without the 'flasklab:' prefix) into Settings.

    `secret_keys` are the keys whose values are secrets (set with --secret); the secret
    settings are refused in plain text. Raises ConfigError with every problem at once,
    so a teacher fixes a stack in one go.
    """
    problems: list[str] = []
    values = _coerce_all(raw, problems)
    problems += [
        *_machine_problems(values),
        *_network_problems(values),
        *_free_text_problems(values),
        *_app_code_problems(values),
        *_app_runtime_problems(values),
        *_readiness_problems(values),
        *_readiness_login_problems(values, secret_keys),
        *_app_settings_problems(values),
        *_database_and_secret_problems(values, secret_keys),
        *_tls_problems(values),
        *stop_schedule_problems(values),
        *_exercise_problems(values),
    ]
    if problems:
        raise ConfigError(problems, stack)
    return _build(values, stack)


# Stage 1: coerce.


def _coerce_all(raw: Mapping[str, Any], problems: list[str]) -> _Values:
    """Every declared key's value in its declared type, its default when unset; a problem
    for each key that is not declared and each value that cannot be coerced."""
    declared = declared_keys()
    for key in raw:
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            problems.append(
                f"{key} is not a flasklab setting.{hint} Remove it with "
                f"`pulumi config rm {key}`; the settings are listed in Pulumi.yaml and the README."
            )
    values: _Values = {}
    for key, spec in declared.items():
        value = raw.get(key)
        if key in raw and value is None:
            problems.append(
                f"{key} is empty (null in the stack file); give it a value, or remove it to use the "
                f"default: `pulumi config rm {key}`."
            )
        values[key] = spec["default"] if value is None else _coerce(key, value, spec, problems)
    return values


def _coerce(key: str, value: Any, spec: Mapping[str, Any], problems: list[str]) -> Any:
    """Bring a raw value (a string from Pulumi, or YAML from a stack file) to its declared type."""
    kind = spec["type"]
    if kind == "string":
        if isinstance(value, bool | float):
            # YAML read it as something else: 1.10 is the number 1.1, on is true. Refused;
            # its text goes on to the checks, so nothing more is said of it.
            problems.append(
                f"{key}: YAML reads this value as {value!r}, not as the text you wrote; put it in quotes "
                f'in the stack file (flasklab:{key}: "...") or set it with `pulumi config set {key} ...`.'
            )
            return str(value)
        if isinstance(value, int):
            return str(value)
        if not isinstance(value, str):
            problems.append(
                f"{key} must be a text value, not {value!r}; see `pulumi config set {key} ...` in the README."
            )
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
    if kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            problems.append(f"{key} must be true or false, not {value!r}: `pulumi config set {key} false`.")
            return None
        return value
    if kind == "array":
        return _coerce_array(key, value, spec, problems)
    if kind == "object":
        return _coerce_object(key, value, problems)
    raise AssertionError(f"Pulumi.yaml declares {key} with unsupported type {kind}")


def _coerce_array(key: str, value: Any, spec: Mapping[str, Any], problems: list[str]) -> list[Any] | None:
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        except yaml.YAMLError:
            value = None
    if not isinstance(value, list):
        problems.append(f"{key} must be a list: set items with `pulumi config set --path '{key}[0]' VALUE`.")
        return None
    item_spec = {"type": spec.get("items", {}).get("type", "string"), "default": ""}
    items = [_coerce(f"{key}[{i}]", item, item_spec, problems) for i, item in enumerate(value)]
    return [item.strip() if isinstance(item, str) else item for item in items]


def _coerce_object(key: str, value: Any, problems: list[str]) -> dict[str, Any] | None:
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
    item_spec = {"type": "string", "default": ""}
    return {str(name): _coerce(f"{key}.{name}", item, item_spec, problems) for name, item in value.items()}


def _hidden_or_self(path: str) -> bool:
    """A relative path that is the repository itself or goes through a hidden folder."""
    return any(part in ("", ".") or part.startswith(".") for part in path.split("/"))


# The values several stages read the same way.


def _text(values: _Values, key: str) -> str:
    """A text setting without surrounding blanks ('' when unset or not coerced)."""
    return str(values[key] or "").strip()


def _app_entry(values: _Values) -> re.Match[str] | None:
    return _APP_ENTRY.fullmatch(_text(values, "appEntry"))


def _static_dir(values: _Values) -> str:
    return _text(values, "appStatic").strip("/")


def _static_url(values: _Values) -> str:
    return _text(values, "appStaticUrl").rstrip("/")


def _server_names(values: _Values) -> list[str]:
    return [values["serverName"] or "", *(values["serverAliases"] or [])]


# Stage 2: check, one function per concern. Each reads only the values.


def _machine_problems(values: _Values) -> Iterator[str]:
    """recipe, debianRelease, amiId, instanceType, rootVolumeGiB, autoStopIdleMinutes."""
    if values["recipe"] not in RECIPES:
        yield (
            f"recipe: {values['recipe']!r} is not a flasklab recipe. "
            f"Choose one of: {', '.join(sorted(RECIPES))}."
        )
    release = values["debianRelease"]
    if release not in DEBIAN_RELEASES:
        yield (
            f'debianRelease: {release!r} is not supported. Use "13" (trixie, the default) '
            f'or "12" (bookworm): `pulumi config set debianRelease 13`.'
        )
    ami_id = _text(values, "amiId")
    if ami_id and not _AMI_ID.fullmatch(ami_id):
        yield (
            f"amiId: {ami_id!r} is not an AMI id (ami- followed by 8 or 17 hex digits). Leave it "
            f"empty to use the newest official Debian image: `pulumi config rm amiId`."
        )
    instance_type = values["instanceType"]
    if instance_type is not None and not _INSTANCE_TYPE.fullmatch(instance_type):
        yield f"instanceType: {instance_type!r} is not an EC2 instance type, e.g. t2.medium."
    yield from _range_problems(values, "rootVolumeGiB")
    yield from _range_problems(values, "autoStopIdleMinutes")


def _network_problems(values: _Values) -> Iterator[str]:
    """serverName, serverAliases, openPorts, sshCidrs, webCidrs, keyName, sshPublicKey."""
    server_name, *aliases = _server_names(values)
    yield from _server_name_problems("serverName", server_name)
    for alias in aliases:
        yield from _server_name_problems("serverAliases", alias)
    if server_name in aliases or len(set(aliases)) != len(aliases):
        yield "serverAliases repeats a name; list every name once."
    yield from _port_problems(values["openPorts"] or [])
    for key in ("sshCidrs", "webCidrs"):
        yield from _cidr_problems(key, values[key] or [])
    key_name = _text(values, "keyName")
    public_key = _text(values, "sshPublicKey")
    if key_name and public_key:
        yield (
            "keyName and sshPublicKey are both set; use one: `pulumi config rm sshPublicKey` to use "
            "the existing key pair, or `pulumi config rm keyName` to create one from the public key."
        )
    if public_key and not _SSH_KEY.fullmatch(public_key):
        yield (
            "sshPublicKey is not an OpenSSH public key EC2 imports; paste the one line of your .pub "
            "file, an ED25519 or RSA key (it starts with ssh-ed25519 or ssh-rsa), never the private key."
        )


def _free_text_problems(values: _Values) -> Iterator[str]:
    """course and keyName: any text, on one line (YAML would split it on the server)."""
    for key, most in FREE_TEXT_MAX_LENGTH.items():
        if any(char in (values[key] or "") for char in LINE_BREAKS):
            yield f"{key} must be one line: it holds a line break."
        if len(values[key] or "") > most:
            yield f"{key} is {len(values[key])} characters; AWS takes at most {most}: shorten it."


def _readiness_login_problems(values: _Values, secret_keys: Collection[str]) -> Iterator[str]:
    """sshPrivateKey: how `pulumi up` logs in to wait for a server whose key it did not make.
    Never echoed: it is a secret."""
    private_key = _text(values, "sshPrivateKey")
    if not private_key:
        return
    if "sshPrivateKey" not in secret_keys:
        yield (
            "sshPrivateKey is stored in plain text in the stack's file. Set it as a secret: "
            "`pulumi config set --secret sshPrivateKey < labsuser.pem`, or remove it with "
            "`pulumi config rm sshPrivateKey`."
        )
    if not _PRIVATE_KEY.match(private_key):
        yield (
            "sshPrivateKey is not a private key file's text (it starts with -----BEGIN ... PRIVATE "
            "KEY-----); set it from the file: `pulumi config set --secret sshPrivateKey < labsuser.pem`."
        )
    if not (_text(values, "keyName") or _text(values, "sshPublicKey")):
        yield (
            "sshPrivateKey is set, but neither keyName nor sshPublicKey: without them flasklab makes "
            "the stack's own key (the sshPrivateKey output). Remove it with `pulumi config rm sshPrivateKey`."
        )


def _app_code_problems(values: _Values) -> Iterator[str]:
    """appName, appRepo, appRef, appEntry, appRequirements: which code runs, as whom."""
    app_name = values["appName"] or ""
    if not _APP_NAME.fullmatch(app_name):
        yield (
            f"appName: {app_name!r} must start with a lowercase letter and hold only lowercase "
            f"letters, digits and '_' (at most {APP_NAME_MAX_LENGTH}), e.g. flask_app: it names a "
            f"Unix user and a unit."
        )
    elif app_name in TAKEN_NAMES or app_name.upper() in SQL_RESERVED:
        yield (
            f"appName: {app_name!r} is taken on the server (a system account or group, the login "
            f"user, a service, or a word SQL reserves); the app's user, database and units are named "
            f"after it. Choose another, e.g. {app_name}_app or flask_app."
        )
    repo = _text(values, "appRepo")
    if repo.startswith("-"):
        yield "appRepo must not start with '-' (git would read it as an option); write the repository's URL."
    elif repo and not _GIT_URL.fullmatch(repo):
        yield (
            f"appRepo: {repo!r} is not a git URL; use https://host/owner/repo.git, "
            f"git@host:owner/repo.git or file:///path (or leave it empty for the sample app)."
        )
    ref = _text(values, "appRef")
    if not _GIT_REF.fullmatch(ref):
        yield f"appRef: {ref!r} is not a branch, tag or commit name, e.g. main."
    entry = _app_entry(values)
    if entry is not None and any(keyword.iskeyword(part) for part in re.split(r"[.:()]+", entry.group(0))):
        yield (
            f"appEntry: {values['appEntry']!r} names a Python keyword as a module or callable, which "
            f"Python cannot import; rename that module or callable."
        )
    if entry is None:
        yield (
            f"appEntry: {values['appEntry']!r} is not module:callable. Write the Python module, a "
            f'colon and the WSGI app in it, e.g. wsgi:app, app:app or "myapp:create_app()".'
        )
    requirements = _text(values, "appRequirements")
    if not _RELATIVE_PATH.fullmatch(requirements) or _hidden_or_self(requirements):
        yield (
            f"appRequirements: {requirements!r} must be a path inside the repository, e.g. requirements.txt."
        )


def _app_runtime_problems(values: _Values) -> Iterator[str]:
    """workers, threads, pythonEnv, appStatic, appStaticUrl: how the app is run and served."""
    yield from _range_problems(values, "workers")
    yield from _range_problems(values, "threads")
    python_env = values["pythonEnv"]
    if python_env not in PYTHON_ENVS:
        yield (
            f"pythonEnv: {python_env!r} is not a kind of Python environment flasklab makes; "
            f"use venv or pipenv: `pulumi config set pythonEnv venv`."
        )
    static_dir = _static_dir(values)
    if static_dir and (
        _text(values, "appStatic").startswith("/") or not _RELATIVE_PATH.fullmatch(static_dir)
    ):
        yield (
            f"appStatic: {static_dir!r} must be a folder inside the repository, e.g. static or "
            f"app/static (or empty when the app has no static files)."
        )
    elif static_dir and _hidden_or_self(static_dir):
        yield (
            f"appStatic: {values['appStatic']!r} would publish the app's own folder or a hidden one "
            f"(.git holds the repository's history and any token in its URL); name the folder of "
            f"static files only, e.g. static, or leave it empty."
        )
    if static_dir and not _URL_PATH.fullmatch(_static_url(values)):
        yield f"appStaticUrl: {values['appStaticUrl']!r} is not a URL path; write it like /static."


def _readiness_problems(values: _Values) -> Iterator[str]:
    """readyPath and readyText: what proves that the app serves."""
    path = _text(values, "readyPath")
    if not _READY_PATH.fullmatch(path):
        yield (
            f"readyPath: {values['readyPath']!r} is not a URL path of the site; write it like / or "
            f"/health (letters, digits, '/', '.', '-', '_', '~' and an optional ?query)."
        )
    text = values["readyText"] or ""
    if any(char in text for char in LINE_BREAKS) or len(text) > READY_TEXT_MAX_LENGTH:
        yield f"readyText must be one line of at most {READY_TEXT_MAX_LENGTH} characters of the page."
    yield from _range_problems(values, "readyTimeoutMinutes")


def _app_settings_problems(values: _Values) -> Iterator[str]:
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
    if any(char in _text(values, "appMigrate") for char in LINE_BREAKS):
        yield "appMigrate must be one command line, e.g. `flask db upgrade`."


def _database_and_secret_problems(values: _Values, secret_keys: Collection[str]) -> Iterator[str]:
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


def _tls_problems(values: _Values) -> Iterator[str]:
    """tls and tlsEmail, with the ports and server names HTTPS needs (from the values)."""
    tls = TLS_MODES.get(values["tls"] or "")
    tls_email = _text(values, "tlsEmail")
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
        yield from _letsencrypt_problems(ports, tls_email, _server_names(values))
    elif tls_email and tls is not None:
        yield "tlsEmail is only used with tls letsencrypt; remove it with `pulumi config rm tlsEmail`."


def _exercise_problems(values: _Values) -> Iterator[str]:
    """stage and language."""
    if values["stage"] not in STAGES:
        yield (
            f"stage: {values['stage']!r} is not a stage. Use finished (the default), app (the student "
            f"writes the service and the site) or bare (the student does everything)."
        )
    if values["language"] not in LANGUAGES:
        languages = ", ".join(LANGUAGES)
        yield f"language: {values['language']!r} is not one of the rubric's languages: {languages}."


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
        reason = _why_not_public(name)
        if reason:
            yield (
                f"tls letsencrypt: {name!r} {reason}, so it cannot be a public domain. Let's Encrypt "
                f"only issues certificates for names that public DNS resolves to the server, never "
                f"for names that exist only in /etc/hosts. Use a domain you control (e.g. "
                f"flask.your-school.org, with a DNS A record for the server's IP), or tls self-signed."
            )


# The checks' helpers.


def _range_problems(values: _Values, key: str) -> Iterator[str]:
    value = values[key]
    low, high = RANGES[key]
    if value is not None and not low <= value <= high:
        yield f"{key}: {value} is out of range; use {low} to {high}{_RANGE_HINTS.get(key, '')}."


def _port_problems(ports: list[int]) -> Iterator[str]:
    low, high = PORT_RANGE
    for port in ports:
        if port is not None and not low <= port <= high:
            yield f"openPorts: {port} is not a TCP port; use numbers from {low} to {high}."
    if len(set(ports)) != len(ports):
        yield "openPorts repeats a port; list every port once."


def _cidr_problems(key: str, cidrs: list[str]) -> Iterator[str]:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            yield (
                f"{key}: {cidr!r} is not a valid CIDR range ({error}). Write an address with its "
                f"prefix length, e.g. 203.0.113.7/32 for one address or 0.0.0.0/0 for everyone."
            )


def _server_name_problems(key: str, name: str) -> Iterator[str]:
    if not name or len(name) > SERVER_NAME_MAX_LENGTH or not _SERVER_NAME.fullmatch(name):
        yield (
            f"{key}: {name!r} is not a valid server name. Use lowercase letters, digits, '-' and "
            f"'_' in dot-separated parts that do not start or end with '-', e.g. practica_flask "
            f"or flask.example.org."
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


# Stage 3: build, from values that passed every check.


def _build(values: _Values, stack: str) -> Settings:
    return Settings(
        stack=stack,
        recipe=RECIPES[values["recipe"]],
        debian_release=values["debianRelease"],
        ami_id=_text(values, "amiId"),
        instance_type=values["instanceType"],
        root_volume_gib=values["rootVolumeGiB"],
        server_name=values["serverName"],
        server_aliases=tuple(values["serverAliases"]),
        open_ports=tuple(values["openPorts"]),
        # As AWS takes them: prefix lengths, never netmasks (10.0.0.0/255.0.0.0 is 10.0.0.0/8).
        ssh_cidrs=tuple(str(ipaddress.ip_network(cidr)) for cidr in values["sshCidrs"]),
        web_cidrs=tuple(str(ipaddress.ip_network(cidr)) for cidr in values["webCidrs"]),
        key_name=_text(values, "keyName"),
        ssh_public_key=_text(values, "sshPublicKey"),
        course=values["course"],
        app=_build_app(values),
        tls=TLS_MODES[values["tls"]],
        tls_email=_text(values, "tlsEmail"),
        database=DATABASES.get(values["database"]),
        auto_stop_idle_minutes=values["autoStopIdleMinutes"],
        chosen_secrets=AppSecrets(**{rule.field: values[rule.setting] or "" for rule in RULES}),
        wait_for_ready=values["waitForReady"],
        ready_timeout_minutes=values["readyTimeoutMinutes"],
        # A private key file ends with a line break, which Pulumi's config keeps or not.
        ssh_private_key=_text(values, "sshPrivateKey") + "\n" if _text(values, "sshPrivateKey") else "",
        stop_schedule=stop_schedule_of(values),
        stage=STAGES[values["stage"]],
        language=values["language"],
    )


def _build_app(values: _Values) -> AppSettings:
    entry = _app_entry(values)
    assert entry is not None, "appEntry was checked"
    return AppSettings(
        name=values["appName"],
        repo=_text(values, "appRepo"),
        ref=_text(values, "appRef"),
        module=entry["module"],
        callable=entry["callable"],
        requirements=_text(values, "appRequirements"),
        python_env=values["pythonEnv"],
        static_dir=_static_dir(values),
        static_url=_static_url(values),
        workers=values["workers"],
        threads=values["threads"],
        env=tuple(values["appEnv"].items()),
        migrate=_text(values, "appMigrate"),
        ready_path=_text(values, "readyPath"),
        ready_text=values["readyText"] or "",
    )
