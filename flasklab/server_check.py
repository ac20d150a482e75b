"""flasklab-check: how far this server's deployment has got, checkpoint by checkpoint, with
what each check ran and saw, and a hint for each one that fails.

Shipped as it is to every server (Python's standard library only), with the server's
rubric (flasklab.rubric's server checkpoints, in the class's language) beside it. Students
run `sudo flasklab-check` to see their progress; `class grade` pipes flasklab's own copy
of this file over SSH instead of running the server's, so that a student who edits the
server's copy changes what they see, not their grade. Needs root (it reads the web
server's and the database's configuration).
"""

from __future__ import annotations

import argparse
import configparser
import glob
import json
import os
import pwd
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

Result = tuple[bool, str]  # (passed, evidence: what ran and what it showed)
COMMAND_TIMEOUT = 20


def run(command: list[str]) -> tuple[int, str]:
    """(exit status, output) of a command; 127 when it does not exist."""
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return 127, f"{command[0]}: not installed"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(command)}: no answer in {COMMAND_TIMEOUT} s"
    return done.returncode, (done.stdout + done.stderr).strip()


def shown(command: list[str], output: str, lines: int = 3) -> str:
    tail = "\n".join(output.splitlines()[-lines:]) if output else "(no output)"
    return f"$ {' '.join(command)}\n{tail}"


def packages(args: dict[str, Any]) -> Result:
    missing = []
    for package in args["packages"]:
        code, output = run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package])
        if code != 0 or output.strip() != "installed":
            missing.append(package)
    evidence = f"dpkg-query -W {' '.join(args['packages'])}: "
    return not missing, evidence + (f"not installed: {' '.join(missing)}" if missing else "all installed")


def app_code(args: dict[str, Any]) -> Result:
    found = [path for path in args["files"] if os.path.isfile(path)]
    return bool(found), f"ls {' '.join(args['files'])}: " + (found[0] if found else "none of them exists")


def app_owner(args: dict[str, Any]) -> Result:
    try:
        owner = pwd.getpwuid(os.stat(args["dir"]).st_uid).pw_name
    except (OSError, KeyError) as error:
        return False, f"stat {args['dir']}: {error}"
    return owner == args["user"], f"stat -c %U {args['dir']}: {owner}"


def virtualenv(args: dict[str, Any]) -> Result:
    python = f"{args['venv']}/bin/python"
    imports = ", ".join(name.split("[")[0].lower().replace("-", "_") for name in args["imports"])
    command = [python, "-c", f"import {imports}"]
    code, output = run(command)
    return code == 0, shown(command, output or "ok")


def _systemd(prop: str, unit: str) -> tuple[list[str], str]:
    command = ["systemctl", "show", "--property", prop, "--value", unit]
    return command, run(command)[1].strip()


def _supervisor_program(name: str) -> configparser.SectionProxy | None:
    """The [program:NAME] section supervisord reads, if any."""
    parser = configparser.RawConfigParser(strict=False)
    files = ["/etc/supervisor/supervisord.conf", *sorted(glob.glob("/etc/supervisor/conf.d/*.conf"))]
    for path in files:
        try:
            parser.read(path)
        except configparser.Error:
            continue
    section = f"program:{name}"
    return parser[section] if parser.has_section(section) else None


def service_defined(args: dict[str, Any]) -> Result:
    manager = args["manager"]
    if manager == "systemd":
        command, state = _systemd("LoadState", args["unit"])
        return state == "loaded", shown(command, state)
    if manager == "supervisord":
        program = _supervisor_program(args["program"])
        where = "/etc/supervisor/conf.d/*.conf"
        return (
            program is not None,
            f"[program:{args['program']}] in {where}: {'found' if program else 'none'}",
        )
    sites = glob.glob("/etc/apache2/sites-enabled/*")
    daemons = [site for site in sites if "WSGIDaemonProcess" in _read(site)]
    return bool(daemons), f"WSGIDaemonProcess in /etc/apache2/sites-enabled/: {' '.join(daemons) or 'none'}"


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def _flag(section: configparser.SectionProxy | None, key: str, default: str) -> str:
    return (section.get(key, default) if section is not None else "(no program)").strip().lower()


