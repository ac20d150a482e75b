"""The table of what a changed setting does to running servers (flasklab/setting_effects.py):
every setting has a row, docs/term.md shows the table as generated, and each row is what the
program does, checked by running it under mocks before and after a change of that setting
(tests/replacement_plan.py decides what `pulumi up` would replace)."""

from __future__ import annotations

import os

import pytest
import yaml

from flasklab import plan
from flasklab.setting_effects import BLOCK_END, BLOCK_START, EFFECTS, EFFECTS_PAGE, Effect, generated_block
from flasklab.settings import PROJECT_DIR
from tests.replacement_plan import (
    INSTANCE,
    KEY_PAIR,
    SECURITY_GROUP,
    changed,
    effective_inputs,
    replaced,
    unwrap,
)
from tests.test_class import STUDENT_KEY as KEY

STACK = "dev"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nlabsuser-mock-key-9Zt\n-----END RSA PRIVATE KEY-----"
SCHEDULE = {"stopSchedule": "0 22 * * 1-5"}
# For each setting: the stack's config before (besides the stack file's) and the change.
CHANGES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "recipe": ({}, {"recipe": "nginx-uwsgi-systemd"}),
    "debianRelease": ({}, {"debianRelease": "12"}),
    "amiId": ({}, {"amiId": "ami-0123456789abcdef0"}),
    "instanceType": ({}, {"instanceType": "t3.medium"}),
    "rootVolumeGiB": ({}, {"rootVolumeGiB": "16"}),
    "autoStopIdleMinutes": ({}, {"autoStopIdleMinutes": "30"}),
    "serverName": ({}, {"serverName": "otro.practica_flask"}),
    "serverAliases": ({}, {"serverAliases": '["web.practica_flask"]'}),
    "openPorts": ({}, {"openPorts": "[22, 80, 443]"}),
    "sshCidrs": ({}, {"sshCidrs": '["192.0.2.0/24"]'}),
    "webCidrs": ({}, {"webCidrs": '["192.0.2.0/24"]'}),
    "staticAddress": ({}, {"staticAddress": "true"}),
    "startLink": ({}, {"startLink": "true"}),
    "dnsZone": (
        {"serverName": "flask.class.example.org", "serverAliases": '["www.flask.class.example.org"]'},
        {"dnsZone": "class.example.org"},
    ),
    "keyName": ({}, {"keyName": "vockey"}),
    "sshPublicKey": ({}, {"sshPublicKey": KEY}),
    "sshPrivateKey": ({"keyName": "vockey"}, {"sshPrivateKey": PRIVATE_KEY}),
    "waitForReady": ({}, {"waitForReady": "false"}),
    "readyTimeoutMinutes": ({}, {"readyTimeoutMinutes": "45"}),
    "course": ({}, {"course": "daw-2027"}),
    "appName": ({}, {"appName": "tienda"}),
    "appRepo": ({}, {"appRepo": "https://example.org/curso/app.git"}),
    "appRef": ({"appRepo": "https://example.org/curso/app.git"}, {"appRef": "v2"}),
    "appEntry": ({}, {"appEntry": "app:app"}),
    "appRequirements": ({}, {"appRequirements": "reqs.txt"}),
    "appStatic": ({}, {"appStatic": "assets"}),
    "appStaticUrl": ({}, {"appStaticUrl": "/assets"}),
    "pythonEnv": ({}, {"pythonEnv": "pipenv"}),
    "workers": ({}, {"workers": "5"}),
    "threads": ({}, {"threads": "4"}),
    "appMigrate": ({"database": "postgresql"}, {"appMigrate": "flask --app app db upgrade"}),
    "readyPath": ({}, {"readyPath": "/health"}),
    "readyText": ({}, {"readyText": "Hola"}),
    "database": ({}, {"database": "postgresql"}),
    "databasePassword": ({"database": "postgresql"}, {"databasePassword": "ElegidaPorLaProfe2026"}),
    "secretKey": ({}, {"secretKey": "ElegidaPorLaProfe2026"}),
    "tls": ({}, {"tls": "self-signed"}),
    "tlsEmail": (
        {
            "tls": "letsencrypt",
            "tlsEmail": "a@example.org",
            "serverName": "flask.example.org",
            "serverAliases": "[]",
        },
        {"tlsEmail": "b@example.org"},
    ),
    "appEnv": ({}, {"appEnv": '{"GREETING": "hola"}'}),
    "stage": ({}, {"stage": "app"}),
    # Only servers at a stage with work left carry flasklab-check's texts (class grade's
    # follow the stack at once).
    "language": ({"stage": "app"}, {"language": "es"}),
    "fault": ({"stage": "broken", "fault": "app-owner"}, {"fault": "unit-not-enabled"}),
    "stopSchedule": ({}, SCHEDULE),
    "startSchedule": (SCHEDULE, {"startSchedule": "30 7 * * 1-5"}),
    "stopScheduleTimezone": (SCHEDULE, {"stopScheduleTimezone": "Europe/Stockholm"}),
    "stopScheduleRoleArn": (SCHEDULE, {"stopScheduleRoleArn": "arn:aws:iam::123456789012:role/LabRole"}),
}
SECRET_SETTINGS = ("sshPrivateKey", "databasePassword", "secretKey")
SERVER_PARTS = ("-instance", "-sg", "-key")


