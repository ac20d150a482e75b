"""`class grade`'s pages: one HTML page per student (every checkpoint with its points,
passed or failed, its evidence and, when failed, its hint, in the class's language) and
an index for the teacher, in a folder of the run's own beside its CSV.

The evidence is what a student's server showed (command output, HTTP answers): untrusted
text. The templates are autoescaped and the pages forbid every script
(Content-Security-Policy), so nothing a server says becomes markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import jinja2

from flasklab.rubric_texts import TEXTS_DIR

if TYPE_CHECKING:
    from flasklab.classroom.grade_results import Grade

LABELS_FILE = TEXTS_DIR / "page_labels.json"
INDEX_PAGE = "index.html"
# A roster's student ids are host-name safe already; anything else is kept out of file names.
UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@cache
def labels(language: str) -> dict[str, str]:
    """The pages' own words (not the rubric's) in `language`."""
    every: dict[str, dict[str, str]] = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    return every[language]


def page_name(student: str) -> str:
    return UNSAFE_IN_FILE_NAME.sub("_", student) + ".html"


def render_student_page(grade: Grade, graded_at: str) -> str:
    template = ENVIRONMENT.get_template("grade_page.html.j2")
    return template.render(grade=grade, labels=labels(grade.language), graded_at=graded_at)


def render_index(stack: str, grades: Sequence[Grade], graded_at: str, language: str) -> str:
    rows = [(grade, quote(page_name(grade.student))) for grade in grades]
    template = ENVIRONMENT.get_template("grade_index.html.j2")
    faults = any(grade.fault for grade in grades)
    return template.render(
        stack=stack, rows=rows, labels=labels(language), graded_at=graded_at, faults=faults
    )


def pages_folder(grades_csv: Path) -> Path:
    """grades-20261206T051800Z[-2].csv -> pages-20261206T051800Z[-2]/: the run's own, as
    its CSV is (new_file made that name this run's)."""
    return grades_csv.with_name("pages-" + grades_csv.stem.removeprefix("grades-"))


def write_pages(
    stack: str, grades: Sequence[Grade], grades_csv: Path, graded_at: str, language: str = "en"
) -> Path:
    """Every student's page (each in its grade's language) and the index in the class's
    `language` (even when no server could be graded); returns the index."""
    folder = pages_folder(grades_csv)
    folder.mkdir(parents=True)  # a run never writes into another run's folder
    for grade in grades:
        (folder / page_name(grade.student)).write_text(
            render_student_page(grade, graded_at), encoding="utf-8"
        )
    index = folder / INDEX_PAGE
    index.write_text(render_index(stack, grades, graded_at, language), encoding="utf-8")
    return index
