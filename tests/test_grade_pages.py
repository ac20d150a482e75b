"""`class grade`'s pages in a real browser (headless chromium): each student's page shows
every checkpoint with its points, verdict, evidence and (failed) hint in the class's
language, holds nothing of another student, and shows a server's hostile evidence as text;
the index links every student; no run writes over another's pages."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flasklab.classroom import grade_pages
from flasklab.classroom.grade import Grade, _mark
from flasklab.rubric import rubric
from flasklab.rubric_texts import LANGUAGES
from flasklab.stacks import load_stack
from tests.browser import in_chromium

# What a student controls on their server ends up in the evidence: it must stay text.
HOSTILE = (
    '<img src=x onerror="document.body.dataset.pwned=1">'
    "<script>document.body.dataset.pwned=2</script></pre><b id=injected>x</b>"
)


class Dom(HTMLParser):
    """The elements of a DOM that chromium dumped, with their attributes and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def dom_of(page: Path) -> Dom:
    dom = Dom()
    dom.feed(in_chromium(page, "--dump-dom", "--virtual-time-budget=2000").stdout)
    return dom


def grade_of(student: str, language: str, failing: set[str], evidence: str) -> Grade:
    settings = load_stack("dev", {"language": language, "database": "postgresql"})
    marks = tuple(
        _mark(
            settings,
            checkpoint,
            checkpoint.key not in failing,
            f"$ check {checkpoint.key} of {student}\n{evidence}",
        )
        for checkpoint in rubric(settings, reboot=True)
    )
    return Grade(student, f"192.0.2.{len(student)}", marks, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_students_page_shows_every_checkpoint_and_nothing_of_another_student(tmp_path, language):
    ana = grade_of("ana", language, {"static_files", "debug_off"}, HOSTILE)
    zeb = grade_of("zeb2", language, set(), "zeb2-only-evidence")
    grades_csv = tmp_path / "grades-20261206T050000Z.csv"
    index = grade_pages.write_pages("class-demo", [ana, zeb], grades_csv, "2026-12-06 05:00 UTC", language)
    labels = grade_pages.labels(language)

    dom = dom_of(index.parent / "ana.html")
    sections = {attrs["data-key"]: attrs for tag, attrs in dom.elements if tag == "section"}
    assert set(sections) == {mark.key for mark in ana.marks}  # every checkpoint, survives_reboot too
    assert {key for key, attrs in sections.items() if attrs["data-passed"] == "false"} == {
        "static_files",
        "debug_off",
    }
    text = "".join(dom.text)
    for mark in ana.marks:
        assert mark.title in text
        assert (mark.hint in text) is (not mark.passed)  # hints only where it failed
    assert f"{ana.score} / {ana.total}" in text and labels["failed"] in text and labels["passed"] in text
    assert "$ check packages of ana" in text
    # The server's text is shown as it is, and none of it became an element or ran.
    assert HOSTILE in text
    assert not [tag for tag, attrs in dom.elements if tag in ("img", "script", "b")]
    assert all("data-pwned" not in attrs for _, attrs in dom.elements)
    assert "zeb2" not in text and "192.0.2.3" not in text.replace(ana.address, "")

    zeb_text = "".join(dom_of(index.parent / "zeb2.html").text)
    assert "zeb2-only-evidence" in zeb_text and "of ana" not in zeb_text and "pwned" not in zeb_text

    index_dom = dom_of(index)
    links = [attrs["href"] for tag, attrs in index_dom.elements if tag == "a"]
    assert links == ["ana.html", "zeb2.html"]
    index_text = "".join(index_dom.text)
    assert "debug_off, static_files" in index_text or "static_files, debug_off" in index_text
    assert f"{zeb.score} / {zeb.total}" in index_text and labels["index_title"] in index_text


def test_every_language_has_every_label_of_the_pages():
    every = json.loads(grade_pages.LABELS_FILE.read_text(encoding="utf-8"))
    assert sorted(every) == sorted(LANGUAGES)
    for language in LANGUAGES:
        assert sorted(every[language]) == sorted(every["en"]), language
        assert all(value.strip() for value in every[language].values()), language
    assert grade_pages.labels("es")["failed"] != grade_pages.labels("en")["failed"]


def test_a_run_never_writes_into_another_runs_pages(tmp_path):
    ana = grade_of("ana", "en", set(), "first")
    grade_pages.write_pages("dev", [ana], tmp_path / "grades-20261206T050000Z.csv", "first run")
    with pytest.raises(FileExistsError):
        grade_pages.write_pages("dev", [ana], tmp_path / "grades-20261206T050000Z.csv", "second run")
    second = grade_pages.write_pages("dev", [ana], tmp_path / "grades-20261206T050000Z-2.csv", "second run")
    assert second.parent.name == "pages-20261206T050000Z-2"
    assert "first run" in (tmp_path / "pages-20261206T050000Z" / "index.html").read_text()


def test_a_student_id_never_leaves_the_runs_folder():
    assert grade_pages.page_name("../../etc/passwd") == ".._.._etc_passwd.html"
    assert "/" not in grade_pages.page_name("a/b")


def test_the_page_forbids_scripts_even_if_markup_got_through():
    page = grade_pages.render_student_page(grade_of("ana", "en", set(), HOSTILE), "now")
    assert "default-src 'none'" in page
    assert "<img" not in page and "&lt;img" in page


def test_a_broken_servers_fault_is_on_the_teachers_index_and_csv_never_on_the_students_page(tmp_path):
    """Stage broken: class grade says which fault each server was given where the teacher
    reads (the index, the run's CSV), never on the page the student gets."""
    from flasklab.classroom import grade as grading
    from flasklab.classroom.check_server import Server
    from flasklab.classroom.grade_export import write_grades_csv

    settings = load_stack("dev", {"stage": "broken", "fault": "app-owner"})
    server = Server("ana", settings, "192.0.2.7", settings.server_names)
    nothing = lambda *_: []  # noqa: E731 (the marks themselves are not what this test is about)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grading, "server_marks", nothing)
        patch.setattr(grading, "outside_marks", nothing)
        graded = grading.grade_server(server, timeout=5, ssh=None)  # type: ignore[arg-type]
    assert graded.fault == "app-owner"
    unbroken = grade_of("ben", "en", set(), "fine")
    grades_csv = tmp_path / "grades-20261206T060000Z.csv"
    index = grade_pages.write_pages("dev", [graded, unbroken], grades_csv, "2026-12-06 06:00 UTC", "en")
    cells = [attrs for tag, attrs in dom_of(index).elements if tag == "td" and attrs.get("class") == "fault"]
    assert len(cells) == 2
    assert "app-owner" in index.read_text()
    assert "app-owner" not in (index.parent / "ana.html").read_text()
    write_grades_csv([graded, unbroken], grades_csv)
    totals = [row for row in grades_csv.read_text().splitlines() if ",total," in row]
    assert totals[0].startswith("ana,") and "fault: app-owner" in totals[0]
    assert "fault" not in totals[1]