def declared_settings() -> list[str]:
    document = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    return list(document["config"])


def test_every_setting_has_an_effect_and_a_change_that_shows_it():
    assert sorted(EFFECTS) == sorted(declared_settings())
    assert sorted(CHANGES) == sorted(name for name in EFFECTS if EFFECTS[name] is not Effect.ROSTER)


def test_the_docs_show_the_table_as_generated():
    """FLASKLAB_UPDATE_EXPECTED=1 writes it into its page (docs/term.md)."""
    page = PROJECT_DIR / EFFECTS_PAGE
    text = page.read_text()
    start, end = text.index(BLOCK_START), text.index(BLOCK_END) + len(BLOCK_END)
    if os.environ.get("FLASKLAB_UPDATE_EXPECTED") == "1":
        page.write_text(text[:start] + generated_block() + text[end:])
        text = page.read_text()
    assert text[start : text.index(BLOCK_END) + len(BLOCK_END)] == generated_block()


def _run(run_program, setting: str, config: dict[str, str]):
    secret_keys = tuple(key for key in config if key in SECRET_SETTINGS)
    return run_program(STACK, secret_keys=secret_keys, **config)


def _drift(before, after) -> bool:
    key = (INSTANCE, f"flasklab-{STACK}-instance")
    tags = effective_inputs(
        unwrap(before.wire_inputs[key]), unwrap(after.wire_inputs[key]), after.options[key]["ignoreChanges"]
    )["tags"]
    return bool(plan.drift_note(tags, STACK))


def _server_changes(before, after) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in SERVER_PARTS:
        found |= changed(before, after, part)
    return found


@pytest.mark.parametrize("setting", sorted(CHANGES))
def test_each_setting_does_what_the_table_says(run_program, setting):
    base, change = CHANGES[setting]
    before = _run(run_program, setting, base)
    after = _run(run_program, setting, {**base, **change})
    effect = EFFECTS[setting]
    servers = {name for (type_, name) in before.wire_inputs if type_ in (INSTANCE, SECURITY_GROUP)}
    assert not replaced(before, after) & servers, "no setting replaces a server or its security group"
    server_changes = _server_changes(before, after)
    if effect is Effect.REBUILD:
        assert _drift(before, after)
    elif effect in (Effect.IN_PLACE, Effect.IN_PLACE_RESTART):
        assert not _drift(before, after)
        assert server_changes, "applied to the server or its security group"
        restart = any("instanceType" in inputs for inputs in server_changes.values())
        assert restart is (effect is Effect.IN_PLACE_RESTART)
    else:
        assert not _drift(before, after)
        assert server_changes == {}, "the servers are untouched"
        if effect is Effect.ADDRESS:
            added = {name for (_, name) in after.wire_inputs} - {name for (_, name) in before.wire_inputs}
            assert added == {f"flasklab-{STACK}-address", f"flasklab-{STACK}-address-association"}
        if effect is Effect.DNS_ZONE:
            added = {name for (_, name) in after.wire_inputs} - {name for (_, name) in before.wire_inputs}
            assert {f"flasklab-{STACK}-dns-flask.class.example.org", f"flasklab-{STACK}-dns-updater"} <= added
        if effect is Effect.START_LINK:
            added = {name for (_, name) in after.wire_inputs} - {name for (_, name) in before.wire_inputs}
            assert f"flasklab-{STACK}-start-link-function" in added
        if effect is Effect.SCHEDULE:
            assert changed(before, after, "-stop") or len(before.wire_inputs) != len(after.wire_inputs)


def test_a_key_pair_made_anew_never_takes_its_server_along(run_program):
    before = _run(run_program, "sshPublicKey", {})
    after = _run(run_program, "sshPublicKey", {"sshPublicKey": KEY})
    assert replaced(before, after) == {f"flasklab-{STACK}-key"}
    assert (KEY_PAIR, f"flasklab-{STACK}-key") in after.wire_inputs