def service_enabled(args: dict[str, Any]) -> Result:
    if args["manager"] == "supervisord":
        value = _flag(_supervisor_program(args["program"]), "autostart", "true")
        _, active = run(["systemctl", "is-enabled", "supervisor"])
        return (
            value == "true" and active == "enabled",
            f"autostart={value}; systemctl is-enabled supervisor: {active}",
        )
    states = {unit: run(["systemctl", "is-enabled", unit])[1] for unit in args["units"]}
    evidence = "; ".join(f"systemctl is-enabled {unit}: {state}" for unit, state in states.items())
    return any(state == "enabled" for state in states.values()), evidence


def service_active(args: dict[str, Any]) -> Result:
    if args["manager"] == "supervisord":
        command = ["supervisorctl", "status", args["program"]]
        output = run(command)[1]
        return "RUNNING" in output.split(), shown(command, output)
    command = ["systemctl", "is-active", args["unit"]]
    output = run(command)[1]
    return output == "active", shown(command, output)


def restarts(args: dict[str, Any]) -> Result:
    if args["manager"] == "supervisord":
        value = _flag(_supervisor_program(args["program"]), "autorestart", "unexpected")
        return value in ("true", "unexpected"), f"autorestart={value}"
    command, value = _systemd("Restart", args["unit"])
    return value not in ("", "no"), shown(command, value)


def _ancestors() -> set[str]:
    """This checker's process and those that started it (sudo, the SSH session's shell):
    their command lines hold the rubric, which names the serving program."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(str(pid))
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as file:
                pid = int(file.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _serving(serving: str) -> list[tuple[str, str]]:
    """(pid, user) of every process that runs the app's serving program, this checker's
    own chain excepted."""
    command = ["ps", "-ww", "-eo", "pid,user:32,args", "--no-headers"]  # -ww: whole command lines
    ours = _ancestors()
    processes = [line.split(None, 2) for line in run(command)[1].splitlines()]
    return [
        (fields[0], fields[1])
        for fields in processes
        if len(fields) == 3 and fields[0] not in ours and serving in fields[2]
    ]


def app_user(args: dict[str, Any]) -> Result:
    users = sorted({user for _, user in _serving(args["serving"])})
    if not users:
        return False, f"ps -eo user,args: no process runs {args['serving']}"
    return users == [args["user"]], f"ps -eo user,args: {args['serving']} runs as {', '.join(users)}"


# What turns Flask's debug mode on, in an environment or an env file (FLASK_ENV: Flask < 2.3).
DEBUG_ON = re.compile(
    r"^\s*(export\s+)?(FLASK_DEBUG=\W?(1|true|yes|on)|FLASK_ENV=\W?development)\b.*", re.I | re.M
)


def debug_off(args: dict[str, Any]) -> Result:
    """No process of the app runs with debug mode on, nor does its env file ask for it."""
    processes, env_file = _serving(args["serving"]), args["env_file"]
    if not processes:
        return False, f"no process runs {args['serving']}"
    texts = {env_file: _read(env_file) if os.path.isfile(env_file) else ""}
    for pid, _ in processes:
        try:
            texts[f"the environment of process {pid}"] = _read(f"/proc/{pid}/environ").replace("\0", "\n")
        except OSError:
            continue  # it ended meanwhile
    where = [
        f"{found.group().strip()} in {name}"
        for name, text in texts.items()
        for found in DEBUG_ON.finditer(text)
    ]
    return not where, "; ".join(where) or "FLASK_DEBUG: off"


def _uwsgi_packet(host: str, path: str) -> bytes:
    """A request in the uwsgi protocol: modifier1 0, the variables' size, modifier2 0, then
    each variable as a 2-byte length and bytes (little-endian), as Nginx's uwsgi_pass sends."""
    variables = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": path,
        "PATH_INFO": path.split("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    body = b"".join(
        len(part).to_bytes(2, "little") + part
        for key, value in variables.items()
        for part in (key.encode(), value.encode())
    )
    return bytes([0]) + len(body).to_bytes(2, "little") + bytes([0]) + body


def answers_locally(args: dict[str, Any]) -> Result:
    address, host, path = args["address"], args["host"], args["path"]
    if address.startswith("unix:"):
        family, target = socket.AF_UNIX, address[len("unix:") :]
        where: Any = target
    else:
        hostname, port = address.rsplit(":", 1)
        family, where = socket.AF_INET, (hostname, int(port))
    if args["protocol"] == "uwsgi":
        request = _uwsgi_packet(host, path)
    else:
        request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(10)
            connection.connect(where)
            connection.sendall(request)
            answer = connection.recv(200).decode("latin-1")
    except OSError as error:
        return False, f"{args['protocol']} request for {path} to {address}: {error}"
    status_line = answer.splitlines()[0] if answer else "(no answer)"
    parts = status_line.split()
    ok = len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    return ok, f"{args['protocol']} request for {path} (Host: {host}) to {address}: {status_line}"


