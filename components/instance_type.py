"""What AWS says of the stack's instance type, asked before any resource is declared:
whether the region offers it, which architectures it runs and its vCPUs (so the right Debian
image is looked up). flasklab.plan turns the answers into refusals and image names."""

from __future__ import annotations

import pulumi_aws as aws

from flasklab import plan


def instance_type_facts(instance_type: str) -> plan.InstanceTypeFacts:
    offerings = aws.ec2.get_instance_type_offerings(
        filters=[aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=[instance_type])],
        location_type="region",
    )
    region = aws.config.region or ""
    if instance_type not in offerings.instance_types:
        return plan.InstanceTypeFacts(instance_type, region, offered=False, architectures=())
    details = aws.ec2.get_instance_type(instance_type=instance_type)
    return plan.InstanceTypeFacts(
        instance_type, region, True, tuple(details.supported_architectures), details.default_vcpus
    )
