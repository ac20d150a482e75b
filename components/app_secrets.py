"""AppSecretValues: the app's SECRET_KEY and database password, generated once per stack.

pulumi-random keeps each generated value in the stack's state, encrypted, so every
`pulumi up` renders the same ones; a value the teacher set with
`pulumi config set --secret` is used instead, and no generator is created for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_random as random

from flasklab.app_secrets import DATABASE_PASSWORD_LENGTH, SECRET_KEY_LENGTH


@dataclass
class AppSecretValuesArgs:
    with_database: bool
    # Chosen by the teacher (secret config); empty: generated.
    chosen_secret_key: str = field(default="", repr=False)
    chosen_database_password: str = field(default="", repr=False)


class AppSecretValues(pulumi.ComponentResource):
    secret_key: pulumi.Output[str]
    database_password: pulumi.Output[str]  # '' without a database

    def __init__(
        self, name: str, args: AppSecretValuesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flasklab:index:AppSecretValues", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def generated_or_chosen(suffix: str, chosen: str, length: int) -> pulumi.Output[str]:
            if chosen:
                return pulumi.Output.secret(chosen)
            # Letters and digits only: they go unquoted into URLs, SQL and the env file.
            # The result is a secret output: encrypted in the state, hidden in diffs.
            return random.RandomPassword(f"{name}-{suffix}", length=length, special=False, opts=child).result

        self.secret_key = generated_or_chosen("secret-key", args.chosen_secret_key, SECRET_KEY_LENGTH)
        self.database_password = (
            generated_or_chosen("database-password", args.chosen_database_password, DATABASE_PASSWORD_LENGTH)
            if args.with_database
            else pulumi.Output.from_input("")
        )
        self.register_outputs({})
