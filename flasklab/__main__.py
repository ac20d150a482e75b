"""Command line: python -m flasklab render|rehearse --stack NAME"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from flasklab.app_secrets import generate_locally
from flasklab.render import render_user_data
from flasklab.settings import ConfigError
from flasklab.stacks import DEFAULT_STACK, load_stack, stack_names


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: write KEY=VALUE, e.g. debianRelease=12")
    # Values are read as YAML, like a stack file: [a, b] is a list, 3 a number.
    return key, yaml.safe_load(value) if value else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flasklab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("render", "print the user-data a stack's server would get"),
        ("rehearse", "boot a stack's user-data in a local Debian container and check it serves"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--stack",
            default=DEFAULT_STACK,
            help=f"stack name, as in stacks/Pulumi.NAME.yaml (default: {DEFAULT_STACK}; "
            f"here: {', '.join(stack_names())})",
        )
        command.add_argument(
            "--set",
            dest="overrides",
            metavar="KEY=VALUE",
            type=_override,
            action="append",
            default=[],
            help="override one setting of the stack for this run (repeatable)",
        )
        if name == "rehearse":
            command.add_argument(
                "--keep",
                action="store_true",
                help="leave the container running and say how to enter and stop it",
            )
    args = parser.parse_args(argv)
    try:
        settings = load_stack(args.stack, dict(args.overrides))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if args.command == "render":
        # Throwaway secrets: `pulumi up` generates the real ones and keeps them in its state.
        sys.stdout.write(render_user_data(settings, generate_locally(settings)))
        return 0
    from flasklab.rehearsal.cli import rehearse

    return rehearse(settings, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
