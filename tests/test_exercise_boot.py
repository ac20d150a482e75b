"""An exercise, booted: a server at stage `app` (packages, the app and its virtualenv in
place) of nginx-gunicorn-systemd is graded low with its failing checkpoints named; then a
student does tutorial 001's remaining steps over SSH (the systemd unit, first with two
typical mistakes, then the Nginx site), and after each step `class grade`'s grading of
that server (real SSH, real probes) never falls and ends at full marks. The student's own
`sudo flasklab-check` agrees with the grade, and a server whose flasklab-check was
replaced by one that says "all ok" is still graded on what it is. On the same boot, once at
full marks, each typical mistake (static files left to Flask, DEBUG on, the app run as root,
the unit not enabled then a reboot) costs exactly its checkpoint(s); `class grade --reboot`
really reboots the container (`sudo systemctl reboot` over SSH) and waits for it.

Two `bare` servers go from nothing to full marks the same way, graded after each major
step: nginx-gunicorn-systemd through tutorial 001 (its packages, the app's user, folder and
.env, pipenv's environment, the socket and service, the site) and nginx-uwsgi-supervisor
through tutorial 002. The app-stage boot above stays its own: it is the one boot of stage
`app` (its first boot, its readiness line, the student's flasklab-check)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from flasklab import readiness
from flasklab.classroom.check import Server, SshOptions
from flasklab.classroom.grade import Grade, grade_server
from flasklab.recipes import CHECK_MODULE
from flasklab.rehearsal.container import rehearsal_environment
from flasklab.rehearsal.target import target_for
from flasklab.stacks import load_stack
from tests.conftest import boot_prerequisites_missing
from tests.test_readiness_boot import run_over_ssh

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]

# Tutorial 001's unit, with the rubric's paths: systemd owns the socket Nginx reaches
# (/run/flask_app.sock), Gunicorn from the app's virtualenv. First as students often write
# it: no User= (Gunicorn runs as root) and no Restart=.
SOCKET_UNIT = """[Unit]
Description=flask_app socket

[Socket]
ListenStream=/run/flask_app.sock
SocketUser=www-data
SocketMode=0660

[Install]
WantedBy=sockets.target
"""
SERVICE_UNIT = """[Unit]
Description=flask_app.service
Requires=flask_app.socket
After=network.target

