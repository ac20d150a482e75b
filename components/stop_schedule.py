"""StopSchedule: one EventBridge Scheduler schedule per server, each stopping only its own
instance with EC2's StopInstances, all in one schedule group named for the stack, acting
as the teacher's role (stopScheduleRoleArn, e.g. AWS Academy's LabRole) or as one role of
the stack's own that may stop only the instances tagged as this stack's. A stop that fails
(after its retries) goes to the stack's dead-letter SQS queue, which `class status` reads.

Why a schedule per server: StopInstances fails whole when one of its ids does not exist or
cannot be stopped (a swept, replaced or pending instance), so one schedule naming the class
stopped nobody. EventBridge's universal target takes no tag-based selection (it sends the
API request as written), and an in-guest timer would be baked into the user-data, so a
change of time would need every server rebuilt. A replaced server's schedule names the new
instance id on the next `pulumi up` (the input is the instance's id Output).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from flasklab.iam import on_stack_instances, service_trust_policy
from flasklab.plan import TAG_STACK
from flasklab.stop_schedule import (
    StopScheduleSettings,
    dead_letter_queue_name,
    role_name,
    schedule_group_name,
    schedule_name,
    tag_values,
)

# EventBridge Scheduler's universal target for EC2's StopInstances: the input is the API's request.
STOP_INSTANCES_TARGET = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# A stop that could not be made within the hour is dropped, not retried for a day (the default):
# by then the teacher may have started the servers again on purpose.
MAX_EVENT_AGE_SECONDS = 3600
# Retries of a stop EC2 refused for a passing reason (throttling); then the dead-letter queue.
MAX_RETRY_ATTEMPTS = 3
# SQS's longest retention: a failed stop is still there at the next week's class.
FAILED_STOPS_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass
class StopScheduleArgs:
    schedule: StopScheduleSettings
    # Each server of the stack: its student ('' on a stack of one student) -> its instance id.
    instance_ids: Mapping[str, pulumi.Input[str]]
    # The stack's tags (flasklab.plan.tags without a student), as the instances carry them; the
    # policy matches them exactly, and the role, group and queue get them made valid for IAM.
    tags: dict[str, str]


class StopSchedule(pulumi.ComponentResource):
    group_name: pulumi.Output[str]
    queue_url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StopScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flasklab:index:StopSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = args.tags[TAG_STACK]
        tags = tag_values(args.tags)
        group = aws.scheduler.ScheduleGroup(
            f"{name}-group", name=schedule_group_name(stack), tags=tags, opts=child
        )
        queue = aws.sqs.Queue(
            f"{name}-failed",
            name=dead_letter_queue_name(stack),
            message_retention_seconds=FAILED_STOPS_RETENTION_SECONDS,
            tags=tags,
            opts=child,
        )
        depends_on: list[pulumi.Resource] = []
        if args.schedule.role_arn:
            self.role_arn = pulumi.Output.from_input(args.schedule.role_arn)
        else:
            role, policy = self._own_role(name, args, queue, child)
            self.role_arn, depends_on = role.arn, [policy]
        for student, instance_id in args.instance_ids.items():
            self._schedule(
                f"{name}-{student or 'server'}", student, instance_id, group, queue, args, depends_on
            )
        self.group_name, self.queue_url = group.name, queue.url
        self.register_outputs({"group_name": group.name, "queue_url": queue.url, "role_arn": self.role_arn})

    def _schedule(
        self,
        resource_name: str,
        student: str,
        instance_id: pulumi.Input[str],
        group: aws.scheduler.ScheduleGroup,
        queue: aws.sqs.Queue,
        args: StopScheduleArgs,
        depends_on: list[pulumi.Resource],
    ) -> aws.scheduler.Schedule:
        whose = f"{student}'s server" if student else "the server"
        return aws.scheduler.Schedule(
            resource_name,
            name=schedule_name(student),
            group_name=group.name,
            description=f"flasklab: stops {whose} of stack {args.tags[TAG_STACK]} {args.schedule.when}",
            schedule_expression=args.schedule.expression,
            schedule_expression_timezone=args.schedule.timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=STOP_INSTANCES_TARGET,
                role_arn=self.role_arn,
                input=pulumi.Output.json_dumps({"InstanceIds": [instance_id]}),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
                    maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
                ),
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=queue.arn),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _own_role(
        self, name: str, args: StopScheduleArgs, queue: aws.sqs.Queue, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """A role only this account's EventBridge Scheduler can take, which may stop only the
        instances tagged as this stack's (a student's replaced server carries the same tags, and
        the policy stays one size however many students the class has) and report a failed stop
        to the stack's queue."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        role = aws.iam.Role(
            f"{name}-role",
            name=role_name(args.tags[TAG_STACK]),
            description=f"EventBridge Scheduler stops the servers of flasklab stack {args.tags[TAG_STACK]}",
            assume_role_policy=pulumi.Output.json_dumps(identity.account_id.apply(trust_policy)),
            tags=tag_values(args.tags),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(identity.arn, identity.account_id, queue.arn).apply(
                    lambda values: stop_policy(
                        partition=values[0].split(":")[1],
                        account=values[1],
                        tags=args.tags,
                        queue_arn=values[2],
                    )
                )
            ),
            opts=child,
        )
        return role, policy


def trust_policy(account: str) -> dict[str, Any]:
    """EventBridge Scheduler may take the role, for schedules of this account only."""
    return service_trust_policy(SCHEDULER_SERVICE, account)


def stop_policy(partition: str, account: str, tags: dict[str, str], queue_arn: str) -> dict[str, Any]:
    """Stopping, and nothing else, of this account's instances that carry the stack's tags
    (exactly: StringEquals reads no wildcards), and sending a failed stop to the stack's queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            on_stack_instances("ec2:StopInstances", partition, account, tags),
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
        ],
    }
