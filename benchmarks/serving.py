"""Benchmark: requests per second and errors of the default stack, in one rehearsed
container, through the web server, from the same app server reached directly, and from
Flask's development server, each loaded by wrk with the same connections.

    sudo .venv/bin/python benchmarks/serving.py [--stack dev] [--set KEY=VALUE] [--seconds 20]
        [--rounds 3] [--soak 180]

Goals: through the web server at least 3.5x the development server and 0.85x the app
server reached directly, with no error; `--soak` then loads the web server for that many
seconds more and prints the app's and the web server's memory every interval (it should
stay flat). Needs what a rehearsal needs (root, debootstrap, systemd-nspawn) and wrk
(`apt-get install wrk`). Run it on a quiet machine: the container and wrk share its cores,
so it prints how many of them the container used and its CPU per request, which do not
depend on what else shares the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flasklab.__main__ import setting_override
from flasklab.rehearsal.cli import stop_on_sigterm
from flasklab.rehearsal.run import HTTP_PORT, Rehearsal, RehearsalRefused
from flasklab.rehearsal.target import target_for
from flasklab.settings import Settings
from flasklab.stacks import DEFAULT_STACK, load_stack

CONNECTIONS = 50
DIRECT_PORT = 8000
DEVELOPMENT_PORT = 5000
GOAL_OVER_DEVELOPMENT = 3.5
GOAL_OVER_DIRECT = 0.85
# Transient units the benchmark starts in the container, next to the recipe's own.
DIRECT_UNIT = "flasklab-bench-direct"
DEVELOPMENT_UNIT = "flasklab-bench-development"


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    errors: int
    summary: str
    # CPU seconds the container's processes used during the run, and the run's seconds.
    container_cpu: float = 0.0
    seconds: float = 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        requests = self.requests_per_second * self.seconds
        return 1000 * self.container_cpu / requests if requests else 0.0


def container_cpu_seconds(rehearsal: Rehearsal) -> float:
    """User and system CPU seconds of every process in the container (its PID namespace),
    with those of children it has reaped."""
    leader = rehearsal.container.leader_pid()
    if leader is None:
        return 0.0
    namespace = os.readlink(f"/proc/{leader}/ns/pid")
    ticks = 0
    for process in Path("/proc").iterdir():
        try:
            if process.name.isdigit() and os.readlink(process / "ns/pid") == namespace:
                fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
                # utime, stime, and those of its children that ended (Apache's, say).
                ticks += sum(int(value) for value in fields[11:15])
        except OSError:
            continue  # ended while being read, or not ours to read
    return ticks / os.sysconf("SC_CLK_TCK")


def measured_load(rehearsal: Rehearsal, url: str, host: str, seconds: int) -> Load:
    """run_wrk, with the CPU the container used meanwhile (wrk runs outside it)."""
    cpu_before = container_cpu_seconds(rehearsal)
    load = run_wrk(url, host, seconds)
    return Load(
        load.requests_per_second,
        load.errors,
        load.summary,
        container_cpu_seconds(rehearsal) - cpu_before,
        seconds,
    )


def run_wrk(url: str, host: str, seconds: int) -> Load:
    """One wrk run of `seconds` against url with the Host header, 50 connections."""
    done = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "-H", f"Host: {host}", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done.stdout)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return Load(float(rate.group(1)) if rate else 0.0, errors, done.stdout)


def app_server_command(rehearsal: Rehearsal, settings: Settings) -> list[str]:
    """The recipe's own app server command line (its unit's ExecStart), bound to a TCP port."""
    unit = rehearsal.root / f"etc/systemd/system/{settings.app.name}.service"
    exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    return [*shlex.split(exec_start.removeprefix("ExecStart=")), "--bind", f"0.0.0.0:{DIRECT_PORT}"]


def start_transient(rehearsal: Rehearsal, settings: Settings, unit: str, command: list[str]) -> None:
    """Run command as the app's user, with its settings, in a unit that logs to the journal
    as the recipe's does."""
    app = settings.app
    properties = [
        f"User={app.user}",
        f"WorkingDirectory={app.dir}",
        f"EnvironmentFile={app.env_file}",
        f"Environment=PATH={app.venv}/bin:/usr/bin:/bin",
    ]
    words = ["systemd-run", f"--unit={unit}", *(f"--property={p}" for p in properties), *command]
    done = rehearsal.container.run_inside(shlex.join(words))
    if done.returncode != 0:
        raise RuntimeError(f"could not start {unit}: {done.stderr}")


