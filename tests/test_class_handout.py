"""`class handout`: a folder per student, from the outputs the real program makes under
mocks, each holding that student's page and key and nothing of anyone else's."""

from __future__ import annotations

import html
import json
import re
import stat
from html.parser import HTMLParser
from pathlib import Path

import markupsafe
import pytest

from flasklab.__main__ import main
from flasklab.classroom import outputs
from flasklab.handout_texts import LANGUAGES, texts
from flasklab.people import Person
from flasklab.rubric import rubric, title_and_hint
from flasklab.stacks import load_stack
from tests.browser import in_chromium
from tests.handout_project import PEOPLE, STACK, STUDENTS, key_of, link_of

PAGES = ["handout.html", "handout.txt"]


def handout(project, *arguments: str) -> int:
    return main(
        [
            "class", "handout", "--stack", STACK, "--outputs", str(project.outputs_file),
            "--out", str(project.root / "handouts"), *arguments,
        ]
    )  # fmt: skip


def folder_of(project, student: str) -> Path:
    return project.root / "handouts" / student


def page_of(project, student: str) -> str:
    return (folder_of(project, student) / "handout.html").read_text(encoding="utf-8")


def test_every_language_has_every_text_with_the_same_braces():
    english = texts("en")
    for language in LANGUAGES:
        words = texts(language)
        assert sorted(words) == sorted(english), language
        for key, text in english.items():
            braces = set(re.findall(r"\{(\w+)\}", text))
            assert set(re.findall(r"\{(\w+)\}", words[key])) == braces, (language, key)
            assert words[key].strip(), (language, key)


def test_each_folder_holds_its_students_page_and_key_0600_in_a_0700_folder(handout_project, capsys):
    assert handout(handout_project) == 0
    assert "wrote 3 handouts" in capsys.readouterr().out
    assert stat.S_IMODE((handout_project.root / "handouts").stat().st_mode) == 0o700
    for student in STUDENTS:
        folder = folder_of(handout_project, student)
        names = sorted(path.name for path in folder.iterdir())
        assert names == [f"{student}.pem", "handout.html", "handout.txt"]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for path in folder.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert (folder / f"{student}.pem").read_text() == key_of(student)


def test_no_folder_holds_anything_of_another_student(handout_project):
    """Every file of a folder, searched for every other student's id (as a word), name,
    email, address, key and start link."""
    assert handout(handout_project) == 0
    for student in STUDENTS:
        text = "\n".join(path.read_text() for path in folder_of(handout_project, student).iterdir())
        assert PEOPLE[student].name in text and handout_project.ip_of(student) in text
        for other in set(STUDENTS) - {student}:
            person = PEOPLE[other]
            assert not re.search(rf"\b{other}\b", text), (student, other)
            for theirs in (person.name, person.email, handout_project.ip_of(other), link_of(other)):
                assert theirs not in text, (student, theirs)
            assert key_of(other).splitlines()[1] not in text, (student, other)


def test_the_page_gives_the_students_own_lines_and_commands(handout_project):
    assert handout(handout_project) == 0
    entry = handout_project.outputs()[outputs.STUDENTS]["ben"]
    page = page_of(handout_project, "ben")
    assert entry[outputs.HOSTS_LINE] in page
    assert f"ssh -i ben.pem admin@{entry[outputs.PUBLIC_IP]}" in page
    assert "chmod 600 ben.pem" in page
    assert 'icacls ben.pem /inheritance:r /grant:r "%USERNAME%:R"' in page
    assert "sudo nano /etc/hosts" in page and r"C:\Windows\System32\drivers\etc\hosts" in page
    assert link_of("ben").replace("&", "&amp;") in page
    assert "flasklab-status" in page
    assert "flasklab-check" not in page  # a finished server does not carry it


