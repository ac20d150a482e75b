"""The IAM policy documents flasklab's roles share, as plain data (no Pulumi)."""

from __future__ import annotations

from typing import Any


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
