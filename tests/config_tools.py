"""Run each generated config through the tool that reads it on the server:
nginx -t, apache2 -t, uwsgi --strict, supervisord's own parser, systemd-analyze verify,
sh -n and shellcheck, Python's compiler, cloud-init schema, and sh, python-dotenv and
shlex on the env files. Each returns the tool's complaints; an empty string means the
file passed.

The tools are Debian's, of the stack's own release: each check runs in a throwaway
container of the cached checkers image of that release (flasklab.rehearsal.image), so a
Debian 13 stack is checked by Debian 13's nginx, Apache, Python, ... whatever this
machine runs, and this machine needs none of them installed. The container sees the
check's working folder at /check, writes to a tmpfs overlay (the cached image is never
changed) and has no network; checks run side by side.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flasklab.rehearsal.image import ensure_checkers_image
from flasklab.render import RenderedFile

# The checkers recipes may name (flasklab.recipes.ServerFile.checker), each run below.
CHECKERS = {"nginx", "apache", "systemd", "supervisor", "uwsgi", "sh", "python", "env"}
# Where a check's working folder is, inside the container.
CHECK_DIR = "/check"
# The ids the app's user and the group supervisor get in a check (the tests read them back).
APP_UID, SUPERVISOR_GID = 990, 991


def checkers_missing() -> str:
    """Why the checkers cannot run here ('' when they can)."""
    if os.geteuid() != 0:
        return "the config checkers run in a Debian container: they need root"
    missing = [tool for tool in ("debootstrap", "systemd-nspawn") if shutil.which(tool) is None]
    if missing:
        return f"the config checkers need {', '.join(missing)} (scripts/setup.sh installs them)"
    return ""


def needs_checkers(test: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a test that runs the checkers (-m "not checkers" leaves it out); it is
    skipped, with the reason, where they cannot run."""
    missing = checkers_missing()
    return pytest.mark.checkers(pytest.mark.skipif(bool(missing), reason=missing)(test))


@functools.cache
def checkers_image(codename: str) -> Path:
    """The checkers image of Debian `codename`, built on first use (once per machine)."""
    return ensure_checkers_image(codename, lambda message: print(f"flasklab: {message}", file=sys.stderr))


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False)


# systemd-nspawn's own notice when /run is not a tmpfs (as on this kind of machine): it
# then leaves the removal of the container's empty propagation folder to rmdir.
_NSPAWN_NOTICE = re.compile(r'^Attempted to remove disk file system under "/run/systemd/nspawn/.*\n?', re.M)


