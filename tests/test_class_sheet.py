"""`class sheet`: the class's access sheet, written from the outputs the real program makes
under mocks, read back as a teacher's tools read it (a hosts file, a spreadsheet, a browser)."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flasklab.__main__ import main
from flasklab.classroom import outputs, sheet
from flasklab.stacks import load_stack
from tests.browser import chromium, in_chromium
from tests.conftest import MOCK_PRIVATE_KEY

CLASS_DEMO = ("ana", "ben", "carla")


def write_sheet(outputs_file: Path, folder: Path, stack: str = "class-demo") -> None:
    status = main(["class", "sheet", "--stack", stack, "--outputs", str(outputs_file), "--out", str(folder)])
    assert status == 0


def names_of(student: str) -> list[str]:
    """The student's server names, as their settings make them (not from the outputs)."""
    return list(load_stack("class-demo", student=student).server_names)


def hosts_entries(path: Path) -> list[tuple[str, list[str]]]:
    """(address, names) of each line, as a resolver reads a hosts file: '#' to the end of
    the line is a comment, then an address and its names."""
    entries = []
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            ipaddress.ip_address(words[0])  # raises if it is not an address
            entries.append((words[0], words[1:]))
    return entries


def test_the_hosts_file_gives_each_student_their_own_names(saved_outputs, tmp_path):
    write_sheet(saved_outputs("class-demo"), tmp_path / "sheet")
    entries = hosts_entries(tmp_path / "sheet" / "hosts")
    expected = [names_of(student) for student in CLASS_DEMO]
    assert [names for _, names in entries] == expected
    every_name = [name for _, names in entries for name in names]
    assert len(every_name) == len(set(every_name)), every_name
    header = (tmp_path / "sheet" / "hosts").read_text().split("\n", 4)
    assert header[0].startswith("# Written by flasklab")
    assert r"C:\Windows\System32\drivers\etc\hosts" in "".join(header[:4])


@pytest.mark.skipif(os.geteuid() != 0, reason="reads the hosts file in a mount namespace of its own: root")
def test_the_hosts_file_resolves_every_students_names_with_the_systems_resolver(saved_outputs, tmp_path):
    """glibc reads the sheet's hosts file as /etc/hosts, in a mount namespace of the test's
    own (the machine's /etc/hosts is untouched); each student's server gets its own address."""
    saved = saved_outputs("class-demo")
    document = json.loads(saved.read_text())
    for number, entry in enumerate(document[outputs.STUDENTS].values(), start=10):
        address = f"192.0.2.{number}"
        entry[outputs.HOSTS_LINE] = entry[outputs.HOSTS_LINE].replace(entry[outputs.PUBLIC_IP], address)
        entry[outputs.PUBLIC_IP] = address
    saved.write_text(json.dumps(document))
    write_sheet(saved, tmp_path / "sheet")
    names = [name for student in CLASS_DEMO for name in names_of(student)]
    script = 'mount --bind "$1" /etc/hosts && shift && getent hosts "$@"'
    hosts = str(tmp_path / "sheet" / "hosts")
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", hosts, *names],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout  # 2: a name was not found
    # A line per name asked, in order: its address, then the names of its hosts line.
    for name, line in zip(names, done.stdout.splitlines(), strict=True):
        address, *line_names = line.split()
        student = name.split(".")[0]
        assert address == document[outputs.STUDENTS][student][outputs.PUBLIC_IP], line
        assert name in line_names, line


