"""Validated settings -> the files a server gets -> its #cloud-config user-data.

Jinja2 renders each file from the template named after it; the cloud-config itself is
built as data and dumped with PyYAML, never spliced together as text.
"""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
import ipaddress
import random
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import yaml

from flasklab import compose, contract, rubric, server_check, server_status
from flasklab.app_secrets import ALPHABET, AppSecrets, rules_for
from flasklab.recipes import (
    APP_ENV_FILE,
    BUILD_PACKAGES,
    CHECK_MODULE,
    CHECK_SPEC,
    DEPLOY_SCRIPT,
    FAULT_SCRIPT,
    SAMPLE_APP_SOURCE,
    STATUS_MODULE,
    ServerFile,
)
from flasklab.settings import PROJECT_DIR, Settings

TEMPLATES_DIR = PROJECT_DIR / "templates"
SAMPLE_APP_DIR = Path(__file__).resolve().parent / "sample_app"
# AWS refuses user_data over 16 KB; past this size it is sent gzip-compressed.
USER_DATA_LIMIT = 16 * 1024


@dataclass(frozen=True)
class RenderedFile:
    path: str
    content: str
    mode: str
    owner: str = "root:root"
    checker: str | None = None
    defer: bool = True


@cache
def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # Templates do not change while flasklab runs: no stat of each one at every render
        # (a class renders each once or twice per student).
        auto_reload=False,
    )
    env.filters["shell_quote"] = shell_word
    # A certificate's subjectAltName entry: an IP address or a DNS name.
    env.filters["subject_alt_name"] = lambda name: f"IP:{name}" if _is_ip(name) else f"DNS:{name}"
    # The strings the server, the probes and the sample app agree on.
    env.globals["contract"] = contract
    return env


def shell_word(value: str) -> str:
    """`value` as one sh word: in single quotes (shlex.quote), or, when it holds $ or a
    backtick, in double quotes with $ ` " and \\ escaped: the same word to sh, but
    shellcheck warns of single-quoted $ and backticks (SC2016) as if meant to expand."""
    if "$" not in value and "`" not in value:
        return shlex.quote(value)
    return '"' + re.sub(r'([$`"\\])', r"\\\1", value) + '"'


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def written_by(settings: Settings) -> str:
    student = f", student {settings.student}" if settings.student else ""
    return (
        f"Written by flasklab for stack {settings.stack}{student} (recipe {settings.recipe.name}); "
        f"change the stack's config rather than this file."
    )


def flasklab_env(settings: Settings, app_secrets: AppSecrets) -> list[tuple[str, str]]:
    """The settings flasklab itself gives the app, after the teacher's appEnv."""
    env = [("SECRET_KEY", app_secrets.secret_key)]
    if settings.database:
        env.append(("DATABASE_URL", compose.database_url(settings, app_secrets)))
    if settings.https:
        # Flask's from_prefixed_env() reads it: session cookies only travel over HTTPS.
        env.append(("FLASK_SESSION_COOKIE_SECURE", "true"))
    return env


def template_context(settings: Settings, app_secrets: AppSecrets) -> dict[str, object]:
    """What every template sees (besides the global `contract`)."""
    sites = compose.site_names(settings)
    enabled_site = compose.enabled_at_boot(settings)
    return {
        "app": settings.app,
        "recipe": settings.recipe,
        "web_server": settings.recipe.web_server,
        "tls": settings.tls,
        "tls_email": settings.tls_email,
        "database": settings.database,
        "app_secrets": app_secrets,
        "flasklab_env": flasklab_env(settings, app_secrets),
        "migrate_command": compose.migrate_command(settings),
        "database_setup": compose.database_setup_path(settings),
        "pip_packages": compose.pip_packages(settings),
        "build_packages": BUILD_PACKAGES,
        "app_address": compose.app_address(settings),
        "restart_command": compose.restart_command(settings),
        "deploy_steps": compose.deploy_steps(settings),
        "https_site": sites["https"],
        "enabled_site": enabled_site,
        "enabled_https": enabled_site == sites["https"],
        "https": settings.https,
        "tls_dir": compose.tls_dir(settings),
        "server_name": settings.server_name,
        "server_names": settings.server_names,
        "names_bucket_size": compose.nginx_names_bucket_size(settings.server_names),
        "url": compose.site_url(settings),
        "boot_url": compose.boot_url(settings),
        "written_by": written_by(settings),
        "units": compose.units(settings),
        "logs": compose.logs(settings),
        "status_module": STATUS_MODULE,
        "check_module": CHECK_MODULE,
        "check_spec": CHECK_SPEC,
        "stage": settings.stage,
        "fault_script": FAULT_SCRIPT if compose.fault_of(settings) else "",
        "app_units": compose.app_units(settings),
        "app_config_files": compose.app_config_files(settings),
        "env_file": compose.for_app(APP_ENV_FILE.path, settings),
        "access_log": compose.access_log(settings),
        "idle_minutes": settings.auto_stop_idle_minutes,
        # cloud-init writes it at the end of every boot: first boot is over once it exists.
        "boot_result": f"/{server_status.RESULT_FILE}",
    }


