"""Stage 1 of the settings (flasklab/settings.py): the keys Pulumi.yaml declares, and a
stack's raw config brought to their declared types.

Values come as Pulumi passes them (strings, JSON for lists and maps) or as YAML reads a
stack file; each is coerced to its declared type, its default when unset. A value that
cannot be coerced becomes None and a problem says why; the checks of stage 2 read the rest.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT_FILE = PROJECT_DIR / "Pulumi.yaml"
# A stack's config after coercion: every declared key -> its value in the declared type
# (None where the raw value could not be coerced: a problem says so).
Values = dict[str, Any]


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


def coerce_all(raw: Mapping[str, Any], problems: list[str]) -> Values:
    """Every declared key's value in its declared type, its default when unset; a problem
    for each key that is not declared and each value that cannot be coerced."""
    declared = declared_keys()
    for key in raw:
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            problems.append(
                f"{key} is not a flasklab setting.{hint} Remove it with "
                f"`pulumi config rm {key}`; the settings are listed in Pulumi.yaml and docs/settings.md."
            )
    values: Values = {}
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
                f"{key} must be a text value, not {value!r}; "
                f"see `pulumi config set {key} ...` in docs/settings.md."
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


# The values several checks read the same way.


def text_of(values: Values, key: str) -> str:
    """A text setting without surrounding blanks ('' when unset or not coerced)."""
    return str(values[key] or "").strip()


def server_names_of(values: Values) -> list[str]:
    return [values["serverName"] or "", *(values["serverAliases"] or [])]
