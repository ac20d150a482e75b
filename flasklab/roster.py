"""A class from one roster: a CSV file with a row per student -> each student's settings.

The setting `roster` (a CSV file in the project) turns a stack into a class stack. Its
header names the columns: `student` (required), and any of PER_STUDENT_SETTINGS. A
student's settings are the stack's, with:
- serverName and serverAliases prefixed with the student (`ana.practica_flask`), so every
  server has names of its own and one hosts file reaches them all; with a dnsZone, the
  zone's names instead (`ana.class.example.org`, and `www.ana.class.example.org` when the
  stack has aliases: flasklab/dns_zone.py); unless the row gives serverName, and then the
  row's serverAliases (if any) are the only aliases;
- the row's other cells, where not empty; a row's sshPublicKey replaces the stack's
  keyName too.
Every bad row is reported at once, with its line number, before any resource exists.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flasklab import dns_zone
from flasklab.settings import PROJECT_DIR, ConfigError, Settings, load_settings, setting_value

ROSTER_SETTING = "roster"
STUDENT_COLUMN = "student"
# The settings a roster row may give its student (the rest are the class's).
PER_STUDENT_SETTINGS = (
    "sshPublicKey",
    "serverName",
    "serverAliases",
    "recipe",
    "database",
    "tls",
    "tlsEmail",
    "debianRelease",
    "instanceType",
    "appRepo",
    "appRef",
    "stage",
    "fault",
)
# Cells that hold a list, written space-separated (`www.ana.example.org ana.example.net`).
LIST_SETTINGS = ("serverAliases",)
# A student's name is part of resource names, tags and host names: one DNS label, short
# enough that `flasklab-<stack>-<student>-instance` stays readable.
STUDENT_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?")
STUDENT_NAME_MAX_LENGTH = 24
MAX_STUDENTS = 250
# A roster is committed and feeds resource names and tags: names and emails stay out of it
# (extra columns are refused, not ignored, so they cannot slip in unnoticed).
PERSONAL_COLUMNS = r"name|mail|surname|apellido|correo|namn|login|user"
PERSONAL_DATA_HINT = (
    " Names and emails belong in NAME.people.csv beside the roster, which git ignores: "
    "`python -m flasklab class roster import EXPORT` writes both from an LMS's export."
)


@dataclass(frozen=True)
class RosterRow:
    student: str
    line: int  # in the file, counting the header as line 1
    # The row's non-empty cells for PER_STUDENT_SETTINGS, as settings values.
    settings: Mapping[str, Any]


def roster_path(value: str) -> Path:
    return PROJECT_DIR / value


def roster_path_problems(value: str) -> Iterator[str]:
    """The roster must be a file inside the project, where `pulumi up` runs."""
    if value.startswith("/") or ".." in Path(value).parts:
        yield (
            f"{ROSTER_SETTING}: {value!r} must be a path inside the project (e.g. rosters/class-a.csv), "
            f"so every teacher's `pulumi up` finds the same file."
        )
    elif not _is_file(roster_path(value)):
        yield (
            f"{ROSTER_SETTING}: there is no file {value} in the project. Create it: a CSV file whose "
            f"first line is `student` (and optional columns {', '.join(PER_STUDENT_SETTINGS)}), "
            f"then one line per student."
        )


def _is_file(path: Path) -> bool:
    """Whether path is a file; False, not an OSError, for a name the system cannot hold
    (a part over 255 bytes)."""
    try:
        return path.is_file()
    except OSError:
        return False


def read_roster(path: Path) -> tuple[list[RosterRow], list[str]]:
    """The roster's good rows, and a problem for each bad one (by line)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's UTF-8 export starts with a BOM
    except UnicodeDecodeError:
        return [], [f"{ROSTER_SETTING}: {path.name} is not UTF-8 text; export it as CSV UTF-8."]
    reader = csv.reader(text.splitlines())
    header = [cell.strip() for cell in next(reader, [])]
    problems = list(_header_problems(header))
    if problems:
        return [], problems
    rows: list[RosterRow] = []
    seen: set[str] = set()
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, as spreadsheets leave at the end
        line = reader.line_num
        row_problems = list(_row_problems(header, cells, line, seen))
        if row_problems:
            problems += row_problems
            continue
        rows.append(_row(header, cells, line))
        seen.add(rows[-1].student)
    problems += _size_problems(len(rows) + len(problems))
    return rows, problems


def _header_problems(header: list[str]) -> Iterator[str]:
    known = (STUDENT_COLUMN, *PER_STUDENT_SETTINGS)
    if STUDENT_COLUMN not in header:
        yield (
            f"{ROSTER_SETTING}: line 1 must be the header and name a `{STUDENT_COLUMN}` column, "
            f"e.g. `student,sshPublicKey`; it is {','.join(header) or 'empty'}."
        )
    for column in header:
        if column not in known:
            yield (
                f"{ROSTER_SETTING}: line 1: {column!r} is not a column a roster may have. Use "
                f"{', '.join(known)}; the class's other settings are the stack's."
                + (PERSONAL_DATA_HINT if re.search(PERSONAL_COLUMNS, column, re.IGNORECASE) else "")
            )
    for column in {column for column in header if header.count(column) > 1}:
        yield f"{ROSTER_SETTING}: line 1: the column {column} appears twice; keep one."


