"""Faults a server must survive, for the boot tests (issue 12): the app server's main
process killed with SIGKILL, the web server restarted, the database restarted. Each is a
real fault in a running rehearsal container, and each check measures the recovery."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from flasklab import compose, probes
from flasklab.rehearsal.run import Rehearsal
from flasklab.settings import Settings
from tests.container_tools import processes_of, run_inside

# The app serves again within this many seconds after its main process is SIGKILLed.
KILL_RECOVERY_SECONDS = 10
# A restarted web server or database, which systemctl waits for, is back within this.
RESTART_RECOVERY_SECONDS = 30
POLL_SECONDS = 0.2
# The database server's own user, and a command that succeeds once it accepts queries
# (systemctl restart postgresql returns before the cluster's own unit has started).
DATABASE_USERS = {"mariadb": "mysql", "postgresql": "postgres"}
DATABASE_READY = {"mariadb": "mariadb --execute 'SELECT 1'", "postgresql": "pg_isready --quiet"}
# Visits to /db before and after the database restarts: enough to reach every worker
# process of the app (each keeps its own pooled connection, stale after the restart).
DATABASE_VISITS = 6
CONTAINER_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
ROW_ID = re.compile(r"<li>(\d+): ")


@dataclass
class Recoveries:
    """Seconds from each fault until the app served again."""

    seconds: dict[str, float] = field(default_factory=dict)

    def line(self, settings: Settings) -> str:
        measured = ", ".join(f"{fault} {seconds:.1f} s" for fault, seconds in self.seconds.items())
        database = settings.database.name if settings.database else "no database"
        return f"recovery of {settings.recipe.name} with {database}: {measured}"


def main_process_of_app_server(settings: Settings) -> tuple[str, str]:
    """What 'the app server's main process' is in this recipe, and a command printing its
    PID (Gunicorn's or uWSGI's master; mod_wsgi has none of its own: kill_wsgi_daemons)."""
    recipe, app = settings.recipe, settings.app.name
    if recipe.manager == "supervisord":
        return f"{recipe.app_server} master under supervisor", f"supervisorctl pid {app}"
    return f"{recipe.app_server} master of {app}.service", f"systemctl show --property MainPID --value {app}"


def pid_from(rehearsal: Rehearsal, command: str) -> int:
    """The PID a command prints (0 when it prints none: the process is not running). Run
    without a login shell: it is polled, and times a recovery."""
    leader = rehearsal.container.leader_pid()
    result = subprocess.run(
        ["nsenter", f"--target={leader}", "--all", "env", "-i", CONTAINER_PATH, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout.strip()
    return int(output) if output.isdigit() else 0


def journal(rehearsal: Rehearsal, settings: Settings) -> str:
    """What explains a failed recovery: the units' recent journal and the app's logs."""
    units = " ".join(f"--unit {unit}" for unit in compose.units(settings))
    text = run_inside(rehearsal, f"journalctl --no-pager --lines 60 {units}").stdout
    for log in compose.logs(settings):
        text += f"\n--- {log} ---\n" + run_inside(rehearsal, f"tail -n 30 {log}").stdout
    return text


def pid_in_container(host_pid: int) -> int:
    """A process's PID as the container sees it (systemctl and supervisorctl print those)."""
    try:
        for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])  # the innermost namespace's
    except FileNotFoundError:
        pass  # it ended meanwhile
    return 0


def orphans(rehearsal: Rehearsal, settings: Settings, main_pid: int) -> list[str]:
    """Processes of the app's user outside the main process's tree (left by a killed one)."""
    processes = processes_of(rehearsal, settings.app.user)
    pids = {process.pid for process in processes}
    return [
        f"{process.command} (parent: {process.parent_name})"
        for process in processes
        if process.parent not in pids
        and main_pid not in (pid_in_container(process.pid), pid_in_container(process.parent))
    ]


def app_processes(rehearsal: Rehearsal, settings: Settings) -> set[int]:
    """The app's processes, as the container sees their PIDs."""
    return {pid_in_container(process.pid) for process in processes_of(rehearsal, settings.app.user)} - {0}


def kill_wsgi_daemons(rehearsal: Rehearsal, settings: Settings) -> float:
    """Under mod_wsgi the app runs in Apache's daemon processes (the app's user), which
    Apache's parent starts and restarts: SIGKILL them all, and within
    KILL_RECOVERY_SECONDS new ones serve the app. Returns the seconds."""
    killed = app_processes(rehearsal, settings)
    assert killed, "no mod_wsgi daemon process runs"
    site, expect = rehearsal.site, rehearsal.target.expect
    started = time.monotonic()
    result = run_inside(rehearsal, "kill -KILL " + " ".join(map(str, sorted(killed))))
    assert result.returncode == 0, result.stderr
    while time.monotonic() - started < KILL_RECOVERY_SECONDS:
        current = app_processes(rehearsal, settings)
        if current and not current & killed and probes.serves(site, expect, site.names[0], 1):
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    raise AssertionError(
        f"the app did not serve within {KILL_RECOVERY_SECONDS} s of SIGKILL of its mod_wsgi daemon "
        f"processes {sorted(killed)}\n{journal(rehearsal, settings)}"
    )