def test_with_a_dns_zone_the_page_opens_the_url_and_asks_for_no_hosts_line(handout_project):
    handout_project.stack(dnsZone="class.example.org")
    assert handout(handout_project) == 0
    text = (folder_of(handout_project, "ben") / "handout.txt").read_text(encoding="utf-8")
    for page in (page_of(handout_project, "ben"), text):
        assert "names are in the public DNS" in page
        assert "sudo nano /etc/hosts" not in page and "hosts-line" not in page


def test_a_student_without_a_people_row_is_named_by_id(handout_project):
    handout_project.people([PEOPLE["ana"]])
    assert handout(handout_project) == 0
    assert "For ben" in page_of(handout_project, "ben")
    handout_project.people_file.unlink()
    assert handout(handout_project) == 0
    assert "For ana" in page_of(handout_project, "ana")


def test_student_picks_only_those_folders(handout_project, capsys):
    assert handout(handout_project, "--student", "carla") == 0
    assert sorted(path.name for path in (handout_project.root / "handouts").iterdir()) == ["carla"]
    assert handout(handout_project, "--student", "zoe") == 2
    assert "--student zoe: not in the outputs" in capsys.readouterr().err


def test_a_stack_that_made_no_key_hands_out_none(handout_project):
    document = handout_project.outputs()
    del document[outputs.SSH_PRIVATE_KEYS]
    handout_project.save_outputs(document)
    assert handout(handout_project) == 0
    assert sorted(path.name for path in folder_of(handout_project, "ana").iterdir()) == PAGES
    assert texts("en")["no_key"] in page_of(handout_project, "ana")


def test_a_key_the_stack_no_longer_makes_leaves_the_folder(handout_project):
    assert handout(handout_project) == 0
    document = handout_project.outputs()
    del document[outputs.SSH_PRIVATE_KEYS]["ben"]
    handout_project.save_outputs(document)
    assert handout(handout_project) == 0
    assert sorted(path.name for path in folder_of(handout_project, "ben").iterdir()) == PAGES


def test_outputs_saved_without_secrets_write_no_key_and_say_how(handout_project, capsys):
    document = handout_project.outputs()
    document[outputs.SSH_PRIVATE_KEYS] = outputs.HIDDEN_SECRET
    handout_project.save_outputs(document)
    assert handout(handout_project) == 2
    captured = capsys.readouterr()
    assert "--show-secrets" in captured.err and "Traceback" not in captured.err + captured.out
    assert not (handout_project.root / "handouts").exists()


def test_hidden_start_links_are_left_out_and_said(handout_project, capsys):
    document = handout_project.outputs()
    document[outputs.START_LINKS] = outputs.HIDDEN_SECRET
    handout_project.save_outputs(document)
    assert handout(handout_project) == 0
    assert "start links are hidden" in capsys.readouterr().out
    page = page_of(handout_project, "ana")
    assert outputs.HIDDEN_SECRET not in page and texts("en")["start_heading"] not in page


@pytest.mark.parametrize(
    "outputs_text, says",
    [
        ("{not json", "cannot be read as the stack's outputs"),
        ("[]", "not a JSON object"),
        (json.dumps({"students": {"zoe": {}}}), "none of their students"),
    ],
)
def test_bad_outputs_are_a_message(handout_project, capsys, outputs_text, says):
    handout_project.outputs_file.write_text(outputs_text)
    assert handout(handout_project) == 2
    captured = capsys.readouterr()
    assert says in captured.err and "Traceback" not in captured.err + captured.out


def test_a_stack_whose_settings_are_wrong_is_a_message(handout_project, capsys):
    handout_project.stack(language="fi")
    assert handout(handout_project) == 2
    assert "language: 'fi'" in capsys.readouterr().err


def test_a_secret_in_the_stack_file_does_not_stop_the_handouts(handout_project):
    handout_project.stack(sshPrivateKey={"secure": "v1:AAAAencrypted"}, language="sv")
    assert handout(handout_project) == 0
    assert 'lang="sv"' in page_of(handout_project, "ana")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_broken_servers_page_sets_the_exercise_and_never_names_the_fault(handout_project, language):
    from flasklab.faults import FAULTS

    handout_project.stack(stage="broken", language=language)
    assert handout(handout_project) == 0
    for student in STUDENTS:
        settings = load_stack(STACK, student=student)
        assert settings.stage.name == "broken"
        folder = folder_of(handout_project, student)
        page = page_of(handout_project, student)
        assert str(markupsafe.escape(texts(language)["stage_broken"])) in page
        for name in FAULTS:
            for file in folder.iterdir():
                assert name not in file.read_text(errors="replace"), (name, file)


