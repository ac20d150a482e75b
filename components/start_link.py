"""StartLink: a link per student that shows their server and starts it (startLink).

One AWS Lambda function per stack (flasklab/start_link.py, shipped as that one file) with
a public function URL; a random token per student (pulumi-random, secret in the state and
the outputs). The function gets only each token's SHA-256 and the student's instance id;
its role may describe instances (EC2 allows no narrower resource for DescribeInstances)
and start only the instances tagged as this stack's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from flasklab import start_link
from flasklab.classroom import outputs
from flasklab.iam import on_stack_instances, service_trust_policy
from flasklab.plan import TAG_STACK

LAMBDA_SERVICE = "lambda.amazonaws.com"
RUNTIME = "python3.12"
TOKEN_LENGTH = 32  # letters and digits: about 190 bits
# The secret outputs: a class stack's links by student, a one-student stack's link.
START_LINKS_OUTPUT = outputs.START_LINKS
START_LINK_OUTPUT = outputs.START_LINK


@dataclass
class StartLinkArgs:
    # By student (a one-student stack's key is its stack's name): the instance's id.
    instance_ids: Mapping[str, pulumi.Input[str]]
    # The stack's tags (flasklab.plan.tags without a student): on the role and the function,
    # and in the role's policy.
    tags: dict[str, str]


class StartLink(pulumi.ComponentResource):
    # By student: the link (a secret: it holds the token).
    links: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: StartLinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flasklab:index:StartLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tokens = {
            student: random.RandomPassword(
                f"{name}-{student}-token", length=TOKEN_LENGTH, special=False, opts=child
            )
            for student in args.instance_ids
        }
        role, policy = self._role(name, args, child)
        entries = {
            student: pulumi.Output.all(args.instance_ids[student], token.result).apply(
                lambda v: {"instance": v[0], "digest": start_link.token_digest(v[1])}
            )
            for student, token in tokens.items()
        }
        function = aws.lambda_.Function(
            f"{name}-function",
            description=f"flasklab: students of stack {args.tags[TAG_STACK]} start their servers",
            runtime=RUNTIME,
            handler="start_link.handler",
            code=pulumi.AssetArchive({"start_link.py": pulumi.FileAsset(start_link.__file__)}),
            role=role.arn,
            timeout=15,
            memory_size=128,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    start_link.LINKS_ENV: pulumi.Output.json_dumps(entries),
                    start_link.STACK_ENV: args.tags[TAG_STACK],
                }
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        url = aws.lambda_.FunctionUrl(
            f"{name}-url", function_name=function.name, authorization_type="NONE", opts=child
        )
        # A public function URL needs both permissions (AWS, since October 2025).
        aws.lambda_.Permission(
            f"{name}-invoke-url",
            action="lambda:InvokeFunctionUrl",
            function=function.name,
            principal="*",
            function_url_auth_type="NONE",
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="*",
            invoked_via_function_url=True,
            opts=child,
        )
        self.links = pulumi.Output.secret(
            pulumi.Output.all(url.function_url, *(token.result for token in tokens.values())).apply(
                lambda values: {
                    student: link(values[0], student, token)
                    for student, token in zip(tokens, values[1:], strict=True)
                }
            )
        )
        self.register_outputs({})

    def _role(
        self, name: str, args: StartLinkArgs, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        role = aws.iam.Role(
            f"{name}-role",
            description=f"flasklab's start link starts the servers of stack {args.tags[TAG_STACK]}",
            assume_role_policy=pulumi.Output.json_dumps(identity.account_id.apply(trust_policy)),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(identity.arn, identity.account_id).apply(
                    lambda v: start_policy(partition=v[0].split(":")[1], account=v[1], tags=args.tags)
                )
            ),
            opts=child,
        )
        return role, policy


def link(function_url: str, student: str, token: str) -> str:
    return f"{function_url.rstrip('/')}/?{urlencode({'student': student, 'token': token})}"


def trust_policy(account: str) -> dict[str, Any]:
    """Lambda may take the role, for functions of this account only."""
    return service_trust_policy(LAMBDA_SERVICE, account)


def start_policy(partition: str, account: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """Describing instances (DescribeInstances has no resource-level permissions: "*" is the
    only resource it takes) and starting, nothing else, this account's instances that carry
    the stack's tags."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
            on_stack_instances("ec2:StartInstances", partition, account, tags),
        ],
    }