def in_checkers_image(
    command: list[str],
    workdir: Path,
    codename: str,
    app_user: str | None = None,
    dirs: tuple[str, ...] = (),
    files: dict[str, Path] | None = None,
) -> subprocess.CompletedProcess:
    """`command` in a throwaway container of Debian `codename`'s checkers image, `workdir`
    at /check. As on the server, the app's user and the group supervisor exist (Apache and
    supervisord look them up while reading their configs) if `app_user` is given, and so
    do `dirs` and `files` (server path -> a file in `workdir`), such as certificates the
    web servers load."""
    image = checkers_image(codename)
    setup = []
    if app_user is not None:
        (workdir / "passwd.server").write_text(
            f"{app_user}:x:{APP_UID}:{APP_UID}::/var/www/{app_user}:/usr/sbin/nologin\n"
        )
        (workdir / "group.server").write_text(f"{app_user}:x:{APP_UID}:\nsupervisor:x:{SUPERVISOR_GID}:\n")
        setup += [
            f"cat {CHECK_DIR}/passwd.server >> /etc/passwd",
            f"cat {CHECK_DIR}/group.server >> /etc/group",
        ]
    setup += [f"mkdir -p {shlex.quote(folder)}" for folder in dirs]
    for path, source in (files or {}).items():
        inside = f"{CHECK_DIR}/{source.relative_to(workdir).as_posix()}"
        setup.append(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
        setup.append(f"cp {shlex.quote(inside)} {shlex.quote(path)}")
    script = "".join(f"{step} && " for step in setup) + 'exec "$@"'
    # nspawn needs this folder when this machine's PID 1 is not systemd.
    Path("/run/systemd/nspawn/propagate").mkdir(parents=True, exist_ok=True)
    result = _run(
        [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            f"--machine=flasklab-check-{uuid.uuid4().hex[:12]}",
            f"--directory={image}",
            "--volatile=overlay",
            "--private-network",
            "--console=pipe",
            "--as-pid2",
            f"--bind={workdir}:{CHECK_DIR}",
            f"--chdir={CHECK_DIR}",
            "--",
            *("sh", "-c", script, "sh", *command),
        ]
    )
    result.stderr = _NSPAWN_NOTICE.sub("", result.stderr)
    return result


def cloud_init_schema(user_data: str, workdir: Path, codename: str) -> str:
    (workdir / "user-data").write_text(user_data)
    result = in_checkers_image(
        ["cloud-init", "schema", "--config-file", f"{CHECK_DIR}/user-data"], workdir, codename
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


_CERTIFICATE_FILES = re.compile(
    r"^\s*(?:ssl_certificate|SSLCertificateFile)\s+(\S+)/fullchain\.pem", re.MULTILINE
)


def certificates_as_on_the_server(site: RenderedFile, workdir: Path) -> dict[str, Path]:
    """A certificate and key where the site expects them (server path -> file made here):
    nginx -t and apache2 -t load them."""
    folders = set(_CERTIFICATE_FILES.findall(site.content))
    if not folders:
        return {}
    made = self_signed_certificate(workdir / "tls", "flasklab-test")
    return {f"{folder}/{path.name}": path for folder in folders for path in made}


def self_signed_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """(fullchain.pem, privkey.pem) in `folder`: a certificate for `name`, made as
    templates/deploy/tls-self-signed.sh makes the servers' own."""
    folder.mkdir(parents=True, exist_ok=True)
    certificate, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-noenc", "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"),
            *("-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


NGINX_TEST = ["nginx", "-t", "-q", "-c", "/etc/nginx/flasklab-check.conf"]


def nginx_test_files(site: RenderedFile, workdir: Path, pid_file: str) -> dict[str, Path]:
    """A minimal nginx.conf in Debian's /etc/nginx (the site's relative includes,
    proxy_params & co., are Debian's) that includes the site at its path: what NGINX_TEST
    reads, as {path in the container: file here}."""
    (workdir / "site.conf").write_text(site.content)
    (workdir / "nginx.conf").write_text(
        f"pid {pid_file};\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    include mime.types;\n    include {site.path};\n}}\n"
    )
    return {
        "/etc/nginx/flasklab-check.conf": workdir / "nginx.conf",
        site.path: workdir / "site.conf",
        **certificates_as_on_the_server(site, workdir),
    }


def nginx_test(site: RenderedFile, workdir: Path, app_user: str, codename: str) -> str:
    """nginx -t of the site as Debian's nginx reads it (nginx_test_files)."""
    files = nginx_test_files(site, workdir, f"{CHECK_DIR}/nginx.pid")
    command = NGINX_TEST
    result = in_checkers_image(command, workdir, codename, app_user, files=files)
    return "" if result.returncode == 0 and not result.stderr else result.stderr


def systemd_verify(units: list[RenderedFile], workdir: Path, codename: str) -> str:
    """systemd-analyze verify in a scratch root holding the units, the release's own units
    and stand-ins for the programs they start (verify checks that those are executable)."""
    root = workdir / "root"
    shutil.copytree(
        checkers_image(codename) / "usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True
    )
    names = []
    for unit in units:
        target = root / unit.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(unit.content)
        names.append(target.name)
        for program in re.findall(r"^Exec\w+=[-@!+:]*(/\S+)", unit.content, re.MULTILINE):
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    command = ["systemd-analyze", "verify", f"--root={CHECK_DIR}/root", *names]
    result = in_checkers_image(command, workdir, codename)
    # verify exits 0 on settings it ignores: any complaint counts.
    return "" if result.returncode == 0 and not result.stderr.strip() else result.stderr


def shell_check(script: RenderedFile, workdir: Path, codename: str) -> str:
    """sh -n (dash, as /bin/sh on the server), then shellcheck: every complaint of both."""
    name = Path(script.path).name
    (workdir / name).write_text(script.content)
    both = 'status=0; sh -n "$1" || status=1; shellcheck --shell=sh "$1" || status=1; exit $status'
    result = in_checkers_image(["sh", "-c", both, "sh", name], workdir, codename)
    return "" if result.returncode == 0 else result.stdout + result.stderr


# What the site needs beyond Apache's built-in modules (log_config is built in on Debian).
APACHE_MODULES = (
    "mpm_event",
    "authz_core",
    "alias",
    "mime",
    "expires",
    "wsgi",
    "headers",
    "rewrite",
    "socache_shmcb",
    "ssl",
)


def apache_test(site: RenderedFile, workdir: Path, app_user: str, codename: str) -> str:
    """apache2 -t on a minimal apache2.conf that loads Debian's modules and the site."""
    (workdir / "site.conf").write_text(site.content)
    modules = "".join(
        f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so\n" for name in APACHE_MODULES
    )
    (workdir / "apache2.conf").write_text(
        f"ServerRoot {CHECK_DIR}\nServerName localhost\n"
        f"PidFile {CHECK_DIR}/apache2.pid\nErrorLog {CHECK_DIR}/error.log\n"
        f"{modules}Listen 127.0.0.1:8999\n"
        'LogFormat "%h %l %u %t \\"%r\\" %>s %O" combined\n'
        f"Include {CHECK_DIR}/site.conf\n"
    )
    command = ["env", f"APACHE_LOG_DIR={CHECK_DIR}", "apache2", "-t", "-f", f"{CHECK_DIR}/apache2.conf"]
    files = certificates_as_on_the_server(site, workdir)
    result = in_checkers_image(command, workdir, codename, app_user, files=files)
    complaints = [line for line in result.stderr.splitlines() if line.strip() != "Syntax OK"]
    return "" if result.returncode == 0 and not complaints else result.stderr


def uwsgi_test(ini: RenderedFile, workdir: Path, codename: str) -> str:
    """uWSGI reads the file in strict mode (unknown options are errors), then exits."""
    (workdir / "uwsgi.ini").write_text(ini.content)
    command = ["uwsgi", "--strict", "--ini", f"{CHECK_DIR}/uwsgi.ini", "--get", "socket"]
    result = in_checkers_image(command, workdir, codename)
    return "" if result.returncode == 0 else result.stdout + result.stderr


# Prints what supervisord made of its configuration: its socket's mode and owner, and
# each program's settings.
_SUPERVISOR_READER = """
import json, sys
from supervisor.options import ServerOptions
options = ServerOptions()
options.realize(args=["-c", sys.argv[1]])
print(json.dumps({
    "socket": [[oct(s["chmod"]), s["chown"]] for s in options.server_configs],
    "programs": {p.name: {"command": p.command, "user": p.uid, "stopsignal": int(p.stopsignal),
                          "umask": p.umask,
                          "autorestart": str(p.autorestart), "killasgroup": p.killasgroup,
                          "stopasgroup": p.stopasgroup, "stdout_logfile": p.stdout_logfile}
                 for g in options.process_group_configs for p in g.process_configs},
}))
"""


def supervisor_read(
    files: list[RenderedFile], workdir: Path, app_user: str, log_dir: str, codename: str
) -> tuple[str, dict]:
    """(complaints, what supervisord read): Debian's supervisord.conf of the release,
    which the generated conf.d files amend, read by Debian's supervisor."""
    conf_d = workdir / "conf.d"
    conf_d.mkdir(exist_ok=True)
    placed = {}
    for file in files:
        (conf_d / Path(file.path).name).write_text(file.content)
        placed[file.path] = conf_d / Path(file.path).name
    command = ["python3", "-c", _SUPERVISOR_READER, "/etc/supervisor/supervisord.conf"]
    result = in_checkers_image(command, workdir, codename, app_user, dirs=(log_dir,), files=placed)
    if result.returncode != 0:
        return result.stdout + result.stderr, {}
    return "", json.loads(result.stdout)


def python_compile(source: RenderedFile, workdir: Path, codename: str) -> str:
    """The release's Python compiles the file (Debian 12: Python 3.11, Debian 13: 3.13)."""
    name = Path(source.path).name
    (workdir / name).write_text(source.content)
    result = in_checkers_image(["python3", "-m", "py_compile", name], workdir, codename)
    return "" if result.returncode == 0 else result.stdout + result.stderr


# Prints how sh (after `set -a; . env`, against an empty environment), python-dotenv and
# shlex (the .wsgi entry file's reader) read an env file.
_ENV_READER = """
import json, shlex, subprocess, sys
from dotenv import dotenv_values
path = sys.argv[1]
dump = subprocess.run(["env", "-i", "sh", "-c", 'set -a && . "$1" && exec env -0', "sh", path],
                      capture_output=True, text=True)
if dump.returncode != 0:
    sys.exit(dump.stderr or "sh failed")
by_sh = dict(item.split("=", 1) for item in dump.stdout.split("\\0") if item)
for inherited in ("PWD", "SHLVL", "_"):
    by_sh.pop(inherited, None)
with open(path) as file:
    text = file.read()
print(json.dumps({
    "sh": by_sh,
    "python-dotenv": dict(dotenv_values(path, interpolate=True)),
    "shlex": dict(word.partition("=")[::2] for line in text.splitlines()
                  for word in shlex.split(line, comments=True)),
}))
"""


def env_file_check(env: RenderedFile, workdir: Path, codename: str) -> str:
    """The env file reads the same to sh (supervisor's wrapper, the deploy script),
    python-dotenv (apps, pipenv) and the .wsgi entry file's shlex: every name, every value."""
    (workdir / "env").write_text(env.content)
    result = in_checkers_image(["python3", "-c", _ENV_READER, f"{CHECK_DIR}/env"], workdir, codename)
    if result.returncode != 0:
        return result.stdout + result.stderr
    read = json.loads(result.stdout)
    if read["sh"] == read["python-dotenv"] == read["shlex"]:
        return ""
    return ", ".join(f"{reader} read {values}" for reader, values in read.items())


_EXPOSURE = re.compile(r"^→ Overall exposure level for (\S+): (\d+(?:\.\d+)?)", re.MULTILINE)


def systemd_security(units: list[RenderedFile], workdir: Path, codename: str) -> tuple[str, dict[str, float]]:
    """(complaints, exposure of each unit): the release's `systemd-analyze security`
    scoring the unit files themselves (--offline: no running systemd needed), 0.0 for a
    fully sandboxed service up to 10.0 for none at all."""
    names = []
    for unit in units:
        name = Path(unit.path).name
        (workdir / name).write_text(unit.content)
        names.append(name)
    command = ["systemd-analyze", "security", "--offline=true", "--no-pager", *names]
    result = in_checkers_image(command, workdir, codename)
    scores = {name: float(score) for name, score in _EXPOSURE.findall(result.stdout)}
    if result.returncode != 0 or set(scores) != set(names):
        return result.stdout + result.stderr, scores
    return "", scores