def kill_app_server(rehearsal: Rehearsal, settings: Settings) -> float:
    """SIGKILL the app server's main process: within KILL_RECOVERY_SECONDS a new one
    serves the app, and no process of the killed one is left over. Returns the seconds."""
    if settings.recipe.app_server == "mod_wsgi":
        return kill_wsgi_daemons(rehearsal, settings)
    what, command = main_process_of_app_server(settings)
    killed = pid_from(rehearsal, command)
    if not killed:
        shown = run_inside(rehearsal, command)
        raise AssertionError(f"no {what} runs: {command}: {shown.stdout}{shown.stderr}")
    site, expect = rehearsal.site, rehearsal.target.expect
    started = time.monotonic()
    result = run_inside(rehearsal, f"kill -KILL {killed}")
    assert result.returncode == 0, result.stderr
    left: list[str] = []
    while time.monotonic() - started < KILL_RECOVERY_SECONDS:
        # No request before a new main process runs and the killed one's workers are
        # gone by themselves (a request would wake an idle orphan, which then notices).
        main = pid_from(rehearsal, command)
        new_main_alone = main not in (0, killed) and not (left := orphans(rehearsal, settings, main))
        if new_main_alone and probes.serves(site, expect, site.names[0], 1):
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    problem = (
        f"left over from the killed {what} ({killed}): {left}"
        if left
        else f"the app did not serve within {KILL_RECOVERY_SECONDS} s of SIGKILL of the {what} ({killed})"
    )
    raise AssertionError(f"{problem}\n{journal(rehearsal, settings)}")


def restart_web_server(rehearsal: Rehearsal, settings: Settings) -> float:
    """systemctl restart of the web server (a new main process): the app serves again."""
    unit = settings.recipe.web_server.unit
    command = f"systemctl show --property MainPID --value {unit}"
    before = pid_from(rehearsal, command)
    site, expect = rehearsal.site, rehearsal.target.expect
    started = time.monotonic()
    result = run_inside(rehearsal, f"systemctl restart {unit}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pid_from(rehearsal, command) not in (0, before), f"{unit} did not restart"
    while (elapsed := time.monotonic() - started) < RESTART_RECOVERY_SECONDS:
        if probes.serves(site, expect, site.names[0], 1):
            return elapsed
        time.sleep(POLL_SECONDS)
    raise AssertionError(
        f"the app did not serve again within {RESTART_RECOVERY_SECONDS} s after "
        f"systemctl restart {unit}\n{journal(rehearsal, settings)}"
    )


def database_rows(rehearsal: Rehearsal) -> set[int]:
    """Visit the sample app's /db page (which writes a row); the row ids it lists."""
    site = rehearsal.site
    answer = probes.request(site, site.names[0], "/db")
    assert answer.status == 200, f"/db answered {answer.status}:\n{answer.body[:1500]}"
    return {int(row_id) for row_id in ROW_ID.findall(answer.body)}


def restart_database(rehearsal: Rehearsal, settings: Settings) -> float:
    """Rows written through the app, then systemctl restart of the database: once it
    accepts queries again, every visit to /db works, without restarting the app (its
    processes are the same), and lists every row written before. Returns the seconds
    from the restart until /db worked."""
    database = settings.database
    assert database is not None
    written = set().union(*(database_rows(rehearsal) for _ in range(DATABASE_VISITS)))
    app_processes = {process.pid for process in processes_of(rehearsal, settings.app.user)}
    database_processes = {process.pid for process in processes_of(rehearsal, DATABASE_USERS[database.name])}
    started = time.monotonic()
    result = run_inside(rehearsal, f"systemctl restart {database.unit}")
    assert result.returncode == 0, result.stdout + result.stderr
    while run_inside(rehearsal, DATABASE_READY[database.name]).returncode != 0:
        assert time.monotonic() - started < RESTART_RECOVERY_SECONDS, f"{database.name} did not come back"
        time.sleep(POLL_SECONDS)
    restarted = {process.pid for process in processes_of(rehearsal, DATABASE_USERS[database.name])}
    assert restarted and not restarted & database_processes, f"{database.unit} did not restart"
    # The first visits after the restart find the pooled connections stale: they must
    # not fail (the app checks a connection before using it).
    listed = database_rows(rehearsal)
    recovered = time.monotonic() - started
    for _ in range(DATABASE_VISITS - 1):
        listed |= database_rows(rehearsal)
    assert written <= listed, f"rows lost in the database's restart: {sorted(written - listed)}"
    still = {process.pid for process in processes_of(rehearsal, settings.app.user)}
    assert still == app_processes, f"the app's processes changed: {app_processes} -> {still}"
    return recovered


def survive_faults(rehearsal: Rehearsal, settings: Settings) -> Recoveries:
    """Every fault of issue 12 in turn, on a rehearsal that serves; the recovery times."""
    recoveries = Recoveries()
    recoveries.seconds["app server SIGKILL"] = kill_app_server(rehearsal, settings)
    recoveries.seconds["web server restart"] = restart_web_server(rehearsal, settings)
    if settings.database:
        recoveries.seconds["database restart"] = restart_database(rehearsal, settings)
    return recoveries
