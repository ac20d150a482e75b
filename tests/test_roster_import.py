"""`class roster import`: LMS exports, built from each LMS's documented columns, in each
encoding and separator, make a roster the roster reader accepts and a people file git ignores."""

from __future__ import annotations

import codecs
import csv
import io
import subprocess

import pytest

from flasklab.__main__ import main
from flasklab.lms_export import ExportError, read_export, student_id, unique_ids
from flasklab.people import people_path, read_people
from flasklab.roster import read_roster
from flasklab.settings import PROJECT_DIR

# (given name, surname, email): two Anas and an email shared by its local part.
PEOPLE = [
    ("José", "Núñez", "jose.nunez@school.example"),
    ("Ana", "García", "ana@school.example"),
    ("Ana", "Öberg", "ana@other.example"),
    ("Åsa", "Ek", ""),
]
LOGINS = ["jnunez", "", "", ""]


def moodle() -> list[list[str]]:
    """Moodle's user list: Username, First name, Surname, Email address."""
    return [["Username", "First name", "Surname", "Email address"]] + [
        [login, first, last, email] for login, (first, last, email) in zip(LOGINS, PEOPLE, strict=True)
    ]


def canvas() -> list[list[str]]:
    """Canvas's gradebook export: Student is "Surname, Given"; a Points Possible row, a test student."""
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1 (2001)"]
    rows = [header, ["    Points Possible", "", "", "", "", "10.00"]]
    for number, (login, (first, last, _)) in enumerate(zip(LOGINS, PEOPLE, strict=True)):
        rows.append([f"{last}, {first}", str(101 + number), f"S{101 + number}", login, "Web 1", "8"])
    rows.append(["Student, Test", "999", "", "", "Web 1", ""])
    return rows


def google_classroom() -> list[list[str]]:
    """Google Classroom's grades: Last Name, First Name, Email Address, then the assignments."""
    return [["Last Name", "First Name", "Email Address", "Lab 1"]] + [
        [last, first, email, "9"] for first, last, email in PEOPLE
    ]


def teams() -> list[list[str]]:
    """Teams' grades export: First Name, Last Name, Email Address, then per assignment."""
    return [["First Name", "Last Name", "Email Address", "Lab 1", "Points", "Feedback"]] + [
        [first, last, email, "Returned", "9", ""] for first, last, email in PEOPLE
    ]


EXPORTS = {
    "moodle": (moodle, ["jnunez", "ana", "ana-2", "asa"]),
    "canvas": (canvas, ["jnunez", "ana", "ana-2", "asa"]),
    "google-classroom": (google_classroom, ["jose-nunez", "ana", "ana-2", "asa"]),
    "teams": (teams, ["jose-nunez", "ana", "ana-2", "asa"]),
}
ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "excel-cp1252": lambda text: text.replace("\n", "\r\n").encode("cp1252"),
    "utf-16-bom": lambda text: text.encode("utf-16"),
}


