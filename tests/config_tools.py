"""Run each generated config through the tool that reads it on the server:
nginx -t, apache2 -t, uwsgi --strict, supervisord's own parser, systemd-analyze verify,
sh -n and shellcheck, Python's compiler, cloud-init schema.
Each returns the tool's complaints; an empty string means the file passed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from flasklab.render import RenderedFile

NGINX_INCLUDES = ("proxy_params", "mime.types", "uwsgi_params")
# The checkers recipes may name (flasklab.recipes.ServerFile.checker), each run below.
CHECKERS = {"nginx", "apache", "systemd", "supervisor", "uwsgi", "sh", "python", "env"}


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def cloud_init_schema(user_data: str, workdir: Path) -> str:
    path = workdir / "user-data"
    path.write_text(user_data)
    result = _run(["cloud-init", "schema", "--config-file", str(path)])
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


def nginx_test(site: RenderedFile, workdir: Path, app_user: str) -> str:
    """nginx -t on a minimal nginx.conf that includes the site, as Debian's does."""
    for name in NGINX_INCLUDES:
        shutil.copy(Path("/etc/nginx") / name, workdir / name)
    (workdir / "site.conf").write_text(site.content)
    (workdir / "nginx.conf").write_text(
        f"pid {workdir}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    include mime.types;\n    include {workdir}/site.conf;\n}}\n"
    )
    command = ["nginx", "-t", "-q", "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
    files = certificates_as_on_the_server(site, workdir)
    result = _run(as_on_the_server(command, workdir, app_user, files=files) if files else command)
    return "" if result.returncode == 0 and not result.stderr else result.stderr


def systemd_verify(units: list[RenderedFile], workdir: Path) -> str:
    """systemd-analyze verify in a scratch root holding the units, systemd's own units and
    stand-ins for the programs they start (verify checks that those are executable)."""
    root = workdir / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
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
    result = _run(["systemd-analyze", "verify", f"--root={root}", *names])
    # verify exits 0 on settings it ignores: any complaint counts.
    return "" if result.returncode == 0 and not result.stderr.strip() else result.stderr


def shell_check(script: RenderedFile, workdir: Path) -> str:
    path = workdir / Path(script.path).name
    path.write_text(script.content)
    problems = ""
    for command in (["sh", "-n", str(path)], ["shellcheck", "--shell=sh", str(path)]):
        result = _run(command)
        if result.returncode != 0:
            problems += result.stdout + result.stderr
    return problems


def as_on_the_server(
    command: list[str],
    workdir: Path,
    app_user: str,
    dirs: tuple[str, ...] = (),
    files: dict[str, Path] | None = None,
) -> list[str]:
    """`command` in a private mount namespace where the app's user and the group supervisor
    exist, and `dirs` and `files` (server path -> file here) exist, as on the server: Apache
    and supervisord look them up while reading their configs, the web servers load
    certificates. This machine's own /etc/passwd and folders stay untouched."""
    files = files or {}
    assert all(path.startswith("/etc/") for path in files), files
    for name in ("passwd", "group"):
        original = Path("/etc", name).read_text()
        extra = (
            f"{app_user}:x:990:990::/var/www/{app_user}:/usr/sbin/nologin\n"
            if name == "passwd"
            else f"{app_user}:x:990:\nsupervisor:x:991:\n"
        )
        (workdir / name).write_text(original + extra)
    mounts = []
    if files:
        # A writable layer over /etc, seen by this namespace only.
        for layer in ("etc-upper", "etc-work"):
            (workdir / layer).mkdir()
        mounts.append(
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={workdir}/etc-upper,"
            f"workdir={workdir}/etc-work /etc"
        )
        mounts += [f"mkdir -p {Path(path).parent} && cp {source} {path}" for path, source in files.items()]
    mounts += [f"mount --bind {workdir}/passwd /etc/passwd", f"mount --bind {workdir}/group /etc/group"]
    for parent in sorted({str(Path(folder).parent) for folder in dirs}):
        mounts.append(f"mount -t tmpfs tmpfs {parent}")
    mounts += [f"mkdir -p {folder}" for folder in dirs]
    script = " && ".join(mounts) + ' && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


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


def apache_test(site: RenderedFile, workdir: Path, app_user: str) -> str:
    """apache2 -t on a minimal apache2.conf that loads Debian's modules and the site."""
    (workdir / "site.conf").write_text(site.content)
    modules = "".join(
        f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so\n" for name in APACHE_MODULES
    )
    (workdir / "apache2.conf").write_text(
        f"ServerRoot {workdir}\nServerName localhost\n"
        f"PidFile {workdir}/apache2.pid\nErrorLog {workdir}/error.log\n"
        f"{modules}Listen 127.0.0.1:8999\n"
        'LogFormat "%h %l %u %t \\"%r\\" %>s %O" combined\n'
        f"Include {workdir}/site.conf\n"
    )
    command = ["env", f"APACHE_LOG_DIR={workdir}", "apache2", "-t", "-f", str(workdir / "apache2.conf")]
    files = certificates_as_on_the_server(site, workdir)
    result = _run(as_on_the_server(command, workdir, app_user, files=files))
    complaints = [line for line in result.stderr.splitlines() if line.strip() != "Syntax OK"]
    return "" if result.returncode == 0 and not complaints else result.stderr


def uwsgi_test(ini: RenderedFile, workdir: Path) -> str:
    """uWSGI reads the file in strict mode (unknown options are errors), then exits."""
    path = workdir / "uwsgi.ini"
    path.write_text(ini.content)
    result = _run(["uwsgi", "--strict", "--ini", str(path), "--get", "socket"])
    return "" if result.returncode == 0 else result.stdout + result.stderr


# Debian's /etc/supervisor/supervisord.conf (supervisor 4.2), which the generated files amend.
SUPERVISORD_CONF = """\
[unix_http_server]
file=/var/run/supervisor.sock
chmod=0700

[supervisord]
logfile=/var/log/supervisor/supervisord.log
pidfile=/var/run/supervisord.pid
childlogdir=/var/log/supervisor

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///var/run/supervisor.sock

[include]
files = {conf_d}/*.conf
"""

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
                          "autorestart": str(p.autorestart), "killasgroup": p.killasgroup,
                          "stopasgroup": p.stopasgroup, "stdout_logfile": p.stdout_logfile}
                 for g in options.process_group_configs for p in g.process_configs},
}))
"""


def supervisor_read(
    files: list[RenderedFile], workdir: Path, app_user: str, log_dir: str
) -> tuple[str, dict]:
    """(complaints, what supervisord read) for the generated conf.d files."""
    import json

    conf_d = workdir / "conf.d"
    conf_d.mkdir(exist_ok=True)
    for file in files:
        (conf_d / Path(file.path).name).write_text(file.content)
    (workdir / "supervisord.conf").write_text(SUPERVISORD_CONF.format(conf_d=conf_d))
    command = [sys.executable, "-c", _SUPERVISOR_READER, str(workdir / "supervisord.conf")]
    result = _run(as_on_the_server(command, workdir, app_user, dirs=(log_dir, "/var/log/supervisor")))
    if result.returncode != 0:
        return result.stdout + result.stderr, {}
    return "", json.loads(result.stdout)


def python_compile(source: RenderedFile, workdir: Path) -> str:
    path = workdir / Path(source.path).name
    path.write_text(source.content)
    result = _run([sys.executable, "-m", "py_compile", str(path)])
    return "" if result.returncode == 0 else result.stderr


def env_file_check(env: RenderedFile, workdir: Path) -> str:
    """The env file reads the same to sh (supervisor's wrapper, the deploy script),
    python-dotenv (apps, pipenv) and the .wsgi entry file's shlex: every name, every value."""
    import shlex

    from dotenv import dotenv_values

    path = workdir / "env"
    path.write_text(env.content)
    # What sh exports after `set -a; . env`, against an empty environment.
    dump = _run(["env", "-i", "sh", "-c", f'set -a && . "{path}" && exec env -0'])
    if dump.returncode != 0:
        return dump.stderr
    by_sh = dict(item.split("=", 1) for item in dump.stdout.split("\0") if item)
    for inherited in ("PWD", "SHLVL", "_"):
        by_sh.pop(inherited, None)
    by_dotenv = dict(dotenv_values(path, interpolate=True))
    by_shlex = dict(
        word.partition("=")[::2]
        for line in env.content.splitlines()
        for word in shlex.split(line, comments=True)
    )
    if by_sh == by_dotenv == by_shlex:
        return ""
    return f"sh read {by_sh}, python-dotenv read {by_dotenv}, shlex read {by_shlex}"