def test_the_csv_has_a_row_per_student_a_spreadsheet_can_read(saved_outputs, tmp_path):
    saved = saved_outputs("class-demo")
    write_sheet(saved, tmp_path / "sheet")
    document = json.loads(saved.read_text())
    with (tmp_path / "sheet" / "students.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["student"] for row in rows] == list(CLASS_DEMO)
    for row in rows:
        student = row["student"]
        entry = document[outputs.STUDENTS][student]
        assert row[outputs.HOSTS_LINE] == entry[outputs.HOSTS_LINE]
        assert row[outputs.URL] == entry[outputs.URL]
        assert row[outputs.SERVER_NAMES].split() == entry[outputs.SERVER_NAMES]
        assert row[outputs.SSH_COMMAND] == f"ssh -i keys/{student}.pem admin@{entry[outputs.PUBLIC_IP]}"
        seconds = document[outputs.FIRST_BOOT_SECONDS][student]
        assert row[outputs.FIRST_BOOT_SECONDS] == str(seconds)
        assert row["status"] == f"ready at pulumi up: first boot took {seconds} s"


def test_keys_are_files_of_their_own_0600_and_never_on_the_page_or_in_the_csv(saved_outputs, tmp_path):
    folder = tmp_path / "sheet"
    write_sheet(saved_outputs("class-demo"), folder)
    keys = folder / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert sorted(path.name for path in keys.iterdir()) == [f"{student}.pem" for student in CLASS_DEMO]
    for path in keys.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.read_text() == MOCK_PRIVATE_KEY
    key_body = MOCK_PRIVATE_KEY.splitlines()[1]
    for name in ("index.html", "students.csv", "hosts"):
        text = (folder / name).read_text()
        assert key_body not in text and "PRIVATE KEY" not in text, name
    assert "separate files" in (folder / "index.html").read_text()


def test_a_key_the_stack_no_longer_makes_is_removed_from_the_sheet(saved_outputs, tmp_path):
    saved = saved_outputs("class-demo")
    folder = tmp_path / "sheet"
    write_sheet(saved, folder)
    document = json.loads(saved.read_text())
    del document[outputs.SSH_PRIVATE_KEYS]["ben"]
    saved.write_text(json.dumps(document))
    write_sheet(saved, folder)
    assert sorted(path.name for path in (folder / "keys").iterdir()) == ["ana.pem", "carla.pem"]


def test_a_stack_of_one_student_makes_a_sheet_of_one(saved_outputs, tmp_path):
    saved = saved_outputs("dev")
    write_sheet(saved, tmp_path / "sheet", stack="dev")
    with (tmp_path / "sheet" / "students.csv").open(newline="") as file:
        [row] = list(csv.DictReader(file))
    assert row["student"] == "dev"
    assert row[outputs.HOSTS_LINE] == json.loads(saved.read_text())[outputs.HOSTS_LINE]
    assert row[outputs.SSH_COMMAND].startswith("ssh -i keys/dev.pem ")
    assert (tmp_path / "sheet" / "keys" / "dev.pem").read_text() == MOCK_PRIVATE_KEY
    assert [names for _, names in hosts_entries(tmp_path / "sheet" / "hosts")] == [
        list(load_stack("dev").server_names)
    ]


def test_what_the_outputs_do_not_know_is_said_to_be_unknown(saved_outputs, tmp_path):
    saved = saved_outputs("class-demo", waitForReady=False)
    assert outputs.FIRST_BOOT_SECONDS not in json.loads(saved.read_text())
    write_sheet(saved, tmp_path / "sheet")
    with (tmp_path / "sheet" / "students.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert {row["status"].split(":")[0] for row in rows} == {"not known"}
    assert {row[outputs.FIRST_BOOT_SECONDS] for row in rows} == {""}


def test_a_server_without_an_address_yet_is_said_to_have_none(tmp_path):
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({outputs.STUDENTS: {"ana": {outputs.PUBLIC_IP: "", outputs.HOSTS_LINE: ""}}}))
    write_sheet(saved, tmp_path / "sheet")
    assert hosts_entries(tmp_path / "sheet" / "hosts") == []
    assert "# ana: no address yet" in (tmp_path / "sheet" / "hosts").read_text()
    with (tmp_path / "sheet" / "students.csv").open(newline="") as file:
        [row] = list(csv.DictReader(file))
    assert row["status"] == "no address yet: run pulumi up"


def test_the_sheet_goes_to_a_folder_named_after_the_stack(saved_outputs, tmp_path, monkeypatch):
    monkeypatch.setattr(sheet, "SHEETS_DIR", tmp_path / "sheets")
    saved = saved_outputs("class-demo")
    assert main(["class", "sheet", "--stack", "class-demo", "--outputs", str(saved)]) == 0
    written = sorted(path.name for path in (tmp_path / "sheets" / "class-demo").iterdir())
    assert written == ["hosts", "index.html", "keys", "students.csv"]


def test_markup_in_the_outputs_is_shown_as_text_not_run(tmp_path):
    hostile = "<script>alert('x')</script>"
    saved = tmp_path / "outputs.json"
    entry = {
        outputs.PUBLIC_IP: "192.0.2.7",
        outputs.URL: f"http://a/{hostile}",
        outputs.HOSTS_LINE: f"192.0.2.7 {hostile}",
        outputs.SSH_COMMAND: "ssh admin@192.0.2.7",
    }
    # ana, on the stack's roster, makes them class-demo's outputs.
    saved.write_text(json.dumps({outputs.STUDENTS: {f"x{hostile}": entry, "ana": entry}}))
    write_sheet(saved, tmp_path / "sheet")
    page = (tmp_path / "sheet" / "index.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read as the stack's outputs"),
        ("{not json", "cannot be read as the stack's outputs"),
        ("[1, 2]", "not a JSON object of outputs"),
        ("{}", "run `pulumi up` for it first"),
    ],
)
def test_outputs_that_cannot_be_read_say_how_to_get_them(tmp_path, capsys, content, message):
    saved = tmp_path / "outputs.json"
    if content is not None:
        saved.write_text(content)
    folder = tmp_path / "sheet"
    status = main(["class", "sheet", "--stack", "class-demo", "--outputs", str(saved), "--out", str(folder)])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not folder.exists()


