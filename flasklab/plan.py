"""What AWS resources a stack gets, as plain data derived from its settings:
the security-group rules, the tags, the Debian AMI filter and the output texts.
The Pulumi component declares exactly this; keeping it here makes it testable
without Pulumi."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
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
# A type like tutorial 001's t2.medium (2 vCPU, 4 GiB) that newer regions offer.
OFFERED_ALTERNATIVE = "t3.medium"


@dataclass(frozen=True)
class IngressRule:
    port: int
    ipv4_cidrs: tuple[str, ...]
    ipv6_cidrs: tuple[str, ...]
    description: str


# AWS refuses a security-group rule description over 255 characters.
RULE_DESCRIPTION_LIMIT = 255


def rule_description(purpose: str, cidrs: tuple[str, ...]) -> str:
    """`purpose from a, b, c`, naming only as many ranges as fit AWS's limit."""
    for shown in range(len(cidrs), 0, -1):
        more = f" and {len(cidrs) - shown} more" if shown < len(cidrs) else ""
        text = f"{purpose} from {', '.join(cidrs[:shown])}{more}"
        if len(text) <= RULE_DESCRIPTION_LIMIT:
            return text
    return f"{purpose} from {len(cidrs)} ranges"


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
                description=rule_description(purpose, cidrs),
            )
        )
    return rules


@dataclass(frozen=True)
class InstanceTypeFacts:
    """What AWS says of an instance type in the stack's region."""

    instance_type: str
    region: str
    offered: bool
    architectures: tuple[str, ...]  # as AWS names them: x86_64, arm64 (i386)
    vcpus: int = 0  # its default vCPUs (what the account's vCPU quota counts)

    @property
    def architecture(self) -> str:
        """The architecture of the Debian image to run (AWS's name)."""
        return "arm64" if "arm64" in self.architectures and "x86_64" not in self.architectures else "x86_64"


def instance_type_problems(facts: InstanceTypeFacts) -> list[str]:
    if facts.offered:
        return []
    where = facts.region or "this stack's region (aws:region)"
    return [
        f"instanceType: {facts.instance_type} is not offered in {where}. Choose a type that is, e.g. "
        f"`pulumi config set instanceType {OFFERED_ALTERNATIVE}` (2 vCPU and 4 GiB, like t2.medium), "
        f"or another region: `pulumi config set aws:region eu-west-1`."
    ]


def debian_ami_name_pattern(settings: Settings, architecture: str) -> str:
    arch = "arm64" if architecture == "arm64" else "amd64"
    return f"debian-{settings.debian_release}-{arch}-*"


def image_label(settings: Settings, architecture: str) -> str:
    """The image the server is built for, as a tag: a change of it replaces the server
    (a newer build of the same Debian image does not)."""
    return settings.ami_id or f"debian-{settings.debian_release}-{architecture}"


# The tags on everything flasklab creates; `python -m flasklab class status|stop|start|sweep`
# finds a course's resources by them.
TAG_MANAGED_BY = "managed-by"
MANAGED_BY = "flasklab"
TAG_COURSE = "course"
TAG_STACK = "stack"
TAG_STUDENT = "student"  # only on a class stack's servers (a roster's student)
# The server's names, space-separated, so `class status` writes a hosts file after a
# stop/start changed the addresses; when they do not fit a tag value, as many whole
# names as fit, and TAG_SERVER_NAMES_OMITTED says how many are left out.
TAG_SERVER_NAMES = "server-names"
TAG_SERVER_NAMES_OMITTED = "server-names-omitted"
TAG_VALUE_LIMIT = 256  # EC2's longest tag value, in Unicode characters
# What the server was built from, and what its stack says a new server would get now: short
# hashes of the user-data (without secrets), the image and the login key (flasklab.build).
# The first is set when the instance is created and never changed in place (the instance
# ignores changes to it); the second follows every `pulumi up`. When they differ, a setting
# or flasklab itself changed what the server would get, and `class rebuild` applies it:
# nothing in a normal term replaces a student's server by itself.
TAG_BUILD = "flasklab-build"
TAG_CONFIG = "flasklab-config"


def resource_name(settings: Settings) -> str:
    if settings.student:
        return f"flasklab-{settings.stack}-{settings.student}"
    return f"flasklab-{settings.stack}"


def tags(settings: Settings) -> dict[str, str]:
    tags = {
        "Name": resource_name(settings),
        TAG_STACK: settings.stack,
        TAG_COURSE: settings.course,
        TAG_MANAGED_BY: MANAGED_BY,
    }
    if settings.student:
        tags[TAG_STUDENT] = settings.student
    return tags | server_names_tags(settings.server_names)


def server_names_tags(names: tuple[str, ...]) -> dict[str, str]:
    """TAG_SERVER_NAMES with as many whole names as fit, and how many did not."""
    kept: list[str] = []
    for name in names:
        if len(" ".join([*kept, name])) > TAG_VALUE_LIMIT:
            break
        kept.append(name)
    tags = {TAG_SERVER_NAMES: " ".join(kept)}
    if len(kept) < len(names):
        tags[TAG_SERVER_NAMES_OMITTED] = str(len(names) - len(kept))
    return tags


def rebuild_command(stack: str, student: str = "") -> str:
    """How the teacher makes a server anew from the stack's settings (flasklab.classroom.rebuild)."""
    return f"python -m flasklab class rebuild --stack {stack}" + (f" {student}" if student else "")


def drift_note(tags: Mapping[str, str], stack: str, student: str = "") -> str:
    """'' when the server runs what its stack says (or no `pulumi up` has tagged it yet);
    else what is out of date and the command that applies it."""
    built, wanted = tags.get(TAG_BUILD, ""), tags.get(TAG_CONFIG, "")
    if not wanted or built == wanted:
        return ""
    return f"built from an older config: `{rebuild_command(stack, student)}` applies it"


def hosts_line(settings: Settings, public_ip: str) -> str:
    """The line a student pastes into /etc/hosts (tutorial 001, step 23)."""
    return hosts_line_of(public_ip, settings.server_names)


def hosts_line_of(address: str, names: tuple[str, ...]) -> str:
    return " ".join((address, *names))


def https_command(settings: Settings, public_ip: str) -> str:
    """What the teacher runs if the server did not get its Let's Encrypt certificate by itself."""
    if settings.tls.name != "letsencrypt":
        return ""
    names = " and ".join(settings.server_names)
    return (
        f"Once DNS resolves {names} to {public_ip} (an A record each), the server gets its "
        f"certificate by itself within minutes; if {site_url(settings)} does not answer then, "
        f"run on the server (see sshCommand): {LETSENCRYPT_COMMAND}"
    )


def ssh_command(settings: Settings, public_ip: str) -> str:
    """How to log in. With the stack's own key, save it first (docs/one-server.md):
    pulumi stack output --show-secrets sshPrivateKey > KEY_FILE && chmod 600 KEY_FILE"""
    # With a dnsZone the server's name follows its address: the command stays right after a stop.
    host = settings.server_name if settings.dns_zone else public_ip
    if settings.key_name:
        return f"ssh -i ~/.ssh/{settings.key_name}.pem {LOGIN_USER}@{host}"
    if settings.ssh_public_key:
        return f"ssh {LOGIN_USER}@{host}"
    return f"ssh -i {own_key_file(settings)} {LOGIN_USER}@{host}"


def own_key_file(settings: Settings) -> str:
    """Where docs/one-server.md says to save the stack's own private key (the sshPrivateKey output)."""
    return f"{resource_name(settings)}.pem"
