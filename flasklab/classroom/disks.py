"""`class snapshots --stack S [--student NAME] [--restore SNAPSHOT --to NAME]`: the disks
kept when servers were deleted (flasklab.snapshots), and one of them put back.

Listed newest first. `--restore` makes a volume from the snapshot in the zone of the
student's server now, attaches it as a second disk (the server's own disk is not touched)
and prints how to mount it read-only and copy files from it; `--to` defaults to the
snapshot's own student. Delete the volume in the EC2 console when done with it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from flasklab import snapshots
from flasklab.classroom.account import (
    AccountError,
    add_class_arguments,
    aws_errors,
    class_target,
    ec2_client,
    find_servers,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_class_arguments(parser, stack_required=True)
    parser.add_argument("--student", default="", help="only this student's snapshots")
    parser.add_argument("--restore", metavar="SNAPSHOT", help="put this snapshot back as a second disk")
    parser.add_argument("--to", metavar="STUDENT", help="on this student's server (default: its own)")


def run(args: argparse.Namespace) -> int:
    try:
        target = class_target(args)
        client = ec2_client(target.region)
        with aws_errors(target.region):
            found = snapshots.find_snapshots(client, target.course, args.stack, args.student)
            if args.restore:
                return restore(client, args, target.course, found)
    except AccountError as error:
        print(error, file=sys.stderr)
        return 2
    if not found:
        print(f"no snapshots of stack {args.stack}{' for ' + args.student if args.student else ''}.")
        return 0
    table = Table("snapshot", "student", "of instance", "taken", "state", "GiB")
    for snapshot in found:
        taken = f"{snapshot.started:%Y-%m-%d %H:%M}" if snapshot.started else "-"
        table.add_row(
            snapshot.snapshot_id, snapshot.student or "-", snapshot.instance_id, taken,
            snapshot.state, str(snapshot.size_gib),
        )  # fmt: skip
    Console().print(table)
    return 0


def restore(client: EC2Client, args: argparse.Namespace, course: str, found: list[snapshots.Snapshot]) -> int:
    by_id = {snapshot.snapshot_id: snapshot for snapshot in found}
    if args.restore not in by_id:
        listed = f"`class snapshots --stack {args.stack}` lists them"
        raise AccountError(f"{args.restore} is not a snapshot of stack {args.stack}: {listed}.")
    student = args.to or by_id[args.restore].student
    servers = [s for s in find_servers(client, course) if s.stack == args.stack and s.student == student]
    if not servers:
        whose = student or "its student"
        raise AccountError(f"stack {args.stack} has no server of {whose} to restore the snapshot onto.")
    server = servers[0]
    volume_id = snapshots.restore_to(client, args.restore, server.instance_id)
    print(f"{args.restore} is attached to {server.name} ({server.instance_id}) as volume {volume_id}.")
    print("On the server (ssh in as usual):")
    print("\n".join(f"  {line}" for line in snapshots.mount_commands()))
    done = f"sudo umount {snapshots.RESTORE_MOUNT}, then detach and delete {volume_id} in the EC2 console"
    print(f"When done: {done}.")
    return 0