def _row_problems(header: list[str], cells: list[str], line: int, seen: Collection[str]) -> Iterator[str]:
    where = f"{ROSTER_SETTING}: line {line}"
    if len(cells) > len(header):
        yield (
            f"{where} has {len(cells)} cells but the header names {len(header)} columns; "
            f"quote cells that hold a comma."
        )
        return
    student = dict(zip(header, cells, strict=False)).get(STUDENT_COLUMN, "").strip()
    if not STUDENT_NAME.fullmatch(student):
        yield (
            f"{where}: student {student!r} is not a usable name. Use 1 to {STUDENT_NAME_MAX_LENGTH} "
            f"lowercase letters, digits and '-', starting with a letter (e.g. ana or ana-garcia): it "
            f"becomes part of the server's names and of its AWS resources' names."
        )
    elif student in seen:
        yield f"{where}: student {student} is already on an earlier line; give each student one line."


def _size_problems(count: int) -> Iterator[str]:
    if count == 0:
        yield f"{ROSTER_SETTING}: the roster has no students; add a line per student under the header."
    elif count > MAX_STUDENTS:
        yield (
            f"{ROSTER_SETTING}: {count} students; a class stack holds at most {MAX_STUDENTS}. "
            f"Split the class into two rosters and two stacks."
        )


def _row(header: list[str], cells: list[str], line: int) -> RosterRow:
    values = {column: cell.strip() for column, cell in zip(header, cells, strict=False)}
    settings: dict[str, Any] = {}
    for key in PER_STUDENT_SETTINGS:
        if values.get(key):
            settings[key] = values[key].split() if key in LIST_SETTINGS else values[key]
    return RosterRow(student=values[STUDENT_COLUMN], line=line, settings=settings)


def student_config(class_config: Mapping[str, Any], row: RosterRow) -> dict[str, Any]:
    """The stack's config as the student's server gets it (see the module's docstring)."""
    config = {key: value for key, value in class_config.items() if key != ROSTER_SETTING}
    zone = _zone_of(class_config)
    if "serverName" not in row.settings and zone is not None:
        config |= _zone_names(class_config, row.student, zone)
    elif "serverName" not in row.settings:
        config["serverName"] = f"{row.student}.{setting_value(class_config, 'serverName')}"
        aliases = setting_value(class_config, "serverAliases")
        if isinstance(aliases, list):  # else the settings' checks say what is wrong with it
            config["serverAliases"] = [f"{row.student}.{alias}" for alias in aliases]
    else:
        config["serverAliases"] = []
    if "sshPublicKey" in row.settings:
        config.pop("keyName", None)
    config.update(row.settings)
    return config


def _zone_of(class_config: Mapping[str, Any]) -> dns_zone.DnsZone | None:
    value = setting_value(class_config, dns_zone.SETTING)
    return dns_zone.parse(value) if isinstance(value, str) else None


def _zone_names(class_config: Mapping[str, Any], student: str, zone: dns_zone.DnsZone) -> dict[str, Any]:
    """serverName and serverAliases in the zone: `<student>.<zone>`, and its www. alias when
    the stack has aliases (the stack's own names are not used: the zone names everyone)."""
    aliases = setting_value(class_config, "serverAliases")
    name, www = dns_zone.student_names(student, zone, with_www=isinstance(aliases, list) and bool(aliases))
    return {"serverName": name, "serverAliases": www}


def class_settings(
    class_config: Mapping[str, Any], stack: str, secret_keys: Collection[str] = ()
) -> list[Settings]:
    """One Settings per roster row, each with its student; a ConfigError listing every
    problem of every student (by roster line) otherwise."""
    path_value = str(class_config[ROSTER_SETTING])
    problems = list(roster_path_problems(path_value))
    if problems:
        raise ConfigError(problems, stack)
    # The stack's own problems are reported once, not again on every student's line.
    zone = _zone_of(class_config)
    # With a zone, the stack's own names stand for the class's as one student's would.
    stack_config = (
        class_config if zone is None else {**class_config, **_zone_names(class_config, "student", zone)}
    )
    stack_problems = _problems_of(stack_config, stack, secret_keys)
    rows, problems = read_roster(roster_path(path_value))
    servers: list[Settings] = []
    for row in rows:
        try:
            settings = load_settings(student_config(class_config, row), stack, secret_keys)
        except ConfigError as error:
            problems += [
                f"{ROSTER_SETTING}: line {row.line} ({row.student}): {problem}"
                for problem in error.problems
                if problem not in stack_problems
            ]
            continue
        servers.append(dataclasses.replace(settings, student=row.student))
    problems = stack_problems + problems + list(_name_clash_problems(servers, rows))
    if problems:
        raise ConfigError(problems, stack)
    return servers


def _problems_of(config: Mapping[str, Any], stack: str, secret_keys: Collection[str]) -> list[str]:
    try:
        load_settings(config, stack, secret_keys)
    except ConfigError as error:
        return list(error.problems)
    return []


def _name_clash_problems(servers: list[Settings], rows: list[RosterRow]) -> Iterator[str]:
    """Two students answering to one name would share one hosts line."""
    first: dict[str, str] = {}
    lines = {row.student: row.line for row in rows}
    for settings in servers:
        for name in settings.server_names:
            if name in first:
                yield (
                    f"{ROSTER_SETTING}: line {lines[settings.student]} ({settings.student}): the server "
                    f"name {name} is {first[name]}'s too; give each student names of their own."
                )
            first.setdefault(name, settings.student)


def is_class(config: Mapping[str, Any]) -> bool:
    return bool(config.get(ROSTER_SETTING))


def load_servers(config: Mapping[str, Any], stack: str, secret_keys: Collection[str] = ()) -> list[Settings]:
    """The settings of every server a stack makes: one, or one per roster row."""
    if is_class(config):
        return class_settings(config, stack, secret_keys)
    return [load_settings(config, stack, secret_keys)]
