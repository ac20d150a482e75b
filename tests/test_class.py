"""A class stack: one roster -> one server per student, under Pulumi's mocks."""

from __future__ import annotations

import pytest

from flasklab import plan
from flasklab.classroom.outputs import parse_outputs
from flasklab.roster import MAX_STUDENTS
from flasklab.settings import ConfigError
from flasklab.stacks import load_stack, load_stack_servers
from tests.conftest import FAKE_IP, MOCK_PRIVATE_KEY, MOCK_PUBLIC_KEY, TLS_PRIVATE_KEY, mock_ami
from tests.test_program import INSTANCE, KEY_PAIR, SECURITY_GROUP, assert_only_ever_secret, user_data_sent

STUDENT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenBenBenBenBenBenBenBenBenBenBenBenBenBenB ben@laptop"


def by_name(run, type_: str) -> dict[str, dict]:
    return {resource["name"]: resource for resource in run.of_type(type_)}


def test_a_roster_of_three_makes_a_tagged_server_per_student(run_program):
    run = run_program("class-demo")
    instances = by_name(run, INSTANCE)
    assert sorted(instances) == [f"flasklab-class-demo-{s}-instance" for s in ("ana", "ben", "carla")]
    for student in ("ana", "ben", "carla"):
        tags = instances[f"flasklab-class-demo-{student}-instance"]["inputs"]["tags"]
        assert tags[plan.TAG_STUDENT] == student
        assert tags[plan.TAG_STACK] == "class-demo"
        assert tags[plan.TAG_COURSE] == "web-deploy-2026"
    # Each student's own recipe, database and names reach their server.
    ben = user_data_sent(instances["flasklab-class-demo-ben-instance"]["inputs"])
    assert "recipe nginx-uwsgi-systemd" in ben
    carla = user_data_sent(instances["flasklab-class-demo-carla-instance"]["inputs"])
    assert "recipe apache-modwsgi" in carla and "postgresql" in carla
    assert "ServerName carla.practica_flask" in carla
    assert len(run.of_type(SECURITY_GROUP)) == len(run.of_type(KEY_PAIR)) == 3
    assert len(run.of_type("flasklab:index:ServerReadiness")) == 3


def test_a_class_stack_exports_each_students_access_and_keeps_their_keys_secret(run_program):
    run = run_program("class-demo")
    students = {access.student: access for access in parse_outputs(run.outputs, "class-demo")}
    assert sorted(students) == ["ana", "ben", "carla"]
    ana = students["ana"]
    assert ana.public_ip == FAKE_IP
    assert ana.server_names == ("ana.practica_flask", "ana.www.practica_flask")
    assert ana.hosts_line == f"{FAKE_IP} ana.practica_flask ana.www.practica_flask"
    assert ana.url == "http://ana.practica_flask/"
    assert ana.ssh_command == f"ssh -i flasklab-class-demo-ana.pem admin@{FAKE_IP}"
    assert ana.first_boot_seconds is not None
    assert ana.ssh_private_key == MOCK_PRIVATE_KEY
    assert "sshPrivateKeys" in run.secret_outputs
    assert "students" not in run.secret_outputs  # what the teacher hands out is not secret...
    assert_only_ever_secret(run, MOCK_PRIVATE_KEY, outputs_too=False)  # ...and the keys are


def test_the_students_servers_are_waited_for_side_by_side(run_program):
    run_program.http_check_seconds = 0.5
    run = run_program("class-demo")
    assert len(run.http_checks) == 3
    assert run.most_checks_at_once == 3


def test_a_server_that_does_not_serve_is_reported_by_student_and_every_result_reaches_the_outputs(
    run_program,
):
    run_program.http_problems = ["connection refused"]
    run = run_program("class-demo")
    # A class's wait reports rather than fails: outputs are written only by an update that
    # succeeds, and the other students' servers must not lose theirs.
    assert run.failed_commands == []
    assert sorted(warning.split(":")[0] for warning in run.warnings) == ["ana", "ben", "carla"]
    assert all("class rebuild --stack class-demo" in warning for warning in run.warnings)
    assert run.outputs["readiness"] == {
        student: f"not served at {FAKE_IP}: connection refused" for student in ("ana", "ben", "carla")
    }