def _render(server_file: ServerFile, context: dict[str, object]) -> RenderedFile:
    template = template_environment().get_template(f"{server_file.template}.j2")
    return RenderedFile(
        path=server_file.path,
        content=template.render(context),
        mode=server_file.mode,
        owner=server_file.owner,
        checker=server_file.checker,
        defer=server_file.defer,
    )


@cache
def _shipped_text(path: Path) -> str:
    """A file flasklab ships as it is, read once per run (a class renders it per student)."""
    return path.read_text()


@cache
def _sample_app_sources() -> tuple[Path, ...]:
    return tuple(
        source
        for source in sorted(SAMPLE_APP_DIR.rglob("*"))
        if source.is_file() and "__pycache__" not in source.parts
    )


def sample_app_files(settings: Settings) -> list[RenderedFile]:
    """The sample Flask app, shipped as it is in flasklab/sample_app/: in the app's folder,
    or at stage bare, where the student copies it from (SAMPLE_APP_SOURCE)."""
    if settings.stage.installs_app:
        folder, owner = settings.app.dir, f"{settings.app.user}:{settings.app.user}"
    else:
        folder, owner = SAMPLE_APP_SOURCE, "root:root"
    return [
        RenderedFile(
            path=f"{folder}/{source.relative_to(SAMPLE_APP_DIR).as_posix()}",
            content=_shipped_text(source),
            mode="0644",
            owner=owner,
        )
        for source in _sample_app_sources()
    ]


