"""`class roster import FILE`: a roster made from an LMS's export of the class.

`roster` takes sub-commands (`import` now, room for more) rather than being a command named
`roster-import`, so that `flasklab class roster --help` lists what can be done with a
roster and each sub-command's help stands on its own, as `git remote add` does.

Writes two files: the roster (rosters/NAME.csv, a `student` column only: it feeds resource
names, tags and host names) and beside it the people (NAME.people.csv: names, emails, the
LMS's identifiers), which .gitignore keeps out of the repository (flasklab/people.py says
why). The roster is read back with the roster reader before it takes its place, so a file
`pulumi up` would refuse is never written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flasklab.lms_export import ExportError, ImportedStudent, read_export, student_id
from flasklab.people import people_path, write_people
from flasklab.roster import ROSTER_SETTING, STUDENT_COLUMN, read_roster
from flasklab.settings import PROJECT_DIR

ROSTERS_DIR = PROJECT_DIR / "rosters"
DESCRIPTION = (
    "Make a roster from the class list your LMS exports: Moodle's participants, Canvas's gradebook, "
    "Google Classroom's or Teams' grades (CSV with commas, semicolons or tabs; UTF-8 or Excel's "
    "encoding). Student ids come from the username, login, email or given name (josé -> jose, made "
    "unique: ana, ana-2). Writes the roster (ids only) and, beside it, NAME.people.csv with names and "
    "emails, which git ignores."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="roster_command", metavar="ACTION", required=True)
    importing = actions.add_parser(
        "import", help="make a roster from an LMS's export of the class", description=DESCRIPTION
    )
    importing.add_argument("file", type=Path, metavar="FILE", help="the LMS's export (CSV)")
    importing.add_argument(
        "--id-column",
        metavar="COLUMN",
        help="make every student's id from this column (its header as in the file) instead",
    )
    importing.add_argument(
        "--out", type=Path, help="the roster to write (default: rosters/<FILE's name>.csv)"
    )
    importing.add_argument("--force", action="store_true", help="overwrite a roster that exists")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out or ROSTERS_DIR / f"{student_id(args.file.stem) or 'class'}.csv"
    try:
        data = args.file.read_bytes()
    except OSError as error:
        print(f"cannot read {args.file}: {error.strerror}.", file=sys.stderr)
        return 2
    try:
        students, skipped = read_export(data, args.id_column)
    except ExportError as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2
    if out.exists() and not args.force:
        print(f"{out} exists; nothing was written (--force overwrites it, or give --out).", file=sys.stderr)
        return 2
    problems = _write_roster(out, students)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    people = people_path(out)
    write_people(people, [student.person for student in students])
    _print_mapping(students, skipped)
    print(f"wrote {out} ({len(students)} students) and {people} (names and emails; git ignores it).")
    print(f"use it: pulumi config set {ROSTER_SETTING} {_project_path(out)} --stack STACK")
    return 0


def _write_roster(out: Path, students: list[ImportedStudent]) -> list[str]:
    """Writes the roster if the roster reader accepts it; its problems otherwise."""
    text = "".join(f"{line}\n" for line in [STUDENT_COLUMN, *(s.person.student for s in students)])
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=".roster-", suffix=".csv")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    _, problems = read_roster(Path(temporary))
    if problems:
        os.unlink(temporary)
        return problems
    os.chmod(temporary, 0o644)
    os.replace(temporary, out)
    return []


def _print_mapping(students: list[ImportedStudent], skipped: list[str]) -> None:
    table = Table("line", "student", "from", "name", "email", title="roster")
    for student in students:
        person = student.person
        table.add_row(str(student.line), person.student, student.source, person.name, person.email)
    console = Console()
    console.print(table)
    for note in skipped:
        console.print(f"skipped {note}", highlight=False)


def _project_path(path: Path) -> str:
    """The roster setting's value: a path inside the project."""
    try:
        return str(path.resolve().relative_to(PROJECT_DIR.resolve()))
    except ValueError:
        return f"{path} (move it into the project first: pulumi up reads the roster from there)"
