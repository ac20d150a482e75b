"""End-to-end: every example stack's exact user-data booted by real cloud-init under real
systemd in a Debian container, serving the app through the web server."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest
from markupsafe import escape

from flasklab import compose, probes, rubric
from flasklab.classroom import grade
from flasklab.classroom.check import Server
from flasklab.rehearsal import server_logs
from flasklab.rehearsal.report import Outcome
from flasklab.rehearsal.run import Rehearsal
from flasklab.rehearsal.target import target_for
from flasklab.render import render_user_data
from flasklab.settings import PROJECT_DIR
from flasklab.stacks import load_stack
from tests.conftest import STUDENT_STACKS, boot_prerequisites_missing, secrets_for_tests
from tests.container_tools import login_user, processes_of, run_inside
from tests.fault_checks import survive_faults

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]
REPOS_DIR = Path("/var/lib/flasklab/test-repos")


def assert_served(rehearsal: Rehearsal, outcome: Outcome) -> None:
    full_report = rehearsal.report(outcome)
    assert outcome.ok, full_report
    assert outcome.cloud_init_errors == []
    assert outcome.first_response_seconds is not None


@pytest.mark.parametrize("stack", STUDENT_STACKS)
def test_example_stack_boots_and_serves_every_server_name(rehearsal_of, stack):
    settings = load_stack(stack)
    rehearsal = rehearsal_of(settings)
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)
    assert "<h1>Flask app deployed</h1>" in outcome.first_response
    greeting = dict(settings.app.env).get("GREETING")
    if greeting:  # appEnv reached the app, unchanged
        assert f'<p id="greeting">{escape(greeting)}</p>' in outcome.first_response
    assert_served_by_the_recipes_programs(rehearsal, settings)
    assert_env_file_is_private(rehearsal, settings)
    assert_login_user_manages_the_app(rehearsal, settings)
    assert_status_says_ready(rehearsal, settings)
    if settings.tls.name == "letsencrypt":
        assert_letsencrypt_certificate_issued(rehearsal, settings)
    assert_full_marks(rehearsal, settings)


def assert_full_marks(rehearsal: Rehearsal, settings) -> None:
    """The rubric agrees with the recipe: a finished server passes every checkpoint, its
    on-server ones run as `class grade` runs them (flasklab's checker as root) and the rest
    from outside."""
    (rehearsal.root / "var/tmp/flasklab-grade-check.py").write_text(grade.SOURCE.read_text())
    spec = json.dumps(rubric.server_spec(settings), separators=(",", ":"))
    command = f"python3 /var/tmp/flasklab-grade-check.py --json --spec-json {shlex.quote(spec)}"
    result = run_inside(rehearsal, command)
    failing = {r["key"]: r["evidence"] for r in json.loads(result.stdout) if not r["passed"]}
    server = Server(settings.stack, settings, rehearsal.container.address, settings.server_names)
    outside = grade.outside_marks(server, deadline=time.monotonic() + 60)
    failing |= {mark.key: mark.evidence for mark in outside if not mark.passed}
    assert failing == {}, failing


def assert_status_says_ready(rehearsal: Rehearsal, settings) -> None:
    """A student runs flasklab-status, without sudo, and learns the server is ready."""
    result = run_inside(rehearsal, "flasklab-status", user=login_user(rehearsal))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"flasklab: ready: {compose.boot_url(settings)} is served" in result.stdout


def assert_letsencrypt_certificate_issued(rehearsal: Rehearsal, settings) -> None:
    """With every name pointing at it (the rehearsal's DNS), the server got its certificate
    by itself: flasklab-letsencrypt.timer found the names resolving to its public address
    (the rehearsal's instance metadata), certbot asked pebble (the rehearsal's Let's
    Encrypt), pebble validated each name over http://NAME/ and issued the certificate, the
    site switched to HTTPS (the probes checked its pages and the redirect) and the timer
    stopped. Each name is served with that certificate, which chains to pebble's root."""
    context = ssl.create_default_context(cafile=str(rehearsal.site.ca_file))
    for name in settings.server_names:
        with (
            socket.create_connection((rehearsal.container.address, 443), timeout=10) as connection,
            context.wrap_socket(connection, server_hostname=name) as tls,
        ):
            certificate = tls.getpeercert()
        assert certificate is not None
        alt_names = {value for kind, value in certificate["subjectAltName"] if kind == "DNS"}
        assert alt_names == set(settings.server_names), certificate
        issuer = dict(field for rdn in certificate["issuer"] for field in rdn)
        assert issuer["commonName"].startswith("Pebble Intermediate CA"), issuer
    journal = run_inside(rehearsal, "journalctl --unit flasklab-letsencrypt --no-pager --quiet").stdout
    assert "serves the app with a Let's Encrypt certificate" in journal, journal
    timer = run_inside(rehearsal, "systemctl is-enabled flasklab-letsencrypt.timer").stdout.strip()
    assert timer == "disabled", journal
    assert https_site_enabled(rehearsal, settings)
    result = run_inside(rehearsal, "systemctl is-enabled certbot.timer")
    assert result.stdout.strip() == "enabled", result


def https_site_enabled(rehearsal: Rehearsal, settings) -> bool:
    """The web server's HTTPS site is the enabled one (and the plain HTTP one is not)."""
    app = settings.app.name
    if settings.recipe.web_server.name == "apache":
        enabled = rehearsal.root / "etc/apache2/sites-enabled"
        return (enabled / f"{app}-https.conf").exists() and not (enabled / f"{app}.conf").exists()
    return (
        os.readlink(rehearsal.root / "etc/nginx/sites-enabled" / app)
        == f"/etc/nginx/sites-available/{app}-https"
    )


def assert_served_by_the_recipes_programs(rehearsal: Rehearsal, settings) -> None:
    """Every process of the app's user is the recipe's server, started by its manager: the
    probe `class check` runs over SSH, on the same `ps`."""
    listed = run_inside(rehearsal, probes.PS_COMMAND)
    assert listed.returncode == 0, listed
    processes = probes.parse_processes(listed.stdout)
    program, manager = compose.serving_program(settings), settings.recipe.manager
    assert probes.runs_under_manager(processes, settings.app.user, program, manager) == []
    # The same, seen from this machine's /proc.
    assert processes_of(rehearsal, settings.app.user), f"nothing runs as {settings.app.user}"


def assert_env_file_is_private(rehearsal: Rehearsal, settings) -> None:
    """The env file holds the generated secrets: root and the app's group read it, no one else."""
    app = settings.app
    env_file = rehearsal.root / app.env_file.lstrip("/")
    assert "SECRET_KEY='" in env_file.read_text()
    info = env_file.stat()
    app_gid = next(
        int(line.split(":")[2])
        for line in (rehearsal.root / "etc/group").read_text().splitlines()
        if line.startswith(f"{app.user}:")
    )
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, app_gid)
    assert os.readlink(rehearsal.root / app.dir.lstrip("/") / ".env") == app.env_file
    # Not even the login user reads it without sudo.
    assert run_inside(rehearsal, f"cat {app.env_file}", user=login_user(rehearsal)).returncode != 0


def assert_login_user_manages_the_app(rehearsal: Rehearsal, settings) -> None:
    """The student reads the logs and restarts the app, as the recipe's tutorial shows."""
    login = login_user(rehearsal)
    for command in compose.login_commands(settings):
        result = run_inside(rehearsal, command, user=login)
        if result.returncode != 0:
            journal = run_inside(
                rehearsal, f"journalctl --no-pager --lines 40 --unit {settings.app.name}"
            ).stdout
            raise AssertionError(f"{login}$ {command}\n{result.stdout}{result.stderr}\n{journal}")
    name = settings.server_name
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # serving again after the restart
        try:
            if probes.request(rehearsal.site, name).status == 200:  # over HTTPS once it has it
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{rehearsal.site.url(name)} does not answer after the login user restarted the app")


@pytest.mark.parametrize("release", ["12", "13"])
def test_default_stack_boots_on_both_debian_releases(rehearsal_of, release):
    settings = load_stack("dev", {"debianRelease": release})
    app_secrets = secrets_for_tests(settings)
    rehearsal = rehearsal_of(target_for(settings, app_secrets))
    assert_served(rehearsal, rehearsal.wait())
    version = (rehearsal.root / "etc/debian_version").read_text()
    assert version.startswith(release), version
    # The seeded user-data is exactly what `pulumi up` would send with these secrets.
    seeded = (rehearsal.root / "var/lib/cloud/seed/nocloud/user-data").read_text()
    assert seeded == render_user_data(settings, app_secrets)


def make_app_repo(name: str, requirements: str) -> str:
    """The sample app with the given requirements, in a git repository (file:// URL)."""
    sample = PROJECT_DIR / "flasklab/sample_app"
    files = {
        path.relative_to(sample).as_posix(): path.read_text()
        for path in sample.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    return make_repo(name, {**files, "requirements.txt": requirements})


def failure_report(rehearsal: Rehearsal, settings) -> str:
    """The report of a rehearsal that must fail, with cloud-init itself reporting it; the
    server's own flasklab-status names the same failing step."""
    outcome = rehearsal.wait()
    text = rehearsal.report(outcome)
    assert not outcome.ok
    assert outcome.cloud_init_errors, "cloud-init itself reports the failure"
    assert "FAILED" in text
    status = run_inside(rehearsal, "flasklab-status", user=login_user(rehearsal))
    assert status.returncode == 1, status.stdout + status.stderr
    failing_step = next(line for line in text.splitlines() if line.startswith("failing step: "))
    assert failing_step in status.stdout.splitlines()
    return text


def test_broken_stack_fails_and_the_report_names_the_step_and_its_log(rehearsal_of):
    repo = make_app_repo("broken-requirements", "Flask>=3.1,<4\nflasklab-no-such-package==9.9\n")
    settings = load_stack("dev", {"appRepo": repo})
    rehearsal = rehearsal_of(settings)
    text = failure_report(rehearsal, settings)
    assert "failing step: create the virtual environment /var/www/flask_app/.venv" in text
    assert "flasklab-no-such-package" in text  # pip's own explanation, from the output log
    assert "--- journal of flask_app.service ---" in text
    # At once: a misspelt name is no network error to try again, nor a package to build.
    output_log = (rehearsal.root / "var/log/cloud-init-output.log").read_text()
    assert "trying again" not in output_log and "installing the build packages" not in output_log


def test_reboot_serves_again_without_repeating_first_boot(rehearsal_of):
    """Tutorial 001 ends by rebooting the server: the app must come back by itself."""
    rehearsal = rehearsal_of(load_stack("dev"))
    assert_served(rehearsal, rehearsal.wait())
    first_boot_steps = server_logs.steps(rehearsal.root)

    outcome = rehearsal.reboot()
    assert_served(rehearsal, outcome)
    assert server_logs.steps(rehearsal.root) == first_boot_steps, "the deploy script ran again"
    boots = (
        subprocess.run(
            ["journalctl", f"--directory={rehearsal.root / 'var/log/journal'}", "--list-boots", "--no-pager"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()
    )
    assert len(boots) >= 2, boots


# Two app layouts from the tutorials, each a repository of its own:
# 000's flask_temperaturas: app.py exposing `app`, templates/ and static/ beside it.
FLAT_APP = {
    "app.py": (
        "from flask import Flask, render_template\n\n"
        "app = Flask(__name__)\n\n\n"
        "@app.route('/')\n"
        "def index():\n"
        "    return render_template('index.html')\n"
    ),
    "templates/index.html": "<h1>Temperaturas</h1><link rel=stylesheet href=/static/css/site.css>\n",
    "static/css/site.css": "h1 { color: teal; }\n",
    "requirements.txt": "Flask>=3.1,<4\n",
}
# 003's microblog: a package with an app factory, static files inside it, its own
# requirements file, and settings read from .env with python-dotenv.
FACTORY_APP = {
    "microblog/__init__.py": (
        "import os\n\n"
        "from dotenv import dotenv_values\n"
        "from flask import Flask\n\n"
        "BASEDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n\n\n"
        "def create_app():\n"
        "    app = Flask(__name__)\n"
        "    settings = dotenv_values(os.path.join(BASEDIR, '.env'))\n\n"
        "    @app.route('/')\n"
        "    def index():\n"
        "        return f\"<h1>Microblog</h1><p>{settings['GREETING']}</p>\"\n\n"
        "    return app\n"
    ),
    "microblog/static/logo.txt": "microblog\n",
    "deploy/requirements.txt": "Flask>=3.1,<4\npython-dotenv>=1\n",
}
GIT_APPS = {
    "flat": (FLAT_APP, {"appEntry": "app:app"}, "/static/css/site.css", "<h1>Temperaturas</h1>"),
    "factory": (
        FACTORY_APP,
        {
            "appEntry": "microblog:create_app()",
            "appRequirements": "deploy/requirements.txt",
            "appStatic": "microblog/static",
            "appStaticUrl": "/assets",
            "appEnv": {"GREETING": "read from .env"},
        },
        "/assets/logo.txt",
        "<h1>Microblog</h1><p>read from .env</p>",
    ),
}


def make_repo(name: str, files: dict[str, str]) -> str:
    """A git repository holding `files`, as a file:// URL the container can clone."""
    repo = REPOS_DIR / name
    subprocess.run(["rm", "-rf", str(repo)], check=True)
    for path, content in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(content)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "app"], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(REPOS_DIR)], check=True)
    return f"file://{repo}"


@pytest.mark.parametrize(
    ("recipe", "layout", "python_env"),
    [
        ("apache-modwsgi", "flat", "venv"),
        ("nginx-gunicorn-systemd", "factory", "venv"),
        ("nginx-uwsgi-supervisor", "factory", "pipenv"),
        ("nginx-uwsgi-systemd", "flat", "pipenv"),
        ("nginx-gunicorn-supervisor", "factory", "venv"),
    ],
)
def test_git_hosted_app_deploys_unchanged_in_every_recipe(rehearsal_of, recipe, layout, python_env):
    files, settings_of_app, static_file, page = GIT_APPS[layout]
    repo = make_repo(f"{layout}-app-{recipe}-{python_env}", files)
    settings = load_stack(
        "dev", {"recipe": recipe, "pythonEnv": python_env, "appRepo": repo, **settings_of_app}
    )
    target = target_for(settings)
    target = dataclasses.replace(target, expect=dataclasses.replace(target.expect, static_path=static_file))
    rehearsal = rehearsal_of(target)
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)
    assert page in outcome.first_response
    assert_served_by_the_recipes_programs(rehearsal, settings)