WEB_CONFIG_TESTS = {"nginx": ["nginx", "-t"], "apache": ["apache2ctl", "configtest"]}
WEB_CONFIG_DUMPS = {"nginx": ["nginx", "-T"], "apache": ["apache2ctl", "-S"]}


def web_config(args: dict[str, Any]) -> Result:
    command = WEB_CONFIG_TESTS[args["web_server"]]
    code, output = run(command)
    return code == 0, shown(command, output)


def site_enabled(args: dict[str, Any]) -> Result:
    command = WEB_CONFIG_DUMPS[args["web_server"]]
    output = run(command)[1]
    name = args["server_name"]
    # nginx -T: `server_name a b;` lines; apache2ctl -S: `namevhost a` and `alias b` lines.
    names = {
        word.rstrip(";")
        for line in output.splitlines()
        if line.strip().startswith(("server_name", "port", "alias", "ServerName", "ServerAlias"))
        or "namevhost" in line
        for word in line.split()
    }
    return name in names, f"$ {' '.join(command)}: {name} " + (
        "is served by an enabled site" if name in names else "is in no enabled site"
    )


DATABASE_QUERIES = {
    "mariadb": lambda db: [
        "mariadb",
        "--batch",
        "--skip-column-names",
        "--execute",
        f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'",
    ],
    "postgresql": lambda db: [
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "--no-psqlrc",
        "--tuples-only",
        "--no-align",
        "--dbname",
        db,
        "--command",
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    ],
}


def database_migrated(args: dict[str, Any]) -> Result:
    command = DATABASE_QUERIES[args["engine"]](args["database"])
    code, output = run(command)
    tables = output.strip().splitlines()[-1] if output.strip() else ""
    ok = code == 0 and tables.isdigit() and int(tables) > 0
    return ok, f"tables in the database {args['database']}: " + (tables if code == 0 else output[-200:])


CHECKS: dict[str, Callable[[dict[str, Any]], Result]] = {
    "packages": packages,
    "app_code": app_code,
    "app_owner": app_owner,
    "virtualenv": virtualenv,
    "service_defined": service_defined,
    "service_enabled": service_enabled,
    "service_active": service_active,
    "app_user": app_user,
    "debug_off": debug_off,
    "restarts": restarts,
    "answers_locally": answers_locally,
    "web_config": web_config,
    "site_enabled": site_enabled,
    "database_migrated": database_migrated,
}


def check_all(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each checkpoint of the spec with passed and evidence; a check that itself fails
    counts as failed, with why."""
    results = []
    for checkpoint in spec["checkpoints"]:
        try:
            passed, evidence = CHECKS[checkpoint["key"]](checkpoint["args"])
        except Exception as error:  # one broken check must not hide the others
            passed, evidence = False, f"the check itself failed: {error!r}"
        results.append({**checkpoint, "passed": passed, "evidence": evidence})
    return results


def report(results: list[dict[str, Any]]) -> str:
    score = sum(result["points"] for result in results if result["passed"])
    total = sum(result["points"] for result in results)
    lines = []
    for result in results:
        mark = "ok  " if result["passed"] else "FAIL"
        lines.append(f"[{mark}] {result['title']} ({result['points']})")
        if not result["passed"]:
            lines += [f"         {line}" for line in result["evidence"].splitlines()]
            lines.append(f"       -> {result['hint']}")
    lines.append(f"{score} of {total} points on this server (the web checks from outside come on top)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flasklab-check", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="/usr/local/lib/flasklab/check-spec.json", help=argparse.SUPPRESS)
    parser.add_argument("--spec-json", default="", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("flasklab-check needs root: run it as `sudo flasklab-check`.", file=sys.stderr)
        return 2
    if args.spec_json:
        spec = json.loads(args.spec_json)
    else:
        with open(args.spec, encoding="utf-8") as file:
            spec = json.load(file)
    results = check_all(spec)
    print(json.dumps(results) if args.json else report(results))
    return 0 if all(result["passed"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
