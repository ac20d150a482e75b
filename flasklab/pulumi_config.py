"""Read the stack's flasklab config from Pulumi (for __main__.py only)."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from flasklab.aws_regions import region_problem
from flasklab.settings import NAMESPACE, ConfigError


def read_stack_config() -> dict[str, Any]:
    """Every flasklab key set on the stack, as Pulumi passes it (strings, JSON for lists),
    including keys flasklab does not know, so typos are reported rather than ignored.
    A region EC2 does not have ends the program at once, before any resource."""
    region = pulumi.Config("aws").get("region")
    if region and (problem := region_problem(region, "aws:region")):
        raise pulumi.RunError(str(ConfigError([problem], pulumi.get_stack())))
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
