"""Stage broken, booted: a server gets its fault from cloud-init after the finished deploy,
`class grade` (real SSH, real probes) fails it on exactly the fault's checkpoints, nothing
on the server names the fault, and the fix docs/faults.md gives, done over SSH as a student
would, brings full marks. Then, on the same server, every other fault of the catalogue
that applies: its script (the one cloud-init would run) applied as root, graded, fixed,
graded again, so one boot per recipe proves the whole catalogue for it."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from flasklab import compose, readiness, rubric
from flasklab.classroom.check import Server, SshOptions
from flasklab.classroom.grade import Grade, grade_server
from flasklab.faults import FAULTS, Fault, applicable, seeded_choice
from flasklab.recipes import FAULT_SCRIPT
from flasklab.rehearsal.target import target_for
from flasklab.render import render_files, stand_in_secrets
from flasklab.settings import Settings
from flasklab.stacks import load_stack
from tests.conftest import boot_prerequisites_missing
from tests.test_readiness_boot import run_over_ssh

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]

# (recipe, more settings, the fault at boot: '' for the one seeded from the stack and the
# student, who is "pau" in every boot: that seed gives socket-mismatch, so the faults at
# boot are three different ones).
STUDENT = "pau"
BOOTS = {
    "gunicorn-systemd-postgresql-https": (
        "nginx-gunicorn-systemd",
        {"database": "postgresql", "tls": "self-signed"},
        "database-password",
    ),
    "uwsgi-supervisor-mariadb": ("nginx-uwsgi-supervisor", {"database": "mariadb"}, ""),
    "apache": ("apache-modwsgi", {}, "site-not-enabled"),
}


def expected_failing(settings: Settings, fault: Fault) -> set[str]:
    """The fault's checkpoints that this server's rubric has."""
    return fault.failing(settings.recipe.manager, {checkpoint.key for checkpoint in rubric.rubric(settings)})


def restart_service(settings: Settings) -> str:
    """How a student restarts the app after changing its service's files."""
    app = settings.app.name
    if settings.recipe.manager == "systemd":
        units = " ".join(compose.app_units(settings))
        return f"sudo systemctl daemon-reload && sudo systemctl stop {units} && sudo systemctl start {units}"
    if settings.recipe.manager == "supervisord":
        return f"sudo supervisorctl update && sudo supervisorctl restart {app}"
    return "sudo systemctl restart apache2"


def fix(settings: Settings, fault: Fault) -> str:
    """The fix docs/faults.md gives, as the student types it over SSH."""
    app, user, folder, venv = settings.app.name, settings.app.user, settings.app.dir, settings.app.venv
    site = compose.enabled_at_boot(settings)
    if fault.name == "site-not-enabled":
        if settings.recipe.web_server.name == "nginx":
            return (
                f"sudo ln -s /etc/nginx/sites-available/{site} /etc/nginx/sites-enabled/{app}"
                " && sudo nginx -t && sudo systemctl restart nginx"
            )
        return f"sudo a2ensite {site} && sudo apache2ctl configtest && sudo systemctl restart apache2"
    if fault.name == "socket-mismatch":
        # The student compares the site's address with the service's and puts the latter back.
        bound = compose.app_address(settings).removeprefix("unix:")
        files = " ".join(compose.app_config_files(settings))
        found = f"sudo grep -l -e {shlex.quote(bound + 'et')} -e 127.0.0.1:8080 {files}"
        back = f"-e 's|{bound}et|{bound}|' -e 's|127.0.0.1:8080|127.0.0.1:8000|'"
        return f'for f in $({found}); do sudo sed -i {back} "$f"; done && {restart_service(settings)}'

    if fault.name == "unit-not-enabled":
        return f"sudo systemctl enable {' '.join(compose.app_units(settings))}"
    if fault.name == "app-owner":
        return f"sudo chown -R {user}:{user} {folder}"
    if fault.name == "requirements-missing":
        return (
            f"sudo -u {user} {venv}/bin/pip install -q -r {folder}/requirements.txt"
            f" && {restart_service(settings)}"
        )
    assert fault.name == "database-password", fault.name
    env_file = compose.for_app("/etc/flasklab/{app}/env", settings)
    password = f"$(sudo sed -n 's|^DATABASE_URL=[^:]*://[^:]*:\\([^@]*\\)@.*|\\1|p' {env_file})"
    assert settings.database is not None
    if settings.database.name == "postgresql":
        alter = f"sudo -u postgres psql -c \"ALTER ROLE {app} PASSWORD '{password}'\""
    else:
        alter = f"sudo mariadb -e \"ALTER USER '{app}'@'localhost' IDENTIFIED BY '{password}'\""
    return f"{alter} && {restart_service(settings)}"


