"""The start link's handler: an AWS Lambda function (Python, boto3) behind a function URL
that shows a student their server's state and address and, on a POST, starts it.

Shipped to Lambda as this one file (standard library and boto3, which Lambda's Python
runtime has): it imports nothing of flasklab. The stack (components/start_link.py) gives
it, in LINKS_ENV, each student's instance id and the SHA-256 of their token; the tokens
themselves are never in the function, its environment or its logs. A request names the
student and carries the token (`?student=ana&token=...`): the token's digest is compared
with the student's in constant time (hmac.compare_digest), so a wrong token, or another
student's, starts nothing and says nothing about which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
from typing import Any

import boto3

LINKS_ENV = "FLASKLAB_START_LINKS"  # {"student": {"instance": "i-...", "digest": "<sha256 hex>"}}
STACK_ENV = "FLASKLAB_STACK"
# Compared against when the student is unknown, so an unknown name takes as long as a wrong token.
NO_DIGEST = "0" * 64


def token_digest(token: str) -> str:
    """What the function keeps of a token. The tokens are long and random (pulumi-random),
    so a fast hash is enough: there is nothing to guess from."""
    return hashlib.sha256(token.encode()).hexdigest()


def _links() -> dict[str, dict[str, str]]:
    links: dict[str, dict[str, str]] = json.loads(os.environ.get(LINKS_ENV, "{}"))
    return links


def authorised_instance(student: str, token: str) -> str | None:
    """The student's instance id when the token is theirs; None otherwise."""
    entry = _links().get(student)
    expected = entry["digest"] if entry else NO_DIGEST
    matches = hmac.compare_digest(token_digest(token), expected)
    return entry["instance"] if entry and matches and token else None


def _page(status: int, title: str, body: str) -> dict[str, Any]:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'><meta name='robots' content='noindex'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        "body": text,
    }


def _state(ec2: Any, instance_id: str) -> tuple[str, str]:
    answer = ec2.describe_instances(InstanceIds=[instance_id])
    instance = answer["Reservations"][0]["Instances"][0]
    return instance["State"]["Name"], instance.get("PublicIpAddress", "")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    params = event.get("queryStringParameters") or {}
    student, token = str(params.get("student", "")), str(params.get("token", ""))
    instance_id = authorised_instance(student, token)
    if instance_id is None:
        return _page(403, "Not a valid start link", "<p>Ask your teacher for your server's start link.</p>")
    ec2 = boto3.client("ec2")
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    started = ""
    if method == "POST":
        state, _ = _state(ec2, instance_id)
        if state == "stopped":
            ec2.start_instances(InstanceIds=[instance_id])
            started = "<p>Starting: it serves in about a minute. Reload this page to see its address.</p>"
        elif state != "running":
            started = f"<p>It is {html.escape(state)} now: try again in a minute.</p>"
    state, address = _state(ec2, instance_id)
    shown = f" at <code>{html.escape(address)}</code>" if address else ""
    form = (
        "<form method='post'><button>Start my server</button></form>"
        if state == "stopped" and not started
        else ""
    )
    said = f"<p>{html.escape(student)}'s server is <strong>{html.escape(state)}</strong>{shown}.</p>"
    body = said + started + form
    return _page(200, f"{student}'s server", body)
