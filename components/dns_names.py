"""DnsNames: each server's names in the teacher's Route 53 hosted zone (dnsZone), kept at
its address at every start.

- An A record per name (TTL 60 s), a Pulumi resource: made with the server's address when
  the server is made, deleted with the stack. Route 53 changes a server's address when it
  starts, not Pulumi: the records ignore changes of their value, so neither `pulumi up` nor
  a refresh (which reads the current value back) ever puts an old address back.
- The address updater (flasklab/dns_updater.py): one Lambda function per stack, invoked by
  an EventBridge rule on every instance of the account entering `running`; it acts only on
  this stack's servers (by their tags) and may UPSERT only A records of this stack's names
  in this zone. Why not the server updating its own record: students have root on their
  server, so any credentials on it would be theirs; this way a server holds none, and
  every way of starting a server is covered by one rule.
- With staticAddress the records point to the Elastic IPs, which stay through stops and
  starts: no updater, and `pulumi up` keeps the records at the addresses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.stack_function import StackFunctionArgs, stack_function
from flasklab import dns_updater
from flasklab.dns_zone import DnsZone, normalized, updater_statements
from flasklab.plan import MANAGED_BY, TAG_COURSE, TAG_MANAGED_BY, TAG_STACK, TAG_STUDENT
from flasklab.stop_schedule import tag_values

EVENTS_SERVICE = "events.amazonaws.com"
# Every instance of the account and region that enters `running`: the events carry no tags,
# and a rebuilt server's new id exists before any `pulumi up` could name it here.
STARTED_INSTANCES = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Instance State-change Notification"],
    "detail": {"state": ["running"]},
}
# A record made while its server is stopped (dnsZone added mid-term, after a refresh that
# read no address) cannot be empty: Route 53 refuses an A record without a valid address,
# which would stop that `pulumi up`. It points at TEST-NET-1 (RFC 5737, never routed)
# until the server's next start, when the updater writes the real address.
STOPPED_SERVER_ADDRESS = "192.0.2.1"
# How much of the zone lookup's error `pulumi up` quotes.
REASON_LIMIT = 300


@dataclass(frozen=True)
class ZoneFacts:
    zone_id: str
    name: str


@dataclass
class ServerNames:
    # A class's student; '' on a one-student stack (its server carries no student tag).
    student: str
    # The names the server answers to (settings.server_names), all inside the zone.
    names: tuple[str, ...]
    public_ip: pulumi.Input[str]
    # Its resource names' prefix (flasklab.plan.resource_name).
    resource_name: str


@dataclass
class DnsNamesArgs:
    zone: ZoneFacts
    servers: list[ServerNames]
    # staticAddress: the records follow the Elastic IPs and there is no updater.
    static_address: bool
    # The stack's tags (flasklab.plan.tags without a student), as its instances carry them.
    tags: dict[str, str]


def find_zone(zone: DnsZone) -> ZoneFacts:
    """The public hosted zone, by name or by id (then its name must be the stack's), before
    any resource; a RunError in words when it is not there."""
    where = f"dnsZone: the hosted zone {zone.name}" + (f" ({zone.zone_id})" if zone.zone_id else "")
    try:
        if zone.zone_id:
            found = aws.route53.get_zone(zone_id=zone.zone_id)
        else:
            found = aws.route53.get_zone(name=zone.name, private_zone=False)
    except Exception as error:  # the provider's error for any failed call: missing, denied, ambiguous
        reason = " ".join(str(error).split())[:REASON_LIMIT]
        raise pulumi.RunError(
            f"{where} could not be read: {reason}. Create it in this account's Route 53 console (a public "
            f"hosted zone) and delegate it to its name servers (docs/dns-zone.md); if the account has two "
            f"of that name, add the one's id: `pulumi config set dnsZone {zone.name}/Z...`."
        ) from None
    if found.private_zone:
        raise pulumi.RunError(
            f"{where} is private: the students' computers cannot resolve it. Use a public zone."
        )
    if normalized(found.name) != zone.name:
        raise pulumi.RunError(
            f"{where}: that id is the zone {normalized(found.name)}, not {zone.name}. Give the zone's name "
            f"and its own id."
        )
    return ZoneFacts(zone_id=found.zone_id, name=zone.name)


def record_resource_name(server: ServerNames, name: str) -> str:
    return f"{server.resource_name}-dns-{normalized(name)}"


class DnsNames(pulumi.ComponentResource):
    # By record name: the record (for the tests and for outputs).
    records: dict[str, aws.route53.Record]

    def __init__(self, name: str, args: DnsNamesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flasklab:index:DnsNames", name, None, opts)
        # The updater owns the records' value, unless they follow an Elastic IP.
        ignore = [] if args.static_address else ["records"]
        self.records = {
            normalized(record): aws.route53.Record(
                record_resource_name(server, record),
                zone_id=args.zone.zone_id,
                name=normalized(record),
                type="A",
                ttl=dns_updater.RECORD_TTL_SECONDS,
                records=[pulumi.Output.from_input(server.public_ip).apply(_address_or_placeholder)],
                # A record the teacher made by hand for the student (tutorial 003) becomes this one,
                # rather than failing the `pulumi up`.
                allow_overwrite=True,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
            )
            for server in args.servers
            for record in server.names
        }
        if not args.static_address:
            self._updater(name, args)
        self.register_outputs({})

    def _updater(self, name: str, args: DnsNamesArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        stack = args.tags[TAG_STACK]
        tags = tag_values(args.tags)
        names = [record for server in args.servers for record in server.names]
        zone = DnsZone(args.zone.name, args.zone.zone_id)
        function = stack_function(
            self,
            name,
            f"{name}-updater",
            StackFunctionArgs(
                purpose="dns-updater",
                description=f"flasklab: the names of stack {stack}'s servers follow their addresses",
                role_description=f"flasklab's address updater: the names of stack {stack}'s servers",
                module=dns_updater,
                statements=lambda partition, _account: updater_statements(partition, zone, names),
                tags=tags,
                # Up to ADDRESS_TRIES describes ADDRESS_WAIT_SECONDS apart, then one change.
                timeout=30,
                environment=updater_environment(args),
                files={dns_updater.NAMES_FILE: pulumi.StringAsset(json.dumps(student_names(args), indent=1))},
            ),
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-started",
            description=f"flasklab: an instance started; stack {stack}'s updater keeps its servers' names",
            event_pattern=json.dumps(STARTED_INSTANCES),
            tags=tags,
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal=EVENTS_SERVICE,
            source_arn=rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-target", rule=rule.name, arn=function.arn, opts=child)


def _address_or_placeholder(address: str) -> str:
    return address or STOPPED_SERVER_ADDRESS


def updater_environment(args: DnsNamesArgs) -> dict[str, Any]:
    """What flasklab/dns_updater.py reads from its environment: the zone, and the tags every
    server of the stack carries exactly (not its Name or names, which are each server's)."""
    stack_tags = {
        TAG_STACK: args.tags[TAG_STACK],
        TAG_COURSE: args.tags[TAG_COURSE],
        TAG_MANAGED_BY: MANAGED_BY,
    }
    one_student = len(args.servers) == 1 and not args.servers[0].student
    return {
        dns_updater.ZONE_ENV: args.zone.zone_id,
        dns_updater.TAGS_ENV: json.dumps(stack_tags),
        dns_updater.STUDENT_TAG_ENV: "" if one_student else TAG_STUDENT,
    }


def student_names(args: DnsNamesArgs) -> dict[str, list[str]]:
    """Each student's names ('' for a one-student stack's), as dns_updater.NAMES_FILE holds them."""
    return {server.student: [normalized(n) for n in server.names] for server in args.servers}
