"""Read a stack's config from stacks/Pulumi.<stack>.yaml, the way Pulumi stores it,
so a stack can be rendered and rehearsed without Pulumi or an AWS account."""

from __future__ import annotations

from typing import Any

import yaml

from flasklab.settings import NAMESPACE, PROJECT_DIR, ConfigError, Settings, load_settings

STACKS_DIR = PROJECT_DIR / "stacks"
DEFAULT_STACK = "dev"


def stack_names() -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in STACKS_DIR.glob("Pulumi.*.yaml"))


def stack_config(stack: str) -> dict[str, Any]:
    """The flasklab keys of a stack file, without the 'flasklab:' prefix."""
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
    document = yaml.safe_load(path.read_text()) or {}
    raw: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue  # provider settings such as aws:region
        if isinstance(value, dict) and "secure" in value:
            raise ConfigError(
                [
                    f"{name} is a secret (pulumi config set --secret); only Pulumi can decrypt it. "
                    f"Use `pulumi preview` for this stack, or a copy of it without secrets."
                ],
                stack,
            )
        raw[name] = value
    return raw


def load_stack(stack: str, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings of a stack file, with optional KEY=VALUE overrides (for rehearsals).

    A secret setting given as an override is accepted: it is never stored. In the stack
    file it would be plain text, and is refused."""
    raw = stack_config(stack)
    raw.update(overrides or {})
    return load_settings(raw, stack, secret_keys=tuple(overrides or ()))
