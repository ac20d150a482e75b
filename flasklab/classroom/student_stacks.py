"""`class stacks --roster F --from stacks/Pulumi.X.yaml`: one stack file per student.

For classes where each student runs their own stack (AWS Academy gives each student an
account), the teacher keeps one template stack and a roster; this writes
stacks/Pulumi.<prefix>-<student>.yaml for every row, with the template's config made the
student's the way a class stack does it (flasklab.roster.student_config). Every file is
validated first; nothing is written if any student's settings are refused, and an
existing file is kept unless --force.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from flasklab.roster import ROSTER_SETTING, read_roster, student_config
from flasklab.settings import NAMESPACE, ConfigError, load_settings
from flasklab.stacks import STACKS_DIR, stack_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--roster", required=True, type=Path, help="the class's CSV roster")
    parser.add_argument(
        "--from",
        dest="template",
        required=True,
        type=Path,
        help="the template stack file, stacks/Pulumi.X.yaml",
    )
    parser.add_argument("--prefix", help="the stacks' names start with it (default: the template's name)")
    parser.add_argument("--force", action="store_true", help="overwrite stack files that exist")


def template_name(path: Path) -> str:
    if path.parent.resolve() != STACKS_DIR.resolve() or not path.name.startswith("Pulumi."):
        raise ConfigError([f"--from {path}: give a stack file of this project, stacks/Pulumi.NAME.yaml."])
    return path.name[len("Pulumi.") : -len(".yaml")]


def student_stacks(template: str, roster: Path, prefix: str) -> dict[str, dict[str, Any]]:
    """Stack name -> its file's document, for every row; a ConfigError listing every problem."""
    config = stack_config(template)
    if config.get(ROSTER_SETTING):
        raise ConfigError(
            [f"{template} is a class stack (it has a roster); use a stack of one student."], template
        )
    rows, problems = read_roster(roster)
    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{template}.yaml").read_text()) or {}
    others = {
        k: v for k, v in (document.get("config") or {}).items() if str(k).partition(":")[0] != NAMESPACE
    }
    stacks = {}
    for row in rows:
        name = f"{prefix}-{row.student}"
        own = student_config(config, row)
        try:
            load_settings(own, name)
        except ConfigError as error:
            problems += [f"line {row.line} ({row.student}): {problem}" for problem in error.problems]
            continue
        stacks[name] = {"config": {**others, **{f"{NAMESPACE}:{k}": v for k, v in own.items()}}}
    if problems:
        raise ConfigError(problems, template)
    return stacks


def _namespace(key: str) -> str:
    """As Pulumi reads a stack file: a key without a namespace is the project's."""
    namespace, colon, _ = key.partition(":")
    return namespace if colon else NAMESPACE


def run(args: argparse.Namespace) -> int:
    try:
        template = template_name(args.template)
        stacks = student_stacks(template, args.roster, args.prefix or template)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    paths = {name: STACKS_DIR / f"Pulumi.{name}.yaml" for name in stacks}
    existing = [path.name for path in paths.values() if path.exists()]
    if existing and not args.force:
        print(f"these stack files exist; nothing was written (--force overwrites): {', '.join(existing)}")
        return 2
    for name, document in stacks.items():
        header = (
            f"# Written by flasklab from {args.template.name} and {args.roster.name} for student {name}.\n"
        )
        paths[name].write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    print(
        f"wrote {len(stacks)} stack files in {STACKS_DIR.name}/: {', '.join(p.name for p in paths.values())}"
    )
    print("each student then runs: pulumi stack init NAME (the file's NAME), and pulumi up")
    return 0