[Service]
{user}WorkingDirectory=/var/www/flask_app/
EnvironmentFile=/etc/flasklab/flask_app/env
Environment="PATH=/var/www/flask_app/.venv/bin:/usr/bin:/bin"
ExecStart=/var/www/flask_app/.venv/bin/gunicorn --workers 2 wsgi:app
{restart}
[Install]
WantedBy=multi-user.target
"""
# Tutorial 001's site, with 003's static files served by Nginx itself.
NGINX_SITE = """server {
    listen 80;
    server_name practica_flask www.practica_flask;

    access_log /var/log/nginx/flask_app.access.log;
    error_log /var/log/nginx/flask_app.error.log;

    location /static {
        alias /var/www/flask_app/static;
        expires 30d;
    }
    location / {
        include proxy_params;
        proxy_pass http://unix:/run/flask_app.sock;
    }
}
"""


def write_file(path: str, content: str) -> str:
    return f"sudo tee {path} > /dev/null <<'FLASKLAB_EOF'\n{content}FLASKLAB_EOF\n"


STUDENT_STEPS = {
    "the unit, as root and without Restart=": (
        write_file("/etc/systemd/system/flask_app.socket", SOCKET_UNIT)
        + write_file("/etc/systemd/system/flask_app.service", SERVICE_UNIT.format(user="", restart=""))
        + "sudo systemctl daemon-reload && sudo systemctl enable --now flask_app.socket"
        + " && sudo systemctl enable --now flask_app.service"
    ),
    "the unit, as the app's user and restarting on failure": (
        write_file(
            "/etc/systemd/system/flask_app.service",
            SERVICE_UNIT.format(user="User=flask_app\nGroup=flask_app\n", restart="Restart=on-failure\n"),
        )
        + "sudo systemctl daemon-reload && sudo systemctl restart flask_app.service"
    ),
    "the Nginx site": (
        write_file("/etc/nginx/sites-available/practica_flask", NGINX_SITE)
        + "sudo ln -s /etc/nginx/sites-available/practica_flask /etc/nginx/sites-enabled/"
        + " && sudo rm -f /etc/nginx/sites-enabled/default && sudo nginx -t && sudo systemctl restart nginx"
    ),
}
# What each step's grade still fails, after it.
FAILING_AFTER = {
    "the unit, as root and without Restart=": {
        "app_user",
        "restarts",
        "site_enabled",
        "answers_by_name",
        "static_files",
    },
    "the unit, as the app's user and restarting on failure": {
        "site_enabled",
        "answers_by_name",
        "static_files",
    },
    "the Nginx site": set(),
}
FAILING_AT_START = {
    "service_defined",
    "service_enabled",
    "service_active",
    "app_user",
    "debug_off",  # no process of the app to ask yet
    "restarts",
    "answers_locally",
    "site_enabled",
    "answers_by_name",
    "static_files",
}


def failing(grade: Grade) -> set[str]:
    return {mark.key for mark in grade.failing()}


def explain(grade: Grade) -> str:
    return "\n".join(f"{m.key}: {m.passed} {m.evidence}" for m in grade.marks)


def test_an_app_stage_server_is_graded_low_then_full_as_the_student_does_the_tutorial(
    rehearsal_of, key_pair, tmp_path
):
    key, public_key = key_pair
    settings = load_stack("dev", {"stage": "app", "language": "es"})
    rehearsal = rehearsal_of(dataclasses.replace(target_for(settings), ssh_public_key=public_key))
    address = rehearsal.container.address
    outcome = rehearsal.wait()  # first boot only: nothing serves yet
    assert outcome.ok and outcome.first_response_seconds is None, rehearsal.report(outcome)
    ready = run_over_ssh(key, address, readiness.READY_COMMAND)
    assert "ready for the exercise (stage app" in ready.stdout, ready.stdout + ready.stderr

    # The student's own view, in the class's language.
    own = run_over_ssh(key, address, "sudo flasklab-check")
    assert own.returncode == 1, own.stdout + own.stderr
    assert "[FAIL] El servicio de la aplicación está definido (systemd)" in own.stdout, own.stdout
    assert "-> Escribe el servicio de flask_app (systemd)" in own.stdout, own.stdout
    own_json = json.loads(run_over_ssh(key, address, "sudo flasklab-check --json").stdout)
    own_failing = {result["key"] for result in own_json if not result["passed"]}

    # A server's flasklab-check that says "all ok" changes what the student sees, not the grade.
    fake = "import json, sys; print(json.dumps([])); sys.exit(0)\n"
    run_over_ssh(key, address, write_file(CHECK_MODULE, fake))
    server = Server("dev", settings, address, settings.server_names, key_file=key)
    ssh = SshOptions(known_hosts=tmp_path / "known_hosts")
    grade = grade_server(server, timeout=90, ssh=ssh)
    assert failing(grade) == FAILING_AT_START, explain(grade)
    assert own_failing == FAILING_AT_START - {"answers_by_name", "static_files"}
    assert 0 < grade.score < grade.total

    scores = [grade.score]
    for step, commands in STUDENT_STEPS.items():
        done = run_over_ssh(key, address, commands)
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
        grade = grade_server(server, timeout=90, ssh=ssh)
        assert failing(grade) == FAILING_AFTER[step], f"after {step}:\n{explain(grade)}"
        assert grade.score >= scores[-1], f"after {step}: the score fell"
        scores.append(grade.score)
    assert scores[-1] == grade.total, scores
    print(f"scores after each step: {scores} of {grade.total}")
    each_mistake_costs_exactly_its_checkpoint(rehearsal, server, key, ssh)


# Typical mistakes on a server at full marks: (make it, undo it, what it fails).
# reset-failed first: the mistakes restart the app several times within seconds, and
# systemd refuses a sixth start within 10 s ("start of the service was attempted too
# often", StartLimitBurst), as its message tells the student to do.
RESTART_APP = " && sudo systemctl reset-failed flask_app.service && sudo systemctl restart flask_app.service"
ENV_FILE = "/etc/flasklab/flask_app/env"
ROOT_DROP_IN = "/etc/systemd/system/flask_app.service.d/as-root.conf"
MISTAKES = {
    "static files left to Flask": (
        write_file(
            "/etc/nginx/sites-available/practica_flask", NGINX_SITE.replace("location /static", "location /x")
        )
        + "sudo nginx -t && sudo systemctl restart nginx",
        write_file("/etc/nginx/sites-available/practica_flask", NGINX_SITE)
        + "sudo nginx -t && sudo systemctl restart nginx",
        {"static_files"},
    ),
    "DEBUG on": (
        f"echo FLASK_DEBUG=1 | sudo tee -a {ENV_FILE} > /dev/null" + RESTART_APP,
        f"sudo sed -i '/^FLASK_DEBUG=/d' {ENV_FILE}" + RESTART_APP,
        {"debug_off"},
    ),
    "app run as root": (
        "sudo mkdir -p /etc/systemd/system/flask_app.service.d && "
        + write_file(ROOT_DROP_IN, "[Service]\nUser=root\nGroup=root\n")
        + "sudo systemctl daemon-reload"
        + RESTART_APP,
        f"sudo rm {ROOT_DROP_IN} && sudo systemctl daemon-reload" + RESTART_APP,
        {"app_user"},
    ),
}
REBOOT_TIMEOUT = 240


@contextmanager
def booted_again_when_it_reboots(rehearsal) -> Iterator[list[int]]:
    """What EC2 does for a server that reboots: start it again. systemd-nspawn exits (133)
    when the container reboots, as systemd-nspawn@.service's RestartForceExitStatus=133
    expects; this boots the same root again. Yields nspawn's exit statuses."""
    statuses: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if (status := rehearsal.container.exited()) is not None:
                statuses.append(status)
                rehearsal.container.boot()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield statuses
    finally:
        done.set()
        watcher.join()


