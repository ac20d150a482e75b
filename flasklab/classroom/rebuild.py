"""`class rebuild --stack S STUDENT`: replace one student's server, leaving the class alone.

It is `pulumi up --replace` with the URN of that student's instance: the instance is
made anew from the same user-data, and the wait until it serves runs again (it is
triggered by the instance). Printed by default; `--run` runs it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys

import yaml

from flasklab import plan
from flasklab.settings import PROJECT_DIR, PROJECT_FILE, ConfigError, Settings
from flasklab.stacks import load_stack

# The instance's type, under its parent component (components/student_server.py).
INSTANCE_TYPE_PATH = "flasklab:index:StudentServer$aws:ec2/instance:Instance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="the class stack, as in stacks/Pulumi.NAME.yaml")
    parser.add_argument("student", help="the student whose server is made anew (a name on the roster)")
    parser.add_argument("--run", action="store_true", help="run the command instead of printing it")


def instance_urn(settings: Settings) -> str:
    project = yaml.safe_load(PROJECT_FILE.read_text())["name"]
    name = f"{plan.resource_name(settings)}-instance"
    return f"urn:pulumi:{settings.stack}::{project}::{INSTANCE_TYPE_PATH}::{name}"


def rebuild_command(settings: Settings) -> list[str]:
    return ["pulumi", "up", "--stack", settings.stack, "--replace", instance_urn(settings)]


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_stack(args.stack, student=args.student)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    command = rebuild_command(settings)
    if not args.run:
        print(shlex.join(command))
        return 0
    if shutil.which("pulumi") is None:
        print(
            f"the Pulumi CLI is not installed here; run this where it is:\n  {shlex.join(command)}",
            file=sys.stderr,
        )
        return 2
    return subprocess.run(command, cwd=PROJECT_DIR, check=False).returncode
