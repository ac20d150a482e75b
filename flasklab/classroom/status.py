"""`class status --course C [--region R]`: the course's servers as EC2 has them now, and a
fresh hosts file (a stop and start gives a server a new public address)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from flasklab import plan
from flasklab.classroom.account import (
    AccountError,
    Server,
    add_account_arguments,
    aws_errors,
    ec2_client,
    find_servers,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_account_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        client = ec2_client(args.region)
        with aws_errors(args.region):
            servers = find_servers(client, args.course)
    except AccountError as error:
        print(error, file=sys.stderr)
        return 2
    region = client.meta.region_name
    if not servers:
        print(f"no servers of course {args.course} in {region} (none tagged by flasklab with that course).")
        return 0
    Console().print(status_table(servers, datetime.now(UTC)))
    print()
    print("\n".join(hosts_file(servers, args.course, region)))
    return 0


def status_table(servers: list[Server], now: datetime) -> Table:
    table = Table("student", "stack", "state", "uptime", "public IP", "instance")
    for server in servers:
        table.add_row(
            server.student or "-", server.stack, server.state, uptime(server, now),
            server.public_ip or "-", server.instance_id,
        )  # fmt: skip
    return table


def uptime(server: Server, now: datetime) -> str:
    """Since the last start (EC2's LaunchTime), while it runs."""
    if server.state != "running" or server.launch_time is None:
        return "-"
    minutes = max(0, int((now - server.launch_time).total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h {minutes:02d}m" if days else f"{hours}h {minutes:02d}m"


def hosts_file(servers: list[Server], course: str, region: str) -> list[str]:
    """Lines for /etc/hosts: one per server with an address; a comment for the others."""
    lines = [f"# flasklab: course {course} in {region}, read {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]
    for server in servers:
        if server.public_ip and server.server_names:
            lines.append(plan.hosts_line_of(server.public_ip, server.server_names))
        elif not server.server_names:
            lines.append(f"# {server.who}: no {plan.TAG_SERVER_NAMES} tag (`pulumi up` adds it)")
        else:
            lines.append(
                f"# {server.who}: {server.state}, no public address "
                f"(python -m flasklab class start --course {course} --student {server.who})"
            )
        if server.names_omitted:
            lines.append(
                f"# {server.who}: {server.names_omitted} more names did not fit the instance's tag; "
                f"add them from serverAliases of stack {server.stack}"
            )
    return lines
