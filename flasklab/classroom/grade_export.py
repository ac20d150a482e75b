"""`class grade`'s files: the run's CSV (a row per student and checkpoint) and Moodle's grade
import CSV.

Moodle's import (Grades > Import > CSV file) matches each row to a user by one column the
teacher maps to a user field: Username, Email address or ID number. flasklab's student ids
are made for host names (josé.garcía@school.es -> jose-garcia) and are none of those, so
the identifier comes from the roster's people file (flasklab/people.py, written by `class
roster import` from the LMS's own export), in a column of its own beside flasklab's id.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flasklab.people import Person

if TYPE_CHECKING:
    from flasklab.classroom.grade_results import Grade

STUDENT_COLUMN, GRADE_COLUMN = "flasklab_student", "grade"
# Person field -> (the CSV's column, Moodle's user field to map it to), best first: every
# Moodle export has the email; usernames and ID numbers only where the teacher showed them.
MOODLE_FIELDS = {
    "email": ("email", "Email address"),
    "username": ("username", "Username"),
    "lms_id": ("idnumber", "ID number"),
}


@dataclass(frozen=True)
class Identifier:
    """The column Moodle matches users by: its header, Moodle's field, each student's value."""

    column: str
    moodle_field: str
    values: Mapping[str, str]


def moodle_identifier(students: Sequence[str], people: Mapping[str, Person]) -> Identifier | None:
    """The first of email, username, ID number that the people file has for every graded
    student; None when it has none of them for all (or there is no people file)."""
    for field, (column, moodle_field) in MOODLE_FIELDS.items():
        values = {student: getattr(people[student], field) for student in students if student in people}
        if students and len(values) == len(students) and all(values.values()):
            return Identifier(column, moodle_field, values)
    return None


def write_moodle_csv(grades: Sequence[Grade], path: Path, people: Mapping[str, Person]) -> Identifier | None:
    """flasklab's student id, the Moodle identifier (when the people file has one) and the
    grade in percent, 0-100. Returns the identifier, to tell the teacher what to map."""
    identifier = moodle_identifier([grade.student for grade in grades], people)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([STUDENT_COLUMN, *([identifier.column] if identifier else []), GRADE_COLUMN])
        for grade in grades:
            value = [identifier.values[grade.student]] if identifier else []
            writer.writerow([grade.student, *value, f"{grade.percent:.2f}"])
    return identifier


def moodle_mapping(identifier: Identifier | None) -> str:
    """What the teacher chooses in Moodle's import to match this file's rows to users."""
    if identifier is None:
        return (
            f"Map from {STUDENT_COLUMN} to Username only if the roster's ids are the Moodle usernames: "
            f"the roster has no people file with emails or usernames (`class roster import` writes one)"
        )
    return f"Map from {identifier.column} to {identifier.moodle_field}; {GRADE_COLUMN} to your grade item"


def write_grades_csv(grades: Sequence[Grade], path: Path) -> None:
    """One row per student and checkpoint: what it scored and what showed it."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "address", "checkpoint", "title", "points", "scored", "evidence", "hint"])
        for grade in grades:
            for mark in grade.marks:
                scored = mark.points if mark.passed else 0
                evidence = " ".join(mark.evidence.split())
                writer.writerow(
                    [
                        grade.student,
                        grade.address,
                        mark.key,
                        mark.title,
                        mark.points,
                        scored,
                        evidence,
                        mark.hint,
                    ]
                )
            # Stage broken: the fault given, on the total's row (the teacher's file).
            fault = f"fault: {grade.fault}" if grade.fault else ""
            writer.writerow([grade.student, grade.address, "total", "", grade.total, grade.score, fault, ""])
