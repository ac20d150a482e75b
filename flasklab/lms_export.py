"""An LMS's list of students (Moodle, Canvas, Google Classroom, Teams) -> student ids and people.

Exports differ in their columns, separator and encoding, so this reads them by what their
headers mean: a header is matched, after lowercasing and transliteration, against the names
each LMS gives its columns (English, Spanish and Swedish, the seeds' languages). The
separator is sniffed (comma, semicolon as Excel writes in a Spanish locale, or tab); the
text is UTF-8 (with or without a BOM), UTF-16 with a BOM (Excel's "Unicode text"), or else
Excel's cp1252. A student's id comes from the username, the login, the email's local part
or the given name, in that order (or from the one column the teacher names), is
transliterated (josé -> jose), lowercased and made unique (ana, ana-2).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from flasklab.people import Person
from flasklab.roster import STUDENT_NAME_MAX_LENGTH

# What a column means -> the headers LMSs give it (normalized: see header_key).
# Moodle: Username, First name, Surname / Last name, Email address, ID number, Roles.
# Canvas gradebook: Student ("Surname, First"), ID, SIS User ID, SIS Login ID, Section.
# Google Classroom grades: Last Name, First Name, Email Address.
# Teams grades: First Name, Last Name, Email Address.
HEADERS: Mapping[str, tuple[str, ...]] = {
    "username": ("username", "user name", "nombre de usuario", "usuario", "anvandarnamn"),
    "login": ("sis login id", "login id", "login", "inicio de sesion"),
    "email": (
        "email address",
        "email",
        "e mail",
        "e mail address",
        "mail",
        "direccion de correo",
        "direccion email",
        "correo electronico",
        "correo",
        "e postadress",
        "e post",
    ),
    "first": ("first name", "firstname", "given name", "nombre", "fornamn"),
    "last": ("surname", "last name", "lastname", "family name", "apellido s", "apellidos", "efternamn"),
    "full": ("student", "name", "full name", "student name", "display name", "estudiante", "namn", "elev"),
    "lms_id": ("id", "id number", "idnumber", "sis user id", "numero de id", "id nummer"),
    "roles": ("roles", "role", "rol", "roller"),
}
# The columns an id is made from, in order, unless the teacher names one.
ID_SOURCES = ("username", "login", "email", "first", "full")
# Rows that are not students: Canvas's "Points Possible" and test student, the averages
# and maximum points some exports add.
NOT_STUDENTS = {"points possible", "student test", "test student", "class average", "points", "max points"}
# Words of a student's role in an export that lists teachers too (Moodle's participants).
STUDENT_ROLES = ("student", "estudiante", "alumno", "elev", "student in")
DELIMITERS = ",;\t"
# Letters NFKD does not take apart into a base letter and a mark.
TRANSLITERATION = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "\u0131": "i"}
)


class ExportError(Exception):
    """The file cannot be read as a list of students; the message says why and what to do."""


@dataclass(frozen=True)
class ImportedStudent:
    line: int  # in the file, counting the header as line 1
    person: Person
    source: str  # the header of the column the id was made from


def ascii_text(text: str) -> str:
    """Lowercase ASCII: accents dropped (josé -> jose, ñ -> n, å -> a, ø -> o)."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(TRANSLITERATION))
    return decomposed.encode("ascii", "ignore").decode()


def header_key(header: str) -> str:
    """`E-mail address ` -> `e mail address`, `Apellido(s)` -> `apellido s`."""
    return " ".join(re.findall(r"[a-z0-9]+", ascii_text(header)))


def student_id(text: str) -> str:
    """A valid roster id from any text, or '' if nothing of it is usable."""
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text(text)).strip("-")
    if slug[:1].isdigit():
        slug = "s" + slug  # an id starts with a letter; an LMS number becomes s12345
    return slug[:STUDENT_NAME_MAX_LENGTH].rstrip("-")


