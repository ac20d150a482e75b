"""ServerReadiness: `pulumi up` ends with a server that serves, or fails saying why.

After the instance, a pulumi-command remote Command logs in as the login user and runs
flasklab.readiness.READY_COMMAND: it waits for cloud-init, then flasklab-status, whose
report (the failing deploy step, its output, the unit logs) fails `pulumi up` when first
boot failed. It is replaced with the instance. Then, from the machine running `pulumi up`,
the probes request readyPath at the public IP by every server name, which also proves the
security group. Without a private key the wait is that HTTP check alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from flasklab import readiness
from flasklab.plan import LOGIN_USER
from flasklab.settings import Settings


@dataclass
class ServerReadinessArgs:
    settings: Settings
    public_ip: pulumi.Input[str]
    instance_id: pulumi.Input[str]
    # The login user's private key (a secret); None: HTTP check only.
    private_key: pulumi.Input[str] | None


class ServerReadiness(pulumi.ComponentResource):
    # flasklab-status's report ('' without SSH), and first boot's seconds (None if unknown).
    status_report: pulumi.Output[str]
    first_boot_seconds: pulumi.Output[int | None]

    def __init__(
        self, name: str, args: ServerReadinessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flasklab:index:ServerReadiness", name, None, opts)
        settings = args.settings
        self.status_report = pulumi.Output.from_input("")
        if args.private_key is not None:
            first_boot = command.remote.Command(
                f"{name}-first-boot",
                connection=command.remote.ConnectionArgs(
                    host=args.public_ip,
                    user=LOGIN_USER,
                    private_key=args.private_key,
                    # SSH answers only once the instance has booted: keep trying, within the timeout.
                    dial_error_limit=-1,
                    per_dial_timeout=10,
                ),
                create=readiness.READY_COMMAND,
                # A new instance is a new first boot.
                triggers=[args.instance_id],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    custom_timeouts=pulumi.CustomTimeouts(create=f"{settings.ready_timeout_minutes}m"),
                ),
            )
            self.status_report = first_boot.stdout
        self.first_boot_seconds = self.status_report.apply(readiness.first_boot_seconds)
        served: pulumi.Output[bool] = pulumi.Output.all(args.public_ip, self.status_report).apply(
            lambda values: self._check_http(
                settings, str(values[0]), str(values[1]), ssh=args.private_key is not None
            )
        )
        self.register_outputs({"status_report": self.status_report, "served": served})

    async def _check_http(self, settings: Settings, public_ip: str, status_report: str, ssh: bool) -> bool:
        """The app answers at the public IP by every name; a failure fails `pulumi up`.
        Not during a preview: nothing new is running yet."""
        if pulumi.runtime.is_dry_run():
            return True
        site = readiness.site_at(settings, public_ip, readiness.certificate_in(status_report))
        # After SSH saw first boot finish, the app answers at once unless something is in
        # the way; without SSH, the HTTP check is the whole wait.
        timeout = 120 if ssh else settings.ready_timeout_minutes * 60
        # In a thread: a class's servers are waited for side by side, not one after another
        # on the program's event loop.
        problems = await asyncio.to_thread(
            readiness.wait_until_serving, site, readiness.expectation(settings), timeout
        )
        if problems:
            pulumi.log.error(readiness.not_serving_report(settings, public_ip, problems), resource=self)
        return not problems