def each_mistake_costs_exactly_its_checkpoint(rehearsal, server: Server, key, ssh: SshOptions) -> None:
    address = server.address
    for mistake, (make, undo, costs) in MISTAKES.items():
        done = run_over_ssh(key, address, make)
        assert done.returncode == 0, f"{mistake}: {done.stdout}{done.stderr}"
        grade = grade_server(server, timeout=90, ssh=ssh)
        assert failing(grade) == costs, f"{mistake}:\n{explain(grade)}"
        done = run_over_ssh(key, address, undo)
        assert done.returncode == 0, f"undoing {mistake}: {done.stdout}{done.stderr}"
    with booted_again_when_it_reboots(rehearsal) as nspawn_exits:
        # Enabled as the tutorial says: it comes back by itself, full marks with the reboot's.
        grade = grade_server(server, timeout=90, ssh=ssh, reboot_timeout=REBOOT_TIMEOUT)
        assert failing(grade) == set() and "survives_reboot" in {m.key for m in grade.marks}, explain(grade)
        assert nspawn_exits == [133], nspawn_exits  # the container really rebooted
        # The unit not enabled: fine until the reboot, then the app does not come back.
        done = run_over_ssh(key, address, "sudo systemctl disable flask_app.socket flask_app.service")
        assert done.returncode == 0, done.stdout + done.stderr
        grade = grade_server(server, timeout=90, ssh=ssh)
        assert failing(grade) == {"service_enabled"}, explain(grade)
        grade = grade_server(server, timeout=90, ssh=ssh, reboot_timeout=REBOOT_TIMEOUT)
        assert failing(grade) == {"service_enabled", "survives_reboot"}, explain(grade)
        assert nspawn_exits == [133, 133], nspawn_exits
        (reboot,) = [m for m in grade.marks if m.key == "survives_reboot"]
        print(f"the unit not enabled, after the reboot: {reboot.evidence}")


