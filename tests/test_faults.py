"""Stage broken's fault catalogue (flasklab/faults.py) as data: complete (texts in every
language, real checkpoints, real recipes, a script each), the seeded choice deterministic
and spread, the fault part of the build digest, never named in the user-data, every
example stack's user-data still within EC2's limit with any fault, and the teacher's
choice checked."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
from collections import Counter

import pytest

from flasklab import compose, readiness, rubric
from flasklab.classroom import faults as class_faults
from flasklab.faults import FAULTS, applicable, seeded_choice
from flasklab.recipes import CHECK_MODULE, DATABASES, FAULT_SCRIPT, RECIPES, STAGES, TLS_MODES
from flasklab.render import TEMPLATES_DIR, render_files, screen_user_data, size_problems, stand_in_secrets
from flasklab.rubric_texts import LANGUAGES, texts
from flasklab.settings import PROJECT_DIR, ConfigError
from flasklab.stacks import load_stack, load_stack_servers
from tests.conftest import EXAMPLE_STACKS
from tests.test_render import user_data_of
from tests.test_rubric import settings_of

COMBINATIONS = [
    (recipe, database, tls)
    for recipe in sorted(RECIPES)
    for database in ("none", *sorted(DATABASES))
    for tls in sorted(TLS_MODES)
]


def broken(recipe: str, database: str, tls: str, fault: str = "", **more: str):
    return settings_of(recipe, database, tls, stage="broken", fault=fault, **more)


def test_every_fault_has_a_script_real_recipes_and_a_text_in_every_language():
    every_key = {c.key for combo in COMBINATIONS for c in rubric.rubric(settings_of(*combo))}
    for fault in FAULTS.values():
        assert (TEMPLATES_DIR / f"{fault.template}.j2").is_file(), fault.name
        assert fault.recipes and set(fault.recipes) <= set(RECIPES), fault.name
        assert fault.fails and set(fault.fails) <= every_key, fault.name
        for language in LANGUAGES:
            entry = texts(language)[fault.text_key]
            assert entry["title"].strip() and entry["hint"].strip(), (fault.name, language)


@pytest.mark.parametrize(("recipe", "database", "tls"), COMBINATIONS)
def test_where_a_fault_applies_its_first_checkpoint_is_in_the_rubric_and_its_texts_fill_in(
    recipe, database, tls
):
    names = applicable(recipe, database != "none", True)
    assert {"site-not-enabled", "unit-not-enabled", "app-owner", "requirements-missing"} <= set(names)
    assert ("database-password" in names) is (database != "none")
    assert ("socket-mismatch" in names) is bool(RECIPES[recipe].app_address)
    for name in names:
        settings = broken(recipe, database, tls, name)
        assert FAULTS[name].fails[0] in {c.key for c in rubric.rubric(settings)}, name
        for language in LANGUAGES:
            shown, sees, fix = rubric.fault_texts(settings, language)
            assert shown == name
            assert sees and fix and not re.search(r"\{[a-z_]+\}", sees + fix), (name, language, sees, fix)


def test_the_seeded_choice_is_deterministic_and_spread_over_the_class():
    names = applicable("nginx-gunicorn-systemd", True, True)
    students = [f"student{number}" for number in range(120)]
    chosen = [seeded_choice("daw-2026", student, names) for student in students]
    assert chosen == [seeded_choice("daw-2026", student, names) for student in students]
    counts = Counter(chosen)
    assert set(counts) == set(names), counts
    assert min(counts.values()) >= 120 // len(names) // 2, counts  # no fault starves
    # Neighbours mostly differ, and another class gets other faults.
    assert sum(a != b for a, b in itertools.pairwise(chosen)) > 80
    assert chosen != [seeded_choice("daw-2027", student, names) for student in students]


def test_a_roster_gives_the_fault_per_student_or_the_seeds(roster):
    roster("student,stage,fault\nana,broken,app-owner\nben,broken,\ncarla,finished,\n")
    ana, ben, carla = load_stack_servers("class-demo", {"roster": "rosters/test.csv"})
    assert compose.fault_of(ana) == FAULTS["app-owner"]
    seeded = compose.fault_of(ben)
    assert seeded is not None and seeded.name == seeded_choice(
        "class-demo", "ben", applicable(ben.recipe.name, False, True)
    )
    assert compose.fault_of(carla) is None
    # A rebuild of the same stack gives the same faults.
    again = load_stack_servers("class-demo", {"roster": "rosters/test.csv"})
    assert [compose.fault_of(s) for s in again] == [compose.fault_of(s) for s in (ana, ben, carla)]


def test_the_fault_changes_the_build_and_is_never_named_on_the_server():
    digests = set()
    for name in applicable("nginx-gunicorn-systemd", True, True):
        settings = load_stack("t004-postgres", {"stage": "broken", "fault": name})
        user_data = user_data_of(settings)
        assert name not in user_data and FAULTS[name].text_key not in user_data
        assert "flasklab-check" not in user_data  # its hints would name the fault
        digests.add(screen_user_data(settings).digest)
        files = {file.path: file for file in render_files(settings, stand_in_secrets(settings))}
        assert files[FAULT_SCRIPT].mode == "0700" and CHECK_MODULE not in files
    assert len(digests) == len(applicable("nginx-gunicorn-systemd", True, True))
    finished = screen_user_data(load_stack("t004-postgres")).digest
    assert finished not in digests


def test_the_deploy_applies_the_fault_after_the_finished_deploy_and_deletes_it():
    settings = load_stack("dev", {"stage": "broken", "fault": "site-not-enabled"})
    files = {file.path: file.content for file in render_files(settings, stand_in_secrets(settings))}
    deploy = files["/usr/local/sbin/flasklab-deploy"]
    answers, applied = deploy.index("does not answer as it should"), deploy.index(f"sh -e {FAULT_SCRIPT}")
    assert answers < applied < deploy.index(f"rm {FAULT_SCRIPT}")
    assert f"sh -e {FAULT_SCRIPT} > /dev/null 2>&1" in deploy  # its output names what it did
    assert "--stage broken" in files["/usr/local/bin/flasklab-status"]
    finished = load_stack("dev")
    assert FAULT_SCRIPT not in user_data_of(finished)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_every_example_stack_fits_ec2_with_every_fault_that_applies(stack):
    for server in load_stack_servers(stack):  # a class stack's students may differ
        settings = dataclasses.replace(server, stage=STAGES["broken"])
        for name in applicable(settings.recipe.name, settings.database is not None, not settings.app.repo):
            faulty = dataclasses.replace(settings, fault=name)
            assert size_problems(user_data_of(faulty)) == [], (stack, server.student, name)


def test_a_fault_outside_the_catalogue_the_stage_or_the_recipe_is_refused():
    with pytest.raises(ConfigError, match="'typo' is not a fault of the catalogue"):
        load_stack("dev", {"stage": "broken", "fault": "typo"})
    with pytest.raises(ConfigError, match="only applied at stage broken"):
        load_stack("dev", {"fault": "app-owner"})
    with pytest.raises(ConfigError, match="database-password does not apply to this server"):
        load_stack("dev", {"stage": "broken", "fault": "database-password"})
    with pytest.raises(ConfigError, match="socket-mismatch does not apply"):
        load_stack("dev", {"stage": "broken", "fault": "socket-mismatch", "recipe": "apache-modwsgi"})


def test_pulumi_ups_wait_for_a_broken_server_ends_with_first_boot():
    spec = readiness.wait_spec(load_stack("dev", {"stage": "broken"}), "127.0.0.1", "")
    assert not spec.serves
    assert readiness.wait_spec(load_stack("dev"), "127.0.0.1", "").serves


def test_class_faults_shows_each_students_fault_and_fix_to_the_teacher(roster, monkeypatch, capsys):
    roster("student,stage,fault\nana,broken,app-owner\nben,finished,\n")
    servers = load_stack_servers("class-demo", {"roster": "rosters/test.csv"})
    monkeypatch.setattr(class_faults, "load_stack_servers", lambda stack: servers)
    assert class_faults.run(argparse.Namespace(stack="class-demo", student=[])) == 0
    shown = capsys.readouterr().out
    assert "app-owner" in shown and "chown -R" in shown and "app_owner" in shown
    assert "(stage finished)" in shown
    assert class_faults.run(argparse.Namespace(stack="class-demo", student=["zoe"])) == 2
    assert "not on the stack's roster: zoe" in capsys.readouterr().err


def test_the_teachers_page_has_a_row_per_fault_with_its_checkpoints():
    rows = {
        line.split("`")[1]: line
        for line in (PROJECT_DIR / "docs" / "faults.md").read_text().splitlines()
        if line.startswith("| `")
    }
    assert sorted(rows) == sorted(FAULTS)
    for name, fault in FAULTS.items():
        named = {*fault.fails, *(key for _, keys in fault.also_fails for key in keys)}
        assert all(f"`{key}`" in rows[name] for key in named), name