@pytest.mark.parametrize("stage", ["app", "bare"])
def test_an_exercise_page_lists_the_rubric_in_the_class_language(handout_project, stage):
    handout_project.stack(stage=stage, language="es")
    assert handout(handout_project) == 0
    page = page_of(handout_project, "carla")
    settings = load_stack(STACK, student="carla")
    assert settings.stage.name == stage and settings.language == "es"
    for checkpoint in rubric(settings):
        assert html.escape(title_and_hint(settings, checkpoint, "es")[0]) in page
    assert "sudo flasklab-check" in page
    assert texts("es")[f"stage_{stage}"].split("{")[0] in page


class DomText(HTMLParser):
    """The text of each element with an id or a class, and the root's lang, from a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[list[str]] = []
        self.text: dict[str, str] = {}
        self.lang = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang") or ""
        names = []
        if attributes.get("id"):
            names.append("#" + attributes["id"])
        names += ["." + name for name in (attributes.get("class") or "").split()]
        if tag in ("br", "meta", "link", "img", "input"):
            return
        self.open.append(names)
        for name in names:
            self.text.setdefault(name, "")

    def handle_endtag(self, tag):
        if self.open and tag not in ("br", "meta", "link", "img", "input"):
            self.open.pop()

    def handle_data(self, data):
        for names in self.open:
            for name in names:
                self.text[name] += data


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_renders_in_chromium_in_each_language(handout_project, language):
    handout_project.stack(language=language, stage="app")
    assert handout(handout_project) == 0
    words = texts(language)
    for student in STUDENTS:
        dom = DomText()
        dom.feed(in_chromium(folder_of(handout_project, student) / "handout.html", "--dump-dom").stdout)
        entry = handout_project.outputs()[outputs.STUDENTS][student]
        assert dom.lang == language
        assert dom.text["#name"].strip() == words["for"].format(name=PEOPLE[student].name)
        assert dom.text[".hosts-line"].strip() == entry[outputs.HOSTS_LINE]
        assert dom.text[".ssh-command"].strip() == f"ssh -i {student}.pem admin@{entry[outputs.PUBLIC_IP]}"
        assert "sudo nano /etc/hosts" in dom.text["#hosts-unix"]
        assert words["hosts_unix_save"] in dom.text["#hosts-unix"]
        assert r"C:\Windows\System32\drivers\etc\hosts" in dom.text["#hosts-windows"]
        assert words["hosts_windows_open"] in dom.text["#hosts-windows"]
        assert f"chmod 600 {student}.pem" in dom.text["#key-unix"]
        assert f'icacls {student}.pem /inheritance:r /grant:r "%USERNAME%:R"' in dom.text["#key-windows"]
        assert words["key_windows"] in dom.text["#key-windows"]
        assert dom.text[".check-command"].strip() == "sudo flasklab-check"
        assert dom.text[".start-link"].strip() == link_of(student)


def test_a_stack_of_one_student_gets_one_folder_named_by_id(saved_outputs, tmp_path, capsys):
    saved = saved_outputs("dev")
    out = tmp_path / "handouts"
    command = ["class", "handout", "--stack", "dev", "--outputs", str(saved), "--out", str(out)]
    assert main(command) == 0
    assert [path.name for path in out.iterdir()] == ["dev"]
    assert "For dev" in (out / "dev" / "handout.html").read_text()
    assert main([*command, "--mail"]) == 2
    assert "no people data" in capsys.readouterr().err


def test_people_without_a_name_column_value_keep_the_id(handout_project):
    handout_project.people([Person("ana", "", "ana.alvarez@school.example")])
    assert handout(handout_project, "--student", "ana") == 0
    assert "For ana" in page_of(handout_project, "ana")


def test_without_outputs_or_pulumi_it_says_how_to_get_them(handout_project, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(handout_project.root))  # no pulumi on it
    out = handout_project.root / "handouts"
    assert main(["class", "handout", "--stack", STACK, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "pulumi stack output --json --show-secrets" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_a_folder_that_cannot_be_written_is_a_message(handout_project, capsys):
    (handout_project.root / "handouts").write_text("a file, not a folder")
    assert handout(handout_project) == 2
    captured = capsys.readouterr()
    assert "cannot write the handouts" in captured.err and "Traceback" not in captured.err


def test_a_people_file_that_is_not_one_is_a_message(handout_project, capsys):
    handout_project.people_file.write_text("Full name;Mail\nAna;ana@school.example\n")
    assert handout(handout_project) == 2
    captured = capsys.readouterr()
    assert "cannot be read as a people file" in captured.err and "class roster import" in captured.err


def test_a_running_servers_page_gives_its_address_now_a_stopped_ones_is_said(handout_project, ec2, capsys):
    """EC2's view, as the sheet's: a stop and start changes a server's address."""
    from flasklab import plan
    from flasklab.stacks import load_stack_servers
    from tests.test_account import launch, public_ips

    ids = {s.student: launch(ec2, plan.tags(s)).instance_id for s in load_stack_servers(STACK)}
    ec2.stop_instances(InstanceIds=[ids["ana"]])
    assert handout(handout_project) == 0
    now = public_ips(ec2)[ids["ben"]]
    page = page_of(handout_project, "ben")
    assert f"ssh -i ben.pem admin@{now}" in page and handout_project.ip_of("ben") not in page
    assert handout_project.ip_of("ana") in page_of(handout_project, "ana")
    assert "ana: stopped" in capsys.readouterr().err


