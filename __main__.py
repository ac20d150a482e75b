"""flasklab's Pulumi program: stack config -> settings (+ secrets) -> user-data -> servers -> outputs.

A stack of one student exports that server's facts at the top level; a class stack (a
`roster`) exports them per student (flasklab.classroom.outputs names the keys)."""

import dataclasses
import gc
import os

import pulumi

from components.account_quotas import quota_problems
from components.debian_image import DebianImages
from components.dns_names import DnsNames, DnsNamesArgs, ServerNames, ZoneFacts, find_zone
from components.instance_type import instance_type_facts
from components.snapshot_hook import snapshot_before_delete
from components.start_link import START_LINK_OUTPUT, START_LINKS_OUTPUT, StartLink, StartLinkArgs
from components.stop_schedule import PowerSchedules, PowerSchedulesArgs
from components.student_deployment import StudentDeployment, deploy_student
from flasklab import compose, plan, quotas
from flasklab.build import rebuild_problems, requested_rebuilds
from flasklab.classroom import outputs
from flasklab.pulumi_config import read_stack_config, secret_keys
from flasklab.readiness import Verdict
from flasklab.render import screen_user_data
from flasklab.roster import is_class, load_servers
from flasklab.settings import ConfigError
from flasklab.stop_schedule import OUTPUT as STOP_SCHEDULE_OUTPUT
from flasklab.stop_schedule import START_OUTPUT as START_SCHEDULE_OUTPUT
from flasklab.stop_schedule import undone_starts

# A class declares about ten resources per student, and Pulumi's runtime keeps hundreds of
# Outputs and futures alive for each. At Python's default thresholds, a class of 200 spent
# 3.8 s in some 1,700 collections (nine of them over the whole heap); with these, 0.8 s in
# about 20 (benchmarks/class_program.py).
gc.set_threshold(50_000, 50, 100)

stack = pulumi.get_stack()
config = read_stack_config()
try:
    servers = load_servers(config, stack, secret_keys())
except ConfigError as error:
    # Reported without a traceback, before any resource is declared.
    raise pulumi.RunError(str(error)) from None
screens = [screen_user_data(settings) for settings in servers]
rebuilds = requested_rebuilds()
problems = [problem for screen in screens for problem in screen.problems]
if problems := problems + rebuild_problems(rebuilds, [settings.student for settings in servers]):
    raise pulumi.RunError(str(ConfigError(problems, stack)))
instance_types = {name: instance_type_facts(name) for name in sorted({s.instance_type for s in servers})}
if problems := [
    problem for facts in instance_types.values() for problem in plan.instance_type_problems(facts)
]:
    raise pulumi.RunError(str(ConfigError(problems, stack)))
# The account's quotas, before any resource: a class that does not fit stops here, whole.
if problems := quota_problems(servers, instance_types):
    if not quotas.quota_check_off(os.environ.get(quotas.CHECK_ENV)):
        raise pulumi.RunError(str(ConfigError([*problems, quotas.escape_hatch()], stack)))
    pulumi.log.warn(
        f"{quotas.CHECK_ENV}=off: the class does not fit the account's quotas: " + " ".join(problems)
    )

# The teacher's hosted zone, before any resource: a zone that is not there stops here.
zone = find_zone(servers[0].dns_zone) if servers[0].dns_zone else None

images = DebianImages(instance_types)
keep_disk = snapshot_before_delete()
deployments = [
    deploy_student(
        settings, instance_types[settings.instance_type], images.of(settings), screen, rebuilds, keep_disk
    )
    for settings, screen in zip(servers, screens, strict=True)
]
if any(d.settings.wait_for_ready and d.login_key is None for d in deployments):
    pulumi.log.warn(
        "pulumi up cannot log in to the servers to wait for first boot and report its failures: "
        "set the key pair's private key with `pulumi config set --secret sshPrivateKey < key.pem`. "
        "Until then it only waits for the app to answer over HTTP."
    )


def readiness_summary(deployment: StudentDeployment) -> pulumi.Output[str] | None:
    """What the wait for the server found when it was made, in one line; a class's failures
    are warned of on every `pulumi up` (a stack of one student's failed its `pulumi up`)."""
    if deployment.verdict is None:
        return None

    def summary(verdict: Verdict | None) -> str:
        if verdict is None:
            return "not waited for"
        student, stack = deployment.settings.student, deployment.settings.stack
        if not verdict.ready and not verdict.stopped and student:
            pulumi.log.warn(
                f"{student}: {verdict.summary}. `python -m flasklab class check --stack {stack}` shows "
                f"its report; `{plan.rebuild_command(stack, student)}` makes it anew."
            )
        return verdict.summary

    return deployment.verdict.apply(summary)