def unique_ids(ids: Sequence[str]) -> list[str]:
    """The ids, a repeated one numbered from its second use on (ana, ana-2), never taking
    an id another row has of its own."""
    taken = set(ids)
    given: list[str] = []
    for wanted in ids:
        candidate, number = wanted, 1
        while candidate in given or (number > 1 and candidate in taken):
            number += 1
            suffix = f"-{number}"
            candidate = wanted[: STUDENT_NAME_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
        given.append(candidate)
    return given


def decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel's "CSV" on Windows


def _rows(text: str) -> list[list[str]]:
    """The file's rows, split by the separator whose header names known columns (or the one
    Excel's `sep=;` first line names)."""
    first, _, rest = text.partition("\n")
    excel_hint = re.fullmatch(r'"?sep=(.)"?\r?', first)
    if excel_hint:
        return list(csv.reader(io.StringIO(rest), delimiter=excel_hint[1]))
    sample = "\n".join(text.splitlines()[:20])
    try:
        sniffed = [csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter]
    except csv.Error:
        sniffed = []
    candidates = sniffed + [delimiter for delimiter in DELIMITERS if delimiter not in sniffed]
    for delimiter in candidates:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
        if rows and _roles(rows[0]):
            return rows
    return list(csv.reader(io.StringIO(text), delimiter=candidates[0]))


def _roles(header: Sequence[str]) -> dict[str, int]:
    """Meaning -> the index of the first column that has it."""
    keys = [header_key(cell) for cell in header]
    roles: dict[str, int] = {}
    for role, names in HEADERS.items():
        for name in names:  # the names in order of preference (Canvas: ID before SIS User ID)
            if name in keys and role not in roles:
                roles[role] = keys.index(name)
    return roles


def read_export(data: bytes, id_column: str | None = None) -> tuple[list[ImportedStudent], list[str]]:
    """The students of an export, and a note for each row skipped; an ExportError naming
    every problem otherwise."""
    rows = _rows(decode(data))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise ExportError("the file is empty; export the class's participants or gradebook as CSV.")
    header = [cell.strip() for cell in rows[0]]
    roles = _roles(header)
    sources = _id_sources(header, roles, id_column)
    if id_column is None and not {"username", "login", "email", "first", "full"} & roles.keys():
        raise ExportError(
            f"line 1 ({', '.join(header)}) names no column of usernames, emails or names. Export the "
            f"participants (Moodle), the gradebook (Canvas) or the grades (Google Classroom, Teams) as "
            f"CSV, or give --id-column with the header of the column to make ids from."
        )
    found, skipped, problems = [], [], []
    for line, cells in enumerate(rows[1:], start=2):
        row = Row(cells)
        if not any(cell.strip() for cell in cells):
            continue
        why_not = _not_a_student(row, roles)
        if why_not:
            skipped.append(f"line {line}: {why_not}")
            continue
        person = _person(row, roles)
        made = next(
            ((name, made_id) for name, made_id in _candidate_ids(row, person, sources) if made_id), None
        )
        if made is None:
            wanted = " or ".join(source.header for source in sources)
            problems.append(f"line {line}: no {wanted} to make the student's id from; fill it in.")
            continue
        found.append(ImportedStudent(line, dataclasses.replace(person, student=made[1]), made[0]))
    if problems:
        raise ExportError("\n".join(problems))
    if not found:
        raise ExportError("the file lists no students under its header.")
    ids = unique_ids([student.person.student for student in found])
    return [_with_id(student, new) for student, new in zip(found, ids, strict=True)], skipped


@dataclass(frozen=True)
class IdSource:
    role: str  # a key of HEADERS, or '' for a column of no known meaning
    header: str
    index: int


def _id_sources(header: list[str], roles: dict[str, int], id_column: str | None) -> list[IdSource]:
    """The columns an id is made from, in order."""
    if id_column is None:
        return [IdSource(role, header[roles[role]], roles[role]) for role in ID_SOURCES if role in roles]
    keys = [header_key(cell) for cell in header]
    if header_key(id_column) not in keys:
        raise ExportError(
            f"--id-column {id_column!r} is not a column of the file; its columns: {', '.join(header)}."
        )
    index = keys.index(header_key(id_column))
    role = next((role for role, names in HEADERS.items() if keys[index] in names), "")
    return [IdSource(role, header[index], index)]


def _candidate_ids(row: Row, person: Person, sources: list[IdSource]) -> Iterator[tuple[str, str]]:
    """(header, id) from each source: an email's local part, a full name's given name."""
    for source in sources:
        value = row.cell(source.index)
        if source.role == "email":
            value = value.partition("@")[0]
        elif source.role == "full":
            value = person.name.split(" ")[0] if value else ""
        yield source.header, student_id(value)


class Row:
    """A row's cells by column index, '' past its end (spreadsheets drop empty trailing cells)."""

    def __init__(self, cells: list[str]) -> None:
        self.cells = cells

    def cell(self, index: int | None) -> str:
        return self.cells[index].strip() if index is not None and index < len(self.cells) else ""


def _not_a_student(row: Row, roles: dict[str, int]) -> str:
    """Why a row is not a student's ('' if it is)."""
    labels = {header_key(row.cell(0)), header_key(row.cell(roles.get("full")))}
    if labels & NOT_STUDENTS:
        return f"{row.cell(0) or row.cell(roles.get('full'))!r} is not a student"
    role = header_key(row.cell(roles.get("roles")))
    if "roles" in roles and role and not any(word in role for word in STUDENT_ROLES):
        return f"role {row.cell(roles['roles'])!r} is not a student's"
    return ""


def _person(row: Row, roles: dict[str, int]) -> Person:
    """The row's person (its id not made yet)."""
    first, last = row.cell(roles.get("first")), row.cell(roles.get("last"))
    full = row.cell(roles.get("full"))
    surname, comma, given = full.partition(",")
    if comma:  # Canvas writes "Surname, First"
        full = f"{given.strip()} {surname.strip()}"
    return Person(
        student="",
        name=" ".join(part for part in (first, last) if part) or full,
        email=row.cell(roles.get("email")),
        username=row.cell(roles.get("username")) or row.cell(roles.get("login")),
        lms_id=row.cell(roles.get("lms_id")),
    )


def _with_id(student: ImportedStudent, new_id: str) -> ImportedStudent:
    return dataclasses.replace(student, person=dataclasses.replace(student.person, student=new_id))