def test_a_students_own_public_key_replaces_the_generated_one(run_program, roster):
    roster("student,sshPublicKey\nana,\nben," + STUDENT_KEY + "\n")
    run = run_program("class-demo", roster="rosters/test.csv")
    keys = by_name(run, KEY_PAIR)
    assert keys["flasklab-class-demo-ben-key"]["inputs"]["publicKey"] == STUDENT_KEY
    assert keys["flasklab-class-demo-ana-key"]["inputs"]["publicKey"] == MOCK_PUBLIC_KEY
    assert sorted(r["name"] for r in run.of_type(TLS_PRIVATE_KEY)) == ["flasklab-class-demo-ana-ssh-key"]
    students = {access.student: access for access in parse_outputs(run.outputs, "class-demo")}
    assert students["ben"].ssh_command == f"ssh admin@{FAKE_IP}"
    assert students["ben"].ssh_private_key == ""


def test_removing_a_student_leaves_the_others_servers_exactly_as_they_were(run_program, roster):
    roster("student\nana\nben\ncarla\n")
    whole = run_program("class-demo", roster="rosters/test.csv")
    roster("student\nana\ncarla\n")
    without_ben = run_program("class-demo", roster="rosters/test.csv")
    kept = {(r["type"], r["name"]): r["inputs"] for r in without_ben.resources}
    before = {(r["type"], r["name"]): r["inputs"] for r in whole.resources}
    assert {key for key in before if key not in kept} == {key for key in before if "-ben" in key[1]}
    assert all(before[key] == inputs for key, inputs in kept.items())


def test_two_hundred_students_make_two_hundred_servers(run_program, roster):
    students = [f"s{number:03d}" for number in range(200)]
    roster("student\n" + "\n".join(students) + "\n")
    run = run_program("class-demo", roster="rosters/test.csv")
    assert len(run.of_type(INSTANCE)) == 200
    accesses = parse_outputs(run.outputs, "class-demo")
    assert [access.student for access in accesses] == students
    names = [name for access in accesses for name in access.server_names]
    assert len(names) == len(set(names)) == 400


def test_every_bad_row_is_reported_at_once_by_line_before_any_resource(run_program, roster):
    roster(
        "student,recipe\n"
        "ana,\n"
        "Ana García,\n"  # line 3: not a usable name
        "ana,\n"  # line 4: twice
        "ben,nginx-unicorn\n"  # line 5: a setting the checks refuse
        "carla,apache-modwsgi,extra\n"  # line 6: more cells than columns
    )
    with pytest.raises(Exception, match="nothing was created") as error:
        run_program("class-demo", roster="rosters/test.csv")
    message = str(error.value)
    assert "line 3: student 'Ana García' is not a usable name" in message
    assert "line 4: student ana is already on an earlier line" in message
    assert "line 5 (ben): recipe" in message and "nginx-unicorn" in message
    assert "line 6 has 3 cells but the header names 2 columns" in message
    assert run_program.runs[-1].resources == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name,recipe\nana,\n", "line 1 must be the header and name a `student` column"),
        ("student,password\nana,x\n", "'password' is not a column a roster may have"),
        ("student\n", "the roster has no students"),
        ("student,serverName\nana,one.example.org\nben,one.example.org\n", "is ana's too"),
        (b"student\nb\xe9a\n", "is not UTF-8 text"),
        ("student\n" + "".join(f"s{n}\n" for n in range(MAX_STUDENTS + 1)), "Split the class"),
    ],
)
def test_a_bad_roster_is_refused_with_its_fix(roster, text, problem):
    roster(text)
    with pytest.raises(ConfigError, match="nothing was created") as error:
        load_stack_servers("class-demo", {"roster": "rosters/test.csv"})
    assert problem in str(error.value)


