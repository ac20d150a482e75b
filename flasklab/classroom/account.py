"""The teacher's AWS account as the class commands see it: a class named by its stack
(course and region from the stack file) or by --course and --region, an EC2 client for
the region, the class's servers found by the tags flasklab sets (flasklab.plan), matched
exactly, and every AWS error turned into one AccountError that says what to do.

Throttling is retried by boto3 itself (its "standard" retry mode, with backoff); only
when AWS still refuses after every attempt does the teacher hear of it.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    WaiterError,
)

from flasklab import plan
from flasklab.aws_regions import refuse_unknown_region
from flasklab.settings import ConfigError
from flasklab.stacks import stack_course_and_region

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeDef, PaginatorConfigTypeDef

RETRY_MODE: Final = "standard"
MAX_ATTEMPTS = 10
# The states of an instance that still exists (a terminated one stays listed for a while).
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")

CREDENTIALS_HELP = (
    "run `aws configure`, or for AWS Academy paste the credentials from the lab's "
    "'AWS Details' into ~/.aws/credentials"
)
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_REFUSED = {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"}
_FORBIDDEN = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}
_THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException"}


class AccountError(Exception):
    """AWS cannot be asked or refused; the message says why and what to do."""


@dataclass(frozen=True)
class ClassTarget:
    """The servers a class command acts on: a course's, or only one stack's (whose file
    names the course and the region)."""

    course: str
    region: str | None
    stack: str = ""

    @property
    def words(self) -> str:
        return f"stack {self.stack} (course {self.course})" if self.stack else f"course {self.course}"

    @property
    def option(self) -> str:
        """How a printed command names this class."""
        return f"--stack {self.stack}" if self.stack else f"--course {self.course}"


def add_class_arguments(parser: argparse.ArgumentParser, *, stack_required: bool = False) -> None:
    """The one way every class command names its class: --stack (course and region from the
    stack file), or for a class without a stack file here --course (and --region)."""
    stack_help = "the stack, as in stacks/Pulumi.NAME.yaml: its course and aws:region name the servers"
    if stack_required:
        parser.add_argument("--stack", required=True, help=stack_help)
    else:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--stack", help=stack_help + " (only that stack's servers)")
        which.add_argument(
            "--course", help="every server of this course (the stacks' `course` setting), of any stack"
        )
    parser.add_argument(
        "--region",
        help="the AWS region of the servers (default: the stack's aws:region, else AWS_REGION, "
        "else your AWS config's)",
    )


def class_target(args: argparse.Namespace) -> ClassTarget:
    """The class the command's arguments name; an AccountError when its stack file cannot say."""
    stack = getattr(args, "stack", None) or ""
    if not stack:
        return ClassTarget(args.course, args.region)
    try:
        course, region = stack_course_and_region(stack)
    except ConfigError as error:
        raise AccountError(str(error)) from None
    return ClassTarget(course, args.region or region or None, stack)


def ec2_client(region: str | None, max_attempts: int = MAX_ATTEMPTS) -> EC2Client:
    """--region, else AWS_REGION (as the AWS CLI reads it), else boto3's own (AWS_DEFAULT_REGION,
    ~/.aws/config)."""
    config = Config(retries={"mode": RETRY_MODE, "max_attempts": max_attempts})
    region = region or os.environ.get("AWS_REGION") or None
    check_region(region)
    with aws_errors(region):
        return boto3.session.Session(region_name=region).client("ec2", config=config)


def client_like(ec2: EC2Client, service: str) -> Any:
    """Another service's client in the EC2 client's region, with the same retries."""
    config = Config(retries={"mode": RETRY_MODE, "max_attempts": MAX_ATTEMPTS})
    return boto3.session.Session(region_name=ec2.meta.region_name).client(service, config=config)  # type: ignore[call-overload]


def check_region(region: str | None) -> None:
    """A region that does not exist is refused at once (boto3 would try to reach it for ~20 s)."""
    refuse_unknown_region(region, "--region", AccountError)


