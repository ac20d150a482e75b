"""Rendering: every example stack's user-data is valid cloud-config, small enough for
EC2, and every file it writes passes the tool that will read it on the server."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from flasklab.compose import generate_locally
from flasklab.recipes import APT_RETRIES, RECIPES
from flasklab.render import (
    SAMPLE_APP_DIR,
    USER_DATA_LIMIT,
    RenderedFile,
    encode_for_ec2,
    render_files,
    render_user_data,
    shipped_files,
)
from flasklab.stacks import load_stack
from tests import config_tools
from tests.conftest import EXAMPLE_STACKS, secrets_for_tests

EXPECTED_DIR = Path(__file__).parent / "expected"


def user_data_of(settings) -> str:
    return render_user_data(settings, secrets_for_tests(settings))


def files_of(settings) -> list[RenderedFile]:
    return render_files(settings, secrets_for_tests(settings))


# FLASKLAB_UPDATE_EXPECTED=1 rewrites the expected files from the templates; review the diff.
UPDATE_EXPECTED = os.environ.get("FLASKLAB_UPDATE_EXPECTED") == "1"


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_user_data_is_a_cloud_config_that_ec2_accepts(stack):
    user_data = user_data_of(load_stack(stack))
    assert user_data.startswith("#cloud-config\n")
    plain, packed = encode_for_ec2(user_data)
    # AWS's limit is on the raw bytes, before base64 (the gzip's when packed).
    assert len(plain.encode() if plain else base64.b64decode(packed or "")) <= USER_DATA_LIMIT
    document = yaml.safe_load(user_data)
    assert isinstance(document, dict)
    assert document["runcmd"] == [["/usr/local/sbin/flasklab-deploy"]]


@config_tools.needs_checkers
@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_user_data_passes_cloud_inits_schema(stack, tmp_path):
    settings = load_stack(stack)
    assert config_tools.cloud_init_schema(user_data_of(settings), tmp_path, settings.debian_codename) == ""


@config_tools.needs_checkers
@pytest.mark.parametrize("codename", ["trixie", "bookworm"])
def test_schema_check_catches_a_bad_cloud_config(codename, tmp_path):
    assert config_tools.cloud_init_schema("#cloud-config\npackages: 3\n", tmp_path, codename)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_write_files_carry_every_rendered_file_once(stack):
    settings = load_stack(stack)
    document = yaml.safe_load(user_data_of(settings))
    written = {entry["path"]: entry for entry in document["write_files"]}
    rendered = files_of(settings)
    assert len(written) == len(rendered)
    for file in rendered:
        assert written[file.path]["content"] == file.content
        assert written[file.path]["permissions"] == file.mode
        # After packages and users, but apt's retries before cloud-init's first apt run.
        assert written[file.path]["defer"] is (file.path != APT_RETRIES.path)


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_generated_files_say_flasklab_wrote_them(stack):
    settings = load_stack(stack)
    for file in files_of(settings):
        if file.path.startswith(settings.app.dir):
            continue  # the sample app ships as it is
        first_lines = file.content.splitlines()[:2]
        assert any(
            line.startswith(
                (
                    "# Written by flasklab for stack",
                    "-- Written by flasklab for stack",
                    "// Written by flasklab",
                )
            )
            for line in first_lines
        ), file.path


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_stack_files_match_the_expected_files(stack):
    """Every file rendered from a template; the sample app ships as it is (tested below)."""
    settings = load_stack(stack)
    shipped = {file.path for file in shipped_files(settings)}
    rendered = {file.path: file.content for file in files_of(settings) if file.path not in shipped}
    expected_root = EXPECTED_DIR / stack
    if UPDATE_EXPECTED:
        shutil.rmtree(expected_root, ignore_errors=True)
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
        assert content == expected[path], f"{path} differs from tests/expected/{stack}{path}"


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_sample_app_is_shipped_unchanged_and_owned_by_the_app(stack):
    settings = load_stack(stack)
    written = {entry["path"]: entry for entry in yaml.safe_load(user_data_of(settings))["write_files"]}
    sources = [
        path for path in SAMPLE_APP_DIR.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    ]
    assert sources
    for source in sources:
        entry = written[f"{settings.app.dir}/{source.relative_to(SAMPLE_APP_DIR).as_posix()}"]
        assert entry["content"] == source.read_text()
        assert entry["owner"] == f"{settings.app.user}:{settings.app.user}"


def check_generated_files(files: list[RenderedFile], workdir: Path, settings) -> dict[str, str]:
    """Each generated file's complaints from the tool that reads it on the server."""
    app, codename = settings.app, settings.debian_codename
    problems = {}
    units = [file for file in files if file.checker == "systemd"]
    if units:
        (workdir / "systemd").mkdir()
        problems["systemd units"] = config_tools.systemd_verify(units, workdir / "systemd", codename)
    supervisor_files = [file for file in files if file.checker == "supervisor"]
    if supervisor_files:
        (workdir / "supervisor").mkdir()
        problems["supervisor"], _ = config_tools.supervisor_read(
            supervisor_files, workdir / "supervisor", app.user, app.log_dir, codename
        )
    for index, file in enumerate(files):
        folder = workdir / f"{file.checker}-{index}"
        folder.mkdir()
        if file.checker == "nginx":
            problems[file.path] = config_tools.nginx_test(file, folder, app.user, codename)
        elif file.checker == "apache":
            problems[file.path] = config_tools.apache_test(file, folder, app.user, codename)
        elif file.checker == "uwsgi":
            problems[file.path] = config_tools.uwsgi_test(file, folder, codename)
        elif file.checker == "python":
            problems[file.path] = config_tools.python_compile(file, folder, codename)
        elif file.checker == "sh":
            problems[file.path] = config_tools.shell_check(file, folder, codename)
        elif file.checker == "env":
            problems[file.path] = config_tools.env_file_check(file, folder, codename)
    return problems


