"""`class status --stack S | --course C [--region R]`: the class's servers as EC2 has them
now (why a stopped one stopped, whether one runs an older config), the last stop or start
the schedules could not make, and a fresh hosts file (a stop and start gives a server a
new public address, unless it has an Elastic IP: staticAddress)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from flasklab.classroom.account import (
    AccountError,
    ClassTarget,
    Server,
    add_class_arguments,
    aws_errors,
    class_target,
    ec2_client,
    target_servers,
)
from flasklab.classroom.hosts import elastic_ips, read_line, server_lines
from flasklab.classroom.schedule_failures import ScheduleFailures, read_schedule_failures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_class_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        target = class_target(args)
        client = ec2_client(target.region)
        with aws_errors(target.region):
            servers = target_servers(client, target)
        static = elastic_ips(client, servers)
        failures = read_schedule_failures(client, sorted({server.stack for server in servers}))
    except AccountError as error:
        print(error, file=sys.stderr)
        return 2
    region = client.meta.region_name
    if not servers:
        print(f"no servers of {target.words} in {region} (none tagged by flasklab with that course).")
        return 0
    console = Console()
    console.print(status_table(servers, datetime.now(UTC), failures))
    for line in [*notes(servers), *failures.notes, *([static.note] if static.note else [])]:
        console.print(line, markup=False, highlight=False)
    print()
    if servers and all(static.keeps_its_address(server) for server in servers):
        print("Every server has an Elastic IP (staticAddress): the addresses do not change when they stop")
        print("and start, so the hosts file below is the one the students already have.")
    print("\n".join(hosts_file(static.at_their_addresses(servers), target, region)))
    return 0


def status_table(servers: list[Server], now: datetime, failures: ScheduleFailures | None = None) -> Table:
    table = Table(
        "student", "stack", "state", "uptime", "public IP", "instance", "last failed scheduled stop/start"
    )
    for server in servers:
        failed = failures.last_of(server) if failures else ""
        table.add_row(
            server.student or "-", server.stack, server.state, uptime(server, now),
            server.public_ip or "-", server.instance_id, failed or "-",
        )  # fmt: skip
    return table


def notes(servers: list[Server]) -> list[str]:
    """Why each server that does not run is not running, and each one built from an older config."""
    lines = [f"{server.who}: {server.not_running_note}" for server in servers if not server.running]
    return lines + [f"{server.who}: {server.drift}" for server in servers if server.drift]


def uptime(server: Server, now: datetime) -> str:
    """Since the last start (EC2's LaunchTime), while it runs."""
    if server.state != "running" or server.launch_time is None:
        return "-"
    minutes = max(0, int((now - server.launch_time).total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h {minutes:02d}m" if days else f"{hours}h {minutes:02d}m"


def hosts_file(servers: list[Server], target: ClassTarget, region: str) -> list[str]:
    """Lines for /etc/hosts: one per server with an address; a comment for the others."""
    return [read_line(target, region), *server_lines(servers, target)]
