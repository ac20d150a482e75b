"""PowerSchedules: per server, one EventBridge Scheduler schedule for each direction the
stack schedules (stopSchedule: EC2's StopInstances; startSchedule: StartInstances), each
naming only its own instance, all in one schedule group named for the stack, acting as
the teacher's role (stopScheduleRoleArn, e.g. AWS Academy's LabRole) or as one role of the
stack's own that may stop (and start, when starts are scheduled) only the instances tagged
as this stack's. A stop or start that fails (after its retries) goes to the stack's
dead-letter SQS queue, which `class status` reads.

The stop schedule came first: the component keeps its type and name (`...-stop`), and the
stop schedules, group, queue and role keep their resource names and inputs, so a stack that
had a stop schedule gets only the start schedules added (and its role's policy and
description updated in place) when startSchedule is set.

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
    START,
    STOP,
    PowerSchedule,
    dead_letter_queue_name,
    role_name,
    schedule_group_name,
    schedule_name,
    tag_values,
)

# EventBridge Scheduler's universal targets for EC2's StopInstances and StartInstances: the
# input is the API's request.
TARGETS = {
    STOP: "arn:aws:scheduler:::aws-sdk:ec2:stopInstances",
    START: "arn:aws:scheduler:::aws-sdk:ec2:startInstances",
}
# The EC2 action each direction needs on the stack's instances.
ACTIONS = {STOP: "ec2:StopInstances", START: "ec2:StartInstances"}
# What the role does, in its description (a stop-only role keeps the words it was made with).
ROLE_DOES = {(STOP,): "stops", (START,): "starts", (START, STOP): "starts and stops"}
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# A stop or start that could not be made within the hour is dropped, not retried for a day (the
# default): by then the teacher may have started or stopped the servers on purpose.
MAX_EVENT_AGE_SECONDS = 3600
# Retries of a call EC2 refused for a passing reason (throttling); then the dead-letter queue.
MAX_RETRY_ATTEMPTS = 3
# SQS's longest retention: a failed stop or start is still there at the next week's class.
FAILED_STOPS_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass
class PowerSchedulesArgs:
    # By direction (STOP, START): the stack's schedules, at least one; all read in one time
    # zone and run as one role (flasklab.stop_schedule.schedules_of).
    schedules: Mapping[str, PowerSchedule]
    # Each server of the stack: its student ('' on a stack of one student) -> its instance id.
    instance_ids: Mapping[str, pulumi.Input[str]]
    # The stack's tags (flasklab.plan.tags without a student), as the instances carry them; the
    # policy matches them exactly, and the role, group and queue get them made valid for IAM.
    tags: dict[str, str]


class PowerSchedules(pulumi.ComponentResource):
    group_name: pulumi.Output[str]
    queue_url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: PowerSchedulesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # The stop schedule's type: its children's URNs (which hold it) stay as they were.
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
        role_arn = next(iter(args.schedules.values())).role_arn
        if role_arn:
            self.role_arn = pulumi.Output.from_input(role_arn)
        else:
            role, policy = self._own_role(name, args, queue, child)
            self.role_arn, depends_on = role.arn, [policy]
        for schedule in args.schedules.values():
            for student, instance_id in args.instance_ids.items():
                self._schedule(
                    schedule_resource_name(name, student, schedule.verb),
                    student,
                    instance_id,
                    schedule,
                    group,
                    queue,
                    args,
                    depends_on,
                )
        self.group_name, self.queue_url = group.name, queue.url
        self.register_outputs({"group_name": group.name, "queue_url": queue.url, "role_arn": self.role_arn})

    def _schedule(
        self,
        resource_name: str,
        student: str,
        instance_id: pulumi.Input[str],
        schedule: PowerSchedule,
        group: aws.scheduler.ScheduleGroup,
        queue: aws.sqs.Queue,
        args: PowerSchedulesArgs,
        depends_on: list[pulumi.Resource],
    ) -> aws.scheduler.Schedule:
        whose = f"{student}'s server" if student else "the server"
        return aws.scheduler.Schedule(
            resource_name,
            name=schedule_name(student, schedule.verb),
            group_name=group.name,
            description=(
                f"flasklab: {schedule.verb}s {whose} of stack {args.tags[TAG_STACK]} {schedule.when}"
            ),
            schedule_expression=schedule.expression,
            schedule_expression_timezone=schedule.timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=TARGETS[schedule.verb],
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
        self, name: str, args: PowerSchedulesArgs, queue: aws.sqs.Queue, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """A role only this account's EventBridge Scheduler can take, which may stop (and start,
        when starts are scheduled) only the instances tagged as this stack's (a student's
        replaced server carries the same tags, and the policy stays one size however many
        students the class has) and report a failed call to the stack's queue."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        verbs, stack = tuple(sorted(args.schedules)), args.tags[TAG_STACK]
        role = aws.iam.Role(
            f"{name}-role",
            name=role_name(args.tags[TAG_STACK]),
            description=f"EventBridge Scheduler {ROLE_DOES[verbs]} the servers of flasklab stack {stack}",
            assume_role_policy=pulumi.Output.json_dumps(identity.account_id.apply(trust_policy)),
            tags=tag_values(args.tags),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(identity.arn, identity.account_id, queue.arn).apply(
                    lambda values: schedule_policy(
                        partition=values[0].split(":")[1],
                        account=values[1],
                        tags=args.tags,
                        queue_arn=values[2],
                        verbs=verbs,
                    )
                )
            ),
            opts=child,
        )
        return role, policy


def trust_policy(account: str) -> dict[str, Any]:
    """EventBridge Scheduler may take the role, for schedules of this account only."""
    return service_trust_policy(SCHEDULER_SERVICE, account)


def schedule_resource_name(name: str, student: str, verb: str) -> str:
    """The Pulumi name of a student's schedule. A stop schedule keeps the name it always had;
    a start schedule's ends in `.start`: a dot is in no student's name (letters, digits, -),
    so a student called `ana-start` cannot take `ana`'s."""
    base = f"{name}-{student or 'server'}"
    return base if verb == STOP else f"{base}.{verb}"


def schedule_policy(
    partition: str, account: str, tags: dict[str, str], queue_arn: str, verbs: tuple[str, ...] = (STOP,)
) -> dict[str, Any]:
    """Stopping and/or starting (the scheduled directions), and nothing else, of this account's
    instances that carry the stack's tags (exactly: StringEquals reads no wildcards), and
    sending a failed call to the stack's queue. One statement for both: flasklab.iam's."""
    actions = [ACTIONS[verb] for verb in verbs]
    return {
        "Version": "2012-10-17",
        "Statement": [
            on_stack_instances(actions[0] if len(actions) == 1 else actions, partition, account, tags),
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
        ],
    }
