"""Many servers' generated files through their own tools in ONE checkers container per
release: the same checks as tests/config_tools.py (which starts a container per check),
for the property tests, which check dozens of generated configs at once.

Each check is prepared here (its files in a folder of the batch's working folder, the
setup that puts them where the server has them, the tool's command), then a driver in
the container runs them one after another, each setup replacing the previous one's
files, and writes every result to results.json.
"""

from __future__ import annotations

import functools
import json
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flasklab.render import RenderedFile
from tests.config_tools import (
    _ENV_READER,
    _SUPERVISOR_READER,
    APACHE_MODULES,
    APP_UID,
    CHECK_DIR,
    NGINX_TEST,
    SUPERVISOR_GID,
    certificates_as_on_the_server,
    checkers_image,
    in_checkers_image,
    nginx_test_files,
)

# (exit status, stdout, stderr) -> the tool's complaints ('' when the file passed).
Judge = Callable[[int, str, str], str]


@dataclass(frozen=True)
class Check:
    label: str
    setup: tuple[str, ...]
    command: tuple[str, ...]
    judge: Judge


@dataclass(frozen=True)
class Server:
    """What one server's checks need: its files and user-data, its app's user and log
    folder, and what its env file must read as (name -> value)."""

    files: list[RenderedFile]
    user_data: str
    app_user: str
    log_dir: str
    env: dict[str, str]


# Runs each check (setup, then the command, in sh) and writes their results.
_DRIVER = """
import json, subprocess, sys, time
checks = json.load(open(sys.argv[1]))
results = []
for check in checks:
    script = "".join(f"{step} && " for step in check["setup"]) + 'exec "$@"'
    start = time.monotonic()
    done = subprocess.run(["sh", "-c", script, "sh", *check["command"]], capture_output=True, text=True)
    results.append([done.returncode, done.stdout, done.stderr, time.monotonic() - start])
json.dump(results, open(sys.argv[2], "w"))
"""


# cloud-init's schema and its own YAML loader on every server's user-data, in one
# process (importing cloud-init takes a second): index -> its complaint and the files
# (path -> content) the user-data writes, as cloud-init reads them.
_CLOUD_INIT_READER = """
import json, sys
from cloudinit import util
from cloudinit.config.schema import get_schema, validate_cloudconfig_file
schema, report = get_schema(), {}
for index, path in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        validate_cloudconfig_file(path, schema)
        complaint = ""
    except Exception as error:
        complaint = f"{type(error).__name__}: {error}"
    with open(path, encoding="utf-8") as file:
        document = util.load_yaml(file.read()) or {}
    written = {entry["path"]: entry["content"] for entry in document.get("write_files", [])}
    report[index] = {"schema": complaint, "written": written}
print(json.dumps(report))
"""


