"""What `class grade` measured: a Mark per checkpoint, a Grade per server; plain data that
grade.py makes and grade_pages.py and grade_export.py write."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mark:
    """One checkpoint of one server: passed or not, what showed it, and the hint."""

    key: str
    title: str
    points: int
    passed: bool
    evidence: str
    hint: str


@dataclass(frozen=True)
class Grade:
    student: str
    address: str
    marks: tuple[Mark, ...]
    language: str = "en"  # the class's, for the student's page
    # Stage broken: the fault the server was given, for the teacher's index and CSV only
    # (never the student's page: finding it is the exercise).
    fault: str = ""

    @property
    def score(self) -> int:
        return sum(mark.points for mark in self.marks if mark.passed)

    @property
    def total(self) -> int:
        return sum(mark.points for mark in self.marks)

    @property
    def percent(self) -> float:
        return round(100 * self.score / self.total, 2) if self.total else 0.0

    def failing(self) -> list[Mark]:
        return [mark for mark in self.marks if not mark.passed]