@cache
def _shipped_module(path: Path, keep_signatures: bool = True) -> str:
    """A Python module flasklab ships to run on the server, as the interpreter reads it:
    without comments and its functions' and classes' docstrings (ast.unparse). The user-data
    must fit EC2's 16 KB gzipped, and these modules are most of it; the first line of the
    module's own docstring stays (its command's --help reads it). Without keep_signatures,
    functions lose their type hints too (never run: the module imports annotations lazily)."""
    tree = ast.parse(path.read_text())
    if _docstring(tree):
        first = tree.body[0].value  # type: ignore[attr-defined]
        first.value = first.value.strip().splitlines()[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and _docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
        if not keep_signatures and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
        if not keep_signatures and isinstance(node, ast.arg):
            node.annotation = None
    return ast.unparse(tree) + "\n"


def _docstring(node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    first = node.body[0] if node.body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


def status_module_file(settings: Settings) -> RenderedFile:
    """flasklab/server_status.py, which flasklab-status runs on the server."""
    source = _shipped_module(Path(server_status.__file__))
    return RenderedFile(
        path=STATUS_MODULE, content=f"# {written_by(settings)}\n{source}", mode="0644", checker="python"
    )


def check_files(settings: Settings) -> list[RenderedFile]:
    """flasklab/server_check.py, which flasklab-check runs, and the server's rubric (its
    on-server checkpoints, in the class's language)."""
    # Exercise servers ship it beside flasklab-status: the type hints are left out to fit.
    source = _shipped_module(Path(server_check.__file__), keep_signatures=False)
    return [
        RenderedFile(
            path=CHECK_MODULE, content=f"# {written_by(settings)}\n{source}", mode="0644", checker="python"
        ),
        RenderedFile(path=CHECK_SPEC, content=rubric.server_spec_json(settings), mode="0644"),
    ]


def shipped_files(settings: Settings) -> list[RenderedFile]:
    """The files flasklab ships as they are (not rendered from templates)."""
    return [
        status_module_file(settings),
        *(check_files(settings) if compose.ships_check(settings) else []),
        *([] if settings.app.repo else sample_app_files(settings)),
    ]


def render_files(settings: Settings, app_secrets: AppSecrets) -> list[RenderedFile]:
    """Every file cloud-init writes on the server, in the order it writes them."""
    context = template_context(settings, app_secrets)
    files = [_render(server_file, context) for server_file in compose.server_files(settings)]
    return files + shipped_files(settings)


def users(settings: Settings) -> list:
    """The image's login user and the app's system user (which a student makes at stage bare)."""
    app = settings.app
    app_user = {
        "name": app.user,
        "system": True,
        "no_create_home": True,
        "homedir": app.dir,
        "shell": "/usr/sbin/nologin",
    }
    # Keep the image's login user (admin on Debian's AMIs).
    return ["default", *([app_user] if settings.stage.installs_app else [])]


def build_cloud_config(settings: Settings, app_secrets: AppSecrets) -> dict:
    """The #cloud-config document as data."""
    return {
        "package_update": True,
        # Upgrading every package on first boot doubles the time to a working server;
        # Debian's unattended-upgrades applies security updates afterwards.
        "package_upgrade": False,
        **({"packages": packages} if (packages := compose.packages(settings)) else {}),
        "users": users(settings),
        "write_files": [
            {
                "path": rendered.path,
                "content": rendered.content,
                "owner": rendered.owner,
                "permissions": rendered.mode,
                # Written after packages are installed and users exist, so owners
                # resolve and package installs never meet half-configured files; apt's
                # own settings before it installs anything.
                "defer": rendered.defer,
            }
            for rendered in render_files(settings, app_secrets)
        ],
        "runcmd": [[DEPLOY_SCRIPT.path]],
    }


# libyaml's emitter when PyYAML has it: a class of 200 renders 200 user-data documents.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _LiteralDumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Writes multi-line strings as YAML literal blocks, so the user-data stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def render_user_data(settings: Settings, app_secrets: AppSecrets) -> str:
    """The complete user-data text: '#cloud-config' and the YAML document. It holds the
    app's secrets (in its env file): Pulumi keeps it as a secret."""
    body = yaml.dump(
        build_cloud_config(settings, app_secrets),
        Dumper=_LiteralDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
    )
    return f"#cloud-config\n# {written_by(settings)}\n{body}"


def encode_for_ec2(user_data: str) -> tuple[str | None, str | None]:
    """(user_data, user_data_base64) for aws.ec2.Instance: plain text when it fits AWS's
    16 KB limit, else gzip (which cloud-init unpacks) in base64. mtime=0 keeps the bytes,
    and so the instance, stable across runs."""
    raw = user_data.encode()
    if len(raw) <= USER_DATA_LIMIT:
        return user_data, None
    # AWS's limit is on the raw bytes, before base64.
    compressed = gzip.compress(raw, mtime=0)
    if len(compressed) > USER_DATA_LIMIT:
        raise ValueError(
            f"the user-data is {len(raw)} bytes ({len(compressed)} compressed): over AWS's 16 KB "
            f"limit even compressed. Deploy the app from a git repository (appRepo) instead of "
            f"shipping large files in the user-data."
        )
    return None, base64.b64encode(compressed).decode()


def stand_in_secrets(settings: Settings, keep_chosen: bool = True) -> AppSecrets:
    """Secrets as long as the generated ones and as random (so they compress no better),
    the same on every run; with keep_chosen, the values the teacher chose instead."""
    return AppSecrets(
        **{
            rule.field: (settings.chosen_secrets.value(rule) if keep_chosen else "")
            or "".join(random.Random(rule.field).choices(ALPHABET, k=rule.length))
            for rule in rules_for(settings.database is not None)
        }
    )


@dataclass(frozen=True)
class UserDataScreen:
    """What is known of a server's user-data before any resource: whether it fits EC2, and
    a digest of it without any secret (what flasklab.build records the server was built from)."""

    problems: list[str]
    digest: str


def screen_user_data(settings: Settings) -> UserDataScreen:
    """The user-data rendered as `pulumi up` will render it, with stand-ins for the secrets
    the stack generates: its size checked, and its digest taken. The digest never sees a
    secret the teacher chose (a short hash of a known text would let a weak one be guessed):
    with one, the text is rendered again with a stand-in in its place."""
    text = render_user_data(settings, stand_in_secrets(settings))
    chosen = any(settings.chosen_secrets.value(rule) for rule in rules_for(settings.database is not None))
    if chosen:
        text_without_secrets = render_user_data(settings, stand_in_secrets(settings, keep_chosen=False))
    else:
        text_without_secrets = text
    return UserDataScreen(size_problems(text), hashlib.sha256(text_without_secrets.encode()).hexdigest())


def user_data_problems(settings: Settings) -> list[str]:
    """Whether the user-data fits EC2, known before any resource (screen_user_data)."""
    return screen_user_data(settings).problems


# Room the quick screen leaves: gzip's level 9 packs text about 13 % tighter than its
# level 1, but on rare inputs comes out a few bytes larger.
_SCREEN_MARGIN = 256


def size_problems(user_data: str) -> list[str]:
    """[] when the user-data fits EC2 as encode_for_ec2 sends it, else why it does not."""
    raw = user_data.encode()
    # A quick screen first, which a class of 200 feels: what fits with room to spare at
    # gzip's fastest level fits as sent; the rest is decided by encode_for_ec2 itself.
    if len(raw) <= USER_DATA_LIMIT:
        return []
    if len(gzip.compress(raw, compresslevel=1)) <= USER_DATA_LIMIT - _SCREEN_MARGIN:
        return []
    try:
        encode_for_ec2(user_data)
    except ValueError as error:
        return [str(error)]
    return []