def test_the_pages_text_version_says_the_same_in_plain_text(handout_project):
    handout_project.stack(language="sv", stage="bare")
    # A name HTML would escape: the text version must give it as it is.
    handout_project.people([Person("carla", "Carla O'Neill & <Co>", "carla.castro@school.example")])
    assert handout(handout_project) == 0
    entry = handout_project.outputs()[outputs.STUDENTS]["carla"]
    text = (folder_of(handout_project, "carla") / "handout.txt").read_text()
    words = texts("sv")
    for line in (
        words["for"].format(name="Carla O'Neill & <Co>"),
        f"    {entry[outputs.HOSTS_LINE]}",
        "    sudo nano /etc/hosts",
        r"    C:\Windows\System32\drivers\etc\hosts",
        "    chmod 600 carla.pem",
        '    icacls carla.pem /inheritance:r /grant:r "%USERNAME%:R"',
        f"    ssh -i carla.pem admin@{entry[outputs.PUBLIC_IP]}",
        "    sudo flasklab-check",
        f"    {link_of('carla')}",
    ):
        assert line in text.splitlines(), line
    assert "&amp;" not in text and "&#39;" not in text  # plain text, not escaped HTML


def test_the_page_escapes_what_the_people_file_and_outputs_say(handout_project):
    handout_project.people([Person("ana", "Ana <script>alert(1)</script> & Co", "ana@school.example")])
    assert handout(handout_project, "--student", "ana") == 0
    page = page_of(handout_project, "ana")
    assert "Ana &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page and "<script>" not in page


def test_a_student_gone_from_the_roster_gets_no_handout_and_is_named(handout_project, capsys):
    roster = handout_project.root / "rosters" / f"{STACK}.csv"
    roster.write_text("student\nana\ncarla\n")
    assert handout(handout_project) == 0
    assert sorted(path.name for path in (handout_project.root / "handouts").iterdir()) == ["ana", "carla"]
    assert "ben: in the outputs but no longer on stack class-demo's roster" in capsys.readouterr().err