def export_bytes(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return ENCODINGS[encoding](text.getvalue())


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize("lms", EXPORTS)
def test_each_lms_export_becomes_a_roster_and_a_people_file(lms, delimiter, encoding, tmp_path, capsys):
    rows, expected = EXPORTS[lms]
    export = tmp_path / "export.csv"
    export.write_bytes(export_bytes(rows(), delimiter, encoding))
    out = tmp_path / "rosters" / "class-a.csv"
    assert main(["class", "roster", "import", str(export), "--out", str(out)]) == 0
    roster_rows, problems = read_roster(out)
    assert problems == []
    assert [row.student for row in roster_rows] == expected
    people = read_people(people_path(out))
    assert [people[student].name for student in expected] == [f"{f} {s}" for f, s, _ in PEOPLE]
    assert [people[student].email for student in expected] == [
        email for *_, email in PEOPLE
    ] or lms == "canvas"
    roster_text = out.read_text()
    assert "@" not in roster_text and "Núñez" not in roster_text and "Garc" not in roster_text
    printed = capsys.readouterr().out
    assert "José Núñez" in printed and "class-a.people.csv" in printed


def test_canvas_keeps_its_ids_for_grades_and_skips_what_is_not_a_student():
    students, skipped = read_export(export_bytes(canvas(), ";", "excel-cp1252"))
    assert [(s.person.student, s.person.lms_id, s.person.username) for s in students] == [
        ("jnunez", "101", "jnunez"),
        ("ana", "102", ""),
        ("ana-2", "103", ""),
        ("asa", "104", ""),
    ]
    assert [student.source for student in students] == ["SIS Login ID", "Student", "Student", "Student"]
    assert len(skipped) == 2
    assert "Points Possible" in skipped[0] and "Student, Test" in skipped[1]


def test_moodle_participants_with_roles_keep_only_students_and_read_other_headers():
    rows = [
        ["First name", "Last name", "ID number", "Email address", "Roles", "Groups"],
        ["Carla", "Vidal", "7", "carla.vidal@school.example", "Student", ""],
        ["Teresa", "Lund", "", "teresa@school.example", "Teacher", ""],
    ]
    students, skipped = read_export(export_bytes(rows))
    assert [(s.person.student, s.person.lms_id) for s in students] == [("carla-vidal", "7")]
    assert skipped == ["line 3: role 'Teacher' is not a student's"]


def test_spanish_and_swedish_headers_are_read():
    spanish = [["Nombre", "Apellido(s)", "Dirección de correo"], ["Íñigo", "Peña", "inigo.pena@ies.example"]]
    swedish = [["Förnamn", "Efternamn", "E-postadress"], ["Björn", "Ørsted", ""]]
    assert read_export(export_bytes(spanish, ";"))[0][0].person.student == "inigo-pena"
    assert read_export(export_bytes(swedish, "\t"))[0][0].person.student == "bjorn"


def test_excels_sep_line_names_the_separator():
    data = b"sep=;\r\n" + export_bytes(teams(), ";", "excel-cp1252")
    students, _ = read_export(data)
    assert [s.person.student for s in students] == ["jose-nunez", "ana", "ana-2", "asa"]


def test_id_column_chooses_where_ids_come_from(tmp_path, capsys):
    export = tmp_path / "grades.csv"
    export.write_bytes(export_bytes(canvas()))
    out = tmp_path / "a.csv"
    assert (
        main(["class", "roster", "import", str(export), "--id-column", "sis user id", "--out", str(out)]) == 0
    )
    assert [row.student for row in read_roster(out)[0]] == ["s101", "s102", "s103", "s104"]
    assert main(["class", "roster", "import", str(export), "--id-column", "Email", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "--id-column 'Email' is not a column of the file; its columns: Student, ID, SIS User ID" in error


def test_id_column_reads_a_file_of_no_known_lms():
    rows = [["Matrícula", "Grupo"], ["2024017", "A"], ["2024018", "A"]]
    with pytest.raises(ExportError, match="names no column of usernames"):
        read_export(export_bytes(rows))
    students, _ = read_export(export_bytes(rows), id_column="matricula")
    assert [(s.person.student, s.source) for s in students] == [
        ("s2024017", "Matrícula"),
        ("s2024018", "Matrícula"),
    ]


def test_an_empty_id_column_cell_is_refused_by_line_and_nothing_is_written(tmp_path, capsys):
    export = tmp_path / "moodle.csv"
    export.write_bytes(export_bytes(moodle()))
    out = tmp_path / "a.csv"
    assert main(["class", "roster", "import", str(export), "--id-column", "Username", "--out", str(out)]) == 2
    assert "line 3: no Username to make the student's id from; fill it in." in capsys.readouterr().err
    assert not out.exists() and not people_path(out).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"Lab 1,Lab 2\n9,8\n", "names no column of usernames, emails or names"),
        (b"Username,Email address\n", "lists no students"),
    ],
)
def test_files_that_are_no_class_list_say_what_to_export(content, message, tmp_path, capsys):
    export = tmp_path / "x.csv"
    export.write_bytes(content)
    assert main(["class", "roster", "import", str(export), "--out", str(tmp_path / "r.csv")]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ExportError):
        read_export(content)


def test_an_existing_roster_is_kept_unless_force(tmp_path, capsys):
    export = tmp_path / "teams.csv"
    export.write_bytes(export_bytes(teams()))
    out = tmp_path / "a.csv"
    out.write_text("student\nzoe\n")
    assert main(["class", "roster", "import", str(export), "--out", str(out)]) == 2
    assert out.read_text() == "student\nzoe\n"
    assert main(["class", "roster", "import", str(export), "--out", str(out), "--force"]) == 0
    assert "zoe" not in out.read_text()
    assert (people_path(out).stat().st_mode & 0o777) == 0o600


def test_a_missing_file_is_said_not_a_traceback(tmp_path, capsys):
    assert main(["class", "roster", "import", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("josé", "jose"),
        ("Ñandú", "nandu"),
        ("Åsa Ek", "asa-ek"),
        ("Øyvind", "oyvind"),
        ("Straße", "strasse"),
        ("  ana.garcia+web ", "ana-garcia-web"),
        ("2024017", "s2024017"),
        ("---", ""),
        ("a" * 30, "a" * 24),
    ],
)
def test_student_ids_are_transliterated_lowercased_and_valid(text, expected):
    assert student_id(text) == expected


def test_repeated_ids_are_numbered_without_taking_another_students_id():
    assert unique_ids(["ana", "ana", "ana-2", "ben", "ana"]) == ["ana", "ana-3", "ana-2", "ben", "ana-4"]
    long = "b" * 24
    assert unique_ids([long, long]) == [long, "b" * 22 + "-2"]


def test_git_ignores_the_people_file_and_not_the_roster():
    ignored = subprocess.run(
        ["git", "check-ignore", "rosters/class-a.people.csv", "rosters/class-a.csv"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["rosters/class-a.people.csv"]


def test_the_roster_reader_points_names_and_emails_to_the_people_file(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("student,email\nana,ana@school.example\n")
    _, problems = read_roster(roster)
    assert any("people.csv" in problem and "class roster import" in problem for problem in problems)