class Batch:
    """The checks of many servers, in one working folder (the container's /check)."""

    def __init__(self, root: Path, codename: str) -> None:
        self.root, self.codename = root, codename
        self.checks: list[tuple[int, Check]] = []
        # Seconds each tool took in all, once run (for the figures in a failure or -s).
        self.seconds: dict[str, float] = {}
        # index -> (its user-data, the files it must write: path -> content)
        self.user_data: dict[int, tuple[Path, dict[str, str]]] = {}

    def inside(self, path: Path) -> str:
        return f"{CHECK_DIR}/{path.relative_to(self.root).as_posix()}"

    def place(self, files: dict[str, Path]) -> list[str]:
        """Setup steps copying files made here to their paths on the server."""
        steps = []
        for path, source in files.items():
            steps.append(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
            steps.append(f"cp {shlex.quote(self.inside(source))} {shlex.quote(path)}")
        return steps

    def users(self, folder: Path, app_user: str) -> list[str]:
        """Setup steps making the app's user and the group supervisor, as on the server."""
        (folder / "passwd").write_text(
            f"{app_user}:x:{APP_UID}:{APP_UID}::/var/www/{app_user}:/usr/sbin/nologin\n"
        )
        (folder / "group").write_text(f"{app_user}:x:{APP_UID}:\nsupervisor:x:{SUPERVISOR_GID}:\n")
        return [
            f"cat {self.inside(folder / 'passwd')} >> /etc/passwd",
            f"cat {self.inside(folder / 'group')} >> /etc/group",
        ]

    def add_server(self, index: int, server: Server) -> None:
        folder = self.root / f"server-{index}"
        folder.mkdir()
        (folder / "user-data").write_text(server.user_data)
        self.user_data[index] = (folder / "user-data", {file.path: file.content for file in server.files})
        checks = []
        units = [file for file in server.files if file.checker == "systemd"]
        if units:
            checks.append(self._systemd(folder / "systemd", units))
        supervised = [file for file in server.files if file.checker == "supervisor"]
        if supervised:
            checks.append(self._supervisor(folder / "supervisor", supervised, server))
        for number, file in enumerate(server.files):
            make = getattr(self, f"_{file.checker}", None)
            if make is not None and file.checker not in ("systemd", "supervisor"):
                file_folder = folder / f"{file.checker}-{number}"
                file_folder.mkdir()
                checks.append(make(file_folder, file, server))
        self.checks += [(index, check) for check in checks]

    def run(self) -> dict[int, dict[str, str]]:
        """server index -> {check: complaints} for every check with complaints."""
        cloud_init = self._cloud_init()
        (self.root / "checks.json").write_text(
            json.dumps(
                [{"setup": check.setup, "command": check.command} for _, check in [*self.checks, cloud_init]]
            )
        )
        (self.root / "driver.py").write_text(_DRIVER)
        done = in_checkers_image(
            ["python3", "driver.py", "checks.json", "results.json"], self.root, self.codename
        )
        assert done.returncode == 0, f"the batch driver failed: {done.stdout}{done.stderr}"
        results = json.loads((self.root / "results.json").read_text())
        complaints = self._cloud_init_complaints(*results.pop())
        for (index, check), (status, out, err, seconds) in zip(self.checks, results, strict=True):
            tool = check.label.rsplit("(", 1)[-1].rstrip(")")
            self.seconds[tool] = self.seconds.get(tool, 0.0) + seconds
            said = check.judge(status, out, err)
            if said:
                complaints.setdefault(index, {})[check.label] = said
        return complaints

    # One method per checker (flasklab.recipes.ServerFile.checker), as in config_tools.

    def _cloud_init(self) -> tuple[int, Check]:
        arguments = [
            part for index, (path, _) in self.user_data.items() for part in (str(index), self.inside(path))
        ]
        command = ("python3", "-c", _CLOUD_INIT_READER, *arguments)
        return -1, Check("user-data (cloud-init)", (), command, _status_only)

    def _cloud_init_complaints(
        self, status: int, out: str, err: str, seconds: float
    ) -> dict[int, dict[str, str]]:
        """Per server: the schema's complaint, and the files cloud-init would write changed."""
        self.seconds["cloud-init"] = seconds
        assert status == 0, f"cloud-init's checks failed: {out}{err}"
        complaints: dict[int, dict[str, str]] = {}
        for index, read in json.loads(out).items():
            meant = self.user_data[int(index)][1]
            changed = sorted(
                path
                for path in meant.keys() | read["written"].keys()
                if read["written"].get(path) != meant.get(path)
            )
            said = {
                "user-data (cloud-init schema)": read["schema"],
                "user-data (cloud-init's loader)": f"cloud-init would write these changed: {changed}"
                if changed
                else "",
            }
            if any(said.values()):
                complaints[int(index)] = {check: text for check, text in said.items() if text}
        return complaints

    def _nginx(self, folder: Path, site: RenderedFile, server: Server) -> Check:
        files = nginx_test_files(site, folder, "/run/nginx-check.pid")
        setup = (*self.users(folder, server.app_user), *self.place(files))
        command = tuple(NGINX_TEST)
        return Check(f"{site.path} (nginx -t)", setup, command, _silent)

    def _apache(self, folder: Path, site: RenderedFile, server: Server) -> Check:
        (folder / "site.conf").write_text(site.content)
        modules = "".join(
            f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so\n" for name in APACHE_MODULES
        )
        here = self.inside(folder)
        (folder / "apache2.conf").write_text(
            f"ServerRoot {here}\nServerName localhost\nPidFile {here}/apache2.pid\n"
            f"ErrorLog {here}/error.log\n{modules}Listen 127.0.0.1:8999\n"
            'LogFormat "%h %l %u %t \\"%r\\" %>s %O" combined\n'
            f"Include {here}/site.conf\n"
        )
        setup = (
            *self.users(folder, server.app_user),
            *self.place(certificates_as_on_the_server(site, folder)),
        )
        command = ("env", f"APACHE_LOG_DIR={here}", "apache2", "-t", "-f", f"{here}/apache2.conf")
        return Check(f"{site.path} (apache2 -t)", setup, command, _apache_judge)

    def _systemd(self, folder: Path, units: list[RenderedFile]) -> Check:
        root = folder / "root"
        shutil.copytree(
            checkers_image(self.codename) / "usr/lib/systemd/system",
            root / "usr/lib/systemd/system",
            symlinks=True,
        )
        for unit in units:
            target = root / unit.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(unit.content)
        # verify checks that the programs the units start are executable: stand-ins.
        programs = {
            program
            for unit in units
            for line in unit.content.splitlines()
            if line.startswith("Exec") and "=" in line
            for program in [line.split("=", 1)[1].lstrip("-@!+:").split(" ", 1)[0]]
            if program.startswith("/")
        }
        for program in programs:
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
        names = [Path(unit.path).name for unit in units]
        command = ("systemd-analyze", "verify", f"--root={self.inside(root)}", *names)
        return Check("systemd units (systemd-analyze verify)", (), command, _silent_stripped)

    def _supervisor(self, folder: Path, files: list[RenderedFile], server: Server) -> Check:
        folder.mkdir()
        placed = {}
        for file in files:
            (folder / Path(file.path).name).write_text(file.content)
            placed[file.path] = folder / Path(file.path).name
        setup = (
            "rm -f /etc/supervisor/conf.d/*",
            f"mkdir -p {shlex.quote(server.log_dir)}",
            *self.users(folder, server.app_user),
            *self.place(placed),
        )
        command = ("python3", "-c", _SUPERVISOR_READER, "/etc/supervisor/supervisord.conf")
        return Check("supervisor (supervisord's parser)", setup, command, _status_only)

    def _uwsgi(self, folder: Path, ini: RenderedFile, server: Server) -> Check:
        (folder / "uwsgi.ini").write_text(ini.content)
        command = ("uwsgi", "--strict", "--ini", self.inside(folder / "uwsgi.ini"), "--get", "socket")
        return Check(f"{ini.path} (uwsgi --strict)", (), command, _status_only)

    def _sh(self, folder: Path, script: RenderedFile, server: Server) -> Check:
        path = folder / Path(script.path).name
        path.write_text(script.content)
        both = 'status=0; sh -n "$1" || status=1; shellcheck --shell=sh "$1" || status=1; exit $status'
        return Check(
            f"{script.path} (sh -n, shellcheck)",
            (),
            ("sh", "-c", both, "sh", self.inside(path)),
            _status_only,
        )

    def _python(self, folder: Path, source: RenderedFile, server: Server) -> Check:
        path = folder / Path(source.path).name
        path.write_text(source.content)
        return Check(
            f"{source.path} (py_compile)",
            (),
            ("python3", "-m", "py_compile", self.inside(path)),
            _status_only,
        )

    def _env(self, folder: Path, env: RenderedFile, server: Server) -> Check:
        (folder / "env").write_text(env.content)
        command = ("python3", "-c", _ENV_READER, self.inside(folder / "env"))
        judge = functools.partial(_env_judge, expected=server.env)
        return Check(f"{env.path} (sh, python-dotenv, shlex)", (), command, judge)


def _status_only(status: int, out: str, err: str) -> str:
    return "" if status == 0 else out + err


def _silent(status: int, out: str, err: str) -> str:
    return "" if status == 0 and not err else err or out


def _silent_stripped(status: int, out: str, err: str) -> str:
    return "" if status == 0 and not err.strip() else err or out


def _apache_judge(status: int, out: str, err: str) -> str:
    complaints = [line for line in err.splitlines() if line.strip() != "Syntax OK"]
    return "" if status == 0 and not complaints else err or out


def _env_judge(status: int, out: str, err: str, expected: dict[str, str]) -> str:
    """Every reader reads every name and value exactly as flasklab meant them."""
    if status != 0:
        return out + err
    read = json.loads(out)
    if read["sh"] == read["python-dotenv"] == read["shlex"] == expected:
        return ""
    return ", ".join(f"{reader} read {values}" for reader, values in read.items()) + f"; meant {expected}"
