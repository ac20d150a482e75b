"""A term, under Pulumi's mocks: one class stack taken through what fifteen weeks bring
(settings changed, flasklab upgraded, servers stopped, refreshed and started, a student's
server rebuilt, students added and removed, the stack destroyed), asserting at each step
which resources `pulumi up` would replace (tests/replacement_plan.py: from the inputs that
force replacement per the provider's schema). Nothing but a rebuilt server is replaced."""

from __future__ import annotations

import pytest

from flasklab import plan, render
from flasklab.build import REBUILD_ENV
from tests.conftest import LOCAL_COMMAND, REMOTE_COMMAND
from tests.replacement_plan import INSTANCE, changed, effective_inputs, replaced, unwrap
from tests.test_class import STUDENT_KEY

STACK = "class-demo"
STUDENTS = ("ana", "ben", "carla")
# What a refresh of a stopped instance reads back: no public address, so EC2 says the
# network interface associates none (terraform-provider-aws#33775).
STOPPED = {INSTANCE: {"associatePublicIpAddress": False, "publicIp": "", "publicDns": ""}}
# Settings that reach only the user-data: a server built before they changed keeps them.
USER_DATA_SETTINGS = [
    {"autoStopIdleMinutes": "30"},
    {"workers": "5"},
    {"readyPath": "/health"},
    {"appEnv": '{"GREETING": "hola"}'},
    {"debianRelease": "12"},  # another image: a rebuild's too
    {"appName": "tienda"},
    {"serverAliases": '["www.practica_flask", "web.practica_flask"]'},  # the web server's names
]
# Settings applied in place to running servers.
IN_PLACE_SETTINGS = [
    {"openPorts": "[22, 80, 443]"},
    {"webCidrs": '["192.0.2.0/24"]'},
    {"instanceType": "t3.medium"},
    {"rootVolumeGiB": "16"},
]


def instance_tags(run, student: str) -> dict[str, str]:
    """The instance's tags as the program declares them."""
    key = (INSTANCE, f"flasklab-{STACK}-{student}-instance")
    return run.wire_inputs[key]["tags"]


def kept_tags(before, after, student: str) -> dict[str, str]:
    """The instance's tags as the engine keeps them after ignoreChanges."""
    key = (INSTANCE, f"flasklab-{STACK}-{student}-instance")
    return effective_inputs(
        unwrap(before.wire_inputs[key]), unwrap(after.wire_inputs[key]), after.options[key]["ignoreChanges"]
    )["tags"]


@pytest.mark.parametrize("setting", USER_DATA_SETTINGS, ids=lambda s: next(iter(s)))
def test_a_setting_that_reaches_the_user_data_replaces_nothing_and_shows_as_drift(run_program, setting):
    created = run_program(STACK)
    changed_run = run_program(STACK, **setting)
    assert replaced(created, changed_run) == set()
    for student in STUDENTS:
        tags = kept_tags(created, changed_run, student)
        assert tags[plan.TAG_BUILD] == instance_tags(created, student)[plan.TAG_BUILD]
        assert tags[plan.TAG_CONFIG] != tags[plan.TAG_BUILD], "the drift is recorded"
        assert plan.drift_note(tags, STACK, student) == (
            f"built from an older config: `python -m flasklab class rebuild --stack {STACK} {student}` "
            f"applies it"
        )


@pytest.mark.parametrize("setting", IN_PLACE_SETTINGS, ids=lambda s: next(iter(s)))
def test_a_setting_applied_in_place_replaces_nothing(run_program, setting):
    created = run_program(STACK)
    after = run_program(STACK, **setting)
    assert replaced(created, after) == set()
    assert changed(created, after, "-instance") or changed(created, after, "-sg"), "it is applied"


def test_a_new_flasklab_template_replaces_nothing_and_shows_as_drift(run_program, monkeypatch):
    created = run_program(STACK)
    # What an upgrade of flasklab does to every server's user-data: a template renders anew.
    original = render.written_by
    monkeypatch.setattr(render, "written_by", lambda settings: original(settings) + " (flasklab 2)")
    upgraded = run_program(STACK)
    assert replaced(created, upgraded) == set()
    for student in STUDENTS:
        tags = kept_tags(created, upgraded, student)
        assert plan.drift_note(tags, STACK, student)


def test_stop_refresh_and_start_replace_nothing_and_run_no_command_again(run_program):
    created = run_program(STACK)
    # Stopped overnight, refreshed (the state reads no public address), then started with
    # a new public address, which the commands were made with.
    refreshed = run_program(STACK)
    assert replaced(created, refreshed, refreshed=STOPPED) == set()
    run_program.public_ip = "203.0.113.77"
    started = run_program(STACK)
    assert replaced(created, started, refreshed=STOPPED) == set()
    commands = {**changed(created, started, "-first-boot"), **changed(created, started, "-serves")}
    assert commands == {}, "a command whose inputs change is updated, which runs it again"


