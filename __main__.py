"""flasklab's Pulumi program: stack config -> settings (+ secrets) -> user-data -> server -> outputs."""

import pulumi

from components.secret_values import AppSecretValues, AppSecretValuesArgs
from components.student_server import StudentServer, StudentServerArgs
from flasklab import compose, plan
from flasklab.app_secrets import rules_for
from flasklab.pulumi_config import read_stack_config, secret_keys
from flasklab.render import encode_for_ec2, render_user_data
from flasklab.settings import ConfigError, load_settings

try:
    settings = load_settings(read_stack_config(), pulumi.get_stack(), secret_keys())
except ConfigError as error:
    # Reported without a traceback, before any resource is declared.
    raise pulumi.RunError(str(error)) from None

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
if not (settings.key_name or settings.ssh_public_key):
    pulumi.log.warn(
        "No SSH key: set keyName (an existing EC2 key pair) or sshPublicKey to log in to the server."
    )

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
        ami_name_pattern=plan.debian_ami_name_pattern(settings),
        ami_architecture=plan.architecture(settings.instance_type),
        key_name=settings.key_name,
        ssh_public_key=settings.ssh_public_key,
    ),
)

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
