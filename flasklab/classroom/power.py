"""`class stop|start --stack S | --course C [--student NAME] [--region R]`: stop or start the course's
servers (all, or one student's), and wait until EC2 says they are stopped or running.

A stopped server costs only its disk; a started one gets a new public address (unless it
has an Elastic IP, staticAddress), so `class start` then reads the addresses from EC2,
prints the fresh hosts file and writes it where `class sheet` writes its own
(sheets/<stack>/hosts), to hand to the students. No `pulumi up --refresh` is needed."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress

from flasklab.classroom.account import (
    AccountError,
    ClassTarget,
    Server,
    add_class_arguments,
    aws_errors,
    chunks,
    class_target,
    ec2_client,
    target_servers,
)
from flasklab.classroom.hosts import elastic_ips, server_lines, write_stack_hosts
from flasklab.classroom.outputs import SHEETS_DIR

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import WaiterConfigTypeDef

# Instances per StopInstances/StartInstances call and per wait.
BATCH = 50
# How long each wait lasts at most: EC2 is asked every 15 s, 40 times (10 minutes; boto3's
# own for these waiters, written here so the bound is ours).
WAIT: WaiterConfigTypeDef = {"Delay": 15, "MaxAttempts": 40}


@dataclass(frozen=True)
class Change:
    verb: str
    done: str  # the state the servers end in
    from_states: tuple[str, ...]


CHANGES = {
    # EC2 refuses to stop a pending instance (IncorrectInstanceState): it is left for a rerun.
    "stop": Change("stop", "stopped", ("running",)),
    "start": Change("start", "running", ("stopped",)),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_class_arguments(parser)
    parser.add_argument(
        "--student", help="only this student's server (a roster's student, or a one-student stack's name)"
    )


def run(args: argparse.Namespace) -> int:
    change = CHANGES[args.class_command]
    try:
        target = class_target(args)
        client = ec2_client(target.region)
        with aws_errors(target.region):
            servers = chosen_servers(target_servers(client, target), target, args.student)
            if not servers:
                print(f"no servers of {target.words} in {client.meta.region_name}.")
                return 0
            done = apply(client, change, servers)
            if done and change.verb == "start":
                fresh_hosts(client, target, [server.instance_id for server in done], SHEETS_DIR)
    except AccountError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def chosen_servers(servers: list[Server], target: ClassTarget, student: str | None) -> list[Server]:
    if student is None:
        return servers
    chosen = [server for server in servers if server.who == student]
    if not chosen:
        known = ", ".join(sorted({server.who for server in servers})) or "none"
        raise AccountError(f"{target.words} has no server of {student}. Its students: {known}.")
    return chosen


def apply(client: EC2Client, change: Change, servers: list[Server]) -> list[Server]:
    """The change made and waited for; the servers it was made to."""
    todo = [server for server in servers if server.state in change.from_states]
    console = Console()
    for server in servers:
        if server not in todo:
            console.print(f"{server.who} ({server.stack}): {server.state}, left as it is")
    if not todo:
        console.print(f"nothing to {change.verb}.")
        return []
    ids = [server.instance_id for server in todo]
    for batch in chunks(ids, BATCH):
        request(client, change, batch)
    with Progress(console=console) as progress:
        task = progress.add_task(f"waiting until {change.done}", total=len(ids))
        for batch in chunks(ids, BATCH):
            wait(client, change, batch)
            progress.advance(task, len(batch))
    console.print(f"{change.done}: {', '.join(server.who for server in todo)}")
    return todo


def fresh_hosts(client: EC2Client, target: ClassTarget, started: list[str], sheets_dir: Path) -> None:
    """After a start: the addresses as EC2 gives them now, in a hosts file printed and written
    to each stack's sheet folder; or, when every started server has an Elastic IP, that
    nothing changed."""
    servers = target_servers(client, target)
    static = elastic_ips(client, servers)
    console = Console(highlight=False)
    if static.note:
        console.print(static.note, markup=False)
    if all(static.keeps_its_address(server) for server in servers if server.instance_id in started):
        console.print(
            "their addresses did not change: each has an Elastic IP (staticAddress), so the hosts "
            "file the students have still holds."
        )
        return
    servers = static.at_their_addresses(servers)
    written = [
        path
        for stack in sorted({server.stack for server in servers})
        if (path := write_stack_hosts(sheets_dir, stack, servers, target)) is not None
    ]
    where = f" (written to {', '.join(str(path) for path in written)})" if written else ""
    console.print(f"their public addresses changed; the new hosts file{where}:")
    console.print("\n".join(server_lines(servers, target)), markup=False)
    if written:
        console.print(
            "hand it to the students again; `class sheet --stack STACK` rewrites the sheet's cards too."
        )


def request(client: EC2Client, change: Change, ids: list[str]) -> None:
    if change.verb == "stop":
        client.stop_instances(InstanceIds=ids)
    else:
        client.start_instances(InstanceIds=ids)


def wait(client: EC2Client, change: Change, ids: list[str]) -> None:
    """Until every instance is in the change's end state (boto3 polls every 15 s)."""
    if change.verb == "stop":
        client.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig=WAIT)
    else:
        client.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=WAIT)
