"""StudentServer: one student's EC2 instance with its security group and SSH key (the
teacher's key pair, one made from the teacher's public key, or the stack's own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from flasklab.plan import TAG_BUILD, TAG_CONFIG, IngressRule

# What the provider would replace the instance for, were it to see a change, and which a
# normal term changes (aws_instance's schema in terraform-provider-aws, which pulumi-aws
# bridges: ForceNew on ami and key_name; user_data with user_data_replace_on_change). The
# instance keeps what it was built with; flasklab.build records the difference, and
# `class rebuild` lifts this list for the servers it makes anew. The image and build tags
# stay what the server was built from, so the drift shows in EC2 too.
KEPT_FROM_CREATION = ("ami", "userData", "userDataBase64", "keyName", 'tags["image"]', f'tags["{TAG_BUILD}"]')


@dataclass
class StudentServerArgs:
    instance_type: str
    # Secret outputs when the user-data carries secret settings.
    user_data: pulumi.Input[str] | None
    user_data_base64: pulumi.Input[str] | None
    root_volume_gib: int
    ingress: list[IngressRule]
    tags: dict[str, str]
    # The image's AMI id (components.debian_image).
    ami: pulumi.Input[str]
    # The image the server is built for (flasklab.plan.image_label), tagged on the instance:
    # a change of it replaces the server; a newer build of the same image does not.
    image_label: str = ""
    # What the server is built from (flasklab.build): recorded when the instance is made.
    build_digest: str = ""
    # This `pulumi up` makes the server anew from the stack's settings (`class rebuild`).
    rebuilt: bool = False
    # Run before the instance is deleted (components/snapshot_hook.py keeps its disk).
    before_delete: list[pulumi.ResourceHook] = field(default_factory=list)
    # SSH: an existing key pair's name, or a public key to create one from; neither: the
    # stack makes its own key.
    key_name: str = ""
    ssh_public_key: str = ""
    # An Elastic IP that stays with the server through stops and starts (staticAddress).
    static_address: bool = False
    description: str = field(default="flasklab student server")


class StudentServer(pulumi.ComponentResource):
    public_ip: pulumi.Output[str]
    public_dns: pulumi.Output[str]
    instance_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: StudentServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flasklab:index:StudentServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        security_group = self._security_group(name, args, child)
        key_name = self._key_name(name, args, child)
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.ami,
            instance_type=args.instance_type,
            vpc_security_group_ids=[security_group.id],
            key_name=key_name,
            user_data=args.user_data,
            user_data_base64=args.user_data_base64,
            # New user-data takes effect only on a new instance (cloud-init runs it on
            # first boot): when it is not kept from creation (`class rebuild`), it replaces.
            user_data_replace_on_change=True,
            # No associate_public_ip_address: it is ForceNew and read back from the network
            # interface, which a stopped instance has no public address on, so a refresh of
            # a stopped server would plan its replacement (terraform-provider-aws#33775).
            # The default VPC's subnets give every instance a public address anyway.
            # The server powers itself off when idle (autoStopIdleMinutes): EC2 stops it
            # (no compute cost, disk kept) rather than terminating it.
            instance_initiated_shutdown_behavior="stop",
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",  # IMDSv2 only
                http_put_response_hop_limit=1,
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True,
                volume_size=args.root_volume_gib,
                volume_type="gp3",
                delete_on_termination=True,
                tags=args.tags,
            ),
            tags={
                **args.tags,
                "image": args.image_label,
                TAG_BUILD: args.build_digest,
                TAG_CONFIG: args.build_digest,
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=[] if args.rebuilt else list(KEPT_FROM_CREATION),
                # Before EC2 deletes the instance and its disk (a rebuild, a student taken
                # off the roster, `pulumi destroy --run-program`), the disk is snapshotted.
                hooks=pulumi.ResourceHookBinding(before_delete=list(args.before_delete)),
            ),
        )
        self.public_ip = instance.public_ip
        self.public_dns = instance.public_dns
        if args.static_address:
            self.public_ip, self.public_dns = self._elastic_ip(name, args, instance, child)
        self.instance_id = instance.id
        # The tags as the engine keeps them: the build tag is the one the server was made with.
        self.tags: pulumi.Output[Mapping[str, str] | None] = instance.tags
        self.register_outputs(
            {
                "public_ip": self.public_ip,
                "public_dns": self.public_dns,
                "instance_id": self.instance_id,
            }
        )

    def _elastic_ip(
        self, name: str, args: StudentServerArgs, instance: aws.ec2.Instance, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The server's Elastic IP and its association, and the address and name they give it.

        Two resources, not the instance's own input: the address is made once and kept, and
        only the association (whose every input is ForceNew) follows a rebuilt instance, so
        a rebuild keeps the student's address and adding the address replaces no instance.
        The address is given out once associated (the wait dials it, the hosts line names it)."""
        address = aws.ec2.Eip(f"{name}-address", domain="vpc", tags=args.tags, opts=child)
        association = aws.ec2.EipAssociation(
            f"{name}-address-association",
            allocation_id=address.allocation_id,
            instance_id=instance.id,
            opts=child,
        )
        associated = pulumi.Output.all(address.public_ip, address.public_dns, association.id)
        return associated.apply(lambda v: str(v[0])), associated.apply(lambda v: str(v[1]))

    def _security_group(
        self, name: str, args: StudentServerArgs, child: pulumi.ResourceOptions
    ) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"{args.description}: SSH and web ports",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=rule.port,
                    to_port=rule.port,
                    cidr_blocks=list(rule.ipv4_cidrs),
                    ipv6_cidr_blocks=list(rule.ipv6_cidrs),
                    description=rule.description,
                )
                for rule in args.ingress
            ],
            # apt and pip on first boot need to reach the package servers.
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    cidr_blocks=["0.0.0.0/0"],
                    ipv6_cidr_blocks=["::/0"],
                    description="All outbound traffic (packages, pip, git)",
                )
            ],
            tags=args.tags,
            opts=child,
        )

    def _key_name(
        self, name: str, args: StudentServerArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Input[str]:
        """The key pair's name: the teacher's, one made from the teacher's public key, or one
        made from the stack's own key, whose private half is a secret output
        (self.private_key) that lets `pulumi up` log in to wait for first boot."""
        self.private_key: pulumi.Output[str] | None = None
        if args.key_name:
            return args.key_name
        public_key: pulumi.Input[str] = args.ssh_public_key
        if not args.ssh_public_key:
            generated = tls.PrivateKey(f"{name}-ssh-key", algorithm="ED25519", opts=child)
            public_key = generated.public_key_openssh
            self.private_key = generated.private_key_openssh
        return aws.ec2.KeyPair(f"{name}-key", public_key=public_key, tags=args.tags, opts=child).key_name