def wait_for_port(rehearsal: Rehearsal, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    address = rehearsal.container.address
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://{address}:{port}/"]).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing answered on {address}:{port} within {timeout:.0f} s")


def memory_kib(rehearsal: Rehearsal, settings: Settings) -> tuple[int, int]:
    """Resident memory of the app's processes and of the web server's, in KiB."""
    web_server = settings.recipe.web_server.packages[0]
    totals = []
    for selector in (f"-u {settings.app.user}", f"-C {web_server}"):
        done = rehearsal.container.run_inside(f"ps {selector} -o rss=")
        totals.append(sum(int(value) for value in done.stdout.split()))
    return totals[0], totals[1]


def measure(
    rehearsal: Rehearsal, settings: Settings, seconds: int, rounds_count: int
) -> dict[str, list[Load]]:
    address, name = rehearsal.container.address, settings.server_names[0]
    start_transient(rehearsal, settings, DIRECT_UNIT, app_server_command(rehearsal, settings))
    start_transient(
        rehearsal,
        settings,
        DEVELOPMENT_UNIT,
        [
            f"{settings.app.venv}/bin/flask",
            "--app",
            settings.app.entry,
            "run",
            "--host",
            "0.0.0.0",
            "--port",
            str(DEVELOPMENT_PORT),
        ],
    )
    wait_for_port(rehearsal, DIRECT_PORT)
    wait_for_port(rehearsal, DEVELOPMENT_PORT)
    urls = {
        "through the web server": f"http://{address}:{HTTP_PORT}/",
        "app server directly": f"http://{address}:{DIRECT_PORT}/",
        "development server": f"http://{address}:{DEVELOPMENT_PORT}/",
    }
    for url in urls.values():
        run_wrk(url, name, 3)  # warm-up: workers started, caches filled
    # Rounds taken in turn, so a slow spell of the machine touches every server alike.
    rounds = [
        {label: measured_load(rehearsal, url, name, seconds) for label, url in urls.items()}
        for _ in range(rounds_count)
    ]
    return {label: [one[label] for one in rounds] for label in urls}


def soak(rehearsal: Rehearsal, settings: Settings, seconds: int, interval: int = 30) -> int:
    """Load the web server for `seconds`, printing memory each interval; the errors seen."""
    url, name = f"http://{rehearsal.container.address}:{HTTP_PORT}/", settings.server_names[0]
    errors = 0
    print(f"soak: {seconds} s through the web server, memory every {interval} s")
    for elapsed in range(0, seconds, interval):
        app, web = memory_kib(rehearsal, settings)
        print(f"  {elapsed:5d} s: app {app / 1024:6.1f} MiB, web server {web / 1024:6.1f} MiB", flush=True)
        load = run_wrk(url, name, min(interval, seconds - elapsed))
        errors += load.errors
    app, web = memory_kib(rehearsal, settings)
    print(f"  {seconds:5d} s: app {app / 1024:6.1f} MiB, web server {web / 1024:6.1f} MiB")
    print(f"soak errors: {errors}")
    return errors


def median_rate(loads: list[Load]) -> float:
    return statistics.median(load.requests_per_second for load in loads)


def print_results(results: dict[str, list[Load]]) -> bool:
    """Each server's median of the rounds, then the ratios the goals are about."""
    cores = os.cpu_count() or 1
    rates = {label: median_rate(loads) for label, loads in results.items()}
    for label, loads in results.items():
        cpu = statistics.median(load.cpu_ms_per_request for load in loads)
        used = statistics.median(load.container_cpu / load.seconds for load in loads)
        print(
            f"{label:24s} {rates[label]:9.1f} requests/s (rounds: "
            f"{', '.join(f'{load.requests_per_second:.0f}' for load in loads)}), "
            f"{sum(load.errors for load in loads)} errors, {cpu:.2f} ms of CPU per request, "
            f"{used:.2f} of the machine's {cores} cores (wrk and the host use the rest)"
        )
    web = rates["through the web server"]
    over_development = web / max(rates["development server"], 0.1)
    over_direct = web / max(rates["app server directly"], 0.1)
    errors = sum(load.errors for loads in results.values() for load in loads)
    met = over_development >= GOAL_OVER_DEVELOPMENT and over_direct >= GOAL_OVER_DIRECT and not errors
    print(
        f"web server / development server: {over_development:.2f} (goal {GOAL_OVER_DEVELOPMENT}); "
        f"web server / app server directly: {over_direct:.2f} (goal {GOAL_OVER_DIRECT}); "
        f"errors: {errors} ({'meets' if met else 'misses'} the goals)"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--set", dest="overrides", type=setting_override, action="append", default=[])
    parser.add_argument("--seconds", type=int, default=20, help="length of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs of each server, in turn")
    parser.add_argument("--soak", type=int, default=0, help="seconds of extra load, memory printed")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("benchmarks/serving.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    stop_on_sigterm()
    settings = load_stack(args.stack, dict(args.overrides))
    rehearsal = Rehearsal(target_for(settings))
    try:
        rehearsal.prepare()
        rehearsal.boot()
        outcome = rehearsal.wait()
        if not outcome.ok:
            print(rehearsal.report(outcome), file=sys.stderr)
            return 1
        print_results(measure(rehearsal, settings, args.seconds, args.rounds))
        if args.soak:
            soak(rehearsal, settings, args.soak)
        return 0
    except RehearsalRefused as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        rehearsal.stop()
        rehearsal.remove()


if __name__ == "__main__":
    sys.exit(main())
