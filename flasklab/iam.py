"""The IAM policy documents flasklab's roles share, as plain data (no Pulumi)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flasklab.plan import MANAGED_BY, TAG_COURSE, TAG_MANAGED_BY, TAG_STACK


def service_trust_policy(service: str, account: str) -> dict[str, Any]:
    """An AWS service (e.g. scheduler.amazonaws.com) may take the role, on behalf of this
    account only (aws:SourceAccount: no other account's schedules or functions)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def on_stack_instances(
    actions: str | Sequence[str], partition: str, account: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """A statement allowing the actions (one, or several) on this account's instances that
    carry the stack's tags, exactly (StringEquals reads no wildcards): a student's rebuilt
    server carries them too. One action stays a string, as the stop schedule's always was."""
    return {
        "Effect": "Allow",
        "Action": actions if isinstance(actions, str) else sorted(actions),
        "Resource": f"arn:{partition}:ec2:*:{account}:instance/*",
        "Condition": {
            "StringEquals": {
                f"aws:ResourceTag/{TAG_STACK}": tags[TAG_STACK],
                f"aws:ResourceTag/{TAG_COURSE}": tags[TAG_COURSE],
                f"aws:ResourceTag/{TAG_MANAGED_BY}": MANAGED_BY,
            }
        },
    }


def writes_to_log_group(log_group_arn: str) -> dict[str, Any]:
    """A statement allowing a function to write its log to its own log group, nothing else
    (the group itself is made by `pulumi up`, so no logs:CreateLogGroup)."""
    return {
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"{log_group_arn}:*",
    }