def test_the_instance_sends_no_input_a_stopped_instance_reads_back_differently(run_program):
    run = run_program(STACK)
    for (type_, _), inputs in run.wire_inputs.items():
        if type_ == INSTANCE:
            assert not set(STOPPED[INSTANCE]) & set(inputs)


def test_a_new_key_for_a_student_replaces_the_key_pair_but_not_the_server(run_program, roster):
    key = STUDENT_KEY
    roster("student\nana\nben\ncarla\n")
    created = run_program(STACK, roster="rosters/test.csv")
    roster(f"student,sshPublicKey\nana,\nben,{key}\ncarla,\n")
    after = run_program(STACK, roster="rosters/test.csv")
    # The key pair is made anew from ben's key (its public key is ForceNew, and its name is
    # generated); the instance keeps its key pair's name from creation.
    assert replaced(created, after) == {f"flasklab-{STACK}-ben-key"}
    assert plan.drift_note(kept_tags(created, after, "ben"), STACK, "ben")


def test_rebuilding_one_student_replaces_only_their_server_with_what_the_stack_says_now(run_program):
    created = run_program(STACK)
    run_program(STACK, workers="5")  # a change every server keeps until rebuilt
    rebuilt = run_program(STACK, env_rebuild="ben", workers="5")
    ben = f"flasklab-{STACK}-ben-instance"
    gone = replaced(created, rebuilt, targets={ben})
    assert gone == {ben, f"flasklab-{STACK}-ben-ready-first-boot", f"flasklab-{STACK}-ben-ready-serves"}
    # ben's new server gets the new user-data and records it as what it was built from.
    tags = kept_tags(created, rebuilt, "ben")
    assert tags[plan.TAG_BUILD] == tags[plan.TAG_CONFIG] != instance_tags(created, "ben")[plan.TAG_BUILD]
    # ana's and carla's keep theirs, and still show the drift.
    for student in ("ana", "carla"):
        assert plan.drift_note(kept_tags(created, rebuilt, student), STACK, student)


def test_a_rebuild_of_a_name_not_on_the_roster_is_refused_before_any_resource(run_program):
    import pulumi

    with pytest.raises(pulumi.RunError, match=rf"{REBUILD_ENV}: zoe is not a student of this stack"):
        run_program(STACK, env_rebuild="zoe")
    assert run_program.runs[-1].resources == []


def test_adding_and_removing_students_leaves_the_others_alone(run_program, roster):
    roster("student\nana\nben\ncarla\n")
    created = run_program(STACK, roster="rosters/test.csv")
    roster("student\nana\ncarla\ndiego\n")
    after = run_program(STACK, roster="rosters/test.csv")
    assert replaced(created, after) == set()
    gone = {name for (_, name) in created.wire_inputs} - {name for (_, name) in after.wire_inputs}
    assert f"flasklab-{STACK}-ben-instance" in gone  # deleted, after its disk is snapshotted:


def test_every_instance_snapshots_its_disk_before_it_is_deleted(run_program):
    """The hook that keeps a student's disk is bound to every instance (a rebuild, a student
    taken off the roster, `pulumi destroy --run-program`); tests/test_snapshots.py runs it."""
    run = run_program(STACK)
    for (type_, name), options in run.options.items():
        if type_ == INSTANCE:
            assert options["beforeDelete"] == ["flasklab-snapshot-before-delete"], name
        else:
            assert options["beforeDelete"] == []


def test_the_commands_kept_from_creation_cover_every_input_but_their_trigger(run_program):
    run = run_program(STACK)
    for (type_, name), inputs in run.wire_inputs.items():
        if type_ in (REMOTE_COMMAND, LOCAL_COMMAND):
            assert set(inputs) - set(run.options[(type_, name)]["ignoreChanges"]) <= {
                "triggers",
                "logging",
                "addPreviousOutputInEnv",
            }, name


def test_the_preview_and_up_say_which_servers_run_an_older_build(run_program):
    assert not any("built from an older config" in warning for warning in run_program(STACK).warnings)
    run_program.kept_build = "0123456789ab"  # what the servers were made with, kept by the engine
    warnings = run_program(STACK, workers="5").warnings
    rebuild = f"python -m flasklab class rebuild --stack {STACK}"
    assert sorted(w for w in warnings if "built from an older config" in w) == [
        f"{student}: built from an older config: `{rebuild} {student}` applies it" for student in STUDENTS
    ]