def test_a_student_name_that_is_not_a_file_name_writes_no_key(tmp_path, capsys):
    saved = tmp_path / "outputs.json"
    entry = {outputs.PUBLIC_IP: "192.0.2.7", outputs.HOSTS_LINE: "192.0.2.7 a.practica_flask"}
    saved.write_text(
        json.dumps(
            {
                outputs.STUDENTS: {"../a": entry, "ana": entry},
                outputs.SSH_PRIVATE_KEYS: {"../a": MOCK_PRIVATE_KEY},
            }
        )
    )
    folder = tmp_path / "sheet"
    status = main(["class", "sheet", "--stack", "class-demo", "--outputs", str(saved), "--out", str(folder)])
    assert status == 2
    assert "cannot name its key file" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.pem"))


def test_without_the_pulumi_cli_it_says_how_to_save_the_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["class", "sheet", "--stack", "class-demo", "--out", str(tmp_path / "sheet")]) == 2
    assert "the Pulumi CLI is not installed here" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("prints", "status", "message"),
    [
        ("Logging in to the backend...", 0, "printed no JSON ('Logging in to the backend...')"),
        ("", 255, "error: no stack named class-demo found. Check the stack's name (`pulumi stack ls`)"),
    ],
)
def test_a_pulumi_cli_that_does_not_give_the_outputs_is_reported_not_a_traceback(
    tmp_path, capsys, monkeypatch, prints, status, message
):
    """Whatever `pulumi stack output` answers (here a stand-in on PATH printing what the
    CLI prints when not logged in, or failing), the sheet says what went wrong."""
    cli = tmp_path / "bin" / "pulumi"
    cli.parent.mkdir()
    said = "" if status == 0 else "echo 'error: no stack named class-demo found' >&2\n"
    cli.write_text(f"#!/bin/sh\nprintf %s '{prints}'\n{said}exit {status}\n")
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{cli.parent}:/usr/bin:/bin")
    assert main(["class", "sheet", "--stack", "class-demo", "--out", str(tmp_path / "sheet")]) == 2
    assert message in capsys.readouterr().err


class Cards(HTMLParser):
    """Each student's card in a page: its data-student and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, str] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self.current = dict(attrs).get("data-student") or ""
            self.cards[self.current] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.cards[self.current] += data


def test_the_page_renders_in_a_browser_with_every_students_card(saved_outputs, tmp_path):
    chromium()  # skipped (or failed in CI) before the program runs
    saved = saved_outputs("class-demo")
    write_sheet(saved, tmp_path / "sheet")
    page = tmp_path / "sheet" / "index.html"
    screenshot = tmp_path / "sheet.png"
    in_chromium(page, f"--screenshot={screenshot}")
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 10_000
    cards = Cards()
    cards.feed(in_chromium(page, "--dump-dom").stdout)
    assert sorted(cards.cards) == list(CLASS_DEMO)
    for student, entry in json.loads(saved.read_text())[outputs.STUDENTS].items():
        text = " ".join(cards.cards[student].split())
        assert entry[outputs.HOSTS_LINE] in text, text
        assert entry[outputs.URL] in text, text
        assert f"ssh -i keys/{student}.pem admin@{entry[outputs.PUBLIC_IP]}" in text, text


def test_the_last_class_check_in_the_sheets_folder_gives_each_card_its_status(saved_outputs, tmp_path):
    from flasklab.classroom import check

    every_check_passed = {key: check.passed() for key in check.CHECKS}
    app_fails = {**every_check_passed, "app": check.failed("502", ["answers 502"])}
    folder = tmp_path / "sheet"
    check.write_csv(
        [
            check.Row("ana", "192.0.2.1", every_check_passed),
            check.Row("ben", "192.0.2.2", app_fails),
            check.missing_row("carla"),
        ],
        folder / check.CHECK_CSV,
    )
    write_sheet(saved_outputs("class-demo"), folder)
    with (folder / "students.csv").open(newline="") as file:
        status = {row["student"]: row["status"] for row in csv.DictReader(file)}
    assert status["ana"].endswith("passes every check"), status
    assert "fails:" in status["ben"] and "answers 502" in status["ben"], status
    assert "fails:" in status["carla"], status
    assert all(text.startswith("class check of ") for text in status.values()), status


# The start links (startLink): secret outputs, on each student's own card only.


class Links(HTMLParser):
    """Each card's start link (its href) and note, as the browser built the page."""

    def __init__(self) -> None:
        super().__init__()
        self.student: str | None = None
        self.links: dict[str, str] = {}
        self.in_note = False
        self.notes: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "article":
            self.student = attributes.get("data-student")
        if tag == "a" and attributes.get("class") == "start-link" and self.student:
            self.links[self.student] = attributes.get("href") or ""
        self.in_note = tag == "dd" and attributes.get("class") == "start-link-note"

    def handle_data(self, data):
        if self.in_note and self.student:
            self.notes[self.student] = self.notes.get(self.student, "") + data


