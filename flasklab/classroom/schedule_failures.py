"""The stops and starts the schedules could not make: EventBridge Scheduler sends each one
(after its retries) to the stack's dead-letter SQS queue (components/stop_schedule.py), and
`class status` shows the last one of each server, saying whether it was a stop or a start
(the schedule's name says: stop-<student>, start-<student>). Read without taking the messages
away: they stay for the next look until SQS's retention (14 days) drops them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from flasklab.classroom.account import Server, aws_error_text, client_like
from flasklab.stop_schedule import CRON_SETTINGS, STOP, dead_letter_queue_name, schedule_name

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# Receives until SQS has no more unseen messages, at most this many times (10 each).
MAX_RECEIVES = 30
# A message received here is hidden while the look lasts (then shown again), so each
# receive brings others.
PEEK_SECONDS = 30
_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@dataclass(frozen=True)
class FailedCall:
    """A scheduled stop or start that failed."""

    when: datetime
    schedule: str  # the schedule's name in its stack's group: stop-<student>, start-<student>
    instance_ids: tuple[str, ...]
    error: str

    @property
    def verb(self) -> str:
        """stop or start: the schedule's name begins with it (flasklab.stop_schedule.schedule_name)."""
        return next((verb for verb in CRON_SETTINGS if self.schedule.split("-")[0] == verb), STOP)

    @property
    def words(self) -> str:
        return f"{self.verb} of {self.when:%Y-%m-%d %H:%M} UTC: {self.error}"


@dataclass
class ScheduleFailures:
    """The last failed scheduled call of each (stack, schedule), and what could not be read."""

    last: dict[tuple[str, str], FailedCall] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def last_of(self, server: Server) -> str:
        """The server's last failed stop or start, whichever came later."""
        failed = max(
            (
                f
                for verb in CRON_SETTINGS
                if (f := self.last.get((server.stack, schedule_name(server.student, verb))))
            ),
            key=lambda f: f.when,
            default=None,
        )
        if failed is None:  # an older schedule's message names the instance
            failed = max(
                (
                    f
                    for (stack, _), f in self.last.items()
                    if stack == server.stack and server.instance_id in f.instance_ids
                ),
                key=lambda f: f.when,
                default=None,
            )
        return failed.words if failed else ""

    def add(self, stack: str, failed: FailedCall) -> None:
        key = (stack, failed.schedule)
        if key not in self.last or self.last[key].when < failed.when:
            self.last[key] = failed


def read_schedule_failures(ec2: EC2Client, stacks: list[str]) -> ScheduleFailures:
    """Each stack's failed stops and starts; a stack without schedules has no queue and none."""
    failures = ScheduleFailures()
    if not stacks:
        return failures
    try:
        sqs = client_like(ec2, "sqs")
        for stack in stacks:
            for message in _messages(sqs, stack):
                failures.add(stack, failed_call(message))
    except (ClientError, BotoCoreError) as error:
        failures.notes.append(
            f"the schedules' failed stops and starts could not be read: {aws_error_text(error)}"
        )
    return failures


def _messages(sqs: Any, stack: str) -> Iterator[dict[str, Any]]:
    try:
        url = sqs.get_queue_url(QueueName=dead_letter_queue_name(stack))["QueueUrl"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _NO_QUEUE:
            return
        raise
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(MAX_RECEIVES):
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=PEEK_SECONDS,
            WaitTimeSeconds=0,
            AttributeNames=["SentTimestamp"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [message for message in batch if message["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((message["MessageId"], message) for message in fresh)
    _show_again(sqs, url, list(seen.values()))
    yield from seen.values()


def _show_again(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """Hidden while read (so each receive brings others), visible again at once after: the
    next `class status` sees them too."""
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for n, message in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def failed_call(message: dict[str, Any]) -> FailedCall:
    """One dead-letter event: its body is the schedule's input, its attributes say what failed."""
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    sent = int((message.get("Attributes") or {}).get("SentTimestamp", "0")) / 1000
    try:
        body = json.loads(message.get("Body") or "{}")
        ids = tuple(str(i) for i in body.get("InstanceIds", [])) if isinstance(body, dict) else ()
    except (json.JSONDecodeError, TypeError):
        ids = ()
    error = ": ".join(
        part for part in (attributes.get("ERROR_CODE"), attributes.get("ERROR_MESSAGE")) if part
    )
    return FailedCall(
        when=datetime.fromtimestamp(sent, UTC),
        schedule=attributes.get("SCHEDULE_ARN", "").rsplit("/", 1)[-1],
        instance_ids=ids,
        error=error or "no reason given",
    )