def fault_script(settings: Settings, fault: Fault) -> str:
    """The script cloud-init would run for this fault on this server."""
    faulty = dataclasses.replace(settings, fault=fault.name)
    files = render_files(faulty, stand_in_secrets(faulty))
    return next(file.content for file in files if file.path == FAULT_SCRIPT)


def explain(grade: Grade) -> str:
    return "\n".join(f"{m.key}: {m.passed} {m.evidence}" for m in grade.marks)


def failing(grade: Grade) -> set[str]:
    return {mark.key for mark in grade.failing()}


@pytest.mark.parametrize("boot", sorted(BOOTS))
def test_every_fault_fails_its_checkpoints_and_the_documented_fix_gives_full_marks(
    boot, rehearsal_of, key_pair, tmp_path
):
    recipe, more, chosen = BOOTS[boot]
    settings = load_stack("dev", {"recipe": recipe, "stage": "broken", "fault": chosen, **more})
    settings = dataclasses.replace(settings, student=STUDENT)
    at_boot = compose.fault_of(settings)
    assert at_boot is not None
    names = applicable(recipe, settings.database is not None, not settings.app.repo)
    assert at_boot.name == (chosen or seeded_choice("dev", STUDENT, names))
    key, public_key = key_pair
    rehearsal = rehearsal_of(dataclasses.replace(target_for(settings), ssh_public_key=public_key))
    address = rehearsal.container.address
    outcome = rehearsal.wait()
    assert outcome.ok, rehearsal.report(outcome)
    ready = run_over_ssh(key, address, readiness.READY_COMMAND)
    assert "ready for the exercise (stage broken" in ready.stdout, ready.stdout + ready.stderr

    # Nothing the student reads on the server names the fault; its script is gone.
    words = " ".join(f"-e {shlex.quote(word)}" for word in (at_boot.name, at_boot.text_key))
    gone = run_over_ssh(key, address, f"sudo test -e {FAULT_SCRIPT}")
    assert gone.returncode == 1, gone.stdout + gone.stderr
    traces = run_over_ssh(key, address, f"sudo grep -rIl {words} /etc /usr/local /var/log /run /var/www")
    assert traces.returncode == 1 and traces.stdout == "", traces.stdout + traces.stderr

    server = Server("dev", settings, address, settings.server_names, key_file=key)
    ssh = SshOptions(known_hosts=tmp_path / "known_hosts")
    scores = []
    others = [FAULTS[name] for name in names]
    for fault in [at_boot, *(other for other in others if other != at_boot)]:
        if fault != at_boot:
            applied = _run_script(key, address, fault_script(settings, fault))
            assert applied.returncode == 0, f"{fault.name}: {applied.stdout}{applied.stderr}"
        grade = grade_server(server, timeout=90, ssh=ssh)
        assert failing(grade) == expected_failing(settings, fault), f"{fault.name}:\n{explain(grade)}"
        assert failing(grade), fault.name  # every fault shows in the grade
        done = run_over_ssh(key, address, fix(settings, fault))
        assert done.returncode == 0, f"fix of {fault.name}: {done.stdout}{done.stderr}"
        fixed = grade_server(server, timeout=90, ssh=ssh)
        assert failing(fixed) == set(), f"after the fix of {fault.name}:\n{explain(fixed)}"
        scores.append(f"{fault.name} {grade.score}->{fixed.score}/{fixed.total}")
    print(f"{boot}: " + "; ".join(scores))


def _run_script(key, address: str, script: str):
    """The fault's script as root, as flasklab-deploy runs it (sh -e)."""
    return run_over_ssh(key, address, f"echo {shlex.quote(script)} | sudo sh -e")