# Tutorial 002 from a bare server (nginx-uwsgi-supervisor): every step the student's.
UWSGI_COMMAND = (
    "/usr/bin/uwsgi --plugin python3 --socket 127.0.0.1:8000 --chdir /var/www/flask_app"
    " --virtualenv /var/www/flask_app/.venv --module wsgi:app --master --processes 2 --die-on-term"
)
SUPERVISOR_PROGRAM = f"""[program:flask_app]
command = {UWSGI_COMMAND}
directory = /var/www/flask_app
user = flask_app
environment = SECRET_KEY="a-secret-of-the-students-own"
autostart = true
autorestart = true
stopsignal = INT
"""
UWSGI_SITE = """server {
    listen 80;
    server_name practica_flask www.practica_flask;

    location /static {
        alias /var/www/flask_app/static;
        expires 30d;
    }
    location / {
        include uwsgi_params;
        uwsgi_pass 127.0.0.1:8000;
    }
}
"""
APP = "/var/www/flask_app"
BARE_STEPS = {
    "the packages": (
        "sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
        " nginx supervisor uwsgi-core uwsgi-plugin-python3 python3-venv"
    ),
    "the app, its user and its virtualenv": (
        f"sudo useradd --system --user-group --create-home --home-dir {APP} --shell /usr/sbin/nologin"
        f" flask_app && sudo cp -r /usr/local/share/flasklab/sample-app/. {APP}/"
        f" && sudo chown -R flask_app:flask_app {APP}"
        # useradd makes the home 0700: Nginx (www-data) must read the static files (001's chmod).
        f" && sudo chmod 0755 {APP}"
        f" && sudo -u flask_app python3 -m venv {APP}/.venv"
        f" && sudo -u flask_app {APP}/.venv/bin/pip install -q -r {APP}/requirements.txt"
    ),
    "the supervisor program": (
        write_file("/etc/supervisor/conf.d/flask_app.conf", SUPERVISOR_PROGRAM)
        + "sudo supervisorctl reread && sudo supervisorctl update && sleep 3"
    ),
    "the Nginx site": (
        write_file("/etc/nginx/sites-available/practica_flask", UWSGI_SITE)
        + "sudo ln -s /etc/nginx/sites-available/practica_flask /etc/nginx/sites-enabled/"
        + " && sudo rm -f /etc/nginx/sites-enabled/default && sudo nginx -t && sudo systemctl restart nginx"
    ),
}
# What a student's server passes after each major step of a tutorial from stage bare: the
# packages, the app (its user, code and virtualenv), its service, the web server's site.
CHECKPOINTS_OF_EACH_STEP = (
    {"packages", "web_config"},
    {"app_code", "app_owner", "virtualenv"},
    {
        "service_defined",
        "service_enabled",
        "service_active",
        "app_user",
        "debug_off",
        "restarts",
        "answers_locally",
    },
    {"site_enabled", "answers_by_name", "static_files"},
)
BARE_PASSING_AFTER = dict(zip(BARE_STEPS, CHECKPOINTS_OF_EACH_STEP, strict=True))


def test_a_bare_server_is_graded_as_the_student_does_tutorial_002_from_the_start(
    rehearsal_of, key_pair, tmp_path
):
    settings = load_stack("dev", {"stage": "bare", "recipe": "nginx-uwsgi-supervisor"})
    scores, total = graded_after_each_step_from_bare(
        rehearsal_of, key_pair, tmp_path, settings, BARE_STEPS, BARE_PASSING_AFTER
    )
    print(f"bare nginx-uwsgi-supervisor server's scores after each step: {scores} of {total}")


def graded_after_each_step_from_bare(
    rehearsal_of, key_pair, tmp_path, settings, steps: dict[str, str], passing_after: dict[str, set[str]]
) -> tuple[list[int], int]:
    """Boots `settings` (stage bare), grades it (every checkpoint failing, each by its key),
    then runs each step over SSH as the login user and grades again: after each step exactly
    the checkpoints of the steps so far pass, the score never falls and ends at full marks.
    Returns the scores (before any step, then after each) and the total."""
    key, public_key = key_pair
    rehearsal = rehearsal_of(dataclasses.replace(target_for(settings), ssh_public_key=public_key))
    address = rehearsal.container.address
    ready = run_over_ssh(key, address, readiness.READY_COMMAND)
    assert "ready for the exercise (stage bare" in ready.stdout, ready.stdout + ready.stderr
    server = Server("dev", settings, address, settings.server_names, key_file=key)
    ssh = SshOptions(known_hosts=tmp_path / "known_hosts")
    grade = grade_server(server, timeout=90, ssh=ssh)
    # Nothing yet: every checkpoint fails, and each is one a step below makes pass.
    assert failing(grade) == set().union(*passing_after.values()), explain(grade)
    assert grade.score == 0, explain(grade)
    passing: set[str] = set()
    scores = [grade.score]
    for step, commands in steps.items():
        done = run_over_ssh(key, address, commands)
        assert done.returncode == 0, f"{step}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        grade = grade_server(server, timeout=90, ssh=ssh)
        passing |= passing_after[step]
        assert {m.key for m in grade.marks} - failing(grade) == passing, f"after {step}:\n{explain(grade)}"
        assert grade.score >= scores[-1], f"after {step}: the score fell"
        scores.append(grade.score)
    assert scores[-1] == grade.total, scores
    return scores, grade.total


