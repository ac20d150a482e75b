"""The address updater: an AWS Lambda function (Python, boto3) that points a student's names
at their server's new public address each time the server starts (dnsZone).

An EventBridge rule sends it every "EC2 Instance State-change Notification" of state
`running` in the account and region, whoever started the instance: the teacher (`class
start`, the console), the start schedule, the student's start link, a `pulumi up`. The
events carry no tags, and a server made anew (`class rebuild`) has a new instance id
before any `pulumi up` could name it in the rule, so the function, not the rule, picks the
stack's servers: it describes the instance and acts only when it carries the stack's tags,
exactly. Then it UPSERTs one A record per name of that student, TTL RECORD_TTL_SECONDS, to
the instance's public address. The server itself holds no credentials: students have root
on it, so any it held would be theirs.

Shipped to Lambda as this one file (standard library and boto3, which Lambda's Python
runtime has): it imports nothing of flasklab; components/dns_names.py gives it, in its
environment, the zone's id and the tags to match, and each student's names in NAMES_FILE
beside it (Lambda's environment holds 4 KB in all: some 60 students' names).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3

ZONE_ENV = "FLASKLAB_ZONE_ID"
TAGS_ENV = "FLASKLAB_TAGS"  # {"stack": "...", "course": "...", "managed-by": "flasklab"}: all must match
STUDENT_TAG_ENV = "FLASKLAB_STUDENT_TAG"  # the tag naming a class's student ('' on a one-student stack)
NAMES_FILE = "names.json"  # {"<student, or '' for a one-student stack>": ["ana.class.example.org", ...]}
NAMES_PATH = Path(__file__).with_name(NAMES_FILE)
RECORD_TTL_SECONDS = 60
# EC2 gives a started instance its public address as it enters `running`; the event can
# come a moment before describe_instances shows it.
ADDRESS_TRIES = 5
ADDRESS_WAIT_SECONDS = 2.0
RUNNING = "running"


def _environment() -> tuple[str, dict[str, str], str, dict[str, list[str]]]:
    return (
        os.environ[ZONE_ENV],
        json.loads(os.environ[TAGS_ENV]),
        os.environ.get(STUDENT_TAG_ENV, ""),
        json.loads(NAMES_PATH.read_text(encoding="utf-8")),
    )


def _instance(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    try:
        answer = ec2.describe_instances(InstanceIds=[instance_id])
    except ec2.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return None
        raise
    instances = [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
    return instances[0] if instances else None


def _running_address(ec2: Any, instance_id: str) -> tuple[dict[str, Any] | None, str]:
    """The instance and its public address while it runs ('' when it does not run, or has none)."""
    for attempt in range(ADDRESS_TRIES):
        instance = _instance(ec2, instance_id)
        if instance is None or instance.get("State", {}).get("Name") != RUNNING:
            return instance, ""
        if address := instance.get("PublicIpAddress", ""):
            return instance, address
        if attempt + 1 < ADDRESS_TRIES:
            time.sleep(ADDRESS_WAIT_SECONDS)
    return instance, ""


def names_of(
    instance: dict[str, Any], tags: dict[str, str], student_tag: str, names: dict[str, list[str]]
) -> list[str]:
    """The names of the instance's student when it is one of this stack's servers; [] otherwise."""
    found = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
    if any(found.get(key) != value for key, value in tags.items()):
        return []
    student = found.get(student_tag, "") if student_tag else ""
    return list(names.get(student, []))


def upsert(route53: Any, zone_id: str, names: list[str], address: str, instance_id: str) -> None:
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": f"flasklab: {instance_id} started at {address}",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "TTL": RECORD_TTL_SECONDS,
                        "ResourceRecords": [{"Value": address}],
                    },
                }
                for name in names
            ],
        },
    )


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """What it did, for the function's logs and the tests."""
    instance_id = str((event.get("detail") or {}).get("instance-id", ""))
    if not instance_id:
        return {"updated": [], "why": "no instance in the event"}
    zone_id, tags, student_tag, names = _environment()
    ec2 = boto3.client("ec2")
    instance, address = _running_address(ec2, instance_id)
    if instance is None:
        return {"updated": [], "why": f"{instance_id} no longer exists"}
    wanted = names_of(instance, tags, student_tag, names)
    if not wanted:
        return {"updated": [], "why": f"{instance_id} is not a server of this stack"}
    if not address:
        return {"updated": [], "why": f"{instance_id} is not running with a public address"}
    upsert(boto3.client("route53"), zone_id, wanted, address, instance_id)
    print(json.dumps({"instance": instance_id, "address": address, "names": wanted}))
    return {"updated": wanted, "address": address}