@config_tools.needs_checkers
@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_generated_configs_pass_their_own_tools(stack, tmp_path):
    settings = load_stack(stack)
    files = files_of(settings)
    checked = {file.checker for file in files if file.checker}
    problems = check_generated_files(files, tmp_path, settings)
    assert problems and all(text == "" for text in problems.values()), problems
    assert checked <= config_tools.CHECKERS, f"no tool for {checked - config_tools.CHECKERS}"


# One breakage per checker: (stack, checker, text, replacement).
BREAKAGES = [
    ("dev", "nginx", "server_name", "server_nme"),
    ("dev", "systemd", "Type=notify", "Type=notifyy"),
    ("dev", "sh", "set -eu", "set -eu\nif then fi"),
    ("t000-apache", "apache", "WSGIApplicationGroup", "WSGIApplicationGrup"),
    ("t000-apache", "python", "import sys", "import sys("),
    ("t002-uwsgi", "uwsgi", "need-app", "need-apps"),
    ("t002-uwsgi", "supervisor", "stopsignal = INT", "stopsignal = INTERRUPT"),
    ("t003-supervisor", "supervisor", "user = microblog", "user = nobody-such-user"),
    ("t003-supervisor", "env", "GREETING='", 'GREETING="$HOME" \''),
    ("t003-supervisor", "nginx", "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.2 TLSv1.3 TLSv9;"),
]


@config_tools.needs_checkers
@pytest.mark.parametrize(("stack", "checker", "text", "replacement"), BREAKAGES)
def test_tools_reject_broken_configs(stack, checker, text, replacement, tmp_path):
    """The checks above can fail: each tool rejects a file broken on purpose."""
    settings = load_stack(stack)
    files = files_of(settings)
    target = next(file for file in files if file.checker == checker and text in file.content)
    broken = dataclasses.replace(target, content=target.content.replace(text, replacement, 1))
    problems = check_generated_files(
        [broken if file is target else file for file in files], tmp_path, settings
    )
    complaints = {path: text for path, text in problems.items() if text}
    assert complaints, f"{checker} accepted {target.path} with {replacement!r}"


@config_tools.needs_checkers
def test_supervisor_reads_the_program_and_lets_the_group_supervisor_in(tmp_path):
    settings = load_stack("t002-uwsgi")
    files = [file for file in files_of(settings) if file.checker == "supervisor"]
    problems, read = config_tools.supervisor_read(
        files, tmp_path, "hellopython", "/var/log/hellopython", settings.debian_codename
    )
    assert problems == ""
    assert read["socket"] == [["0o770", [0, 991]]]
    program = read["programs"]["hellopython"]
    assert program["command"].startswith('/bin/sh -c "set -a && . /etc/flasklab/hellopython/env && exec ')
    assert program["command"].endswith('exec /usr/bin/uwsgi --ini /etc/flasklab/hellopython/uwsgi.ini"')
    assert program["user"] == 990
    assert program["stopsignal"] == signal.SIGINT
    assert program["autorestart"].endswith("RestartUnconditionally'>")
    assert program["killasgroup"] and program["stopasgroup"]
    assert program["stdout_logfile"] == "/var/log/hellopython/supervisor.log"


