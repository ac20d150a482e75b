"""The Debian image each server boots: the AMI the teacher named (amiId), or the newest
official Debian image of the release and architecture, looked up once per stack for every
server that runs it (a class of 200 asks AWS once, and the students created in one
`pulumi up` get the same build)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from flasklab import plan
from flasklab.settings import Settings


def newest_debian_ami(name_pattern: str, architecture: str) -> pulumi.Output[str]:
    """The newest official Debian image whose name matches, for the architecture."""
    return aws.ec2.get_ami_output(
        most_recent=True,
        owners=[plan.DEBIAN_AMI_OWNER],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[name_pattern]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=[architecture]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
            aws.ec2.GetAmiFilterArgs(name="root-device-type", values=["ebs"]),
        ],
    ).id


class DebianImages:
    """Each server's image id; one lookup per (release, architecture) however many servers."""

    def __init__(self, instance_types: dict[str, plan.InstanceTypeFacts]) -> None:
        self._instance_types = instance_types
        self._looked_up: dict[tuple[str, str], pulumi.Output[str]] = {}

    def of(self, settings: Settings) -> pulumi.Input[str]:
        if settings.ami_id:
            return settings.ami_id
        architecture = self._instance_types[settings.instance_type].architecture
        key = (plan.debian_ami_name_pattern(settings, architecture), architecture)
        if key not in self._looked_up:
            self._looked_up[key] = newest_debian_ami(*key)
        return self._looked_up[key]