# Every recipe with each database; HTTPS with a self-signed certificate on one Nginx recipe
# and on Apache.
DATABASE_RUNS = [
    (recipe, database, tls)
    for recipe in (
        "nginx-gunicorn-systemd",
        "nginx-gunicorn-supervisor",
        "nginx-uwsgi-supervisor",
        "nginx-uwsgi-systemd",
        "apache-modwsgi",
    )
    for database in ("mariadb", "postgresql")
    # Apache with PostgreSQL: a class's student with a DNS zone and Let's Encrypt, below.
    if (recipe, database) != ("apache-modwsgi", "postgresql")
    for tls in (
        ["self-signed"]
        if (recipe, database) in {("nginx-gunicorn-systemd", "postgresql"), ("apache-modwsgi", "mariadb")}
        else ["none"]
    )
]


@pytest.mark.parametrize(("recipe", "database", "tls"), DATABASE_RUNS)
def test_every_recipe_serves_the_app_with_each_database(rehearsal_of, recipe, database, tls):
    """The sample app's migration ran before the app started, its database page writes and
    reads rows, its JSON API stores a note, the database listens on localhost only (all
    checked by the rehearsal), and the secrets stay in the private env file. Then the app
    survives faults (tests/fault_checks.py): its server's main process killed, the web
    server restarted, the database restarted without losing a row."""
    settings = load_stack(
        "dev",
        {
            "recipe": recipe,
            "database": database,
            "tls": tls,
            "serverName": "flask.school.test",
            "serverAliases": ["www.flask.school.test"],
        },
    )
    rehearsal = rehearsal_of(settings)
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)
    assert rehearsal.target.expect.database_label and bool(rehearsal.target.certificate) == (
        tls == "self-signed"
    )
    steps = server_logs.steps(rehearsal.root)
    migration = next(i for i, step in enumerate(steps) if step.startswith("run the migration"))
    starts = [
        i for i, step in enumerate(steps) if step.startswith(("start ", "run flask_app under", "enable the"))
    ]
    assert starts and migration < min(starts), steps
    assert_served_by_the_recipes_programs(rehearsal, settings)
    assert_env_file_is_private(rehearsal, settings)
    if tls == "self-signed":
        # The session cookie (signed with the generated SECRET_KEY) travels over HTTPS only.
        assert "Secure" in outcome.first_headers.get("set-cookie", ""), outcome.first_headers
    # Then the faults of issue 12, in the same container: the app server's main process
    # killed, the web server and the database restarted.
    print(survive_faults(rehearsal, settings).line(settings))


