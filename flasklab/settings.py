"""Stack config -> validated settings.

The keys, their types and defaults are declared once, in Pulumi.yaml. This module
reads that declaration and loads a stack's config in three stages: coerce every value
to its declared type, check every concern (the machine, its network, the app, its
settings, its database and secrets, HTTPS), then build the Settings. Any problem
raises ConfigError listing every problem at once, each with how to fix it.
Nothing here imports Pulumi: `pulumi up` and `python -m flasklab` share it.

Split by concern: stage 1 (the declared keys and coercion) is flasklab/settings_coercion.py,
the network's checks flasklab/network_settings.py, the app's settings, database, HTTPS and
exercise checks flasklab/app_checks.py; their public names are importable from
here as before.
"""

from __future__ import annotations

import ipaddress
import keyword
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flasklab import app_checks, dns_zone, network_settings, settings_coercion
from flasklab.app_secrets import RULES, AppSecrets
from flasklab.contract import LINE_BREAKS
from flasklab.dns_zone import DnsZone
from flasklab.network_settings import network_problems, readiness_port_problems
from flasklab.recipes import DATABASES, RECIPES, STAGES, TLS_MODES, DatabaseEngine, Recipe, Stage, TlsMode
from flasklab.reserved_names import SQL_RESERVED, TAKEN_NAMES
from flasklab.settings_coercion import Values, coerce_all, server_names_of, text_of
from flasklab.stop_schedule import START, STOP, PowerSchedule, schedule_problems, schedules_of

# Names of the modules split from this one, importable from here as before.
PROJECT_DIR = settings_coercion.PROJECT_DIR
PROJECT_FILE = settings_coercion.PROJECT_FILE
declared_keys = settings_coercion.declared_keys
setting_value = settings_coercion.setting_value
PORT_RANGE = network_settings.PORT_RANGE
SERVER_NAME_MAX_LENGTH = network_settings.SERVER_NAME_MAX_LENGTH

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
# appName names a Unix user, a systemd unit and a database user.
APP_NAME_MAX_LENGTH = 31
_APP_NAME = re.compile(rf"^[a-z][a-z0-9_]{{0,{APP_NAME_MAX_LENGTH - 1}}}$")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_APP_ENTRY = re.compile(rf"^(?P<module>{_IDENTIFIER}(\.{_IDENTIFIER})*):(?P<callable>{_IDENTIFIER}(\(\))?)$")
# No control characters: sh drops a NUL as it reads the deploy script, changing the value.
_GIT_URL = re.compile(r"^(https://|http://|ssh://|git://|file:///|[\w.-]+@[\w.-]+:)[^\s\x00-\x1f\x7f]+$")
_GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[\w./-]+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
_RELATIVE_PATH = re.compile(r"^(?!/)(?!.*\.\.)[\w./-]+$")
_URL_PATH = re.compile(r"^(/[\w.-]+)+$")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----\n.+\n-----END \1 PRIVATE KEY-----", re.DOTALL
)
_READY_PATH = re.compile(r"/[\w./~-]*(\?[\w=&.~%-]*)?")
READY_TEXT_MAX_LENGTH = 200
# Text settings that no pattern holds to one line, with AWS's limits on their length: a
# tag's value (course) and a key pair's name (keyName).
FREE_TEXT_MAX_LENGTH = {"course": 256, "keyName": 255}
PYTHON_ENVS = ("venv", "pipenv")
_Values = Values


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
    stop_schedule: PowerSchedule | None = None
    # When it starts them (startSchedule); None: never.
    start_schedule: PowerSchedule | None = None
    # Each server gets an Elastic IP that stays through stops and starts (staticAddress).
    static_address: bool = False
    # A start link per student (startLink): a Lambda function starts their server.
    start_link: bool = False
    # The Route 53 hosted zone that names the servers (dnsZone, flasklab/dns_zone.py); None: off.
    dns_zone: DnsZone | None = None
    # How far the deploy goes (an exercise's starting point), and the rubric's language.
    stage: Stage = STAGES["finished"]
    language: str = "en"
    # Stage broken: the fault the teacher chose (flasklab/faults.py); '' for one chosen per
    # student (flasklab.compose.fault_of).
    fault: str = ""

    @property
    def https(self) -> bool:
        return self.tls.name != "none"

    @property
    def debian_codename(self) -> str:
        return DEBIAN_RELEASES[self.debian_release]

    @property
    def server_names(self) -> tuple[str, ...]:
        return (self.server_name, *self.server_aliases)


