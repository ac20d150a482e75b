"""The address updater's handler (flasklab/dns_updater.py) against moto's EC2 and Route 53: a
stack's server entering `running` points exactly its student's names at its new address;
another stack's instance, an untagged one, a stopped one or one without a public address
changes nothing."""

from __future__ import annotations

import json

import boto3
import pytest

from flasklab import dns_updater
from tests.conftest import REGION

ZONE = "class.example.org"
STACK_TAGS = {"stack": "class-demo", "course": "web-deploy-2026", "managed-by": "flasklab"}
NAMES = {s: [f"{s}.{ZONE}", f"www.{s}.{ZONE}"] for s in ("ana", "ben")}
OLD_ADDRESS = "192.0.2.1"


def names_file(monkeypatch, tmp_path, names: dict[str, list[str]]) -> None:
    """The names file the stack ships beside the handler."""
    path = tmp_path / dns_updater.NAMES_FILE
    path.write_text(json.dumps(names))
    monkeypatch.setattr(dns_updater, "NAMES_PATH", path)


@pytest.fixture
def zone(ec2, monkeypatch, tmp_path):
    """The teacher's zone with every student's records at an old address, and the function's
    environment as components/dns_names.py sets it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # Lambda sets the function's region
    route53 = boto3.client("route53", region_name=REGION)
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="flasklab-test")["HostedZone"]["Id"]
    zone_id = zone_id.removeprefix("/hostedzone/")
    dns_updater.upsert(route53, zone_id, [n for names in NAMES.values() for n in names], OLD_ADDRESS, "i-old")
    monkeypatch.setenv(dns_updater.ZONE_ENV, zone_id)
    monkeypatch.setenv(dns_updater.TAGS_ENV, json.dumps(STACK_TAGS))
    monkeypatch.setenv(dns_updater.STUDENT_TAG_ENV, "student")
    names_file(monkeypatch, tmp_path, NAMES)
    monkeypatch.setattr(dns_updater.time, "sleep", lambda seconds: None)
    return route53, zone_id


def addresses(route53, zone_id: str) -> dict[str, tuple[str, int]]:
    """Every A record of the zone: its name -> (address, TTL)."""
    found = {}
    for record in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
        if record["Type"] == "A":
            found[record["Name"].rstrip(".")] = (record["ResourceRecords"][0]["Value"], record["TTL"])
    return found


def launch(ec2, tags: dict[str, str], public: bool = True) -> dict:
    [instance] = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": public}],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
        if tags
        else [],
    )["Instances"]
    return instance


def started(instance_id: str) -> dict:
    """EventBridge's event for an instance entering `running`."""
    return {
        "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification",
        "detail": {"instance-id": instance_id, "state": "running"},
    }


def public_address(ec2, instance_id: str) -> str:
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0].get("PublicIpAddress", "")


def test_a_stacks_server_starting_updates_exactly_its_students_records(ec2, zone):
    route53, zone_id = zone
    before = addresses(route53, zone_id)
    ana = launch(ec2, {**STACK_TAGS, "student": "ana", "Name": "flasklab-class-demo-ana"})
    address = public_address(ec2, ana["InstanceId"])
    assert address and address != OLD_ADDRESS
    answer = dns_updater.handler(started(ana["InstanceId"]))
    assert answer == {"updated": NAMES["ana"], "address": address}
    after = addresses(route53, zone_id)
    assert {name: after[name] for name in NAMES["ana"]} == {name: (address, 60) for name in NAMES["ana"]}
    assert {name: after[name] for name in NAMES["ben"]} == {name: before[name] for name in NAMES["ben"]}


@pytest.mark.parametrize(
    "tags",
    [
        {**STACK_TAGS, "stack": "other-class", "student": "ana"},  # another stack's ana
        {**STACK_TAGS, "course": "other-course", "student": "ana"},
        {"stack": "class-demo", "course": "web-deploy-2026", "student": "ana"},  # not flasklab's
        {**STACK_TAGS, "student": "zoe"},  # no longer on the roster
        {},  # untagged
    ],
)
def test_an_instance_that_is_not_this_stacks_server_changes_nothing(ec2, zone, tags):
    route53, zone_id = zone
    before = addresses(route53, zone_id)
    instance = launch(ec2, tags)
    answer = dns_updater.handler(started(instance["InstanceId"]))
    assert answer["updated"] == [] and "not a server of this stack" in answer["why"]
    assert addresses(route53, zone_id) == before


def test_a_stopped_server_or_one_without_a_public_address_changes_nothing(ec2, zone):
    route53, zone_id = zone
    before = addresses(route53, zone_id)
    ana = launch(ec2, {**STACK_TAGS, "student": "ana"})
    ec2.stop_instances(InstanceIds=[ana["InstanceId"]])
    assert "not running with a public address" in dns_updater.handler(started(ana["InstanceId"]))["why"]
    ben = launch(ec2, {**STACK_TAGS, "student": "ben"}, public=False)
    assert public_address(ec2, ben["InstanceId"]) == ""
    assert "not running with a public address" in dns_updater.handler(started(ben["InstanceId"]))["why"]
    assert addresses(route53, zone_id) == before


def test_a_server_stopped_again_before_the_function_ran_changes_nothing(ec2, zone):
    """Its state, not its address, decides: an Elastic IP stays on a stopped instance."""
    route53, zone_id = zone
    before = addresses(route53, zone_id)
    ana = launch(ec2, {**STACK_TAGS, "student": "ana"})
    ec2.stop_instances(InstanceIds=[ana["InstanceId"]])
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=allocation, InstanceId=ana["InstanceId"])  # EC2 allows it, stopped
    assert public_address(ec2, ana["InstanceId"]), "the stopped instance has a public address"
    assert dns_updater.handler(started(ana["InstanceId"]))["updated"] == []
    assert addresses(route53, zone_id) == before


def test_an_address_not_there_yet_is_waited_for_a_few_times(ec2, zone, monkeypatch):
    ben = launch(ec2, {**STACK_TAGS, "student": "ben"}, public=False)
    slept: list[float] = []
    monkeypatch.setattr(dns_updater.time, "sleep", slept.append)
    dns_updater.handler(started(ben["InstanceId"]))
    assert slept == [dns_updater.ADDRESS_WAIT_SECONDS] * (dns_updater.ADDRESS_TRIES - 1)


def test_a_one_student_stacks_server_has_no_student_tag(ec2, zone, monkeypatch, tmp_path):
    route53, zone_id = zone
    monkeypatch.setenv(dns_updater.STUDENT_TAG_ENV, "")
    names_file(monkeypatch, tmp_path, {"": [f"flask.{ZONE}"]})
    server = launch(ec2, STACK_TAGS)
    dns_updater.handler(started(server["InstanceId"]))
    assert addresses(route53, zone_id)[f"flask.{ZONE}"] == (public_address(ec2, server["InstanceId"]), 60)


def test_an_instance_gone_or_an_event_without_one_changes_nothing(ec2, zone):
    route53, zone_id = zone
    before = addresses(route53, zone_id)
    assert dns_updater.handler(started("i-0123456789abcdef0"))["updated"] == []
    assert dns_updater.handler({"detail": {}})["updated"] == []
    assert addresses(route53, zone_id) == before