@config_tools.needs_checkers
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
    document = yaml.safe_load(user_data_of(settings))
    assert "git" in document["packages"]
    paths = [entry["path"] for entry in document["write_files"]]
    assert not [path for path in paths if path.startswith("/var/www/")], "no sample app"
    script = next(f for f in files_of(settings) if f.path == "/usr/local/sbin/flasklab-deploy")
    assert (
        "git clone --quiet 'https://git.example.org/teacher/flask_temperaturas.git?ref=a&b' "
        "/var/www/flask_app\n"
    ) in script.content
    assert "checkout --quiet v1.2\n" in script.content
    assert "-r /var/www/flask_app/deploy/requirements.txt gunicorn" in script.content
    unit = next(f for f in files_of(settings) if f.path.endswith(".service"))
    assert "gunicorn --workers 2 --threads 1 app:create_app()\n" in unit.content
    assert config_tools.shell_check(script, tmp_path, settings.debian_codename) == ""


def test_large_user_data_is_sent_gzipped_and_unpacks_to_the_same_text():
    small = "#cloud-config\npackages: [nginx]\n" + "# a line of comment\n" * 500
    assert encode_for_ec2(small) == (small, None)
    real = user_data_of(load_stack("ana-bookworm", {"appRepo": "https://example.org/app.git"}))
    large = real + "".join(f"# padding line {n} to pass the limit\n" for n in range(100))
    plain, packed = encode_for_ec2(large)
    assert plain is None
    assert len(packed) <= USER_DATA_LIMIT
    assert gzip.decompress(base64.b64decode(packed)).decode() == large
    assert encode_for_ec2(large) == (None, packed), "same bytes every run"


def test_user_data_too_large_even_compressed_says_what_to_do():
    random_text = base64.b64encode(os.urandom(20_000)).decode()
    with pytest.raises(ValueError, match="Deploy the app from a git repository"):
        encode_for_ec2(random_text)