def load_settings(raw: Mapping[str, Any], stack: str = "dev", secret_keys: Collection[str] = ()) -> Settings:
    """Validate a stack's config (keys without the 'flasklab:' prefix) into Settings.

    `secret_keys` are the keys whose values are secrets (set with --secret); the secret
    settings are refused in plain text. Raises ConfigError with every problem at once,
    so a teacher fixes a stack in one go.
    """
    problems: list[str] = []
    values = coerce_all(raw, problems)
    problems += [
        *_machine_problems(values),
        *network_problems(values, server_names_of(values)),
        *_readiness_port_problems(values),
        *_free_text_problems(values),
        *_app_code_problems(values),
        *_app_runtime_problems(values),
        *_readiness_problems(values),
        *_readiness_login_problems(values, secret_keys),
        *app_checks.app_settings_problems(values),
        *app_checks.database_and_secret_problems(values, secret_keys),
        *app_checks.tls_problems(values),
        *schedule_problems(values),
        *dns_zone.problems(text_of(values, "dnsZone"), server_names_of(values)),
        *app_checks.exercise_problems(values),
    ]
    if problems:
        raise ConfigError(problems, stack)
    return _build(values, stack)


def _hidden_or_self(path: str) -> bool:
    """A relative path that is the repository itself or goes through a hidden folder."""
    return any(part in ("", ".") or part.startswith(".") for part in path.split("/"))


# The values several stages read the same way.


def _app_entry(values: _Values) -> re.Match[str] | None:
    return _APP_ENTRY.fullmatch(text_of(values, "appEntry"))


def _static_dir(values: _Values) -> str:
    return text_of(values, "appStatic").strip("/")


def _static_url(values: _Values) -> str:
    return text_of(values, "appStaticUrl").rstrip("/")


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
    ami_id = text_of(values, "amiId")
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


