"""Command line: python -m flasklab render|rehearse|clean|class

render   --stack NAME                  the user-data a stack's server gets
rehearse [--stack NAME ...] [--all]    boot stacks in local containers, side by side
clean                                  stop and remove rehearsals left running
class    COMMAND ...                   a whole class (python -m flasklab class --help)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

import yaml

from flasklab.app_secrets import generate_locally
from flasklab.classroom import COMMANDS as CLASS_COMMANDS
from flasklab.render import render_user_data
from flasklab.settings import ConfigError, Settings
from flasklab.stacks import DEFAULT_STACK, load_stack, stack_names


def setting_override(text: str) -> tuple[str, Any]:
    """KEY=VALUE. Lists and maps are read as YAML, like a stack file ([a, b], {A: b}); any
    other value is the text as written (1.10 stays 1.10, on stays on)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{key!r}: write KEY=VALUE, e.g. debianRelease=12")
    if value.strip().startswith(("[", "{")):
        try:
            return key, yaml.safe_load(value)
        except yaml.YAMLError:
            pass  # then it is text, and the settings' checks say what is wrong with it
    return key, value


def _stack_arguments(command: argparse.ArgumentParser, several: bool) -> None:
    command.add_argument(
        "--stack",
        dest="stacks",
        action="append" if several else "store",
        help=f"stack name, as in stacks/Pulumi.NAME.yaml (default: {DEFAULT_STACK}; "
        f"here: {', '.join(stack_names())})" + ("; repeat it to rehearse several at once" if several else ""),
    )
    command.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        type=setting_override,
        action="append",
        default=[],
        help="override one setting of the stack(s) for this run (repeatable)",
    )
    command.add_argument(
        "--student", help="of a class stack (a roster), this student's server (default: the roster's first)"
    )


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="python -m flasklab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = main_parser.add_subparsers(dest="command", required=True)
    _stack_arguments(
        commands.add_parser("render", help="print the user-data a stack's server would get"), False
    )
    rehearse = commands.add_parser(
        "rehearse", help="boot stacks' user-data in local Debian containers and check they serve"
    )
    _stack_arguments(rehearse, True)
    rehearse.add_argument("--all", action="store_true", help="every stack in stacks/")
    rehearse.add_argument(
        "--jobs", type=int, default=0, help="rehearsals at once (default: what suits this machine)"
    )
    rehearse.add_argument(
        "--keep", action="store_true", help="leave the containers running and say how to enter and stop them"
    )
    commands.add_parser("clean", help="stop and remove rehearsals left running (--keep, or killed)")
    _class_commands(commands.add_parser("class", help="a whole class: its servers, access sheet and checks"))
    return main_parser


def _class_commands(class_parser: argparse.ArgumentParser) -> None:
    commands = class_parser.add_subparsers(dest="class_command", metavar="COMMAND", required=True)
    for name, (module, help_text) in CLASS_COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(class_module=module)
        importlib.import_module(f"flasklab.classroom.{module}").add_arguments(command)


def _load(
    names: list[str], overrides: dict[str, Any], student: str | None
) -> tuple[list[Settings], list[str]]:
    """Every named stack's settings, and every problem of every stack at once."""
    loaded, problems = [], []
    for name in names:
        try:
            loaded.append(load_stack(name, overrides, student))
        except ConfigError as error:
            problems.append(str(error))
    return loaded, problems


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "class":
        status: int = importlib.import_module(f"flasklab.classroom.{args.class_module}").run(args)
        return status
    if args.command == "clean":
        from flasklab.rehearsal.cli import clean

        return clean()
    if args.command == "render":
        names = [args.stacks or DEFAULT_STACK]
    else:
        names = stack_names() if args.all else (args.stacks or [DEFAULT_STACK])
    stacks, problems = _load(names, dict(args.overrides), args.student)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    if args.command == "render":
        # Throwaway secrets: `pulumi up` generates the real ones and keeps them in its state.
        sys.stdout.write(render_user_data(stacks[0], generate_locally(stacks[0])))
        return 0
    from flasklab.rehearsal.cli import rehearse

    return rehearse(stacks, keep=args.keep, jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
