"""One student's deployment, declared alike for a stack of one student and for each row of
a class roster: secrets -> user-data -> server -> the wait until it serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.readiness import ServerReadiness, ServerReadinessArgs
from components.secret_values import AppSecretValues, AppSecretValuesArgs
from components.student_server import StudentServer, StudentServerArgs
from flasklab import compose, plan
from flasklab.app_secrets import AppSecrets, rules_for
from flasklab.build import build_digest, is_rebuilt
from flasklab.readiness import Verdict
from flasklab.render import UserDataScreen, encode_for_ec2, render_user_data
from flasklab.settings import Settings


@dataclass
class StudentDeployment:
    settings: Settings
    server: StudentServer
    # The key `pulumi up` logs in with (a secret), None: it cannot log in.
    login_key: pulumi.Output[str] | None
    # None when the stack does not wait for the server (waitForReady false).
    first_boot_seconds: pulumi.Output[int | None] | None
    # What the wait for the server found when it was made (flasklab.readiness.Verdict).
    verdict: pulumi.Output[Verdict | None] | None = None

    def hosts_line(self) -> pulumi.Output[str]:
        return self.server.public_ip.apply(lambda ip: plan.hosts_line(self.settings, ip))

    def ssh_command(self) -> pulumi.Output[str]:
        return self.server.public_ip.apply(lambda ip: plan.ssh_command(self.settings, ip))

    def url(self) -> str:
        return compose.site_url(self.settings)


def _user_data_for_ec2(settings: Settings, app_secrets: AppSecrets) -> tuple[str | None, str | None]:
    """encode_for_ec2 of the real user-data. Its size was checked before any resource; should
    the real secrets still tip it over, `pulumi up` stops with the message, not a traceback."""
    try:
        return encode_for_ec2(render_user_data(settings, app_secrets))
    except ValueError as error:
        raise pulumi.RunError(f"{plan.resource_name(settings)}: {error}") from None


def _warn_of_drift(settings: Settings, tags: Mapping[str, str]) -> None:
    """`pulumi preview` and `pulumi up` say which servers run an older build (flasklab.build)."""
    if note := plan.drift_note(tags, settings.stack, settings.student):
        pulumi.log.warn(f"{settings.student or settings.stack}: {note}")


def deploy_student(
    settings: Settings,
    instance_type: plan.InstanceTypeFacts,
    ami: pulumi.Input[str],
    screen: UserDataScreen,
    rebuilds: frozenset[str],
    before_delete: pulumi.ResourceHook,
) -> StudentDeployment:
    """rebuilds: the students `class rebuild` asked to make anew in this `pulumi up`;
    before_delete: what keeps an instance's disk before it goes (components/snapshot_hook.py)."""
    name = plan.resource_name(settings)
    image_label = plan.image_label(settings, instance_type.architecture)
    rebuilt = is_rebuilt(settings, rebuilds)
    secret_values = AppSecretValues(
        f"{name}-secrets",
        AppSecretValuesArgs(rules=rules_for(settings.database is not None), chosen=settings.chosen_secrets),
    )
    # The user-data carries the secrets (in the app's env file), so it is a secret output too:
    # Pulumi encrypts it in the state and never shows it in a diff or an output.
    encoded: pulumi.Output[Any] = pulumi.Output.secret(
        secret_values.app_secrets.apply(lambda app_secrets: _user_data_for_ec2(settings, app_secrets))
    )
    server = StudentServer(
        name,
        StudentServerArgs(
            instance_type=settings.instance_type,
            user_data=encoded.apply(lambda pair: pair[0]),
            user_data_base64=encoded.apply(lambda pair: pair[1]),
            root_volume_gib=settings.root_volume_gib,
            ingress=plan.ingress_rules(settings),
            tags=plan.tags(settings),
            ami=ami,
            image_label=image_label,
            build_digest=build_digest(screen.digest, image_label, settings),
            rebuilt=rebuilt,
            before_delete=[before_delete],
            key_name=settings.key_name,
            ssh_public_key=settings.ssh_public_key,
            static_address=settings.static_address,
        ),
    )
    server.tags.apply(lambda tags: _warn_of_drift(settings, tags or {}))
    # The stack's own key, or the one the teacher gave as secret config for their key pair.
    login_key = server.private_key or (
        pulumi.Output.secret(settings.ssh_private_key) if settings.ssh_private_key else None
    )
    if not settings.wait_for_ready:
        return StudentDeployment(settings, server, login_key, None)
    ready = ServerReadiness(
        f"{name}-ready",
        ServerReadinessArgs(settings, server.public_ip, server.instance_id, login_key, rebuilt=rebuilt),
    )
    return StudentDeployment(settings, server, login_key, ready.first_boot_seconds, ready.verdict)
