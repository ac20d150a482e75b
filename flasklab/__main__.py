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

from flasklab.environment import exit_for_missing_package

try:
    import yaml

    from flasklab.classroom import COMMANDS as CLASS_COMMANDS
    from flasklab.compose import generate_locally
    from flasklab.render import render_user_data
    from flasklab.settings import ConfigError, Settings
    from flasklab.stacks import DEFAULT_STACK, load_stack, stack_names
except ModuleNotFoundError as missing:  # run from a Python without flasklab's packages
    exit_for_missing_package(missing)

RENDER_HELP = "print the user-data a stack's server would get"
RENDER_DESCRIPTION = (
    "Print the #cloud-config user-data a stack's server gets at first boot, with throwaway "
    "secrets (pulumi up generates the real ones). Nothing is created."
)
REHEARSE_HELP = "boot stacks' user-data in local Debian containers and check they serve"
REHEARSE_DESCRIPTION = (
    "Boot the exact user-data of one or more stacks with real cloud-init under real systemd, "
    "each in a local Debian container (systemd-nspawn) with its own network, and probe the "
    "site as pulumi up's wait and class check do. Needs root on a Debian machine with the "
    "packages scripts/setup.sh installs (debootstrap, systemd-container, slirp4netns); "
    "nothing of this machine's services is touched. The container is removed after its "
    "report unless --keep."
)
CLEAN_HELP = "stop and remove rehearsals left running (--keep, or killed)"
CLEAN_DESCRIPTION = (
    "Stop and remove every rehearsal container, network and mount left on this machine by "
    "--keep or by a killed rehearsal. Needs root, as rehearse does."
)
CLASS_HELP = "a whole class: its roster, servers, access sheet and checks"
CLASS_DESCRIPTION = (
    "Manage a whole class: make its roster from an LMS export, see and stop or start its "
    "servers in AWS, write its access sheet, check every server, rebuild one student's."
)


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
        prog="flasklab" if sys.argv[0].endswith("/flasklab") else "python -m flasklab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main_parser.add_subparsers(dest="command", required=True)
    _stack_arguments(_command(commands, "render", RENDER_HELP, RENDER_DESCRIPTION), False)
    rehearse = _command(commands, "rehearse", REHEARSE_HELP, REHEARSE_DESCRIPTION)
    _stack_arguments(rehearse, True)
    rehearse.add_argument("--all", action="store_true", help="every stack in stacks/")
    rehearse.add_argument(
        "--jobs", type=int, default=0, help="rehearsals at once (default: what suits this machine)"
    )
    rehearse.add_argument(
        "--keep", action="store_true", help="leave the containers running and say how to enter and stop them"
    )
    _command(commands, "clean", CLEAN_HELP, CLEAN_DESCRIPTION)
    _class_commands(_command(commands, "class", CLASS_HELP, CLASS_DESCRIPTION))
    return main_parser


def _command(commands: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does, not only its options."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=description)
    return command


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
    try:
        return _run(argv)
    except ModuleNotFoundError as missing:  # a command's own imports (boto3, rich, ...)
        exit_for_missing_package(missing)


def _run(argv: list[str] | None) -> int:
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
