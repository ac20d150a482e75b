"""`class faults --stack S [--student NAME ...]`: which fault each student's server at
stage broken got, what the student sees, the checkpoints it fails and the fix, in the
class's language. For the teacher only: read from the stack's settings (the fault is
chosen from the stack and the student, flasklab.faults), never from the servers, which
do not name it. No AWS call."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from flasklab import compose, rubric
from flasklab.settings import ConfigError
from flasklab.stacks import load_stack_servers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="the stack, as in stacks/Pulumi.NAME.yaml")
    parser.add_argument("--student", action="append", default=[], help="only this student (repeatable)")


def run(args: argparse.Namespace) -> int:
    try:
        servers = load_stack_servers(args.stack)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    unknown = sorted(set(args.student) - {s.student or args.stack for s in servers})
    if unknown:
        print(f"flasklab class faults: not on the stack's roster: {', '.join(unknown)}", file=sys.stderr)
        return 2
    table = Table(title=f"class faults of {args.stack}")
    for column in ("student", "fault", "what the student sees", "fails", "the fix"):
        table.add_column(column)
    for settings in servers:
        if args.student and (settings.student or args.stack) not in args.student:
            continue
        fault = compose.fault_of(settings)
        if fault is None:
            table.add_row(settings.student or args.stack, f"- (stage {settings.stage.name})", "", "", "")
            continue
        name, sees, fix = rubric.fault_texts(settings, settings.language)
        keys = {checkpoint.key for checkpoint in rubric.rubric(settings)}
        fails = ", ".join(sorted(fault.failing(settings.recipe.manager, keys)))
        table.add_row(settings.student or args.stack, name, sees, fails, fix)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0
