"""The teacher's AWS account as `class status|stop|start|sweep` see it: an EC2 client for a
region, the course's resources found by the tags flasklab sets (flasklab.plan), and every
AWS error turned into one AccountError that says what to do.

Throttling is retried by boto3 itself (its "standard" retry mode, with backoff); only
when AWS still refuses after every attempt does the teacher hear of it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--course", required=True, help="the course's tag (the stacks' `course` setting)")
    parser.add_argument(
        "--region", help="the AWS region of the servers (default: AWS_REGION, or your AWS config's)"
    )


def ec2_client(region: str | None, max_attempts: int = MAX_ATTEMPTS) -> EC2Client:
    """--region, else AWS_REGION (as the AWS CLI reads it), else boto3's own (AWS_DEFAULT_REGION,
    ~/.aws/config)."""
    config = Config(retries={"mode": RETRY_MODE, "max_attempts": max_attempts})
    region = region or os.environ.get("AWS_REGION") or None
    refuse_unknown_region(region, "--region", AccountError)
    with aws_errors(region):
        return boto3.session.Session(region_name=region).client("ec2", config=config)


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

    @property
    def who(self) -> str:
        """The student, or for a stack of one student the stack (as --student matches it)."""
        return self.student or self.stack


def course_filters(course: str) -> list[FilterTypeDef]:
    return [
        {"Name": f"tag:{plan.TAG_MANAGED_BY}", "Values": [plan.MANAGED_BY]},
        {"Name": f"tag:{plan.TAG_COURSE}", "Values": [course]},
    ]


def find_servers(client: EC2Client, course: str, page_size: int | None = None) -> list[Server]:
    """Every live instance of the course, over as many pages as EC2 returns."""
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
    ]
    return sorted(servers, key=lambda s: (s.stack, s.student, s.instance_id))


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
    )


def tag_map(tags: Any) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def chunks(ids: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
