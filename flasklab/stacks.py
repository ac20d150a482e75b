"""Read a stack's config from stacks/Pulumi.<stack>.yaml, the way Pulumi stores it,
so a stack can be rendered and rehearsed without Pulumi or an AWS account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flasklab.aws_regions import region_problem
from flasklab.roster import load_servers
from flasklab.settings import NAMESPACE, PROJECT_DIR, ConfigError, Settings, setting_value

STACKS_DIR = PROJECT_DIR / "stacks"
DEFAULT_STACK = "dev"


def stack_names() -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in STACKS_DIR.glob("Pulumi.*.yaml"))


def stack_file(stack: str) -> Path:
    """The stack's file, or a ConfigError naming the stacks there are."""
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names()) or "none"
        raise ConfigError(
            [
                f"there is no stack file {path.relative_to(PROJECT_DIR)}. Stacks here: {known}. "
                f"Create one with `pulumi stack init {stack}` and `pulumi config set ...`."
            ],
            stack,
        )
    return path


# The AWS provider's region setting in a stack file.
REGION_KEY = "aws:region"


def stack_course_and_region(stack: str) -> tuple[str, str]:
    """The stack's course (its default when unset) and region ('' when unset), as the class
    commands name a class by its stack. Read without the other settings' checks: a stack
    with secrets, or one setting wrong, still names its servers."""
    config = _config_block(stack_file(stack), stack)
    course = config.get(f"{NAMESPACE}:course", config.get("course"))
    region = config.get(REGION_KEY)
    return str(setting_value({"course": course}, "course")), str(region or "").strip()


def stack_config(stack: str, without_secrets: bool = False) -> dict[str, Any]:
    """The flasklab keys of a stack file, without the 'flasklab:' prefix. A secret (which
    only Pulumi can decrypt) is refused, or left out `without_secrets` (for the commands that
    need none: a handout does not)."""
    path = stack_file(stack)
    config = _config_block(path, stack)
    raw: dict[str, Any] = {}
    for key, value in config.items():
        namespace, colon, name = str(key).partition(":")
        if not colon:
            # As Pulumi reads a stack file: a key without a namespace is the project's.
            namespace, name = NAMESPACE, namespace
        if (namespace, name) == ("aws", "region") and (problem := region_problem(str(value), "aws:region")):
            raise ConfigError([problem], stack)
        if namespace != NAMESPACE:
            continue  # provider settings such as aws:region
        if isinstance(value, dict) and "secure" in value:
            if without_secrets:
                continue
            raise ConfigError(
                [
                    f"{name} is a secret (pulumi config set --secret); only Pulumi can decrypt it. "
                    f"Use `pulumi preview` for this stack, or a copy of it without secrets."
                ],
                stack,
            )
        raw[name] = value
    return raw


def _config_block(path: Path, stack: str) -> dict[Any, Any]:
    """The stack file's config: block, or a ConfigError saying what is wrong with the file."""
    where = path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{where} is not UTF-8 text; save it as UTF-8."], stack) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or "it is not valid YAML"
        raise ConfigError(
            [
                f"{where} cannot be read as YAML{at}: {problem}. Indent with spaces, not tabs, and put "
                f"values with special characters in quotes; `pulumi config set` writes it right."
            ],
            stack,
        ) from None
    document = {} if document is None else document
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(config, dict | None):
        raise ConfigError(
            [
                f"{where} must be a map holding a config: map of KEY: VALUE lines, as "
                f"`pulumi config set` writes it."
            ],
            stack,
        )
    return config or {}


def load_stack_servers(stack: str, overrides: dict[str, Any] | None = None) -> list[Settings]:
    """The settings of every server of a stack file (one, or one per roster row), with
    optional KEY=VALUE overrides (for rehearsals).

    A secret setting given as an override is accepted: it is never stored. In the stack
    file it would be plain text, and is refused."""
    raw = stack_config(stack)
    raw.update(overrides or {})
    return load_servers(raw, stack, secret_keys=tuple(overrides or ()))


def load_stack(stack: str, overrides: dict[str, Any] | None = None, student: str | None = None) -> Settings:
    """The settings of a stack file's server: of a class stack, the named student's (by
    default the roster's first)."""
    servers = load_stack_servers(stack, overrides)
    if student is None:
        return servers[0]
    for settings in servers:
        if settings.student == student:
            return settings
    on_roster = ", ".join(s.student for s in servers if s.student) or "none: it is not a class stack"
    raise ConfigError([f"{student} is not a student of stack {stack}. Its students: {on_roster}."], stack)