@contextmanager
def aws_errors(region: str | None) -> Iterator[None]:
    """Turns what boto3 raises into an AccountError saying what to do."""
    try:
        yield
    except NoRegionError:
        raise AccountError(
            "no AWS region given: pass --region (e.g. --region us-east-1, where your servers are) "
            "or set AWS_REGION."
        ) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise AccountError(f"no AWS credentials found: {CREDENTIALS_HELP}.") from None
    except ProfileNotFound as error:
        raise AccountError(f"{error}: check AWS_PROFILE, or `aws configure --profile NAME`.") from None
    except EndpointConnectionError as error:
        raise AccountError(
            f"cannot reach EC2 ({error.kwargs.get('endpoint_url', '')}): check the region's name "
            f"(--region {region or '?'}; e.g. eu-west-1) and the network."
        ) from None
    except WaiterError as error:
        raise AccountError(
            f"gave up waiting ({error.last_response.get('Error', {}).get('Message', error)}); the "
            f"instances keep going: see `class status`, and run the command again if needed."
        ) from None
    except ClientError as error:
        raise AccountError(client_error_message(error)) from None
    except BotoCoreError as error:
        raise AccountError(f"AWS: {error}") from None


def aws_error_text(error: ClientError | BotoCoreError) -> str:
    """What went wrong in a call, in the teacher's words where AWS gave a code."""
    return client_error_message(error) if isinstance(error, ClientError) else str(error)


def client_error_message(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    if code in _EXPIRED:
        return (
            f"AWS says the credentials expired ({code}). AWS Academy's last a few hours: start the lab "
            f"again and paste the new ones into ~/.aws/credentials; otherwise {CREDENTIALS_HELP}."
        )
    if code in _REFUSED:
        return f"AWS refused the credentials ({code}: {message}); {CREDENTIALS_HELP}."
    if code in _FORBIDDEN:
        return (
            f"your AWS user may not do {error.operation_name} ({code}). Use an account or role "
            f"allowed the EC2 actions flasklab uses (Describe*, Start/Stop/TerminateInstances, "
            f"DeleteSecurityGroup, DeleteKeyPair)."
        )
    if code in _THROTTLED:
        return (
            f"AWS kept throttling {error.operation_name} after {MAX_ATTEMPTS} attempts ({code}); "
            f"wait a minute and run the command again."
        )
    if code == "OptInRequired":
        return f"this region is not enabled for the account ({message}); enable it, or pass another --region."
    return f"EC2 refused {error.operation_name}: {code}: {message}"


# Why EC2 stopped an instance (its StateReason code), in a teacher's words.
STOP_REASONS = {
    # The server powered itself off: flasklab's idle stop (autoStopIdleMinutes), or a shutdown on it.
    "Client.InstanceInitiatedShutdown": (
        "it stopped itself (idle stop, autoStopIdleMinutes, or a shutdown on it)"
    ),
    # A StopInstances call: the teacher (console, `class stop`) or the stop schedule.
    "Client.UserInitiatedShutdown": (
        "stopped by a StopInstances call (the teacher, `class stop` or the stop schedule)"
    ),
    "Server.ScheduledStop": "stopped by AWS for scheduled maintenance",
    "Server.InsufficientInstanceCapacity": "AWS had no capacity to start it",
    "Client.InternalError": "AWS could not start it (internal error; try `class start` again)",
}
# "User initiated (2026-12-05 21:00:03 GMT)": when EC2 changed the state.
_WHEN = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2})(?::\d{2})? (?:GMT|UTC)\)")