def export_one_student(deployment: StudentDeployment) -> None:
    settings, server = deployment.settings, deployment.server
    if deployment.first_boot_seconds is not None:
        pulumi.export(outputs.FIRST_BOOT_SECONDS, deployment.first_boot_seconds)
    if (summary := readiness_summary(deployment)) is not None:
        pulumi.export(outputs.READINESS, summary)
    if server.private_key is not None:
        pulumi.export(outputs.SSH_PRIVATE_KEY, pulumi.Output.secret(server.private_key))
    pulumi.export(outputs.PUBLIC_IP, server.public_ip)
    pulumi.export(outputs.PUBLIC_DNS, server.public_dns)
    pulumi.export("serverName", settings.server_name)
    pulumi.export(outputs.SERVER_NAMES, list(settings.server_names))
    pulumi.export(outputs.URL, deployment.url())
    pulumi.export(outputs.HOSTS_LINE, deployment.hosts_line())
    pulumi.export(outputs.SSH_COMMAND, deployment.ssh_command())
    pulumi.export(outputs.INSTANCE_ID, server.instance_id)
    pulumi.export(outputs.RESTART_COMMAND, compose.restart_command(settings))
    if settings.tls.name == "letsencrypt":
        pulumi.export("httpsCommand", server.public_ip.apply(lambda ip: plan.https_command(settings, ip)))


def student_entry(deployment: StudentDeployment) -> pulumi.Output[dict]:
    server = deployment.server
    return pulumi.Output.all(
        server.public_ip,
        server.public_dns,
        deployment.hosts_line(),
        deployment.ssh_command(),
        server.instance_id,
    ).apply(
        lambda values: outputs.student_entry(
            public_ip=values[0],
            public_dns=values[1],
            server_names=list(deployment.settings.server_names),
            url=deployment.url(),
            hosts_line=values[2],
            ssh_command=values[3],
            instance_id=values[4],
            restart_command=compose.restart_command(deployment.settings),
        )
    )


def export_class(deployments: list[StudentDeployment]) -> None:
    by_student = {d.settings.student: d for d in deployments}
    pulumi.export(outputs.STUDENTS, {student: student_entry(d) for student, d in by_student.items()})
    keys = {s: d.server.private_key for s, d in by_student.items() if d.server.private_key is not None}
    if keys:
        pulumi.export(outputs.SSH_PRIVATE_KEYS, pulumi.Output.secret(pulumi.Output.all(**keys)))
    ready = {s: d.first_boot_seconds for s, d in by_student.items() if d.first_boot_seconds is not None}
    if ready:
        pulumi.export(outputs.FIRST_BOOT_SECONDS, ready)
    # Every student's result, the failed ones' too: outputs are written only when the
    # update succeeds, so a class's wait reports rather than fails (flasklab.readiness).
    summaries = {s: summary for s, d in by_student.items() if (summary := readiness_summary(d)) is not None}
    if summaries:
        pulumi.export(outputs.READINESS, summaries)


def schedule_power(deployments: list[StudentDeployment]) -> None:
    """Schedules per server, in one group for the stack (stopSchedule and startSchedule are
    the class's, not a student's): one server that cannot be stopped or started does not
    keep the others as they were."""
    settings = deployments[0].settings
    schedules = {
        schedule.verb: schedule for schedule in (settings.stop_schedule, settings.start_schedule) if schedule
    }
    if not schedules:
        return
    if (
        settings.stop_schedule
        and settings.start_schedule
        and (warning := undone_starts(settings.start_schedule, settings.stop_schedule))
    ):
        pulumi.log.warn(warning)
    stack_settings = dataclasses.replace(settings, student="")
    # Named `-stop` since the stop schedule came first: its resources keep their URNs.
    PowerSchedules(
        f"{plan.resource_name(stack_settings)}-stop",
        PowerSchedulesArgs(
            schedules=schedules,
            instance_ids={d.settings.student: d.server.instance_id for d in deployments},
            tags=plan.tags(stack_settings),
        ),
    )
    if settings.stop_schedule:
        pulumi.export(STOP_SCHEDULE_OUTPUT, settings.stop_schedule.description)
    if settings.start_schedule:
        pulumi.export(START_SCHEDULE_OUTPUT, settings.start_schedule.description)


def start_links(deployments: list[StudentDeployment]) -> None:
    """One function for the stack, a link per student (startLink is the class's setting)."""
    if not deployments[0].settings.start_link:
        return
    stack_settings = dataclasses.replace(deployments[0].settings, student="")
    links = StartLink(
        f"{plan.resource_name(stack_settings)}-start-link",
        StartLinkArgs(
            instance_ids={d.settings.student or d.settings.stack: d.server.instance_id for d in deployments},
            tags=plan.tags(stack_settings),
        ),
    )
    if is_class(config):
        pulumi.export(START_LINKS_OUTPUT, links.links)
    else:
        pulumi.export(
            START_LINK_OUTPUT, links.links.apply(lambda by_student: next(iter(by_student.values())))
        )


def dns_names(deployments: list[StudentDeployment], zone: ZoneFacts | None) -> None:
    """Every server's names in the teacher's zone (dnsZone is the class's setting)."""
    if zone is None:
        return
    stack_settings = dataclasses.replace(deployments[0].settings, student="")
    DnsNames(
        f"{plan.resource_name(stack_settings)}-dns",
        DnsNamesArgs(
            zone=zone,
            servers=[
                ServerNames(
                    student=d.settings.student,
                    names=d.settings.server_names,
                    public_ip=d.server.public_ip,
                    resource_name=plan.resource_name(d.settings),
                )
                for d in deployments
            ],
            static_address=deployments[0].settings.static_address,
            tags=plan.tags(stack_settings),
        ),
    )
    pulumi.export(outputs.DNS_ZONE, outputs.dns_zone_note(zone.name))


if is_class(config):
    export_class(deployments)
else:
    export_one_student(deployments[0])
schedule_power(deployments)
start_links(deployments)
dns_names(deployments, zone)
