"""flasklab's Pulumi program: stack config -> settings (+ secrets) -> user-data -> server -> outputs."""

import pulumi

from components.instance_type import instance_type_facts
from components.readiness import ServerReadiness, ServerReadinessArgs
from components.secret_values import AppSecretValues, AppSecretValuesArgs
from components.student_server import StudentServer, StudentServerArgs
from flasklab import compose, plan
from flasklab.app_secrets import rules_for
from flasklab.pulumi_config import read_stack_config, secret_keys
from flasklab.render import encode_for_ec2, render_user_data, user_data_problems
from flasklab.settings import ConfigError, load_settings

try:
    settings = load_settings(read_stack_config(), pulumi.get_stack(), secret_keys())
except ConfigError as error:
    # Reported without a traceback, before any resource is declared.
    raise pulumi.RunError(str(error)) from None
if problems := user_data_problems(settings):
    raise pulumi.RunError(str(ConfigError(problems, settings.stack)))
instance_type = instance_type_facts(settings.instance_type)
if problems := plan.instance_type_problems(instance_type):
    raise pulumi.RunError(str(ConfigError(problems, settings.stack)))

secret_values = AppSecretValues(
    f"{plan.resource_name(settings)}-secrets",
    AppSecretValuesArgs(rules=rules_for(settings.database is not None), chosen=settings.chosen_secrets),
)
# The user-data carries the secrets (in the app's env file), so it is a secret output too:
# Pulumi encrypts it in the state and never shows it in a diff or an output.
encoded = pulumi.Output.secret(
    secret_values.app_secrets.apply(
        lambda app_secrets: encode_for_ec2(render_user_data(settings, app_secrets))
    )
)
user_data = encoded.apply(lambda pair: pair[0])
user_data_base64 = encoded.apply(lambda pair: pair[1])

server = StudentServer(
    plan.resource_name(settings),
    StudentServerArgs(
        instance_type=settings.instance_type,
        user_data=user_data,
        user_data_base64=user_data_base64,
        root_volume_gib=settings.root_volume_gib,
        ingress=plan.ingress_rules(settings),
        tags=plan.tags(settings),
        ami_id=settings.ami_id,
        ami_name_pattern=plan.debian_ami_name_pattern(settings, instance_type.architecture),
        ami_architecture=instance_type.architecture,
        image_label=plan.image_label(settings, instance_type.architecture),
        key_name=settings.key_name,
        ssh_public_key=settings.ssh_public_key,
    ),
)

# The key `pulumi up` logs in with to wait for first boot: the stack's own, or the one the
# teacher gave as secret config for their key pair.
login_key = server.private_key or (
    pulumi.Output.secret(settings.ssh_private_key) if settings.ssh_private_key else None
)
if settings.wait_for_ready:
    if login_key is None:
        pulumi.log.warn(
            "pulumi up cannot log in to the server to wait for first boot and report its failures: "
            "set the key pair's private key with `pulumi config set --secret sshPrivateKey < key.pem`. "
            "Until then it only waits for the app to answer over HTTP."
        )
    ready = ServerReadiness(
        f"{plan.resource_name(settings)}-ready",
        ServerReadinessArgs(settings, server.public_ip, server.instance_id, login_key),
    )
    pulumi.export("firstBootSeconds", ready.first_boot_seconds)
if server.private_key is not None:
    pulumi.export("sshPrivateKey", pulumi.Output.secret(server.private_key))

pulumi.export("publicIp", server.public_ip)
pulumi.export("publicDns", server.public_dns)
pulumi.export("serverName", settings.server_name)
pulumi.export("url", compose.site_url(settings))
pulumi.export("hostsLine", server.public_ip.apply(lambda ip: plan.hosts_line(settings, ip)))
pulumi.export("sshCommand", server.public_ip.apply(lambda ip: plan.ssh_command(settings, ip)))
pulumi.export("instanceId", server.instance_id)
pulumi.export("restartCommand", compose.restart_command(settings))
if settings.tls.name == "letsencrypt":
    pulumi.export("httpsCommand", server.public_ip.apply(lambda ip: plan.https_command(settings, ip)))
