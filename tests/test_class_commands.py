"""`class rebuild` and `class stacks`: one student's server made anew; a stack file per student."""

from __future__ import annotations

import shutil

import pytest
import yaml

from flasklab import stacks
from flasklab.__main__ import main
from flasklab.classroom import student_stacks
from flasklab.classroom.rebuild import instance_urn
from flasklab.stacks import load_stack
from tests.test_program import INSTANCE


def test_rebuild_replaces_exactly_the_students_instances_as_pulumi_names_them(run_program, capsys):
    run = run_program("class-demo")
    assert main(["class", "rebuild", "--stack", "class-demo", "ben", "carla"]) == 0
    printed = capsys.readouterr().out.strip()
    ben, carla = (run.urns[(INSTANCE, f"flasklab-class-demo-{s}-instance")] for s in ("ben", "carla"))
    assert printed == (
        f"FLASKLAB_REBUILD=ben,carla pulumi up --stack class-demo --replace '{ben}' --replace '{carla}'"
    )
    assert instance_urn(load_stack("class-demo", student="ben")) == ben


def test_rebuild_all_names_every_instance(run_program, capsys):
    run = run_program("class-demo")
    assert main(["class", "rebuild", "--stack", "class-demo", "--all"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("FLASKLAB_REBUILD=ALL pulumi up --stack class-demo")
    assert printed.count("--replace") == 3
    assert all(urn in printed for (type_, _), urn in run.urns.items() if type_ == INSTANCE)


def test_rebuild_of_a_one_student_stack_needs_no_name(run_program, capsys):
    run = run_program("dev")
    assert main(["class", "rebuild", "--stack", "dev"]) == 0
    urn = run.urns[(INSTANCE, "flasklab-dev-instance")]
    assert capsys.readouterr().out.strip() == f"FLASKLAB_REBUILD=dev pulumi up --stack dev --replace '{urn}'"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["class-demo", "zoe"], "zoe is not a student of stack class-demo. Its students: ana, ben, carla."),
        (["class-demo"], "name the students to rebuild, or --all. Its students: ana, ben, carla."),
        (["dev", "ana"], "stack dev has one server: name no student."),
    ],
)
def test_rebuild_says_who_can_be_rebuilt(arguments, message, capsys):
    stack, *students = arguments
    assert main(["class", "rebuild", "--stack", stack, *students]) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def stacks_dir(tmp_path, monkeypatch):
    """A stand-in stacks/ folder holding the dev stack, where `class stacks` writes."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    template = yaml.safe_load((stacks.STACKS_DIR / "Pulumi.dev.yaml").read_text())
    template["config"]["flasklab:serverAliases"] = ["www.practica_flask"]
    (folder / "Pulumi.dev.yaml").write_text(yaml.safe_dump(template))
    monkeypatch.setattr(stacks, "STACKS_DIR", folder)
    monkeypatch.setattr(student_stacks, "STACKS_DIR", folder)
    return folder


def test_stacks_writes_a_valid_stack_file_per_student(stacks_dir, tmp_path, capsys):
    roster = tmp_path / "class.csv"
    roster.write_text("student,recipe\nana,\nben,apache-modwsgi\n")
    assert (
        main(["class", "stacks", "--roster", str(roster), "--from", str(stacks_dir / "Pulumi.dev.yaml")]) == 0
    )
    assert sorted(path.name for path in stacks_dir.iterdir()) == [
        "Pulumi.dev-ana.yaml",
        "Pulumi.dev-ben.yaml",
        "Pulumi.dev.yaml",
    ]
    ana, ben = load_stack("dev-ana"), load_stack("dev-ben")
    assert ana.server_names == ("ana.practica_flask", "ana.www.practica_flask")
    assert (ana.recipe.name, ben.recipe.name) == ("nginx-gunicorn-systemd", "apache-modwsgi")
    written = yaml.safe_load((stacks_dir / "Pulumi.dev-ben.yaml").read_text())
    assert written["config"]["aws:region"] == "eu-west-1"  # provider settings kept
    assert (stacks_dir / "Pulumi.dev-ben.yaml").read_text().startswith("# Written by flasklab")


def test_stacks_writes_nothing_when_a_row_is_refused_or_a_file_exists(stacks_dir, tmp_path, capsys):
    roster = tmp_path / "class.csv"
    template = str(stacks_dir / "Pulumi.dev.yaml")
    roster.write_text("student,recipe\nana,\nben,nginx-unicorn\n")
    assert main(["class", "stacks", "--roster", str(roster), "--from", template]) == 2
    assert "line 3 (ben): recipe" in capsys.readouterr().err
    assert sorted(path.name for path in stacks_dir.iterdir()) == ["Pulumi.dev.yaml"]
    roster.write_text("student\nana\n")
    shutil.copy(stacks_dir / "Pulumi.dev.yaml", stacks_dir / "Pulumi.dev-ana.yaml")
    assert main(["class", "stacks", "--roster", str(roster), "--from", template]) == 2
    assert "exist; nothing was written (--force overwrites): Pulumi.dev-ana.yaml" in capsys.readouterr().out
    assert main(["class", "stacks", "--roster", str(roster), "--from", template, "--force"]) == 0
    assert load_stack("dev-ana").server_name == "ana.practica_flask"