@config_tools.needs_checkers
def test_supervisor_command_runs_an_app_factory_through_sh(tmp_path):
    """sh, not supervisor, reads the program's command: an entry such as create_app()
    must reach Gunicorn as one word."""
    settings = load_stack("t003-supervisor", {"appEntry": "microblog:create_app()"})
    files = [file for file in files_of(settings) if file.checker == "supervisor"]
    problems, read = config_tools.supervisor_read(
        files, tmp_path, "microblog", "/var/log/microblog", settings.debian_codename
    )
    assert problems == ""
    program, flag, script = shlex.split(read["programs"]["microblog"]["command"])
    assert (program, flag) == ("/bin/sh", "-c")
    words = subprocess.run(
        ["sh", "-c", script.replace("set -a && . /etc/flasklab/microblog/env && exec ", "printf '%s\\n' ")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert words[-1] == "microblog:create_app()"


# Beyond the example stacks: every recipe with each kind of HTTPS, and a database.
HTTPS_COMBINATIONS = [
    (recipe, tls, database)
    for index, recipe in enumerate(sorted(RECIPES))
    for tls in ("self-signed", "letsencrypt")
    for database in [("mariadb", "postgresql")[index % 2]]
]


@config_tools.needs_checkers
@pytest.mark.parametrize(("recipe", "tls", "database"), HTTPS_COMBINATIONS)
def test_https_and_database_configs_pass_their_own_tools_in_every_recipe(recipe, tls, database, tmp_path):
    settings = load_stack(
        "dev",
        {
            "recipe": recipe,
            "tls": tls,
            "tlsEmail": "teacher@school.org" if tls == "letsencrypt" else "",
            "database": database,
            "serverName": "flask.school.org",
            "serverAliases": ["www.flask.school.org"],
        },
    )
    files = files_of(settings)
    paths = [file.path for file in files]
    web_server = settings.recipe.web_server
    assert (web_server.http_site.path.format(app="flask_app") in paths) is (tls == "letsencrypt")
    assert web_server.https_site.path.format(app="flask_app") in paths
    assert ("/usr/local/sbin/flasklab-letsencrypt" in paths) is (tls == "letsencrypt")
    problems = check_generated_files(files, tmp_path, settings)
    assert all(text == "" for text in problems.values()), problems
    assert config_tools.cloud_init_schema(user_data_of(settings), tmp_path, settings.debian_codename) == ""
    env = next(file for file in files if file.checker == "env").content
    assert "FLASK_SESSION_COOKIE_SECURE='true'" in env
    assert f"DATABASE_URL='{'mysql+pymysql' if database == 'mariadb' else 'postgresql+psycopg'}://" in env


# nginx's default hash bucket (64 bytes) holds names of up to 46 characters; a longer one
# needs server_names_hash_bucket_size, or `nginx -t` refuses the site.
LONG_NAMES = {
    46: "a" * 42 + ".org",
    47: "a" * 43 + ".org",
    111: "b" * 63 + "." + "c" * 43 + ".org",
    200: "d" * 63 + "." + "e" * 63 + "." + "f" * 63 + "." + "g" * 4 + ".org",
}


@config_tools.needs_checkers
@pytest.mark.parametrize("length", sorted(LONG_NAMES))
@pytest.mark.parametrize("tls", ["none", "self-signed"])
def test_nginx_accepts_a_server_name_of_any_length(length, tls, tmp_path):
    name = LONG_NAMES[length]
    assert len(name) == length
    settings = load_stack("dev", {"serverName": name, "serverAliases": [], "tls": tls})
    sites = [file for file in files_of(settings) if file.checker == "nginx"]
    assert sites
    for index, site in enumerate(sites):
        assert ("server_names_hash_bucket_size" in site.content) is (length > 46), site.content
        (tmp_path / str(index)).mkdir()
        said = config_tools.nginx_test(
            site, tmp_path / str(index), settings.app.user, settings.debian_codename
        )
        assert said == "", said


def test_database_secrets_are_only_in_files_readable_by_root_and_the_app():
    settings = load_stack("t004-postgres")
    password = secrets_for_tests(settings).database_password
    holders = {file.path: (file.mode, file.owner) for file in files_of(settings) if password in file.content}
    assert holders == {
        "/etc/flasklab/api/env": ("0640", "root:api"),
        "/etc/flasklab/api/database-setup.sql": ("0600", "root:root"),
    }


def test_chosen_password_reaches_the_url_percent_encoded_and_the_sql_as_is():
    settings = load_stack("t004-postgres", {"databasePassword": "p@ss/word:12 #"})
    files = render_files(settings, generate_locally(settings))
    env = next(file for file in files if file.checker == "env").content
    sql = next(file for file in files if file.path.endswith("database-setup.sql")).content
    assert "postgresql+psycopg://api:p%40ss%2Fword%3A12%20%23@localhost:5432/api" in env
    assert "PASSWORD 'p@ss/word:12 #'" in sql


@config_tools.needs_checkers
def test_the_deploy_check_requests_ready_path_and_looks_for_ready_text(tmp_path):
    settings = load_stack(
        "dev", {"readyPath": "/health?full=1", "readyText": "it's up & running", "tls": "self-signed"}
    )
    script = next(f for f in files_of(settings) if f.path == "/usr/local/sbin/flasklab-deploy")
    assert "\"https://$1\"'/health?full=1'" in script.content
    assert "| grep --quiet --fixed-strings -- 'it'\"'\"'s up & running'" in script.content
    assert config_tools.shell_check(script, tmp_path, settings.debian_codename) == ""


@pytest.mark.parametrize("module", ["server_status", "server_check"])
def test_a_shipped_module_runs_as_the_source_does_without_its_comments(module, tmp_path):
    """The modules shipped to the server lose comments and inner docstrings to fit EC2's
    limit; what is left still runs (its --help, from the module's docstring)."""
    import importlib
    import subprocess
    import sys

    from flasklab import render

    source = Path(importlib.import_module(f"flasklab.{module}").__file__)
    # flasklab-check ships without type hints too (exercise servers' user-data is the fullest).
    hints = module != "server_check"
    shipped = render._shipped_module(source, keep_signatures=hints)
    assert len(shipped) < len(source.read_text()) and "# " not in shipped.splitlines()[1]
    assert (") -> " in shipped) is hints
    (tmp_path / "shipped.py").write_text(shipped)
    done = subprocess.run([sys.executable, tmp_path / "shipped.py", "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    first_line = importlib.import_module(f"flasklab.{module}").__doc__.splitlines()[0]
    assert first_line in " ".join(done.stdout.split())
