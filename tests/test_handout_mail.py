"""`class handout --mail [--send]`: against a real SMTP server (aiosmtpd, STARTTLS with a
certificate made in the test, a login), each student gets one mail with their own page and
key, and every failure is a message."""

from __future__ import annotations

import re

import pytest

from flasklab.__main__ import main
from flasklab.classroom.handout_mail import SMTP_HOST, SMTP_VARIABLES
from flasklab.handout_texts import texts
from flasklab.people import Person
from tests.handout_project import PEOPLE, STACK, STUDENTS, key_of, link_of
from tests.smtp_server import PASSWORD


def handout(project, *arguments: str) -> int:
    return main(
        [
            "class", "handout", "--stack", STACK, "--outputs", str(project.outputs_file),
            "--out", str(project.root / "handouts"), "--mail", *arguments,
        ]
    )  # fmt: skip


@pytest.fixture
def environment(monkeypatch):
    """set(variables): exactly these FLASKLAB_SMTP_* variables in the environment."""

    def set_variables(variables: dict[str, str]) -> None:
        for name in SMTP_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    set_variables({})
    return set_variables


def output_of(capsys) -> str:
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text and PASSWORD not in text, text
    return text


def test_mail_is_a_dry_run_that_says_what_would_go_to_whom(handout_project, smtp_server, environment, capsys):
    environment(smtp_server.environment())
    assert handout(handout_project) == 0
    text = output_of(capsys)
    subject = texts("en")["mail_subject"].format(course="web-deploy-2026")
    for student in STUDENTS:
        email = PEOPLE[student].email
        assert f"would mail {student} <{email}>: {subject!r}, attached: handout.html, {student}.pem" in text
    assert "dry run: nothing was sent" in text and f"127.0.0.1:{smtp_server.port}" in text
    assert smtp_server.recorder.received == [] and smtp_server.recorder.logins == []


def test_send_mails_each_student_their_own_page_and_key_over_starttls(
    handout_project, smtp_server, environment, capsys
):
    environment(smtp_server.environment())
    assert handout(handout_project, "--send") == 0
    text = output_of(capsys)
    received = smtp_server.recorder.received
    assert sorted(mail.recipients[0] for mail in received) == sorted(p.email for p in PEOPLE.values())
    for mail in received:
        assert mail.over_tls and mail.logged_in
        [email] = mail.recipients
        [student] = [s for s in STUDENTS if PEOPLE[s].email == email]
        message = mail.message
        assert message["To"] == email
        attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
        assert sorted(attachments) == [f"{student}.pem", "handout.html"]
        assert attachments[f"{student}.pem"] == key_of(student).encode()
        page = (handout_project.root / "handouts" / student / "handout.html").read_text()
        # A text part travels with CRLF line ends (RFC 5322); the page is the same.
        assert attachments["handout.html"].replace("\r\n", "\n").rstrip("\n") == page.rstrip("\n")
        assert PEOPLE[student].name in message.get_body(("plain",)).get_content()
        everything = "\n".join(str(part.get_content()) for part in message.walk() if not part.is_multipart())
        for other in set(STUDENTS) - {student}:
            assert not re.search(rf"\b{other}\b", everything), (student, other)
            for theirs in (PEOPLE[other].name, PEOPLE[other].email, link_of(other)):
                assert theirs not in everything and theirs not in str(message), (student, theirs)
            assert key_of(other).splitlines()[1] not in everything
        assert f"mailed {student} <{email}>" in text
    assert "mailed 3 of 3 students" in text


@pytest.mark.parametrize(
    "email, says",
    [
        ("", "no email in"),
        ("ben.berg", "'ben.berg' is not an email address"),
        ("ben@school.example\nBcc: all@school.example", "is not an email address"),
    ],
)
def test_a_student_without_an_email_is_reported_not_guessed(
    handout_project, smtp_server, environment, capsys, email, says
):
    people = dict(PEOPLE)
    people["ben"] = Person("ben", "Benjamin Berg", email)
    handout_project.people(list(people.values()))
    environment(smtp_server.environment())
    assert handout(handout_project, "--send") == 1
    text = output_of(capsys)
    [line] = [line for line in text.splitlines() if line.startswith("NOT mailed: ben: ")]
    assert says in line
    recipients = sorted(mail.recipients[0] for mail in smtp_server.recorder.received)
    assert recipients == sorted([PEOPLE["ana"].email, PEOPLE["carla"].email])


def test_a_refused_mail_is_reported_for_that_student_and_the_others_still_go(
    handout_project, smtp_server, environment, capsys
):
    smtp_server.recorder.refused.add(PEOPLE["ana"].email)
    environment(smtp_server.environment())
    assert handout(handout_project, "--send") == 1
    text = output_of(capsys)
    assert f"NOT mailed: ana <{PEOPLE['ana'].email}>: refused the address: 550" in text
    recipients = sorted(mail.recipients[0] for mail in smtp_server.recorder.received)
    assert recipients == sorted([PEOPLE["ben"].email, PEOPLE["carla"].email])
    assert "mailed 2 of 3 students" in text


def test_a_wrong_password_sends_nothing_and_says_which_variables(
    handout_project, smtp_server, environment, capsys
):
    environment(smtp_server.environment(FLASKLAB_SMTP_PASSWORD="not-it"))
    assert handout(handout_project, "--send") == 2
    text = output_of(capsys)
    assert "nothing was sent" in text and "refused the login" in text and "FLASKLAB_SMTP_PASSWORD" in text
    assert smtp_server.recorder.received == []


def test_a_server_that_cannot_be_reached_is_a_message(handout_project, smtp_server, environment, capsys):
    from tests.smtp_server import free_port

    environment(smtp_server.environment(FLASKLAB_SMTP_PORT=str(free_port())))
    assert handout(handout_project, "--send") == 2
    assert "nothing was sent: cannot reach the mail server 127.0.0.1:" in output_of(capsys)


def test_a_server_without_starttls_gets_no_password_and_no_mail(
    handout_project, plain_smtp_server, environment, capsys
):
    environment(plain_smtp_server.environment())
    assert handout(handout_project, "--send") == 2
    assert "does not offer STARTTLS" in output_of(capsys)
    assert plain_smtp_server.recorder.received == [] and plain_smtp_server.recorder.logins == []


def test_an_untrusted_certificate_sends_nothing(handout_project, smtp_server, environment, capsys):
    variables = smtp_server.environment()
    del variables["FLASKLAB_SMTP_CA_FILE"]
    environment(variables)
    assert handout(handout_project, "--send") == 2
    assert "cannot be trusted" in output_of(capsys)
    assert smtp_server.recorder.received == [] and smtp_server.recorder.logins == []


def test_send_without_the_servers_settings_names_them(handout_project, environment, capsys):
    assert handout(handout_project, "--send") == 2
    text = output_of(capsys)
    assert "nothing was sent" in text and SMTP_HOST in text


def test_send_without_mail_is_refused(handout_project, capsys):
    command = ["class", "handout", "--stack", STACK, "--outputs", str(handout_project.outputs_file), "--send"]
    assert main(command) == 2
    assert "give both" in output_of(capsys)


def test_mail_without_people_data_says_where_they_come_from(handout_project, environment, capsys):
    handout_project.people_file.unlink()
    assert handout(handout_project) == 2
    assert "no people data" in output_of(capsys)