@dataclass(frozen=True)
class Server:
    """One of the course's instances, as its tags and EC2 describe it."""

    instance_id: str
    name: str  # the Name tag
    state: str
    stack: str
    student: str  # '' on a stack of one student
    server_names: tuple[str, ...]
    names_omitted: int
    public_ip: str
    launch_time: datetime | None
    # Every tag (the build/config tags say whether it runs what its stack says now).
    tags: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    state_reason: str = ""  # EC2's StateReason code, e.g. Client.UserInitiatedShutdown
    transition_reason: str = ""  # EC2's StateTransitionReason, e.g. "User initiated (date)"

    @property
    def who(self) -> str:
        """The student, or for a stack of one student the stack (as --student matches it)."""
        return self.student or self.stack

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def drift(self) -> str:
        """'' when it was built from what its stack says now; else what applies it."""
        return plan.drift_note(self.tags, self.stack, self.student)

    @property
    def not_running_note(self) -> str:
        """Why it does not serve now, from EC2 (when, why); '' while it runs."""
        if self.running:
            return ""
        when = _WHEN.search(self.transition_reason)
        since = f" since {when[1]} UTC" if when else ""
        why = STOP_REASONS.get(self.state_reason, "")
        if self.state in ("stopped", "stopping"):
            return f"{self.state}{since}" + (f": {why}" if why else "")
        if self.state == "pending":
            return "starting: check again in a minute"
        return f"{self.state}{since}"


def course_filters(course: str) -> list[FilterTypeDef]:
    """EC2's filters for the course's resources. EC2 reads * and ? in a filter's value as
    wildcards, so a course with either is not filtered on by EC2 (only managed-by): the
    caller keeps only exact matches (is_of)."""
    filters: list[FilterTypeDef] = [{"Name": f"tag:{plan.TAG_MANAGED_BY}", "Values": [plan.MANAGED_BY]}]
    if not any(wildcard in course for wildcard in "*?"):
        filters.append({"Name": f"tag:{plan.TAG_COURSE}", "Values": [course]})
    return filters


def is_of(tags: Mapping[str, str], course: str, stack: str = "") -> bool:
    """The exact match of a resource's tags to the course (and stack): never a wildcard's."""
    return (
        tags.get(plan.TAG_MANAGED_BY) == plan.MANAGED_BY
        and tags.get(plan.TAG_COURSE) == course
        and (not stack or tags.get(plan.TAG_STACK) == stack)
    )


def find_servers(
    client: EC2Client, course: str, page_size: int | None = None, stack: str = ""
) -> list[Server]:
    """Every live instance of the course (of one stack, when given), over as many pages as
    EC2 returns."""
    state: FilterTypeDef = {"Name": "instance-state-name", "Values": list(LIVE_STATES)}
    pagination: PaginatorConfigTypeDef = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator("describe_instances").paginate(
        Filters=[*course_filters(course), state], PaginationConfig=pagination
    )
    servers = [
        server_of(instance)
        for page in pages
        for reservation in page.get("Reservations", [])
        for instance in reservation.get("Instances", [])
        if is_of(tag_map(instance.get("Tags", [])), course, stack)
    ]
    return sorted(servers, key=lambda s: (s.stack, s.student, s.instance_id))


def target_servers(client: EC2Client, target: ClassTarget) -> list[Server]:
    return find_servers(client, target.course, stack=target.stack)


def server_of(instance: InstanceTypeDef) -> Server:
    tags = tag_map(instance.get("Tags", []))
    return Server(
        instance_id=instance["InstanceId"],
        name=tags.get("Name", ""),
        state=instance.get("State", {}).get("Name", "unknown"),
        stack=tags.get(plan.TAG_STACK, ""),
        student=tags.get(plan.TAG_STUDENT, ""),
        server_names=tuple(tags.get(plan.TAG_SERVER_NAMES, "").split()),
        names_omitted=int(tags.get(plan.TAG_SERVER_NAMES_OMITTED, "0") or 0),
        public_ip=instance.get("PublicIpAddress", ""),
        launch_time=instance.get("LaunchTime"),
        tags=tags,
        state_reason=instance.get("StateReason", {}).get("Code", ""),
        transition_reason=instance.get("StateTransitionReason", ""),
    )


def tag_map(tags: Any) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def chunks(ids: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
