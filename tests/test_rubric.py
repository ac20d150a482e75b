"""The rubric as data (flasklab.rubric) for every recipe x database x TLS mode, its texts in
every language, the on-server checker's pieces (flasklab/server_check.py) against real
sockets and files, and `class grade`'s files (a CSV per run, Moodle's import)."""

from __future__ import annotations

import csv
import http.server
import json
import os
import pwd
import re
import socket
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flasklab import rubric, server_check
from flasklab.classroom import grade, grade_export, grade_reboot
from flasklab.classroom.check_server import Server, SshOptions
from flasklab.people import Person
from flasklab.recipes import DATABASES, RECIPES, TLS_MODES
from flasklab.rubric_texts import LANGUAGES, texts
from flasklab.settings import ConfigError
from flasklab.stacks import load_stack

COMBINATIONS = [
    (recipe, database, tls)
    for recipe in sorted(RECIPES)
    for database in ("none", *sorted(DATABASES))
    for tls in sorted(TLS_MODES)
]


def settings_of(recipe: str, database: str, tls: str, **more: str):
    overrides = {"recipe": recipe, "database": database, "tls": tls, **more}
    if tls == "letsencrypt":
        overrides |= {
            "tlsEmail": "teacher@school.org",
            "serverName": "flask.school.org",
            "serverAliases": ["www.flask.school.org"],
        }
    return load_stack("dev", overrides)


@pytest.mark.parametrize(("recipe", "database", "tls"), COMBINATIONS)
def test_the_rubric_follows_what_the_recipe_deploys(recipe, database, tls):
    settings = settings_of(recipe, database, tls)
    checkpoints = rubric.rubric(settings)
    keys = [checkpoint.key for checkpoint in checkpoints]
    assert len(keys) == len(set(keys))
    assert all(checkpoint.points > 0 for checkpoint in checkpoints)
    always = {"packages", "app_code", "app_owner", "virtualenv", "service_defined", "service_enabled"}
    assert always | {"service_active", "app_user", "web_config", "site_enabled", "answers_by_name"} <= set(
        keys
    )
    assert ("database_migrated" in keys) is (database != "none")
    assert ("database_page" in keys) is (database != "none")  # the sample app has its /db page
    assert ("https" in keys) is (tls != "none")
    apache = recipe == "apache-modwsgi"
    assert ("restarts" in keys) is not apache  # Apache restarts mod_wsgi's daemons itself
    assert ("answers_locally" in keys) is not apache  # Apache is the app's server
    by_key = {checkpoint.key: checkpoint for checkpoint in checkpoints}
    packages = by_key["packages"].args["packages"]
    assert settings.recipe.web_server.packages[0] in packages
    assert all(package in packages for package in settings.recipe.packages)
    if database != "none":
        assert DATABASES[database].packages[0] in packages
    if not apache:
        assert by_key["answers_locally"].args["address"] == settings.recipe.app_address.format(
            app="flask_app"
        )
        assert by_key["answers_locally"].args["protocol"] == (
            "uwsgi" if settings.recipe.app_server == "uwsgi" else "http"
        )
    assert "debug_off" in keys and "survives_reboot" not in keys  # the reboot only with --reboot
    with_reboot = rubric.rubric(settings, reboot=True)
    assert [c.key for c in with_reboot] == [*keys, "survives_reboot"]
    # Every checkpoint is checked by something: on the server, or by class grade's probes.
    for checkpoint in with_reboot:
        checks = server_check.CHECKS if checkpoint.where == rubric.SERVER else grade.OUTSIDE_PROBES
        assert checkpoint.key in checks, checkpoint.key


def test_an_app_from_a_repository_is_not_asked_for_the_sample_apps_pages():
    settings = settings_of(
        "nginx-gunicorn-systemd", "postgresql", "none", appRepo="https://example.org/a.git"
    )
    keys = {checkpoint.key for checkpoint in rubric.rubric(settings)}
    assert "database_migrated" in keys
    assert not keys & {"database_page", "static_files"}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_text_with_the_same_placeholders():
    english = texts("en")
    for language in LANGUAGES:
        found = texts(language)
        assert sorted(found) == sorted(english), f"{language}: keys differ from en"
        for key, entry in english.items():
            assert sorted(found[key]) == ["hint", "title"], (language, key)
            for part in ("title", "hint"):
                assert found[key][part].strip(), (language, key, part)
                assert _fields(found[key][part]) == _fields(entry[part]), (language, key, part)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_checkpoints_texts_fill_in_for_every_recipe(recipe, language):
    settings = settings_of(recipe, "mariadb", "self-signed", language=language)
    for checkpoint in rubric.rubric(settings):
        title, hint = rubric.title_and_hint(settings, checkpoint, language)
        assert "{" not in title and title, (checkpoint.key, title)
        # Filled in: no placeholder left (nginx's own braces, {{ }} in the data, come out as { }).
        assert hint and not re.search(r"\{[a-z_]+\}", hint), (checkpoint.key, hint)


