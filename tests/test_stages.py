"""The stage setting: what a server at stage app or bare gets (and does not), that every
recipe's user-data at each stage passes the tools that read it on the server and fits EC2,
and that a finished server is what it was."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from flasklab import compose, readiness
from flasklab.recipes import CHECK_MODULE, CHECK_SPEC, FIRST_STEPS, RECIPES, SAMPLE_APP_SOURCE, STAGES
from flasklab.render import size_problems
from flasklab.settings import ConfigError
from flasklab.stacks import load_stack, load_stack_servers
from tests import config_tools
from tests.conftest import EXAMPLE_STACKS
from tests.test_render import check_generated_files, files_of, user_data_of

EXERCISE_STAGES = [name for name in STAGES if name != "finished"]


def cloud_config(settings) -> dict:
    return yaml.safe_load(user_data_of(settings))


def test_stage_app_installs_the_app_and_leaves_the_service_and_the_site():
    finished = load_stack("t003-supervisor")
    settings = load_stack("t003-supervisor", {"stage": "app"})
    steps = compose.deploy_steps(settings)
    assert steps[: 1 + len(FIRST_STEPS)] == ["idle-stop.sh", *FIRST_STEPS]
    assert "mariadb.sh" in steps and "app-migrate.sh" in steps
    assert not set(steps) & {"supervisor-app.sh", "nginx-site.sh"}
    paths = {file.path for file in files_of(settings)}
    assert "/etc/supervisor/conf.d/microblog.conf" in {file.path for file in files_of(finished)}
    assert not {"/etc/supervisor/conf.d/microblog.conf", "/etc/nginx/sites-available/microblog"} & paths
    assert {"/etc/flasklab/microblog/env", "/usr/local/bin/flasklab-check", CHECK_MODULE, CHECK_SPEC} <= paths
    document = cloud_config(settings)
    assert document["packages"] == cloud_config(finished)["packages"]
    assert [user if isinstance(user, str) else user["name"] for user in document["users"]] == [
        "default",
        "microblog",
    ]
    deploy = next(
        file for file in files_of(settings) if file.path == "/usr/local/sbin/flasklab-deploy"
    ).content
    assert "answers through the web server" not in deploy
    assert "ready for the exercise (stage app)" in deploy


def test_stage_bare_leaves_everything_but_the_sample_apps_code():
    settings = load_stack("dev", {"stage": "bare"})
    assert compose.deploy_steps(settings) == ["idle-stop.sh"]
    document = cloud_config(settings)
    assert "packages" not in document
    assert document["users"] == ["default"]
    written = {entry["path"]: entry for entry in document["write_files"]}
    assert not any(path.startswith(settings.app.dir) for path in written)
    assert "/etc/flasklab/flask_app/env" not in written
    sample = written[f"{SAMPLE_APP_SOURCE}/wsgi.py"]
    assert sample["owner"] == "root:root"
    assert "/usr/local/bin/flasklab-check" in written


def test_a_bare_server_with_an_app_repository_gets_no_code():
    settings = load_stack("dev", {"stage": "bare", "appRepo": "https://example.org/a.git"})
    assert not any(SAMPLE_APP_SOURCE in path for path in (file.path for file in files_of(settings)))


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_a_finished_server_gets_no_flasklab_check_and_every_stage_fits_ec2(stack):
    finished = load_stack(stack)
    assert "/usr/local/bin/flasklab-check" not in {file.path for file in files_of(finished)}
    for stage in STAGES:
        assert size_problems(user_data_of(load_stack(stack, {"stage": stage}))) == [], stage


# Every recipe at each exercise stage, with HTTPS and a database, through the server's tools.
COMBINATIONS = [
    (recipe, stage, ("mariadb", "postgresql")[index % 2])
    for index, recipe in enumerate(sorted(RECIPES))
    for stage in EXERCISE_STAGES
]


@config_tools.needs_checkers
@pytest.mark.parametrize(("recipe", "stage", "database"), COMBINATIONS)
def test_every_recipe_at_each_stage_passes_the_servers_own_tools(recipe, stage, database, tmp_path):
    settings = load_stack(
        "dev", {"recipe": recipe, "stage": stage, "database": database, "tls": "self-signed"}
    )
    files = files_of(settings)
    problems = check_generated_files(files, tmp_path, settings)
    assert problems and all(text == "" for text in problems.values()), problems
    assert config_tools.cloud_init_schema(user_data_of(settings), tmp_path, settings.debian_codename) == ""


def test_pulumi_ups_wait_for_an_exercise_server_ends_with_first_boot():
    """No page is asked of a server that does not serve yet; a finished one's is."""
    status = f"flasklab: ready for the exercise (stage app; ...)\n{readiness.STATUS_EXIT_MARKER}0\n"
    spec = readiness.wait_spec(load_stack("dev", {"stage": "app"}), "127.0.0.1", status)
    spec = dataclasses.replace(spec, timeout_seconds=1, http_port=9, https_port=9)  # nothing listens on 9
    text, verdict = readiness.run_wait(spec)
    assert verdict.ready and verdict.summary == "ready for the exercise", text
    _, finished = readiness.run_wait(dataclasses.replace(spec, serves=True))
    assert not finished.ready
    failed = status.replace(f"{readiness.STATUS_EXIT_MARKER}0", f"{readiness.STATUS_EXIT_MARKER}1")
    _, broken = readiness.run_wait(dataclasses.replace(spec, status_output=failed))
    assert not broken.ready


def test_a_roster_gives_each_student_a_stage_and_refuses_an_unknown_one(roster):
    roster("student,stage\nana,\nben,app\ncarla,bare\n")
    ana, ben, carla = load_stack_servers("class-demo", {"roster": "rosters/test.csv", "stage": "finished"})
    assert [s.stage.name for s in (ana, ben, carla)] == ["finished", "app", "bare"]
    roster("student,stage\nana,halfway\n")
    with pytest.raises(ConfigError, match="stage: 'halfway' is not a stage"):
        load_stack_servers("class-demo", {"roster": "rosters/test.csv"})