ZONE = "class.example.org"


def test_a_class_with_a_dns_zone_gets_lets_encrypt_certificates_for_the_zone_names(rehearsal_of):
    """dnsZone with tls letsencrypt, on class-demo's carla (Apache, mod_wsgi, PostgreSQL):
    her server's names are carla.<zone> and www.carla.<zone>, its site answers to them, it
    asked Let's Encrypt (the rehearsal's pebble) for them by itself and serves the
    certificate issued for exactly those names; full marks; then the database and web
    server faults of the other database runs."""
    overrides = {"dnsZone": ZONE, "tls": "letsencrypt", "tlsEmail": "teacher@example.org"}
    settings = load_stack("class-demo", overrides, student="carla")
    assert settings.server_names == (f"carla.{ZONE}", f"www.carla.{ZONE}")
    assert settings.database is not None
    assert (settings.recipe.name, settings.database.name) == ("apache-modwsgi", "postgresql")
    rehearsal = rehearsal_of(settings)
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)
    assert_letsencrypt_certificate_issued(rehearsal, settings)
    request = (rehearsal.root / "usr/local/sbin/flasklab-letsencrypt").read_text()
    assert f"--domain carla.{ZONE}" in request and f"--domain www.carla.{ZONE}" in request
    assert_served_by_the_recipes_programs(rehearsal, settings)
    assert_env_file_is_private(rehearsal, settings)
    assert_full_marks(rehearsal, settings)
    print(survive_faults(rehearsal, settings).line(settings))


