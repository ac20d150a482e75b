"""AppSecretValues: the app's SECRET_KEY and database password, generated once per stack.

pulumi-random keeps each generated value in the stack's state, encrypted, so every
`pulumi up` renders the same ones; a value the teacher set with
`pulumi config set --secret` is used instead, and no generator is created for it.
Which secrets a server has, and how they are generated, is flasklab.app_secrets' rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_random as random

from flasklab.app_secrets import AppSecrets, SecretRule


@dataclass
class AppSecretValuesArgs:
    # The secrets the server has (flasklab.app_secrets.rules_for).
    rules: tuple[SecretRule, ...]
    # Chosen by the teacher (secret config); '' where generated.
    chosen: AppSecrets = field(default_factory=AppSecrets)


class AppSecretValues(pulumi.ComponentResource):
    # Every secret the server has, '' for those it has not; a secret output.
    app_secrets: pulumi.Output[AppSecrets]

    def __init__(
        self, name: str, args: AppSecretValuesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flasklab:index:AppSecretValues", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # special=False: letters and digits, flasklab.app_secrets.ALPHABET (they go unquoted
        # into URLs, SQL and the env file). The result is a secret output: encrypted in the
        # state, hidden in diffs.

        def value(rule: SecretRule) -> pulumi.Output[str]:
            chosen = args.chosen.value(rule)
            if chosen:
                return pulumi.Output.secret(chosen)
            password = random.RandomPassword(
                f"{name}-{rule.resource_suffix}", length=rule.length, special=False, opts=child
            )
            return password.result

        fields = [rule.field for rule in args.rules]
        self.app_secrets = pulumi.Output.all(*(value(rule) for rule in args.rules)).apply(
            lambda values: AppSecrets(**dict(zip(fields, values, strict=True)))
        )
        self.register_outputs({})
