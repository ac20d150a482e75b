"""Property tests over every setting: for generated configs, either a clean refusal or
rendered files that carry each value exactly (and, with the checkers, pass their tools)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from flasklab.roster import load_servers
from flasklab.settings import ConfigError, declared_keys
from tests.property_checks import (
    carried_problems,
    refusal_problems,
    rendered_or_refused,
    user_data_round_trip,
)
from tests.settings_strategies import SECRET_KEYS, SETTING_STRATEGIES, config_variants

# Reproducible in CI: the same examples every run, no example database on disk.
HOST_EXAMPLES = 200


def test_every_declared_setting_has_a_strategy():
    """A new setting in Pulumi.yaml without a strategy fails here."""
    assert sorted(SETTING_STRATEGIES) == sorted(declared_keys())


def check_variant(raw: dict[str, Any]) -> None:
    try:
        servers = load_servers(raw, "props", secret_keys=SECRET_KEYS)
    except ConfigError as error:
        assert refusal_problems(error, raw) == []
        return
    for server, files in rendered_or_refused(raw, servers):
        assert user_data_round_trip(server, files) == []
        assert carried_problems(raw, server, files) == []


@settings(
    max_examples=HOST_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(raw=config_variants())
def test_generated_configs_are_refused_cleanly_or_carried_exactly(raw):
    check_variant(raw)
