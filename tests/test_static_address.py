"""staticAddress under Pulumi's mocks: an Elastic IP per server with its association, the
outputs and the wait at that address, and no server replaced by turning it on (or by a
rebuild, which the association follows: tests/replacement_plan.py)."""

from __future__ import annotations

from flasklab import plan, readiness
from flasklab.settings import load_settings
from tests.conftest import (
    EIP_ASSOCIATION,
    ELASTIC_IP,
    FAKE_IP,
    LOCAL_COMMAND,
    REMOTE_COMMAND,
    mock_elastic_ip,
)
from tests.replacement_plan import INSTANCE, changed, replaced, unwrap

CLASS = "class-demo"
STUDENTS = ("ana", "ben", "carla")
# The build and drift tags are the instance's own (what it was built from): not the address's.
INSTANCE_ONLY_TAGS = {"image", plan.TAG_BUILD, plan.TAG_CONFIG}


def test_without_the_setting_no_elastic_ip_is_made(run_program):
    run = run_program("dev")
    assert run.of_type(ELASTIC_IP) == [] and run.of_type(EIP_ASSOCIATION) == []
    assert run.outputs["publicIp"] == FAKE_IP


def test_a_server_gets_an_elastic_ip_associated_to_its_instance_and_tagged_like_it(run_program):
    run = run_program("dev", staticAddress="true")
    name = "flasklab-dev"
    address = unwrap(run.wire_inputs[(ELASTIC_IP, f"{name}-address")])
    instance_tags = unwrap(run.wire_inputs[(INSTANCE, f"{name}-instance")])["tags"]
    assert address["domain"] == "vpc"
    assert address["tags"] == {k: v for k, v in instance_tags.items() if k not in INSTANCE_ONLY_TAGS}
    assert address["tags"] == plan.tags(load_settings({}, "dev"))
    association = unwrap(run.wire_inputs[(EIP_ASSOCIATION, f"{name}-address-association")])
    assert association["allocationId"] == f"{name}-address-id"
    assert association["instanceId"] == f"{name}-instance-id"
    for key in ((ELASTIC_IP, f"{name}-address"), (EIP_ASSOCIATION, f"{name}-address-association")):
        assert "flasklab:index:StudentServer$" in run.urns[key], "a child of the student's server"


def test_the_outputs_and_the_wait_use_the_elastic_ip(run_program):
    run = run_program("dev", staticAddress="true")
    elastic_ip = mock_elastic_ip("flasklab-dev-address")
    assert elastic_ip != FAKE_IP
    assert run.outputs["publicIp"] == elastic_ip
    assert run.outputs["publicDns"] == f"ec2-{elastic_ip.replace('.', '-')}.compute.amazonaws.com"
    assert run.outputs["hostsLine"].split()[0] == elastic_ip
    assert run.outputs["sshCommand"].endswith(f"admin@{elastic_ip}")
    [wait] = run.of_type(LOCAL_COMMAND)
    assert readiness.WaitSpec.from_json(wait["inputs"]["stdin"]).address == elastic_ip
    first_boot = unwrap(run.wire_inputs[(REMOTE_COMMAND, "flasklab-dev-ready-first-boot")])
    assert first_boot["connection"]["host"] == elastic_ip


def test_every_student_of_a_class_gets_their_own_address(run_program):
    run = run_program(CLASS, staticAddress="true")
    entries = run.outputs["students"]
    for student in STUDENTS:
        elastic_ip = mock_elastic_ip(f"flasklab-{CLASS}-{student}-address")
        assert entries[student]["publicIp"] == elastic_ip
        assert entries[student]["hostsLine"].startswith(f"{elastic_ip} {student}.")
        assert entries[student]["sshCommand"].endswith(f"@{elastic_ip}")
    assert len({entries[s]["publicIp"] for s in STUDENTS}) == len(STUDENTS)


def test_turning_it_on_for_an_existing_class_replaces_nothing_and_runs_no_wait_again(run_program):
    created = run_program(CLASS)
    after = run_program(CLASS, staticAddress="true")
    assert replaced(created, after) == set()
    assert changed(created, after, "-instance") == {}, "the instances are not even updated"
    waits = {**changed(created, after, "-first-boot"), **changed(created, after, "-serves")}
    assert waits == {}, "the waits keep their address from creation: they do not run again"
    assert len(after.of_type(ELASTIC_IP)) == len(after.of_type(EIP_ASSOCIATION)) == len(STUDENTS)
    # And off again: the addresses are released, the servers stay.
    assert replaced(after, run_program(CLASS)) == set()


def test_the_association_follows_a_rebuilt_instance_and_the_address_stays(run_program):
    created = run_program(CLASS, staticAddress="true")
    rebuilt = run_program(CLASS, staticAddress="true", env_rebuild="ben")
    ben = f"flasklab-{CLASS}-ben"
    gone = replaced(created, rebuilt, targets={f"{ben}-instance"})
    assert f"{ben}-address-association" in gone, "associated anew with ben's new instance"
    assert not {name for name in gone if name.endswith("-address")}, "every student keeps their address"
    assert not {name for name in gone if "-ana-" in name or "-carla-" in name}
    assert rebuilt.outputs["students"]["ben"]["publicIp"] == created.outputs["students"]["ben"]["publicIp"]
