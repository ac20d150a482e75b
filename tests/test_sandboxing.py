"""Sandboxing: every service flasklab writes scores at most MAX_EXPOSURE on the server
release's own `systemd-analyze security` (0 = fully sandboxed, 10 = not at all), in every
recipe, with and without a database and HTTPS. Run with -s (or -rP) to see the scores.

Recipes under supervisor or Apache get no systemd unit from flasklab (the app runs under
Debian's supervisor.service or apache2.service): supervisor's program gets what it allows
(docs/recipes.md: Sandboxing)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from flasklab.recipes import RECIPES
from flasklab.render import RenderedFile, render_files
from flasklab.settings import Settings
from flasklab.stacks import load_stack
from tests import config_tools
from tests.conftest import boot_prerequisites_missing, secrets_for_tests
from tests.container_tools import processes_of

MAX_EXPOSURE = 2.5
RELEASES = ("12", "13")
# Each recipe alone, with each database, and with HTTPS.
VARIANTS: dict[str, dict[str, str]] = {
    "plain": {},
    "mariadb": {"database": "mariadb"},
    "postgresql+https": {"database": "postgresql", "tls": "self-signed"},
}
# Hardening settings each dropped in turn to see the score get worse.
HARDENING_SETTINGS = ("ProtectSystem", "CapabilityBoundingSet", "SystemCallFilter", "RestrictAddressFamilies")
SANDBOX_PARTIAL = Path(__file__).parents[1] / "templates/partials/systemd-sandbox.conf.j2"


def settings_of(recipe: str, release: str, variant: str) -> Settings:
    return load_stack("dev", {"recipe": recipe, "debianRelease": release, **VARIANTS[variant]})


def files_of(settings: Settings, checker: str) -> list[RenderedFile]:
    files = render_files(settings, secrets_for_tests(settings))
    return [file for file in files if file.checker == checker]


def units_of(settings: Settings, suffix: str) -> list[RenderedFile]:
    return [file for file in files_of(settings, "systemd") if file.path.endswith(suffix)]


def scored_as(unit: RenderedFile, name: str) -> RenderedFile:
    """The unit under another file name, so that units of several recipes (all named after
    the app) are scored side by side."""
    return dataclasses.replace(unit, path=f"/check/{name}")


def print_scores(release: str, rows: list[tuple[str, str, str, str]]) -> None:
    table = Table(title=f"systemd-analyze security, Debian {release} (at most {MAX_EXPOSURE})")
    for column in ("recipe", "variant", "service", "exposure"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=120).print(table)


@config_tools.needs_checkers
@pytest.mark.parametrize("release", RELEASES)
def test_every_service_flasklab_writes_is_sandboxed(release, tmp_path):
    services: dict[str, tuple[str, str, str]] = {}  # scored file name -> (recipe, variant, unit)
    units: list[RenderedFile] = []
    for recipe in sorted(RECIPES):
        for variant in VARIANTS:
            settings = settings_of(recipe, release, variant)
            for unit in units_of(settings, ".service"):
                name = f"{recipe}-{variant.replace('+', '-')}-{Path(unit.path).name}"
                services[name] = (recipe, variant, Path(unit.path).name)
                units.append(scored_as(unit, name))
    codename = settings_of("nginx-gunicorn-systemd", release, "plain").debian_codename
    problems, scores = config_tools.systemd_security(units, tmp_path, codename)
    rows = [(*services[name], f"{scores[name]:.1f}") for name in services if name in scores]
    for recipe in sorted(RECIPES):
        if RECIPES[recipe].manager != "systemd":
            rows.append((recipe, "all", f"no app service (runs under {RECIPES[recipe].manager})", "-"))
    print_scores(release, rows)
    assert problems == ""
    # Every recipe's services are scored: the app's, under systemd, and the idle stop's.
    systemd_recipes = {name for name, recipe in RECIPES.items() if recipe.manager == "systemd"}
    app_unit = f"{settings_of('nginx-gunicorn-systemd', release, 'plain').app.name}.service"
    assert {recipe for recipe, _, unit in services.values() if unit == app_unit} == systemd_recipes
    exposed = {name: score for name, score in scores.items() if score > MAX_EXPOSURE}
    assert exposed == {}, f"over {MAX_EXPOSURE}: {exposed}"


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_socket_units_run_nothing_so_there_is_nothing_to_sandbox(recipe):
    """systemd-analyze security scores a .socket as if it were a service of root; a socket
    unit that starts no program of its own (no Exec*= line) has nothing to sandbox."""
    for unit in units_of(settings_of(recipe, "13", "plain"), ".socket"):
        assert not re.search(r"^Exec", unit.content, re.MULTILINE), unit.content


def sandbox_lines() -> list[str]:
    """The settings of the shared sandbox block (templates/partials/systemd-sandbox.conf.j2)."""
    return [
        line.split("=", 1)[0]
        for line in SANDBOX_PARTIAL.read_text().splitlines()
        if re.match(r"^[A-Z]\w+=", line)
    ]


@config_tools.needs_checkers
def test_the_score_is_the_sandboxs_doing(tmp_path):
    """The check can fail: the same service without the sandbox block scores far over the
    limit, and without any single one of its hardening settings it scores worse."""
    settings = settings_of("nginx-gunicorn-systemd", "13", "plain")
    [unit] = units_of(settings, f"/{settings.app.name}.service")
    settings_in_block = sandbox_lines()
    assert "ProtectSystem" in settings_in_block and "SystemCallFilter" in settings_in_block
    without = {
        "none": "".join(
            line
            for line in unit.content.splitlines(keepends=True)
            if line.split("=", 1)[0] not in settings_in_block
        ),
        **{
            setting: re.sub(rf"^{setting}=.*\n", "", unit.content, flags=re.MULTILINE)
            for setting in HARDENING_SETTINGS
        },
    }
    units = [scored_as(unit, "sandboxed.service")]
    units += [
        scored_as(dataclasses.replace(unit, content=content), f"without-{name}.service")
        for name, content in without.items()
    ]
    problems, scores = config_tools.systemd_security(units, tmp_path, settings.debian_codename)
    print(scores)
    assert problems == ""
    assert scores["sandboxed.service"] <= MAX_EXPOSURE < scores["without-none.service"]
    for setting in without:
        assert scores[f"without-{setting}.service"] > scores["sandboxed.service"], setting


@config_tools.needs_checkers
@pytest.mark.parametrize("recipe", [name for name, one in RECIPES.items() if one.manager == "supervisord"])
def test_supervisor_runs_the_app_unprivileged_with_a_private_umask(recipe, tmp_path):
    """What supervisor allows of a sandbox, as Debian's supervisord reads the program: the
    app's own user (never root) and, for uWSGI, files its group may read, others not."""
    settings = settings_of(recipe, "13", "plain")
    app = settings.app
    problems, read = config_tools.supervisor_read(
        files_of(settings, "supervisor"), tmp_path, app.user, app.log_dir, settings.debian_codename
    )
    assert problems == ""
    program = read["programs"][app.name]
    assert program["user"] == config_tools.APP_UID
    # Gunicorn's own log files go to the app's group: the login user reads them as others.
    assert program["umask"] == (0o027 if settings.recipe.app_server == "uwsgi" else None)


