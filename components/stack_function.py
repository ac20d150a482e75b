"""A stack's Lambda function with its own role, policy and log group: the start link's
(components/start_link.py) and the address updater's (components/dns_names.py).

Made under the calling component (parent) with the names the two components have always
given them, so a stack made before this module keeps its functions, their URLs included.

Each function writes to a log group of its own (`/flasklab/<stack>/<purpose>`, kept
LOG_RETENTION_DAYS) and its role may write to that group only: a start a student says did
not happen, or a name that did not follow its server, can be read in CloudWatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pulumi
import pulumi_aws as aws

from flasklab.iam import service_trust_policy, writes_to_log_group
from flasklab.plan import TAG_STACK

LAMBDA_SERVICE = "lambda.amazonaws.com"
RUNTIME = "python3.12"
# Long enough to read back a week's classes and the one before; not kept all term.
LOG_RETENTION_DAYS = 30

# (partition, account) -> the statements of what the function itself does.
Statements = Callable[[str, str], list[dict[str, Any]]]


@dataclass
class StackFunctionArgs:
    # What the function is for, in a few words of a path (`start-link`, `dns-updater`).
    purpose: str
    description: str
    role_description: str
    # The handler's module, shipped as its one file; `handler` is its entry point.
    module: ModuleType
    statements: Statements
    # The stack's tags (flasklab.plan.tags without a student), made valid where needed.
    tags: dict[str, str]
    timeout: int
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Other files next to the handler, by name.
    files: Mapping[str, pulumi.Asset] = field(default_factory=dict)


def log_group_name(stack: str, purpose: str) -> str:
    return f"/flasklab/{stack}/{purpose}"


def module_file(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1] + ".py"


def stack_function(
    parent: pulumi.Resource, name: str, function_name: str, args: StackFunctionArgs
) -> aws.lambda_.Function:
    """The function (resource `function_name`) and its role, policy and log group
    (`{name}-role`, `{name}-policy`, `{name}-logs`), all children of `parent`."""
    child = pulumi.ResourceOptions(parent=parent)
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=parent))
    logs = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=log_group_name(args.tags[TAG_STACK], args.purpose),
        retention_in_days=LOG_RETENTION_DAYS,
        tags=args.tags,
        opts=child,
    )
    role = aws.iam.Role(
        f"{name}-role",
        description=args.role_description,
        assume_role_policy=pulumi.Output.json_dumps(
            identity.account_id.apply(lambda account: service_trust_policy(LAMBDA_SERVICE, account))
        ),
        tags=args.tags,
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.json_dumps(
            pulumi.Output.all(identity.arn, identity.account_id, logs.arn).apply(
                lambda v: {
                    "Version": "2012-10-17",
                    "Statement": [*args.statements(v[0].split(":")[1], v[1]), writes_to_log_group(v[2])],
                }
            )
        ),
        opts=child,
    )
    handler_file = module_file(args.module)
    assert args.module.__file__ is not None, args.module
    return aws.lambda_.Function(
        function_name,
        description=args.description,
        runtime=RUNTIME,
        handler=handler_file.removesuffix(".py") + ".handler",
        code=pulumi.AssetArchive({handler_file: pulumi.FileAsset(args.module.__file__), **args.files}),
        role=role.arn,
        timeout=args.timeout,
        memory_size=128,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(args.environment)),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=logs.name),
        tags=args.tags,
        # Not invoked before it may act and write its log.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy]),
    )
