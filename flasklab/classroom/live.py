"""What EC2 says of a stack's servers now, for `class check` and `class sheet`: whether
each one runs, its public address now (a stop and start changes it; the outputs keep the
one of the last `pulumi up`), why a stopped one stopped, and whether it was built from
an older config. Where AWS cannot be asked (no credentials, no region), the commands go on
from the outputs alone and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flasklab.classroom.account import (
    AccountError,
    ClassTarget,
    Server,
    aws_errors,
    ec2_client,
    target_servers,
)
from flasklab.settings import ConfigError
from flasklab.stacks import stack_course_and_region


@dataclass(frozen=True)
class LiveServers:
    """The stack's servers by student (a one-student stack's by the stack's name); None
    when EC2 could not be asked, and then `note` says why."""

    by_student: dict[str, Server] | None = None
    note: str = ""
    region: str = ""
    stack: str = ""

    def of(self, student: str) -> Server | None:
        return None if self.by_student is None else self.by_student.get(student)

    @property
    def asked(self) -> bool:
        return self.by_student is not None

    def start_command(self, student: str) -> str:
        return f"python -m flasklab class start --stack {self.stack} --student {student}"


@dataclass(frozen=True)
class _Pick:
    servers: list[Server] = field(default_factory=list)

    def best(self) -> Server:
        """A replaced server's old instance may still be listed: the running one, else the newest."""
        return max(self.servers, key=lambda s: (s.running, s.launch_time.timestamp() if s.launch_time else 0))


def live_servers(stack: str, region: str | None = None) -> LiveServers:
    """The stack's servers as EC2 has them (course and region from the stack file)."""
    try:
        course, stack_region = stack_course_and_region(stack)
        target = ClassTarget(course, region or stack_region or None, stack)
        client = ec2_client(target.region)
        with aws_errors(target.region):
            servers = target_servers(client, target)
    except (AccountError, ConfigError) as error:
        return LiveServers(
            note=(
                f"EC2 was not asked for the servers' state ({error}). Going by the stack's outputs "
                f"alone: their addresses are those of the last `pulumi up`, and a stopped server "
                f"looks unreachable."
            ),
            stack=stack,
        )
    picks: dict[str, _Pick] = {}
    for server in servers:
        picks.setdefault(server.who, _Pick()).servers.append(server)
    by_student = {who: pick.best() for who, pick in picks.items()}
    return LiveServers(by_student, region=client.meta.region_name, stack=stack)
