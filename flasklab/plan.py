"""What AWS resources a stack gets, as plain data derived from its settings:
the security-group rules, the tags, the Debian AMI filter and the output texts.
The Pulumi component declares exactly this; keeping it here makes it testable
without Pulumi."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from flasklab.compose import site_url
from flasklab.contract import LETSENCRYPT_COMMAND
from flasklab.settings import Settings

DEBIAN_AMI_OWNER = "136693071363"  # Debian's official cloud team account
LOGIN_USER = "admin"  # the login user of Debian's AMIs

PORT_PURPOSES = {
    22: "SSH",
    80: "HTTP (web server)",
    443: "HTTPS (web server)",
    5000: "Flask development server (tutorial 001)",
}
# Graviton families (t4g, m7g, c6gn, ...) need arm64 images.
_ARM_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*g[a-z]*\.")


@dataclass(frozen=True)
class IngressRule:
    port: int
    ipv4_cidrs: tuple[str, ...]
    ipv6_cidrs: tuple[str, ...]
    description: str


def ingress_rules(settings: Settings) -> list[IngressRule]:
    rules = []
    for port in settings.open_ports:
        cidrs = settings.ssh_cidrs if port == 22 else settings.web_cidrs
        purpose = PORT_PURPOSES.get(port, f"TCP {port}")
        rules.append(
            IngressRule(
                port=port,
                ipv4_cidrs=tuple(c for c in cidrs if ipaddress.ip_network(c).version == 4),
                ipv6_cidrs=tuple(c for c in cidrs if ipaddress.ip_network(c).version == 6),
                description=f"{purpose} from {', '.join(cidrs)}",
            )
        )
    return rules


def architecture(instance_type: str) -> str:
    return "arm64" if _ARM_FAMILY.match(instance_type) else "x86_64"


def debian_ami_name_pattern(settings: Settings) -> str:
    arch = "arm64" if architecture(settings.instance_type) == "arm64" else "amd64"
    return f"debian-{settings.debian_release}-{arch}-*"


def resource_name(settings: Settings) -> str:
    return f"flasklab-{settings.stack}"


def tags(settings: Settings) -> dict[str, str]:
    return {
        "Name": resource_name(settings),
        "stack": settings.stack,
        "course": settings.course,
        "managed-by": "flasklab",
    }


def hosts_line(settings: Settings, public_ip: str) -> str:
    """The line a student pastes into /etc/hosts (tutorial 001, step 23)."""
    return hosts_line_of(public_ip, settings.server_names)


def hosts_line_of(address: str, names: tuple[str, ...]) -> str:
    return " ".join((address, *names))


def https_command(settings: Settings, public_ip: str) -> str:
    """What the teacher runs if the Let's Encrypt certificate could not be had at first boot."""
    if settings.tls.name != "letsencrypt":
        return ""
    names = " and ".join(settings.server_names)
    return (
        f"Once DNS resolves {names} to {public_ip} (an A record each), if {site_url(settings)} does "
        f"not answer yet, run on the server (see sshCommand): {LETSENCRYPT_COMMAND}"
    )


def ssh_command(settings: Settings, public_ip: str) -> str:
    if settings.key_name:
        return f"ssh -i ~/.ssh/{settings.key_name}.pem {LOGIN_USER}@{public_ip}"
    if settings.ssh_public_key:
        return f"ssh {LOGIN_USER}@{public_ip}"
    return f"(no SSH key configured: set keyName or sshPublicKey) ssh {LOGIN_USER}@{public_ip}"