def test_a_problem_of_the_whole_stack_is_reported_once_not_once_per_student(roster):
    roster("student,recipe\nana,\nben,nginx-unicorn\ncarla,\n")
    with pytest.raises(ConfigError) as error:
        load_stack_servers("class-demo", {"roster": "rosters/test.csv", "workers": 0})
    problems = error.value.problems
    assert len([problem for problem in problems if problem.startswith("workers")]) == 1, problems
    assert not [problem for problem in problems if "workers" in problem and "line" in problem], problems
    assert any("line 3 (ben): recipe" in problem for problem in problems), problems


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.csv", "rosters/missing.csv"])
def test_a_roster_outside_the_project_or_missing_is_refused(path):
    with pytest.raises(ConfigError, match="roster: ") as error:
        load_stack_servers("class-demo", {"roster": path})
    assert "rosters/class-a.csv" in str(error.value) or "Create it" in str(error.value)


def test_a_row_naming_its_server_gets_only_its_own_aliases(roster):
    roster(
        "student,serverName,serverAliases\nana,ana.example.org,www.ana.example.org\nben,ben.example.org,\n"
    )
    ana, ben = load_stack_servers("class-demo", {"roster": "rosters/test.csv"})
    assert ana.server_names == ("ana.example.org", "www.ana.example.org")
    assert ben.server_names == ("ben.example.org",)


def test_rehearsing_a_class_stack_picks_a_student(roster):
    assert load_stack("class-demo").student == "ana"  # the roster's first
    assert load_stack("class-demo", student="carla").recipe.name == "apache-modwsgi"
    with pytest.raises(ConfigError, match=r"zoe is not a student of stack class-demo\. Its students: ana"):
        load_stack("class-demo", student="zoe")


def test_every_students_instance_group_and_key_pair_carry_the_tags_class_commands_find(run_program):
    run = run_program("class-demo")
    for settings in load_stack_servers("class-demo"):
        name = f"flasklab-class-demo-{settings.student}"
        expected = plan.tags(settings)
        assert expected[plan.TAG_SERVER_NAMES] == " ".join(settings.server_names)
        assert by_name(run, SECURITY_GROUP)[f"{name}-sg"]["inputs"]["tags"] == expected
        assert by_name(run, KEY_PAIR)[f"{name}-key"]["inputs"]["tags"] == expected
        instance_tags = by_name(run, INSTANCE)[f"{name}-instance"]["inputs"]["tags"]
        built = ("image", plan.TAG_BUILD, plan.TAG_CONFIG)  # what it was built from (test_term.py)
        assert {k: v for k, v in instance_tags.items() if k not in built} == expected


def test_the_class_looks_up_each_debian_image_once_and_each_server_boots_its_own(run_program, roster):
    """One DescribeImages per image, not one per student, and each student's server boots
    the image of their release."""
    releases = {f"s{n}": "12" if n % 4 == 0 else "13" for n in range(8)}
    roster("student,debianRelease\n" + "".join(f"{s},{r}\n" for s, r in releases.items()))
    run = run_program("class-demo", roster="rosters/test.csv")
    lookups = [c["args"] for c in run.calls if c["token"] == "aws:ec2/getAmi:getAmi"]
    image_of = {name_filter(lookup): mock_ami(lookup)["id"] for lookup in lookups}
    assert len(lookups) == 2 and set(image_of) == {"debian-12-amd64-*", "debian-13-amd64-*"}
    instances = by_name(run, INSTANCE)
    for student, release in releases.items():
        instance = instances[f"flasklab-class-demo-{student}-instance"]["inputs"]
        assert instance["ami"] == image_of[f"debian-{release}-amd64-*"]


def name_filter(lookup: dict) -> str:
    [pattern] = [f["values"][0] for f in lookup["filters"] if f["name"] == "name"]
    return pattern
