"""`class rebuild --stack S [STUDENT ...] [--all] [--run]`: make servers anew, on purpose.

The one way a student's server is replaced in a term (nothing else replaces one: see
flasklab.build). It is `pulumi up --replace` with the URN of each chosen student's
instance, run with FLASKLAB_REBUILD naming them, for which the program lets these
instances take what the stack says now (user-data, image, key) instead of what they were
built with. Their old disks are snapshotted before the old instances go (`class
snapshots` lists them), and the wait until each new server serves runs again. Printed by
default; `--run` runs it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys

import yaml

from flasklab import plan
from flasklab.build import ALL, REBUILD_ENV
from flasklab.settings import PROJECT_DIR, PROJECT_FILE, ConfigError, Settings
from flasklab.stacks import load_stack_servers

# The instance's type, under its parent component (components/student_server.py).
INSTANCE_TYPE_PATH = "flasklab:index:StudentServer$aws:ec2/instance:Instance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="the stack, as in stacks/Pulumi.NAME.yaml")
    parser.add_argument(
        "students", nargs="*", help="the students whose servers are made anew (none for a one-student stack)"
    )
    parser.add_argument("--all", action="store_true", help="every server of the stack")
    parser.add_argument("--run", action="store_true", help="run the command instead of printing it")


def instance_urn(settings: Settings) -> str:
    project = yaml.safe_load(PROJECT_FILE.read_text())["name"]
    name = f"{plan.resource_name(settings)}-instance"
    return f"urn:pulumi:{settings.stack}::{project}::{INSTANCE_TYPE_PATH}::{name}"


def chosen(stack: str, students: list[str], every: bool) -> list[Settings]:
    """The servers to make anew; a ConfigError naming the stack's students if one is not."""
    servers = load_stack_servers(stack)
    by_student = {settings.student: settings for settings in servers}
    if every or "" in by_student:
        if students and "" in by_student:
            raise ConfigError([f"stack {stack} has one server: name no student."], stack)
        return servers
    known = f"Its students: {_names(servers)}."
    if not students:
        raise ConfigError([f"name the students to rebuild, or --all. {known}"], stack)
    if unknown := [name for name in students if name not in by_student]:
        raise ConfigError([f"{', '.join(unknown)} is not a student of stack {stack}. {known}"], stack)
    return [by_student[name] for name in dict.fromkeys(students)]


def _names(servers: list[Settings]) -> str:
    return ", ".join(settings.student for settings in servers)


def rebuild_env(servers: list[Settings], every: bool) -> str:
    return ALL if every else ",".join(settings.student or settings.stack for settings in servers)


def rebuild_command(stack: str, servers: list[Settings]) -> list[str]:
    replaces = [arg for settings in servers for arg in ("--replace", instance_urn(settings))]
    return ["pulumi", "up", "--stack", stack, *replaces]


def run(args: argparse.Namespace) -> int:
    try:
        servers = chosen(args.stack, args.students, args.all)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    command, env = rebuild_command(args.stack, servers), rebuild_env(servers, args.all)
    if not args.run:
        print(f"{REBUILD_ENV}={shlex.quote(env)} {shlex.join(command)}")
        print(
            f"# Windows PowerShell: $env:{REBUILD_ENV}='{env}'; {shlex.join(command)}; "
            f"Remove-Item Env:{REBUILD_ENV}",
            file=sys.stderr,
        )
        return 0
    if shutil.which("pulumi") is None:
        print(
            f"the Pulumi CLI is not installed here; run this where it is:\n"
            f"  {REBUILD_ENV}={shlex.quote(env)} {shlex.join(command)}",
            file=sys.stderr,
        )
        return 2
    environment = {**os.environ, REBUILD_ENV: env}
    return subprocess.run(command, cwd=PROJECT_DIR, env=environment, check=False).returncode
