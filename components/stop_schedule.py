"""StopSchedule: an EventBridge Scheduler schedule that stops the stack's servers (every
student's, in a class stack) with EC2's StopInstances, acting as the teacher's role
(stopScheduleRoleArn, e.g. AWS Academy's LabRole) or as a role of its own that may stop
only the instances tagged as this stack's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from flasklab.plan import MANAGED_BY, TAG_COURSE, TAG_MANAGED_BY, TAG_STACK
from flasklab.stop_schedule import StopScheduleSettings

# EventBridge Scheduler's universal target for EC2's StopInstances: the input is the API's request.
STOP_INSTANCES_TARGET = "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# A stop that could not be made within the hour is dropped, not retried for a day (the default):
# by then the teacher may have started the servers again on purpose.
MAX_EVENT_AGE_SECONDS = 3600


@dataclass
class StopScheduleArgs:
    schedule: StopScheduleSettings
    # Every server of the stack. Their ids go into the schedule's input (at most 250 students:
    # ~5,500 of the input's 8,192 characters).
    instance_ids: Sequence[pulumi.Input[str]]
    # The stack's tags (flasklab.plan.tags without a student): on the role, and in its policy.
    tags: dict[str, str]


class StopSchedule(pulumi.ComponentResource):
    schedule_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StopScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flasklab:index:StopSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        depends_on: list[pulumi.Resource] = []
        if args.schedule.role_arn:
            self.role_arn = pulumi.Output.from_input(args.schedule.role_arn)
        else:
            role, policy = self._own_role(name, args, child)
            self.role_arn, depends_on = role.arn, [policy]
        schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            description=f"flasklab: stops the servers of stack {args.tags[TAG_STACK]} {args.schedule.when}",
            schedule_expression=args.schedule.expression,
            schedule_expression_timezone=args.schedule.timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=STOP_INSTANCES_TARGET,
                role_arn=self.role_arn,
                input=pulumi.Output.json_dumps({"InstanceIds": list(args.instance_ids)}),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.schedule_arn = schedule.arn
        self.register_outputs({"schedule_arn": self.schedule_arn, "role_arn": self.role_arn})

    def _own_role(
        self, name: str, args: StopScheduleArgs, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """A role only this account's EventBridge Scheduler can take, which may stop only the
        instances tagged as this stack's: a student's replaced server carries the same tags,
        and the policy stays one size however many students the class has."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        role = aws.iam.Role(
            f"{name}-role",
            description=f"EventBridge Scheduler stops the servers of flasklab stack {args.tags[TAG_STACK]}",
            assume_role_policy=pulumi.Output.json_dumps(identity.account_id.apply(trust_policy)),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(identity.arn, identity.account_id).apply(
                    lambda values: stop_policy(
                        partition=values[0].split(":")[1], account=values[1], tags=args.tags
                    )
                )
            ),
            opts=child,
        )
        return role, policy


def trust_policy(account: str) -> dict[str, Any]:
    """EventBridge Scheduler may take the role, for schedules of this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": SCHEDULER_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def stop_policy(partition: str, account: str, tags: dict[str, str]) -> dict[str, Any]:
    """Stopping, and nothing else, of this account's instances that carry the stack's tags."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:StopInstances",
                "Resource": f"arn:{partition}:ec2:*:{account}:instance/*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/{TAG_STACK}": tags[TAG_STACK],
                        f"aws:ResourceTag/{TAG_COURSE}": tags[TAG_COURSE],
                        f"aws:ResourceTag/{TAG_MANAGED_BY}": MANAGED_BY,
                    }
                },
            }
        ],
    }