def _readiness_port_problems(values: _Values) -> Iterator[str]:
    """The ports `pulumi up`'s wait uses: HTTP on 80 unless the site is HTTPS from first boot
    (then 443, which the TLS checks require); SSH on 22 when it has a key to log in with
    (the stack's own key, or sshPrivateKey)."""
    if not values["waitForReady"]:
        return
    tls = TLS_MODES.get(values["tls"] or "")
    has_login_key = bool(text_of(values, "sshPrivateKey")) or not (
        text_of(values, "keyName") or text_of(values, "sshPublicKey")
    )
    yield from readiness_port_problems(
        [port for port in values["openPorts"] or [] if port is not None],
        # letsencrypt requires port 80 for its own reason, said by the TLS checks.
        http_check=tls is not None and tls.enabled_at_boot == "http" and tls.name != "letsencrypt",
        ssh_wait=has_login_key,
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
    private_key = text_of(values, "sshPrivateKey")
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
    if not (text_of(values, "keyName") or text_of(values, "sshPublicKey")):
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
    repo = text_of(values, "appRepo")
    if repo.startswith("-"):
        yield "appRepo must not start with '-' (git would read it as an option); write the repository's URL."
    elif repo and not _GIT_URL.fullmatch(repo):
        yield (
            f"appRepo: {repo!r} is not a git URL; use https://host/owner/repo.git, "
            f"git@host:owner/repo.git or file:///path (or leave it empty for the sample app)."
        )
    ref = text_of(values, "appRef")
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
    requirements = text_of(values, "appRequirements")
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
        text_of(values, "appStatic").startswith("/") or not _RELATIVE_PATH.fullmatch(static_dir)
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
    path = text_of(values, "readyPath")
    if not _READY_PATH.fullmatch(path):
        yield (
            f"readyPath: {values['readyPath']!r} is not a URL path of the site; write it like / or "
            f"/health (letters, digits, '/', '.', '-', '_', '~' and an optional ?query)."
        )
    text = values["readyText"] or ""
    if any(char in text for char in LINE_BREAKS) or len(text) > READY_TEXT_MAX_LENGTH:
        yield f"readyText must be one line of at most {READY_TEXT_MAX_LENGTH} characters of the page."
    yield from _range_problems(values, "readyTimeoutMinutes")


# The checks' helpers.


def _range_problems(values: _Values, key: str) -> Iterator[str]:
    value = values[key]
    low, high = RANGES[key]
    if value is not None and not low <= value <= high:
        yield f"{key}: {value} is out of range; use {low} to {high}{_RANGE_HINTS.get(key, '')}."


# Stage 3: build, from values that passed every check.


def _build(values: _Values, stack: str) -> Settings:
    return Settings(
        stack=stack,
        recipe=RECIPES[values["recipe"]],
        debian_release=values["debianRelease"],
        ami_id=text_of(values, "amiId"),
        instance_type=values["instanceType"],
        root_volume_gib=values["rootVolumeGiB"],
        server_name=values["serverName"],
        server_aliases=tuple(values["serverAliases"]),
        open_ports=tuple(values["openPorts"]),
        # As AWS takes them: prefix lengths, never netmasks (10.0.0.0/255.0.0.0 is 10.0.0.0/8).
        ssh_cidrs=tuple(str(ipaddress.ip_network(cidr)) for cidr in values["sshCidrs"]),
        web_cidrs=tuple(str(ipaddress.ip_network(cidr)) for cidr in values["webCidrs"]),
        key_name=text_of(values, "keyName"),
        ssh_public_key=text_of(values, "sshPublicKey"),
        course=values["course"],
        app=_build_app(values),
        tls=TLS_MODES[values["tls"]],
        tls_email=text_of(values, "tlsEmail"),
        database=DATABASES.get(values["database"]),
        auto_stop_idle_minutes=values["autoStopIdleMinutes"],
        chosen_secrets=AppSecrets(**{rule.field: values[rule.setting] or "" for rule in RULES}),
        wait_for_ready=values["waitForReady"],
        ready_timeout_minutes=values["readyTimeoutMinutes"],
        # A private key file ends with a line break, which Pulumi's config keeps or not.
        ssh_private_key=text_of(values, "sshPrivateKey") + "\n" if text_of(values, "sshPrivateKey") else "",
        stop_schedule=schedules_of(values).get(STOP),
        start_schedule=schedules_of(values).get(START),
        static_address=values["staticAddress"],
        start_link=values["startLink"],
        dns_zone=dns_zone.parse(text_of(values, "dnsZone")),
        stage=STAGES[values["stage"]],
        language=values["language"],
        fault=values["fault"] or "",
    )


def _build_app(values: _Values) -> AppSettings:
    entry = _app_entry(values)
    assert entry is not None, "appEntry was checked"
    return AppSettings(
        name=values["appName"],
        repo=text_of(values, "appRepo"),
        ref=text_of(values, "appRef"),
        module=entry["module"],
        callable=entry["callable"],
        requirements=text_of(values, "appRequirements"),
        python_env=values["pythonEnv"],
        static_dir=_static_dir(values),
        static_url=_static_url(values),
        workers=values["workers"],
        threads=values["threads"],
        env=tuple(values["appEnv"].items()),
        migrate=text_of(values, "appMigrate"),
        ready_path=text_of(values, "readyPath"),
        ready_text=values["readyText"] or "",
    )
