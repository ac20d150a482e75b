"""Property tests over every setting: for generated configs, either a clean refusal or
rendered files that carry each value exactly and pass their own tools."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from flasklab.render import flasklab_env, render_user_data
from flasklab.roster import load_servers
from flasklab.settings import DEBIAN_RELEASES, ConfigError, Settings, declared_keys
from flasklab.stacks import stack_config
from tests.config_batch import Batch, Server
from tests.config_tools import needs_checkers
from tests.property_checks import (
    carried_problems,
    refusal_problems,
    rendered_or_refused,
    secrets_of,
    user_data_round_trip,
)
from tests.settings_strategies import (
    COMPANIONS,
    PIECES,
    SECRET_KEYS,
    SETTING_STRATEGIES,
    VALID_TEXT,
    config_variants,
    focused_variants,
    spike,
)

# Examples of the host-only test per setting (each a render, about 0.05 s).
HOST_EXAMPLES = 25
# Pieces tried in each text setting's valid value.
SPIKE_EXAMPLES = 20
# Configs drawn per release for the checkers, two per setting (about a third are
# accepted): every accepted one is checked, in one container.
CHECKED_DRAWS = 72


def test_every_declared_setting_has_a_strategy():
    """A new setting in Pulumi.yaml without a strategy fails here."""
    assert sorted(SETTING_STRATEGIES) == sorted(declared_keys())


def accepted_servers(raw: dict[str, Any]) -> list[tuple[Settings, list]]:
    """The rendered servers of a config ([] when it is refused; the refusal checked)."""
    try:
        servers = load_servers(raw, "props", secret_keys=SECRET_KEYS)
    except ConfigError as error:
        assert refusal_problems(error, raw) == []
        return []
    return rendered_or_refused(raw, servers)


# Reproducible in CI: the same examples every run, no example database on disk.
@settings(
    max_examples=HOST_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
@pytest.mark.parametrize("setting", sorted(SETTING_STRATEGIES))
def test_generated_configs_are_refused_cleanly_or_carried_exactly(setting, data):
    """Each setting in turn drawn in every example (with up to two others)."""
    raw = data.draw(config_variants(focus=setting), label="config")
    for server, files in accepted_servers(raw):
        assert user_data_round_trip(server, files) == []
        assert carried_problems(raw, server, files) == []


@settings(
    max_examples=SPIKE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(piece=st.sampled_from(PIECES), at=st.integers(0, 60))
@pytest.mark.parametrize("setting", sorted(VALID_TEXT))
def test_a_valid_value_with_one_hostile_piece_is_refused_cleanly_or_carried_exactly(setting, piece, at):
    """Each text setting's valid value with one piece put in: a newline, NUL, quote, $, ..."""
    raw = {
        **stack_config("dev"),
        **COMPANIONS.get(setting, {}),
        setting: spike(VALID_TEXT[setting], piece, at),
    }
    for server, files in accepted_servers(raw):
        assert user_data_round_trip(server, files) == []
        assert carried_problems(raw, server, files) == []


def server_to_check(server: Settings, files: list) -> Server:
    secrets = secrets_of(server)
    return Server(
        files=files,
        user_data=render_user_data(server, secrets),
        app_user=server.app.user,
        log_dir=server.app.log_dir,
        env={**dict(server.app.env), **dict(flasklab_env(server, secrets))},
    )


@needs_checkers
@pytest.mark.parametrize("release", sorted(DEBIAN_RELEASES))
def test_generated_configs_pass_their_own_tools(release):
    """Hypothesis draws the configs; every accepted one is checked in one container run
    (a container per example, or per shrinking step, would cost minutes). A failure names
    each failing config in full."""
    accepted: dict[str, tuple[dict[str, Any], Settings, list]] = {}

    @settings(
        max_examples=CHECKED_DRAWS,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(drawn=focused_variants())
    def collect(drawn):
        raw = {**drawn, "debianRelease": release}
        # A class stack's first student stands for the others.
        for server, files in accepted_servers(raw)[:1]:
            accepted.setdefault(repr(raw), (raw, server, files))

    collect()
    assert len(accepted) >= CHECKED_DRAWS // 8, f"only {len(accepted)} drawn configs were accepted"
    configs = list(accepted.values())
    with tempfile.TemporaryDirectory(prefix="flasklab-props-") as folder:
        checks = Batch(Path(folder), DEBIAN_RELEASES[release])
        for index, (_, server, files) in enumerate(configs):
            checks.add_server(index, server_to_check(server, files))
        complaints = checks.run()
    print(f"{len(configs)} configs, {len(checks.checks)} checks; seconds per tool: {checks.seconds}")
    assert not complaints, "\n\n".join(
        f"config {configs[index][0]!r}:\n"
        + "\n".join(f"  {check}: {said}" for check, said in said_by.items())
        for index, said_by in complaints.items()
    )