# Tutorial 001 from a bare server (nginx-gunicorn-systemd, pythonEnv pipenv as 001 does):
# its packages, the app's folder and its .env, pipenv's environment, the unit and the site.
# Where the recipe differs from 001 (docs/recipes.md), the student follows the paths and the
# user given with the exercise: the app's own user owns its folder (001: the login user),
# pipenv keeps the environment in the folder's .venv (PIPENV_VENV_IN_PROJECT), and systemd
# owns the socket in /run.
TUTORIAL_001_ENV = "FLASK_APP=wsgi.py\nFLASK_ENV=production\nSECRET_KEY=a-secret-of-the-students-own\n"
# Plus what the rehearsal's services get and an SSH session does not (this machine's proxy
# CA for pipenv's own pip, pip's cache): rehearsal-only, as on EC2 pipenv needs none of it.
AS_APP_USER = "sudo -u flask_app -H env PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 " + " ".join(
    rehearsal_environment()
)
TUTORIAL_001_STEPS = {
    "the packages": (
        # 001: python3-pip, pipenv, then Nginx.
        "sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
        " python3-pip pipenv nginx"
    ),
    "the app's folder, its .env and pipenv's environment": (
        f"sudo useradd --system --user-group --create-home --home-dir {APP} --shell /usr/sbin/nologin"
        f" flask_app && sudo cp -r /usr/local/share/flasklab/sample-app/. {APP}/"
        f" && sudo chown -R flask_app:flask_app {APP}"
        # 001's chmod: Nginx (www-data) reads the static files; useradd made the home 0700.
        f" && sudo chmod 0755 {APP}"
        f" && printf '{TUTORIAL_001_ENV}' | sudo -u flask_app tee {APP}/.env > /dev/null"
        f" && sudo chmod 0600 {APP}/.env"
        # 001: pipenv install flask gunicorn; the sample app's requirements are its Flask.
        f" && cd {APP} && {AS_APP_USER} pipenv install $(cat requirements.txt) gunicorn"
    ),
    "the socket and the service": (
        write_file("/etc/systemd/system/flask_app.socket", SOCKET_UNIT)
        + write_file(
            "/etc/systemd/system/flask_app.service",
            SERVICE_UNIT.format(
                user="User=flask_app\nGroup=flask_app\n", restart="Restart=on-failure\n"
            ).replace(f"EnvironmentFile={ENV_FILE}", f"EnvironmentFile={APP}/.env"),
        )
        + "sudo systemctl daemon-reload && sudo systemctl enable --now flask_app.socket"
        + " && sudo systemctl enable --now flask_app.service"
    ),
    "the Nginx site": STUDENT_STEPS["the Nginx site"],
}
TUTORIAL_001_PASSING_AFTER = dict(zip(TUTORIAL_001_STEPS, CHECKPOINTS_OF_EACH_STEP, strict=True))


def test_a_bare_server_is_graded_as_the_student_does_tutorial_001_from_the_start(
    rehearsal_of, key_pair, tmp_path
):
    settings = load_stack("dev", {"stage": "bare", "pythonEnv": "pipenv"})
    assert settings.recipe.name == "nginx-gunicorn-systemd"
    scores, total = graded_after_each_step_from_bare(
        rehearsal_of, key_pair, tmp_path, settings, TUTORIAL_001_STEPS, TUTORIAL_001_PASSING_AFTER
    )
    print(f"bare nginx-gunicorn-systemd server's scores after each step: {scores} of {total}")
