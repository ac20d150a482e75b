"""The hosts file students paste once, from EC2's view of the servers now: `class status`
prints it, `class start` prints it and writes it where `class sheet` writes its own
(sheets/<stack>/hosts), so the students can be given the new one after a start changed
the addresses. A server with an Elastic IP (staticAddress) keeps its address through
stops and starts: its line is read from EC2's Elastic IPs, and when every started server
has one there is no new file to hand out, and the teacher is told so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from flasklab import plan
from flasklab.classroom.account import ClassTarget, Server, aws_error_text, chunks
from flasklab.stacks import STACKS_DIR

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

HOSTS_FILE = "hosts"  # in sheets/<stack>/, beside the sheet's page
# Instance ids per DescribeAddresses filter.
BATCH = 100
WHERE_TO_PASTE = [
    "#   Linux, macOS: /etc/hosts (sudo nano /etc/hosts)",
    r"#   Windows: C:\Windows\System32\drivers\etc\hosts (Notepad run as administrator)",
]


def header(stack: str, command: str) -> list[str]:
    """The file's first lines: who wrote it, and where the students paste it."""
    return [
        f"# Written by flasklab ({command}): the servers of",
        f"# stack {stack}, one line per student. Paste these lines once at the end of the hosts file:",
        *WHERE_TO_PASTE,
    ]


@dataclass(frozen=True)
class ElasticIps:
    """Each instance's Elastic IP; `note` says why they could not be read (then none is known)."""

    by_instance: dict[str, str]
    note: str = ""

    def keeps_its_address(self, server: Server) -> bool:
        return server.instance_id in self.by_instance

    def at_their_addresses(self, servers: Sequence[Server]) -> list[Server]:
        """The servers with their Elastic IP as their address (it is theirs even while stopped)."""
        return [
            replace(server, public_ip=self.by_instance.get(server.instance_id, server.public_ip))
            for server in servers
        ]


def elastic_ips(client: EC2Client, servers: Sequence[Server]) -> ElasticIps:
    """The Elastic IPs associated with the servers' instances (staticAddress)."""
    found: dict[str, str] = {}
    try:
        for batch in chunks([server.instance_id for server in servers], BATCH):
            addresses = client.describe_addresses(Filters=[{"Name": "instance-id", "Values": batch}])
            for address in addresses.get("Addresses", []):
                if address.get("InstanceId") and address.get("PublicIp"):
                    found[address["InstanceId"]] = address["PublicIp"]
    except (ClientError, BotoCoreError) as error:
        return ElasticIps({}, f"the servers' Elastic IPs could not be read: {aws_error_text(error)}")
    return ElasticIps(found)


def server_lines(servers: Sequence[Server], target: ClassTarget) -> list[str]:
    """A line for /etc/hosts per server with an address; a comment for the others."""
    lines = []
    for server in servers:
        if server.public_ip and server.server_names:
            lines.append(plan.hosts_line_of(server.public_ip, server.server_names))
        elif not server.server_names:
            lines.append(f"# {server.who}: no {plan.TAG_SERVER_NAMES} tag (`pulumi up` adds it)")
        else:
            lines.append(
                f"# {server.who}: {server.state}, no public address "
                f"(python -m flasklab class start {target.option} --student {server.who})"
            )
        if server.names_omitted:
            lines.append(
                f"# {server.who}: {server.names_omitted} more names did not fit the instance's tag; "
                f"add them from serverAliases of stack {server.stack}"
            )
    return lines


def read_line(target: ClassTarget, region: str) -> str:
    return f"# flasklab: {target.words} in {region}, read {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def write_stack_hosts(
    sheets_dir: Path, stack: str, servers: Sequence[Server], target: ClassTarget
) -> Path | None:
    """sheets/<stack>/hosts with the stack's servers as EC2 has them now; None for a stack
    without a stack file here (a stray of the course: it has no sheet either)."""
    if not (STACKS_DIR / f"Pulumi.{stack}.yaml").is_file():
        return None
    folder = sheets_dir / stack
    folder.mkdir(parents=True, exist_ok=True)
    command = f"python -m flasklab class start --stack {stack}"
    ours = [server for server in servers if server.stack == stack]
    text = "\n".join([*header(stack, command), *server_lines(ours, target)]) + "\n"
    path = folder / HOSTS_FILE
    path.write_text(text, encoding="utf-8")
    return path
