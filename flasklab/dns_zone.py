"""dnsZone: a Route 53 hosted zone the teacher owns names every server of the stack.

The setting is the zone's name (`class.example.org`), or its name and id
(`class.example.org/Z0123456789ABCDEFGHIJ`) when the account holds two public zones of
that name. Never the id alone: the server names are written into each server's web
server and certificate at first boot, and `class check`, `class grade` and the sheet work
them out from the stack file without asking AWS, so the name must be in the stack.

With a zone, a class's student gets `<student>.<zone>` (and `www.<student>.<zone>` when the
stack has serverAliases); a one-student stack's serverName and serverAliases must be the
zone or names inside it. Every name gets an A record (components/dns_names.py), kept at
the server's address at every start by flasklab/dns_updater.py.

Plain data, no Pulumi and no boto3: the settings, the roster and the component share it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flasklab.network_settings import SERVER_NAME_MAX_LENGTH, why_not_public

SETTING = "dnsZone"
# Short, so a server's new address reaches the students' resolvers within a minute of its start.
RECORD_TTL_SECONDS = 60
# DNS host names as Route 53 and Let's Encrypt take them: no underscore, unlike serverName.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
ZONE_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# Route 53's hosted zone ids: Z and up to 31 upper-case letters and digits.
ZONE_ID = re.compile(r"Z[A-Z0-9]{1,31}")
EXAMPLE = "class.example.org"
# The role's inline policy names each record it may change while they fit; IAM allows a role
# 10,240 characters of inline policy, and the rest of the document takes about 1,000.
NAMED_RECORDS_BUDGET = 8_000


@dataclass(frozen=True)
class DnsZone:
    name: str  # lower case, no trailing dot, as Route 53 normalises names
    zone_id: str = ""  # given by the teacher; '' = looked up by name at `pulumi up`

    def contains(self, host: str) -> bool:
        host = normalized(host)
        return host == self.name or host.endswith(f".{self.name}")


def normalized(name: str) -> str:
    """A name as Route 53 compares it (and its IAM condition keys see it)."""
    return name.strip().rstrip(".").lower()


def parse(value: str) -> DnsZone | None:
    """The zone a valid dnsZone names; None when it is empty (off) or not valid."""
    text = value.strip()
    if not text:
        return None
    name, _, zone_id = text.partition("/")
    name = normalized(name)
    if not ZONE_NAME.fullmatch(name) or (zone_id and not ZONE_ID.fullmatch(zone_id)):
        return None
    return DnsZone(name, zone_id)


def zone_problems(value: str) -> Iterator[str]:
    """The setting's own form (the names inside it are checked by names_problems)."""
    text = value.strip()
    if not text:
        return
    if ZONE_ID.fullmatch(text):
        yield (
            f"{SETTING}: {text} is a hosted zone's id; flasklab needs the zone's name too, since the "
            f"servers are named after it before AWS is asked: `pulumi config set {SETTING} "
            f"{EXAMPLE}` (or `{EXAMPLE}/{text}` when the account has two public zones of that name)."
        )
        return
    if parse(text) is None:
        yield (
            f"{SETTING}: {text!r} is not a hosted zone's name: use its domain name, lower-case letters, "
            f"digits, '-' and dots (e.g. `pulumi config set {SETTING} {EXAMPLE}`), optionally followed by "
            f"/ and its id (Z and up to 31 capital letters and digits)."
        )
        return
    zone = parse(text)
    assert zone is not None
    if reason := why_not_public(zone.name):
        yield (
            f"{SETTING}: {zone.name!r} {reason}, so public DNS cannot delegate it to Route 53. Use a "
            f"domain your school or you own, e.g. {EXAMPLE} (docs/dns-zone.md)."
        )


def names_problems(zone: DnsZone, names: Sequence[str]) -> Iterator[str]:
    """Every name the server answers to must be in the zone: each gets its record there."""
    for name in names:
        if not zone.contains(name):
            yield (
                f"{SETTING}: the server name {name!r} is not in the zone {zone.name}, so no record can "
                f"point it at the server. Use a name inside it: `pulumi config set serverName "
                f"flask.{zone.name}` (aliases too, e.g. www.flask.{zone.name}), or remove {SETTING}."
            )
        elif "_" in name:
            yield f"{SETTING}: {name!r} holds '_', which a DNS host name cannot; use '-'."
        elif len(name) > SERVER_NAME_MAX_LENGTH:
            yield f"{SETTING}: {name!r} is longer than DNS allows ({SERVER_NAME_MAX_LENGTH} characters)."


def student_names(student: str, zone: DnsZone, with_www: bool) -> tuple[str, list[str]]:
    """A class student's serverName and serverAliases in the zone."""
    name = f"{student}.{zone.name}"
    return name, [f"www.{name}"] if with_www else []


def problems(value: str, server_names: Sequence[str]) -> Iterator[str]:
    """dnsZone's form, then whether the server's names are inside the zone."""
    found = list(zone_problems(value))
    yield from found
    if not found and (zone := parse(value)):
        yield from names_problems(zone, server_names)


def record_names(names: Sequence[str]) -> list[str]:
    return [normalized(name) for name in names]


def updater_statements(partition: str, zone: DnsZone, names: Sequence[str]) -> list[dict[str, Any]]:
    """What the stack's address updater may do: read instances (DescribeInstances takes no
    narrower resource than "*"), and UPSERT A records in this one zone, of the stack's names
    only: named one by one while they fit the role's policy, else any name below the zone
    (never its apex, its NS or its SOA)."""
    wanted = sorted(record_names(names))
    if len(json.dumps(wanted)) <= NAMED_RECORDS_BUDGET:
        names_condition = {
            "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": wanted}
        }
    else:
        names_condition = {
            "ForAllValues:StringLike": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"*.{zone.name}"]
            }
        }
    condition: dict[str, Any] = {
        "ForAllValues:StringEquals": {
            **names_condition.get("ForAllValues:StringEquals", {}),
            "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
            "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
        }
    }
    if "ForAllValues:StringLike" in names_condition:
        condition["ForAllValues:StringLike"] = names_condition["ForAllValues:StringLike"]
    return [
        {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "route53:ChangeResourceRecordSets",
            "Resource": f"arn:{partition}:route53:::hostedzone/{zone.zone_id}",
            "Condition": condition,
        },
    ]