def status_fields(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


def mount_options(pid: int) -> dict[str, str]:
    """Each mount point the process sees -> its options (the last mount on a point wins)."""
    seen = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        seen[fields[4]] = fields[5]
    return seen


@pytest.mark.boot
@pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing())
@pytest.mark.parametrize(
    ("recipe", "release", "database"),
    [("nginx-gunicorn-systemd", "12", "postgresql"), ("nginx-uwsgi-systemd", "13", "mariadb")],
)
def test_the_app_serves_from_inside_its_sandbox(rehearsal_of, recipe, release, database):
    """On the booted server, systemd applied the sandbox (not just wrote it): every process
    of the app has no capabilities, no new privileges and a system call filter, and sees
    the OS read-only but its own folder writable; and the app still serves, database included."""
    settings = load_stack("dev", {"recipe": recipe, "debianRelease": release, "database": database})
    rehearsal = rehearsal_of(settings)
    outcome = rehearsal.wait()
    assert outcome.ok, rehearsal.report(outcome)
    processes = processes_of(rehearsal, settings.app.user)
    assert processes
    for process in processes:
        status = status_fields(process.pid)
        assert (status["CapBnd"], status["CapEff"]) == ("0" * 16, "0" * 16), process
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2"), process
        mounts = mount_options(process.pid)
        assert mounts["/"].startswith("ro"), (process, mounts)
        assert mounts[settings.app.dir].startswith("rw"), (process, mounts)
