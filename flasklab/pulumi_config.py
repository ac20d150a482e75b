"""Read the stack's flasklab config from Pulumi (for __main__.py only)."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from flasklab.settings import NAMESPACE


def read_stack_config() -> dict[str, Any]:
    """Every flasklab key set on the stack, as Pulumi passes it (strings, JSON for lists),
    including keys flasklab does not know, so typos are reported rather than ignored."""
    config = pulumi.Config(NAMESPACE)
    prefix = f"{NAMESPACE}:"
    keys = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    return {
        key[len(prefix) :]: config.get(key[len(prefix) :]) for key in sorted(keys) if key.startswith(prefix)
    }


def secret_keys() -> list[str]:
    """The flasklab keys set with `pulumi config set --secret` (or holding a secret, for maps)."""
    prefix = f"{NAMESPACE}:"
    keys = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    return sorted(
        key[len(prefix) :] for key in keys if key.startswith(prefix) and runtime_config.is_config_secret(key)
    )
