"""Run each generated config through the tool that reads it on the server:
nginx -t, systemd-analyze verify, sh -n and shellcheck, cloud-init schema.
Each returns the tool's complaints; an empty string means the file passed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from flasklab.render import RenderedFile

NGINX_INCLUDES = ("proxy_params", "mime.types", "uwsgi_params")


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def cloud_init_schema(user_data: str, workdir: Path) -> str:
    path = workdir / "user-data"
    path.write_text(user_data)
    result = _run(["cloud-init", "schema", "--config-file", str(path)])
    return "" if result.returncode == 0 else result.stdout + result.stderr


def nginx_test(site: RenderedFile, workdir: Path) -> str:
    """nginx -t on a minimal nginx.conf that includes the site, as Debian's does."""
    for name in NGINX_INCLUDES:
        shutil.copy(Path("/etc/nginx") / name, workdir / name)
    (workdir / "site.conf").write_text(site.content)
    (workdir / "nginx.conf").write_text(
        f"pid {workdir}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n    include mime.types;\n    include {workdir}/site.conf;\n}}\n"
    )
    result = _run(["nginx", "-t", "-q", "-p", str(workdir), "-c", str(workdir / "nginx.conf")])
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