def test_the_servers_spec_holds_the_on_server_checkpoints_in_the_stacks_language():
    settings = load_stack("t004-postgres", {"language": "sv", "stage": "app"})
    spec = rubric.server_spec(settings)
    keys = [entry["key"] for entry in spec["checkpoints"]]
    assert keys == [c.key for c in rubric.rubric(settings) if c.where == rubric.SERVER]
    assert "answers_by_name" not in keys
    first = spec["checkpoints"][0]
    assert first["title"].startswith("Receptets paket är installerade")


def test_a_stage_and_a_language_outside_the_lists_are_refused():
    with pytest.raises(ConfigError) as refused:
        load_stack("dev", {"stage": "halfway", "language": "fr"})
    assert "stage: 'halfway' is not a stage" in str(refused.value)
    assert "language: 'fr' is not one of the rubric's languages: en, es, sv" in str(refused.value)


# The on-server checker, piece by piece, against real sockets and files.


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.headers["Host"] == "practica_flask" else 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args) -> None:
        pass


class _UnixHTTPServer(http.server.HTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "localhost", 0

    def get_request(self):
        connection, _ = self.socket.accept()
        return connection, ("local", 0)


def test_answers_locally_speaks_http_on_a_unix_socket_with_the_server_name(tmp_path):
    path = str(tmp_path / "app.sock")
    server = _UnixHTTPServer(path, _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        args = {"address": f"unix:{path}", "protocol": "http", "host": "practica_flask", "path": "/"}
        passed, evidence = server_check.answers_locally(args)
        assert passed, evidence
        assert "200" in evidence
        passed, evidence = server_check.answers_locally({**args, "host": "other"})
        assert not passed and "404" in evidence
    finally:
        server.shutdown()
        server.server_close()
    passed, evidence = server_check.answers_locally({**args, "address": f"unix:{tmp_path}/none.sock"})
    assert not passed and "none.sock" in evidence


def test_answers_locally_speaks_the_uwsgi_protocol_on_a_port():
    """A uwsgi server's view: 4 header bytes, then the variables it decodes; it answers HTTP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: dict[str, str] = {}

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            header = connection.recv(4)
            size = int.from_bytes(header[1:3], "little")
            body = b""
            while len(body) < size:
                body += connection.recv(size - len(body))
            while body:
                key_length = int.from_bytes(body[:2], "little")
                key, body = body[2 : 2 + key_length], body[2 + key_length :]
                value_length = int.from_bytes(body[:2], "little")
                value, body = body[2 : 2 + value_length], body[2 + value_length :]
                received[key.decode()] = value.decode()
            connection.sendall(b"HTTP/1.1 200 OK\r\n\r\nhello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    args = {"address": f"127.0.0.1:{port}", "protocol": "uwsgi", "host": "practica_flask", "path": "/db?x=1"}
    passed, evidence = server_check.answers_locally(args)
    thread.join(5)
    listener.close()
    assert passed, evidence
    assert received["HTTP_HOST"] == "practica_flask"
    assert (received["PATH_INFO"], received["QUERY_STRING"]) == ("/db", "x=1")


def test_app_owner_and_app_code_look_at_the_real_folder(tmp_path):
    me = pwd.getpwuid(os.getuid()).pw_name
    assert server_check.app_owner({"dir": str(tmp_path), "user": me})[0]
    passed, evidence = server_check.app_owner({"dir": str(tmp_path), "user": "flask_app"})
    assert not passed and me in evidence
    files = [str(tmp_path / "wsgi.py"), str(tmp_path / "wsgi/__init__.py")]
    assert not server_check.app_code({"files": files})[0]
    (tmp_path / "wsgi.py").write_text("app = None\n")
    assert server_check.app_code({"files": files})[0]


def test_a_broken_check_fails_its_checkpoint_only_and_the_report_gives_the_hint():
    spec = {
        "checkpoints": [
            {"key": "app_code", "points": 1, "args": {"files": ["/"]}, "title": "code", "hint": "put it"},
            {"key": "app_owner", "points": 2, "args": {}, "title": "owner", "hint": "chown it"},
        ]
    }
    results = server_check.check_all(spec)
    assert [r["passed"] for r in results] == [False, False]
    assert "the check itself failed" in results[1]["evidence"]
    text = server_check.report(results)
    assert "[FAIL] owner (2)" in text and "-> chown it" in text
    assert "0 of 3 points" in text


def _debug_args(tmp_path: Path, marker: str) -> dict[str, str]:
    return {"serving": marker, "env_file": str(tmp_path / "env")}


def test_debug_off_reads_the_running_apps_environment_and_its_env_file(tmp_path):
    marker = f"flasklab-test-app-{os.getpid()}"
    args = _debug_args(tmp_path, marker)
    passed, evidence = server_check.debug_off(args)
    assert not passed and "no process runs" in evidence  # nothing runs: nothing to say it is off
    program = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    for environment, off in ({}, True), ({"FLASK_DEBUG": "1"}, False), ({"FLASK_ENV": "development"}, False):
        app = subprocess.Popen(program, env={"PATH": os.environ["PATH"], **environment})
        try:
            time.sleep(0.3)
            passed, evidence = server_check.debug_off(args)
        finally:
            app.kill()
            app.wait()
        assert passed is off, (environment, evidence)
        if not off:
            assert f"environment of process {app.pid}" in evidence
    app = subprocess.Popen(program, env={"PATH": os.environ["PATH"], "FLASK_DEBUG": "0"})
    try:
        time.sleep(0.3)
        assert server_check.debug_off(args)[0]
        (tmp_path / "env").write_text("SECRET_KEY=x\nexport FLASK_DEBUG='true'\n")
        passed, evidence = server_check.debug_off(args)
        assert not passed and f"export FLASK_DEBUG='true' in {tmp_path / 'env'}" in evidence
    finally:
        app.kill()
        app.wait()


def test_a_reboot_of_a_server_that_does_not_answer_is_not_waited_for_past_its_deadline(tmp_path):
    from tests.test_class_check import closed_port

    settings = load_stack("dev")
    key = tmp_path / "key"
    key.write_text("not a key")
    server = Server("dev", settings, "127.0.0.1", settings.server_names, key_file=key, ssh_port=closed_port())
    started = time.monotonic()
    rebooted = grade_reboot.reboot_and_wait(server, 5, SshOptions(known_hosts=tmp_path / "known_hosts"))
    assert time.monotonic() - started < 10
    assert not rebooted.back and "not rebooted: SSH before the reboot" in rebooted.evidence
    mark = grade.survives_reboot_mark(server, 5, 5, SshOptions(known_hosts=tmp_path / "known_hosts"))
    assert (mark.key, mark.passed, mark.points) == ("survives_reboot", False, 2)


# class grade's files.


def _grade(student: str, passes: list[bool]) -> grade.Grade:
    marks = tuple(
        grade.Mark(f"k{index}", f"title {index}", index + 1, passed, "evidence", "hint")
        for index, passed in enumerate(passes)
    )
    return grade.Grade(student, "192.0.2.1", marks)


def _moodle_rows(tmp_path: Path, grades: list[grade.Grade], people: dict[str, Person]):
    path = tmp_path / "moodle.csv"
    identifier = grade_export.write_moodle_csv(grades, path, people)
    return identifier, list(csv.reader(path.open(newline="", encoding="utf-8")))


def test_the_moodle_export_identifies_students_by_the_lms_email_beside_flasklabs_id(tmp_path: Path):
    grades = [_grade("ana", [True, True, True]), _grade("jose-garcia", [True, False, True])]
    people = {
        "ana": Person("ana", "Ana Lind", "ana.lind@school.se", "alind", "1001"),
        "jose-garcia": Person("jose-garcia", "José García", "jose.garcia@school.es", "jgarcia", "1002"),
        "not-graded": Person("not-graded", "Otto", "otto@school.se"),
    }
    identifier, rows = _moodle_rows(tmp_path, grades, people)
    assert rows == [
        ["flasklab_student", "email", "grade"],
        ["ana", "ana.lind@school.se", "100.00"],
        ["jose-garcia", "jose.garcia@school.es", "66.67"],
    ]
    assert identifier is not None and identifier.moodle_field == "Email address"
    assert "Map from email to Email address" in grade_export.moodle_mapping(identifier)


def test_the_moodle_identifier_is_one_every_graded_student_has(tmp_path: Path):
    grades = [_grade("ana", [True]), _grade("ben", [False])]
    # Canvas-style people: a login for everyone, an email for one only.
    people = {"ana": Person("ana", "Ana", "ana@school.se", "ana.l"), "ben": Person("ben", "Ben", "", "ben.k")}
    identifier, rows = _moodle_rows(tmp_path, grades, people)
    assert rows[0] == ["flasklab_student", "username", "grade"]
    assert rows[1:] == [["ana", "ana.l", "100.00"], ["ben", "ben.k", "0.00"]]
    assert identifier is not None and identifier.moodle_field == "Username"
    people = {"ana": Person("ana", "Ana", lms_id="7"), "ben": Person("ben", "Ben", lms_id="8")}
    identifier, rows = _moodle_rows(tmp_path, grades, people)
    assert rows[0] == ["flasklab_student", "idnumber", "grade"] and identifier.moodle_field == "ID number"


def test_without_people_the_moodle_export_says_what_its_only_column_can_map_to(tmp_path: Path):
    identifier, rows = _moodle_rows(tmp_path, [_grade("ana", [True, False])], {})
    assert identifier is None
    assert rows == [["flasklab_student", "grade"], ["ana", "33.33"]]
    assert "to Username only if" in grade_export.moodle_mapping(None)


def test_the_grades_csv_has_a_row_per_checkpoint_and_the_total(tmp_path: Path):
    path = tmp_path / "grades.csv"
    grade_export.write_grades_csv([_grade("ben", [True, False])], path)
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert [(r["checkpoint"], r["points"], r["scored"]) for r in rows] == [
        ("k0", "1", "1"),
        ("k1", "2", "0"),
        ("total", "3", "1"),
    ]


def test_grade_files_are_never_overwritten(tmp_path: Path):
    first = grade.new_file(tmp_path, "grades", "20260101T000000Z")
    first.write_text("first run")
    second = grade.new_file(tmp_path, "grades", "20260101T000000Z")
    assert second != first and first.read_text() == "first run"
    assert re.fullmatch(r"grades-20260101T000000Z-2\.csv", second.name)


def test_class_grade_names_an_unknown_student_and_exits_2(capsys):
    from flasklab.__main__ import main

    assert (
        main(["class", "grade", "--stack", "class-demo", "--student", "zed", "--outputs", "/dev/null"]) == 2
    )
    err = capsys.readouterr().err
    assert "zed" in err and "Traceback" not in err


def test_class_grade_of_a_server_that_does_not_answer_scores_0_and_writes_both_files(tmp_path, capsys):
    from flasklab.__main__ import main
    from flasklab.classroom import check
    from tests.test_class_check import closed_port

    refused = closed_port()
    outputs = tmp_path / "outputs.json"
    entry = {"publicIp": "127.0.0.1", "serverNames": ["ana.practica_flask"], "hostsLine": ""}
    outputs.write_text(json.dumps({"students": {"ana": entry}}))
    original = check.Server
    arguments = ["class", "grade", "--stack", "class-demo", "--student", "ana", "--outputs", str(outputs)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(check, "Server", lambda **fields: original(**fields, http_port=refused))
        status = main([*arguments, "--timeout", "5", "--out", str(tmp_path / "grades")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    (moodle,) = (tmp_path / "grades").glob("moodle-*.csv")
    assert moodle.read_text().splitlines() == ["flasklab_student,grade", "ana,0.00"]
    (index,) = (tmp_path / "grades").glob("pages-*/index.html")
    assert (index.parent / "ana.html").is_file() and moodle.name.removeprefix("moodle-") in (
        f"{index.parent.name.removeprefix('pages-')}.csv"
    )
    (grades,) = (tmp_path / "grades").glob("grades-*.csv")
    rows = list(csv.DictReader(grades.open(encoding="utf-8")))
    assert {row["student"] for row in rows} == {"ana"}
    assert "no SSH key" in next(row["evidence"] for row in rows if row["checkpoint"] == "packages")
    assert "answers_by_name" in printed
    assert "survives_reboot" not in {row["checkpoint"] for row in rows}  # only with --reboot

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(check, "Server", lambda **fields: original(**fields, http_port=refused))
        status = main([*arguments, "--timeout", "5", "--out", str(tmp_path / "grades"), "--reboot"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert len(list((tmp_path / "grades").glob("grades-*.csv"))) == 2  # the first run's is kept
    assert len(list((tmp_path / "grades").glob("pages-*/ana.html"))) == 2
    newest = max((tmp_path / "grades").glob("grades-*.csv"), key=lambda path: path.stat().st_mtime_ns)
    rebooted = [
        row for row in csv.DictReader(newest.open(encoding="utf-8")) if row["checkpoint"] == "survives_reboot"
    ]
    assert [(row["points"], row["scored"]) for row in rebooted] == [("2", "0")]
    assert "not rebooted: no SSH key" in rebooted[0]["evidence"]


def test_class_grade_takes_moodles_identifier_from_the_rosters_people_file(roster, tmp_path, capsys):
    from flasklab import roster as roster_module
    from flasklab.people import people_path, write_people

    people_file = people_path(roster_module.roster_path("rosters/class-demo.csv"))
    assert people_file.parent.is_relative_to(tmp_path)  # the stand-in project, not the repository's
    assert grade.stack_people("class-demo") == {}  # no people file: no identifier
    write_people(people_file, [Person("ana", "Ana Lind", "ana.lind@school.se", "alind")])
    assert grade.stack_people("class-demo")["ana"].email == "ana.lind@school.se"
    people_file.write_text("name,email\nAna,ana@school.se\n", encoding="utf-8")  # not what import writes
    assert grade.stack_people("class-demo") == {}
    err = capsys.readouterr().err
    assert "class roster import" in err and "Traceback" not in err
