"""`class stop|start --stack S | --course C [--student NAME] [--region R]`: stop or start the course's
servers (all, or one student's), and wait until EC2 says they are stopped or running.

A stopped server costs only its disk; a started one gets a new public address, so
`class status` prints a fresh hosts file afterwards."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
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

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# Instances per StopInstances/StartInstances call and per wait.
BATCH = 50


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
            apply(client, change, servers)
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


def apply(client: EC2Client, change: Change, servers: list[Server]) -> None:
    todo = [server for server in servers if server.state in change.from_states]
    console = Console()
    for server in servers:
        if server not in todo:
            console.print(f"{server.who} ({server.stack}): {server.state}, left as it is")
    if not todo:
        console.print(f"nothing to {change.verb}.")
        return
    ids = [server.instance_id for server in todo]
    for batch in chunks(ids, BATCH):
        request(client, change, batch)
    with Progress(console=console) as progress:
        task = progress.add_task(f"waiting until {change.done}", total=len(ids))
        for batch in chunks(ids, BATCH):
            wait(client, change, batch)
            progress.advance(task, len(batch))
    console.print(f"{change.done}: {', '.join(server.who for server in todo)}")
    if change.verb == "start":
        console.print("their public addresses changed: `class status` prints the new hosts file.")


def request(client: EC2Client, change: Change, ids: list[str]) -> None:
    if change.verb == "stop":
        client.stop_instances(InstanceIds=ids)
    else:
        client.start_instances(InstanceIds=ids)


def wait(client: EC2Client, change: Change, ids: list[str]) -> None:
    """Until every instance is in the change's end state (boto3 polls every 15 s)."""
    if change.verb == "stop":
        client.get_waiter("instance_stopped").wait(InstanceIds=ids)
    else:
        client.get_waiter("instance_running").wait(InstanceIds=ids)