def test_a_failing_migration_stops_the_install_and_the_report_shows_its_output(rehearsal_of):
    settings = load_stack("dev", {"appMigrate": "flask no-such-command"})
    rehearsal = rehearsal_of(settings)
    text = failure_report(rehearsal, settings)
    assert "failing step: run the migration (appMigrate) as flask_app: flask no-such-command" in text
    assert "No such command 'no-such-command'" in text  # Flask's own words, from the output log
    # The app was never started.
    assert not (rehearsal.root / "etc/systemd/system/sockets.target.wants/flask_app.socket").exists()


# A course app whose front page sends visitors to its login page (302).
LOGIN_APP = {
    "app.py": (
        "from flask import Flask, redirect\n\n"
        "app = Flask(__name__)\n\n\n"
        "@app.route('/')\n"
        "def index():\n"
        "    return redirect('/login')\n\n\n"
        "@app.route('/login')\n"
        "def login():\n"
        "    return '<h1>Log in to the microblog</h1>'\n"
    ),
    "requirements.txt": "Flask>=3.1,<4\n",
}


def test_an_app_whose_front_page_redirects_to_its_login_page_rehearses_green(rehearsal_of):
    repo = make_repo("login-app", LOGIN_APP)
    settings = load_stack(
        "dev", {"appRepo": repo, "appEntry": "app:app", "appStatic": "", "readyText": "Log in"}
    )
    rehearsal = rehearsal_of(settings)
    outcome = rehearsal.wait()
    assert_served(rehearsal, outcome)
    assert "<h1>Log in to the microblog</h1>" in outcome.first_response
