"""The class commands that read a stack's outputs (`class sheet`, `class check`) end in a
message and exit 2, never a traceback, whatever the outputs hold."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasklab.__main__ import main
from flasklab.classroom import outputs
from flasklab.classroom.outputs import OutputsError, StudentAccess, parse_outputs

COMMANDS = ("sheet", "check")


def run_command(command: str, stack: str, saved, tmp_path) -> int:
    where = ["--out", str(tmp_path / "sheet")] if command == "sheet" else ["--csv", str(tmp_path / "c.csv")]
    return main(["class", command, "--stack", stack, "--outputs", str(saved), *where])


def no_file_holds_a_hidden_secret(folder, saved) -> bool:
    """No file but the saved outputs themselves (a key file would be one)."""
    return not any(
        path.is_file() and path != saved and outputs.HIDDEN_SECRET in path.read_text(errors="replace")
        for path in folder.rglob("*")
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("stack", "key"), [("class-demo", outputs.SSH_PRIVATE_KEYS), ("dev", outputs.SSH_PRIVATE_KEY)]
)
def test_outputs_saved_without_show_secrets_exit_2_with_the_command_to_get_them(
    command, stack, key, saved_outputs, tmp_path, capsys
):
    saved = saved_outputs(stack)
    document = json.loads(saved.read_text())
    assert key in document
    document[key] = "[secret]"  # what `pulumi stack output --json` writes without --show-secrets
    saved.write_text(json.dumps(document))
    assert run_command(command, stack, saved, tmp_path) == 2
    error = capsys.readouterr().err
    assert "saved without --show-secrets" in error
    assert f"`pulumi stack output --json --show-secrets --stack {stack}`" in error
    assert "Traceback" not in error
    assert not (tmp_path / "sheet").exists()
    assert no_file_holds_a_hidden_secret(tmp_path, saved)


def test_one_students_hidden_key_is_refused_too(saved_outputs, tmp_path, capsys):
    saved = saved_outputs("class-demo")
    document = json.loads(saved.read_text())
    document[outputs.SSH_PRIVATE_KEYS]["ana"] = "[secret]"
    saved.write_text(json.dumps(document))
    assert run_command("sheet", "class-demo", saved, tmp_path) == 2
    assert "saved without --show-secrets" in capsys.readouterr().err
    assert no_file_holds_a_hidden_secret(tmp_path, saved)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("document", "what"),
    [
        ({"students": [1, 2]}, "students is not a map of students"),
        ({"students": {"ana": "192.0.2.1"}}, 'students.ana is "192.0.2.1"'),
        ({"students": {"ana": {"publicIp": 7}}}, "students.ana.publicIp is not text"),
        ({"students": {"ana": {"serverNames": "ana.x"}}}, "students.ana.serverNames is not a list of names"),
        ({"students": {"ana": {}}, "sshPrivateKeys": ["k"]}, "sshPrivateKeys is not a map of students"),
        ({"students": {"ana": {}}, "firstBootSeconds": {"ana": "61"}}, 'firstBootSeconds.ana is "61"'),
        ("a string", "they are not a JSON object of outputs"),
    ],
)
def test_malformed_outputs_exit_2_saying_what_is_wrong(command, document, what, tmp_path, capsys):
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(document))
    assert run_command(command, "class-demo", saved, tmp_path) == 2
    error = capsys.readouterr().err
    assert f"the outputs of stack class-demo are not what `pulumi up` exports: {what}" in error
    assert "Traceback" not in error


@pytest.mark.parametrize("command", COMMANDS)
def test_a_single_stacks_outputs_are_refused_for_a_class_stack_and_the_reverse(
    command, saved_outputs, tmp_path, capsys
):
    assert run_command(command, "class-demo", saved_outputs("dev"), tmp_path) == 2
    assert "these outputs are not stack class-demo's: the stack makes a class" in capsys.readouterr().err
    assert run_command(command, "dev", saved_outputs("class-demo"), tmp_path) == 2
    assert "these outputs are not stack dev's: the stack makes a single server" in capsys.readouterr().err


def test_another_class_or_another_server_is_refused(saved_outputs, tmp_path, capsys):
    saved = tmp_path / "other.json"
    entry = {"publicIp": "192.0.2.9", "serverNames": ["zoe.practica_flask"]}
    saved.write_text(json.dumps({"students": {"zoe": entry, "yan": entry}}))
    assert run_command("sheet", "class-demo", saved, tmp_path) == 2
    assert "none of their students (yan, zoe) is on its roster (ana, ben, carla)" in capsys.readouterr().err
    assert run_command("sheet", "t000-apache", saved_outputs("dev"), tmp_path) == 2
    assert "these outputs are not stack t000-apache's: they serve" in capsys.readouterr().err


def test_a_stack_that_is_not_in_the_project_is_said(saved_outputs, tmp_path, capsys):
    assert run_command("sheet", "nosuch", saved_outputs("dev"), tmp_path) == 2
    assert "there is no stack nosuch in this project" in capsys.readouterr().err


def test_a_class_whose_roster_changed_since_pulumi_up_is_still_its_own(saved_outputs, tmp_path):
    saved = saved_outputs("class-demo")
    document = json.loads(saved.read_text())
    document["students"]["dan"] = document["students"].pop("carla")  # dan left the roster since
    saved.write_text(json.dumps(document))
    assert run_command("sheet", "class-demo", saved, tmp_path) == 0


def test_no_message_suggests_saving_the_keys_inside_the_project(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi
    assert main(["class", "sheet", "--stack", "class-demo", "--out", str(tmp_path / "sheet")]) == 2
    error = capsys.readouterr().err
    assert "> ~/class-demo-outputs.json" in error and "> outputs.json" not in error


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.just(outputs.HIDDEN_SECRET),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([*vars(outputs).values()]).filter(lambda v: isinstance(v, str))
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)
# Outputs shaped like the program's, with any value anywhere.
KEYS = st.sampled_from(
    [
        outputs.PUBLIC_IP,
        outputs.SERVER_NAMES,
        outputs.URL,
        outputs.HOSTS_LINE,
        outputs.SSH_COMMAND,
        outputs.INSTANCE_ID,
        outputs.SSH_PRIVATE_KEY,
        outputs.FIRST_BOOT_SECONDS,
    ]
)
ENTRY = st.dictionaries(KEYS, JSON, max_size=6)
SHAPED = st.fixed_dictionaries(
    {outputs.STUDENTS: st.dictionaries(st.text(max_size=5), ENTRY | JSON, max_size=3)},
    optional={
        outputs.SSH_PRIVATE_KEYS: st.dictionaries(st.text(max_size=5), JSON, max_size=3) | JSON,
        outputs.FIRST_BOOT_SECONDS: st.dictionaries(st.text(max_size=5), JSON, max_size=3) | JSON,
    },
)
TEXT_FIELDS = {"student", "public_ip", "url", "hosts_line", "ssh_command", "instance_id", "ssh_private_key"}


@settings(max_examples=400, deadline=None)
@given(document=JSON | ENTRY | SHAPED)
def test_any_json_gives_well_formed_students_or_the_modules_own_error(document):
    try:
        students = parse_outputs(document, "class-demo")
    except OutputsError:
        return
    for access in students:
        assert isinstance(access, StudentAccess)
        for field in fields(access):
            value = getattr(access, field.name)
            if field.name in TEXT_FIELDS:
                assert isinstance(value, str), field.name
        assert all(isinstance(name, str) for name in access.server_names)
        assert access.first_boot_seconds is None or isinstance(access.first_boot_seconds, float)
        assert access.ssh_private_key != outputs.HIDDEN_SECRET