def page_links(page: Path) -> Links:
    links = Links()
    links.feed(in_chromium(page, "--dump-dom").stdout)
    return links


def test_each_card_shows_its_own_students_start_link(saved_outputs, tmp_path):
    chromium()
    saved = saved_outputs("class-demo", startLink="true")
    links = json.loads(saved.read_text())[outputs.START_LINKS]
    assert sorted(links) == list(CLASS_DEMO) and len(set(links.values())) == 3
    write_sheet(saved, tmp_path / "sheet")
    found = page_links(tmp_path / "sheet" / "index.html")
    assert found.links == links  # each card its own student's link, and no other's
    page = (tmp_path / "sheet" / "index.html").read_text()
    assert "hand each card to its student only" in page
    # Only on the cards: not in the hosts file or the spreadsheet, which are the class's.
    for name in ("students.csv", "hosts"):
        assert not any(link in (tmp_path / "sheet" / name).read_text() for link in links.values())


def test_a_stack_of_one_student_shows_its_start_link(saved_outputs, tmp_path):
    chromium()
    saved = saved_outputs("dev", startLink="true")
    write_sheet(saved, tmp_path / "sheet", stack="dev")
    found = page_links(tmp_path / "sheet" / "index.html")
    assert found.links == {"dev": json.loads(saved.read_text())[outputs.START_LINK]}


def test_start_links_saved_without_show_secrets_say_how_to_get_them(saved_outputs, tmp_path):
    """As `pulumi stack output --json` (no --show-secrets) writes them, for a stack that logs in
    with the teacher's key (so no private keys are hidden: the sheet can still be written)."""
    chromium()
    saved = saved_outputs("class-demo", startLink="true")
    document = json.loads(saved.read_text())
    del document[outputs.SSH_PRIVATE_KEYS]
    document[outputs.START_LINKS] = outputs.HIDDEN_SECRET
    saved.write_text(json.dumps(document))
    write_sheet(saved, tmp_path / "sheet")
    found = page_links(tmp_path / "sheet" / "index.html")
    assert found.links == {}
    assert sorted(found.notes) == list(CLASS_DEMO)
    assert all(
        note.startswith("hidden: these outputs were saved without --show-secrets")
        for note in found.notes.values()
    )
    page = " ".join((tmp_path / "sheet" / "index.html").read_text().split())
    assert "pulumi stack output --json --show-secrets --stack class-demo" in page


def test_a_stack_with_start_links_on_but_none_in_its_outputs_says_to_run_pulumi_up(saved_outputs, tmp_path):
    students = outputs.read_outputs("class-demo", saved_outputs("class-demo"))
    sheet.write_sheet("class-demo", students, tmp_path / "on", start_link_on=True)
    sheet.write_sheet("class-demo", students, tmp_path / "off", start_link_on=False)
    on = (tmp_path / "on" / "index.html").read_text()
    assert on.count("not in the outputs yet: run `pulumi up` (startLink is on)") == 3
    assert "Start link" not in (tmp_path / "off" / "index.html").read_text()


def test_the_stack_files_start_link_setting_reaches_the_sheet(saved_outputs, tmp_path, monkeypatch):
    seen = []
    real_write = sheet.write_sheet

    def record(stack, students, folder, live=None, start_link_on=None, zone=""):
        seen.append(start_link_on)
        return real_write(stack, students, folder, live, start_link_on, zone)

    monkeypatch.setattr(sheet, "write_sheet", record)
    write_sheet(saved_outputs("class-demo"), tmp_path / "sheet")
    assert seen == [False]  # stacks/Pulumi.class-demo.yaml leaves startLink off
