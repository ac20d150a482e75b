"""Rendering: every example stack's user-data is valid cloud-config, small enough for
EC2, and every file it writes passes the tool that will read it on the server."""

from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path

import pytest
import yaml

from flasklab.render import (
    USER_DATA_LIMIT,
    encode_for_ec2,
    render_files,
    render_user_data,
)
from flasklab.stacks import load_stack
from tests import config_tools
from tests.conftest import EXAMPLE_STACKS

EXPECTED_DIR = Path(__file__).parent / "expected"
# FLASKLAB_UPDATE_EXPECTED=1 rewrites the expected files from the templates; review the diff.
UPDATE_EXPECTED = os.environ.get("FLASKLAB_UPDATE_EXPECTED") == "1"


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_user_data_is_a_cloud_config_under_16_kb(stack):
    user_data = render_user_data(load_stack(stack))
    assert user_data.startswith("#cloud-config\n")
    assert len(user_data.encode()) <= USER_DATA_LIMIT
    document = yaml.safe_load(user_data)
    assert isinstance(document, dict)
    assert document["runcmd"] == [["/usr/local/sbin/flasklab-deploy"]]


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_user_data_passes_cloud_inits_schema(stack, tmp_path):
    assert config_tools.cloud_init_schema(render_user_data(load_stack(stack)), tmp_path) == ""


def test_schema_check_catches_a_bad_cloud_config(tmp_path):
    assert config_tools.cloud_init_schema("#cloud-config\npackages: 3\n", tmp_path)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_write_files_carry_every_rendered_file_once(stack):
    settings = load_stack(stack)
    document = yaml.safe_load(render_user_data(settings))
    written = {entry["path"]: entry for entry in document["write_files"]}
    rendered = render_files(settings)
    assert len(written) == len(rendered)
    for file in rendered:
        assert written[file.path]["content"] == file.content
        assert written[file.path]["permissions"] == file.mode
        assert written[file.path]["defer"] is True


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_generated_files_say_flasklab_wrote_them(stack):
    settings = load_stack(stack)
    for file in render_files(settings):
        if file.path.startswith(settings.app.dir):
            continue  # the sample app ships as it is
        first_lines = file.content.splitlines()[:2]
        assert any(line.startswith("# Written by flasklab for stack") for line in first_lines), file.path


def test_default_stack_files_match_the_expected_files():
    rendered = {file.path: file.content for file in render_files(load_stack("dev"))}
    expected_root = EXPECTED_DIR / "dev"
    if UPDATE_EXPECTED:
        for path, content in rendered.items():
            target = expected_root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    expected = {
        "/" + path.relative_to(expected_root).as_posix(): path.read_text()
        for path in expected_root.rglob("*")
        if path.is_file()
    }
    assert sorted(rendered) == sorted(expected)
    for path, content in rendered.items():
        assert content == expected[path], f"{path} differs from tests/expected/dev{path}"


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_generated_configs_pass_their_own_tools(stack, tmp_path):
    files = render_files(load_stack(stack))
    units = [file for file in files if file.checker == "systemd"]
    problems = {}
    if units:
        problems["systemd"] = config_tools.systemd_verify(units, tmp_path / "systemd")
    for index, file in enumerate(files):
        workdir = tmp_path / f"{file.checker}-{index}"
        workdir.mkdir()
        if file.checker == "nginx":
            problems[file.path] = config_tools.nginx_test(file, workdir)
        elif file.checker == "sh":
            problems[file.path] = config_tools.shell_check(file, workdir)
    assert problems and all(text == "" for text in problems.values()), problems


def test_tools_reject_broken_configs(tmp_path):
    """The checks above can fail: each tool rejects a file broken on purpose."""
    files = {file.checker: file for file in render_files(load_stack("dev")) if file.checker}
    site, unit, script = files["nginx"], files["systemd"], files["sh"]
    broken_site = type(site)(site.path, site.content.replace("server_name", "server_nme", 1), site.mode)
    broken_unit = type(unit)(unit.path, unit.content.replace("Type=notify", "Type=notifyy"), unit.mode)
    broken_script = type(script)(script.path, script.content + "\nif then fi\n", script.mode)
    for name in ("nginx", "systemd", "sh"):
        (tmp_path / name).mkdir()
    assert config_tools.nginx_test(broken_site, tmp_path / "nginx")
    assert config_tools.systemd_verify([broken_unit], tmp_path / "systemd")
    assert config_tools.shell_check(broken_script, tmp_path / "sh")


def test_git_app_is_cloned_at_its_ref_and_gets_git(tmp_path):
    settings = load_stack(
        "dev",
        {
            "appRepo": "https://git.example.org/teacher/flask_temperaturas.git?ref=a&b",
            "appRef": "v1.2",
            "appEntry": "app:create_app()",
            "appRequirements": "deploy/requirements.txt",
        },
    )
    document = yaml.safe_load(render_user_data(settings))
    assert "git" in document["packages"]
    paths = [entry["path"] for entry in document["write_files"]]
    assert not [path for path in paths if path.startswith("/var/www/")], "no sample app"
    script = next(f for f in render_files(settings) if f.path == "/usr/local/sbin/flasklab-deploy")
    assert (
        "git clone --quiet 'https://git.example.org/teacher/flask_temperaturas.git?ref=a&b' "
        "/var/www/flask_app\n"
    ) in script.content
    assert "checkout --quiet v1.2\n" in script.content
    assert "-r /var/www/flask_app/deploy/requirements.txt gunicorn" in script.content
    unit = next(f for f in render_files(settings) if f.path.endswith(".service"))
    assert "gunicorn --workers 2 --access-logfile - app:create_app()\n" in unit.content
    assert config_tools.shell_check(script, tmp_path) == ""


def test_large_user_data_is_sent_gzipped_and_unpacks_to_the_same_text():
    small = render_user_data(load_stack("dev"))
    assert encode_for_ec2(small) == (small, None)
    large = small + "".join(f"# padding line {n} to pass the limit\n" for n in range(1000))
    plain, packed = encode_for_ec2(large)
    assert plain is None
    assert len(packed) <= USER_DATA_LIMIT
    assert gzip.decompress(base64.b64decode(packed)).decode() == large
    assert encode_for_ec2(large) == (None, packed), "same bytes every run"


def test_user_data_too_large_even_compressed_says_what_to_do():
    random_text = base64.b64encode(os.urandom(20_000)).decode()
    with pytest.raises(ValueError, match="Deploy the app from a git repository"):
        encode_for_ec2(random_text)
