"""`class check` against three rehearsed servers of a class at once, one broken on purpose:
real web servers, real SSH with the stack's keys, real flasklab-status and ps."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess

import pytest

from flasklab import plan, stacks
from flasklab.__main__ import main
from flasklab.classroom.outputs import student_entry
from flasklab.rehearsal.target import target_for
from flasklab.stacks import load_stack_servers
from tests.conftest import boot_prerequisites_missing
from tests.container_tools import run_inside

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(bool(boot_prerequisites_missing()), reason=boot_prerequisites_missing()),
]

# Three managers: systemd (ana), supervisor (ben, broken below), Apache with HTTPS (carla).
ROSTER = "student,recipe,tls\nana,,\nben,nginx-gunicorn-supervisor,\ncarla,apache-modwsgi,self-signed\n"


@pytest.fixture
def class_stack(tmp_path, monkeypatch, roster):
    """A class stack `checked` of ROSTER, in a stand-in stacks/ folder."""
    roster(ROSTER)
    folder = tmp_path / "stacks"
    folder.mkdir()
    (folder / "Pulumi.checked.yaml").write_text(
        "config:\n  flasklab:roster: rosters/test.csv\n  flasklab:serverAliases:\n    - www.practica_flask\n"
    )
    monkeypatch.setattr(stacks, "STACKS_DIR", folder)
    return "checked"


def outputs_of(servers, addresses: dict[str, str], private_key: str) -> dict:
    """What `pulumi stack output --json --show-secrets` says of the class, at the containers."""
    return {
        "students": {
            s.student: student_entry(
                addresses[s.student],
                "",
                list(s.server_names),
                f"http://{s.server_name}/",
                plan.hosts_line_of(addresses[s.student], s.server_names),
                f"ssh admin@{addresses[s.student]}",
                "",
                "",
            )
            for s in servers
        },
        "sshPrivateKeys": {s.student: private_key for s in servers},
    }


def test_class_check_passes_two_servers_and_names_what_failed_on_the_third(
    class_stack, rehearsal_of, tmp_path, capsys
):
    key = tmp_path / "stack-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    servers = load_stack_servers(class_stack)
    public_key = key.with_suffix(".pub").read_text().strip()
    targets = {s.student: dataclasses.replace(target_for(s), ssh_public_key=public_key) for s in servers}
    rehearsals = {student: rehearsal_of(target) for student, target in targets.items()}
    for student, rehearsal in rehearsals.items():
        outcome = rehearsal.wait()
        assert outcome.ok, f"{student}: {rehearsal.report(outcome)}"
    stopped = run_inside(rehearsals["ben"], "supervisorctl stop flask_app")
    assert stopped.returncode == 0, stopped
    addresses = {student: r.container.address for student, r in rehearsals.items()}
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_of(servers, addresses, key.read_text())))
    sheet = tmp_path / "check.csv"

    options = ["--outputs", str(outputs), "--csv", str(sheet), "--timeout", "60"]
    options += ["--known-hosts", str(tmp_path / "known_hosts")]
    status = main(["class", "check", "--stack", class_stack, *options])

    printed = capsys.readouterr().out
    assert status == 1, printed
    rows = {row["student"]: row for row in csv.DictReader(sheet.open())}
    assert rows["ana"]["result"] == "ok", printed
    assert rows["carla"]["result"] == "ok", printed
    assert rows["carla"]["HTTPS"] == "ok", printed  # verified against the certificate read over SSH
    assert rows["ana"]["HTTPS"] == "not configured"
    ben = rows["ben"]
    assert ben["result"] == "failed"
    assert (ben["reachable"], ben["cloud-init"], ben["static files"]) == ("ok", "ok", "ok")
    assert ben["app by each name"] == "not served"
    assert ben["app under its manager"] == "not running"
    assert "nothing runs as flask_app" in ben["problems"]
    assert "ben (" in printed and "http://ben.practica_flask/ answered 502" in printed

    # The same servers graded (finished servers: the rubric agrees with the recipes, with
    # supervisor and with Apache and HTTPS): full marks but for ben's stopped app.
    grades_dir = tmp_path / "grades"
    options = [
        "--outputs",
        str(outputs),
        "--out",
        str(grades_dir),
        "--known-hosts",
        str(tmp_path / "known_hosts"),
    ]
    assert main(["class", "grade", "--stack", class_stack, *options]) == 0
    printed = capsys.readouterr().out
    (grades_csv,) = grades_dir.glob("grades-*.csv")
    (moodle_csv,) = grades_dir.glob("moodle-*.csv")
    marks = list(csv.DictReader(grades_csv.open()))
    failing = {
        (m["student"], m["checkpoint"]) for m in marks if m["checkpoint"] != "total" and m["scored"] == "0"
    }
    wrong = {m["student"]: m["evidence"] for m in marks if (m["student"], m["checkpoint"]) in failing}
    # debug_off too: with no process of the app, nothing shows its debug mode is off.
    stopped_app = ("service_active", "app_user", "debug_off", "answers_locally", "answers_by_name")
    expected = {("ben", key) for key in stopped_app}
    assert failing == expected, f"{printed}\n{wrong}"
    moodle = {row["flasklab_student"]: row["grade"] for row in csv.DictReader(moodle_csv.open())}
    assert moodle["ana"] == moodle["carla"] == "100.00"
    assert float(moodle["ben"]) < 100
    assert {m["checkpoint"] for m in marks if m["student"] == "carla"} >= {
        "https",
        "static_files",
        "site_enabled",
    }
