"""ServerReadiness: a new server is waited for until it serves, and what it did is kept.

Made with each instance and replaced with it (both commands are triggered by the instance's
id), so the wait runs for a server created or rebuilt in this `pulumi up`, never for one
that already existed (stopped, perhaps, for the night):

1. with a private key, a pulumi-command remote Command logs in as the login user and runs
   flasklab.readiness.READY_COMMAND: it waits for cloud-init, then prints flasklab-status's
   report (the failing deploy step, its output, the unit logs) and its exit status;
2. a pulumi-command local Command runs `python -m flasklab.readiness` on the machine
   running `pulumi up`: with that report and the public IP, it requests readyPath by every
   server name (which also proves the security group) and prints its verdict. Without a
   private key the wait is that HTTP check alone.

A server that does not serve fails `pulumi up` with the report for a stack of one student;
a class's wait reports instead (flasklab.readiness), so one student's failure leaves every
student's result in the stack's outputs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from flasklab import readiness
from flasklab.plan import LOGIN_USER
from flasklab.settings import PROJECT_DIR, Settings

# What the commands are run with, which a later `pulumi up` must not run them again for: a
# stopped and started server has a new public IP, and a new flasklab or machine may write
# the command or the interpreter's path differently. The instance's id (the trigger) is the
# one change that runs them again, with everything fresh: `class rebuild` lifts this list.
KEPT_FROM_CREATION = ("connection", "create", "stdin", "interpreter", "dir", "environment")
# Seconds between SSH attempts while the instance boots.
PER_DIAL_SECONDS = 10
# How long a delete or an update of a command may take: they run nothing on the server.
QUICK = "2m"


@dataclass
class ServerReadinessArgs:
    settings: Settings
    public_ip: pulumi.Input[str]
    instance_id: pulumi.Input[str]
    # The login user's private key (a secret); None: HTTP check only.
    private_key: pulumi.Input[str] | None
    # This `pulumi up` makes the server anew (`class rebuild`): the commands run fresh.
    rebuilt: bool = False


class ServerReadiness(pulumi.ComponentResource):
    # flasklab-status's report with its exit status (None without SSH), the wait's verdict
    # (flasklab.readiness.Verdict as JSON, last line of its output), first boot's seconds.
    status_output: pulumi.Output[str | None]
    verdict: pulumi.Output[readiness.Verdict | None]
    first_boot_seconds: pulumi.Output[int | None]

    def __init__(
        self, name: str, args: ServerReadinessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flasklab:index:ServerReadiness", name, None, opts)
        settings = args.settings
        minutes = settings.ready_timeout_minutes
        kept = [] if args.rebuilt else list(KEPT_FROM_CREATION)
        self.status_output = pulumi.Output.from_input(None)
        depends_on: list[pulumi.Resource] = []
        if args.private_key is not None:
            first_boot = command.remote.Command(
                f"{name}-first-boot",
                connection=command.remote.ConnectionArgs(
                    host=args.public_ip,
                    user=LOGIN_USER,
                    private_key=args.private_key,
                    # SSH answers only once the instance has booted: keep trying, within the wait.
                    dial_error_limit=max(1, minutes * 60 // PER_DIAL_SECONDS),
                    per_dial_timeout=PER_DIAL_SECONDS,
                ),
                create=readiness.READY_COMMAND,
                triggers=[args.instance_id],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    ignore_changes=kept,
                    custom_timeouts=pulumi.CustomTimeouts(create=f"{minutes}m", update=QUICK, delete=QUICK),
                ),
            )
            self.status_output = first_boot.stdout
            depends_on = [first_boot]
        region = pulumi.Config("aws").get("region") or ""
        spec = pulumi.Output.all(args.public_ip, self.status_output, args.instance_id).apply(
            lambda values: readiness.wait_spec(
                settings, str(values[0]), values[1], str(values[2]), region
            ).to_json()
        )
        wait = command.local.Command(
            f"{name}-serves",
            interpreter=[sys.executable, "-m", "flasklab.readiness"],
            create="wait",
            stdin=spec,
            dir=str(PROJECT_DIR),
            triggers=[args.instance_id],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                ignore_changes=kept,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{minutes + 5}m", update=QUICK, delete=QUICK),
            ),
        )
        self.verdict = wait.stdout.apply(readiness.verdict_in)
        self.first_boot_seconds = self.verdict.apply(lambda v: v.first_boot_seconds if v else None)
        self.register_outputs({"verdict": wait.stdout})
