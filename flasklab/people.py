"""Who each student of a roster is: names, emails and the LMS's own identifiers.

A roster (flasklab/roster.py) holds only student ids: they become parts of resource names,
tags and host names. The people behind them live in a file of their own beside the roster,
`rosters/NAME.people.csv`, which .gitignore keeps out of the repository: a school must
guard students' personal data, and a repository is copied, shared and kept for ever.
Handouts and grade exports read it; the Pulumi program never does.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

PEOPLE_SUFFIX = ".people.csv"


@dataclass(frozen=True)
class Person:
    """One student as their LMS knows them; '' where the export did not say."""

    student: str  # the roster's id
    name: str
    email: str = ""
    username: str = ""  # the LMS login (Moodle's username, Canvas's SIS Login ID)
    lms_id: str = ""  # the LMS's own number (Moodle's ID number, Canvas's ID / SIS User ID)


PEOPLE_COLUMNS = tuple(field.name for field in fields(Person))


def people_path(roster: Path) -> Path:
    """rosters/class-a.csv -> rosters/class-a.people.csv"""
    return roster.with_name(roster.name.removesuffix(".csv") + PEOPLE_SUFFIX)


def write_people(path: Path, people: list[Person]) -> None:
    # Only the teacher's account may read it, as with the class's private keys.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(PEOPLE_COLUMNS)
        writer.writerows(astuple(person) for person in people)


def read_people(path: Path) -> dict[str, Person]:
    """Student id -> Person, from a file write_people wrote."""
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return {
        row["student"]: Person(**{column: row.get(column) or "" for column in PEOPLE_COLUMNS}) for row in rows
    }
