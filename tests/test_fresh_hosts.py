"""After a start, the hosts file from EC2's addresses now (moto): `class start` prints it and
writes it where `class sheet` writes its own, `class status` prints it; with Elastic IPs
(staticAddress) the addresses do not change and the teacher is told so."""

from __future__ import annotations

import pytest

from flasklab import plan
from flasklab.__main__ import main
from flasklab.classroom import power
from flasklab.stacks import load_stack_servers
from tests.conftest import REGION
from tests.test_account import launch, public_ips


@pytest.fixture
def class_demo(ec2) -> dict[str, str]:
    """class-demo's three servers, tagged as `pulumi up` tags them: student -> instance id."""
    return {s.student: launch(ec2, plan.tags(s)).instance_id for s in load_stack_servers("class-demo")}


@pytest.fixture
def sheets(monkeypatch, tmp_path):
    """Where `class start` writes sheets/<stack>/hosts: a folder of the test's, not the project's."""
    monkeypatch.setattr(power, "SHEETS_DIR", tmp_path / "sheets")
    return tmp_path / "sheets"


def hosts_lines(text: str) -> dict[str, str]:
    """name -> address, from the lines of a hosts file."""
    return {
        name: line.split()[0] for line in text.splitlines() if line[:1].isdigit() for name in line.split()[1:]
    }


def test_start_prints_and_writes_the_hosts_file_with_the_new_addresses(ec2, class_demo, sheets, capsys):
    assert main(["class", "stop", "--stack", "class-demo"]) == 0
    before = public_ips(ec2)
    assert main(["class", "start", "--stack", "class-demo"]) == 0
    out = capsys.readouterr().out
    now = public_ips(ec2)
    # moto gives an instance a new public address at each start, as EC2 does without an
    # Elastic IP: the precondition of this test, checked rather than assumed.
    assert all(now[i] and now[i] != before.get(i) for i in class_demo.values())
    printed = hosts_lines(out)
    written = (sheets / "class-demo" / "hosts").read_text()
    for student, instance in class_demo.items():
        assert printed[f"{student}.practica_flask"] == now[instance]
        assert hosts_lines(written)[f"{student}.practica_flask"] == now[instance]
    assert written.startswith("# Written by flasklab (python -m flasklab class start --stack class-demo)")
    assert "Paste these lines once at the end of the hosts file" in written
    assert f"written to {sheets / 'class-demo' / 'hosts'}" in out.replace("\n", "")
    assert "did not change" not in out


def test_starting_one_student_rewrites_the_whole_classs_file(ec2, class_demo, sheets, capsys):
    ec2.stop_instances(InstanceIds=[class_demo["ben"]])
    assert main(["class", "start", "--stack", "class-demo", "--student", "ben"]) == 0
    now = public_ips(ec2)
    written = hosts_lines((sheets / "class-demo" / "hosts").read_text())
    assert {name.split(".")[0] for name in written} == {"ana", "ben", "carla"}
    assert written["ben.practica_flask"] == now[class_demo["ben"]]


def test_with_elastic_ips_start_says_the_addresses_did_not_change(ec2, class_demo, sheets, capsys):
    elastic = {}
    for student, instance in class_demo.items():
        address = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=instance)
        elastic[student] = address["PublicIp"]
    assert main(["class", "stop", "--stack", "class-demo"]) == 0
    assert main(["class", "start", "--stack", "class-demo"]) == 0
    out = capsys.readouterr().out
    assert "their addresses did not change: each has an Elastic IP (staticAddress)" in out.replace("\n", " ")
    assert not (sheets / "class-demo" / "hosts").exists(), "nothing new to hand out"
    # class status reads each server's address from its Elastic IP (moto, unlike EC2, gives
    # the instance another public address at each start even with one: the Elastic IP is
    # what EC2 reports and the students reach).
    assert main(["class", "status", "--stack", "class-demo"]) == 0
    out = capsys.readouterr().out
    assert "Every server has an Elastic IP (staticAddress)" in out
    printed = hosts_lines(out)
    assert {student: printed[f"{student}.practica_flask"] for student in elastic} == elastic


def test_one_server_without_an_elastic_ip_gets_the_file_anew(ec2, class_demo, sheets, capsys):
    address = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=class_demo["ana"])
    assert main(["class", "stop", "--stack", "class-demo"]) == 0
    assert main(["class", "start", "--stack", "class-demo"]) == 0
    written = hosts_lines((sheets / "class-demo" / "hosts").read_text())
    assert written["ana.practica_flask"] == address["PublicIp"]
    assert written["ben.practica_flask"] == public_ips(ec2)[class_demo["ben"]]


def test_a_start_that_starts_nothing_writes_nothing(ec2, class_demo, sheets, capsys):
    assert main(["class", "start", "--stack", "class-demo"]) == 0
    assert "nothing to start" in capsys.readouterr().out
    assert not sheets.exists()


def test_a_start_that_outlasts_the_wait_says_what_to_do(ec2, class_demo, sheets, capsys, monkeypatch):
    ec2.stop_instances(InstanceIds=list(class_demo.values()))
    monkeypatch.setattr(power, "WAIT", {"Delay": 0, "MaxAttempts": 1})
    real_wait = power.wait

    def stuck(client, change, ids):
        client.stop_instances(InstanceIds=ids)  # still not running when the wait looks
        real_wait(client, change, ids)

    monkeypatch.setattr(power, "wait", stuck)
    assert main(["class", "start", "--stack", "class-demo", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "gave up waiting" in err and "class status" in err and "Traceback" not in err


def test_starting_only_servers_with_elastic_ips_changes_no_address(ec2, class_demo, sheets, capsys):
    """ben and carla have no Elastic IP but were not stopped: their addresses stay too."""
    address = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=class_demo["ana"])
    assert main(["class", "stop", "--stack", "class-demo", "--student", "ana"]) == 0
    assert main(["class", "start", "--stack", "class-demo", "--student", "ana"]) == 0
    assert "their addresses did not change" in capsys.readouterr().out
    assert not (sheets / "class-demo" / "hosts").exists()
