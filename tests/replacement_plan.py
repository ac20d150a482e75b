"""Which resources a `pulumi up` would replace, worked out from two runs of the program under
mocks the way the engine and the provider decide it: the engine first puts back, for every
path in a resource's ignoreChanges, the value it had (its old inputs); then any change of an
input the provider's schema marks ForceNew, of a replaceOnChanges path or of a command's
triggers replaces the resource, and so does a change of an input that holds the output of
a resource that is replaced (its new id or name is not known until it exists).

The ForceNew inputs are the provider's, as terraform-provider-aws's schemas declare them
(internal/service/ec2/ec2_instance.go, vpc_security_group.go, ec2_key_pair.go, ec2_eip*.go,
route53/record.go; pulumi-aws bridges them), pulumi-random's and pulumi-tls's (every input)
and pulumi-command's (triggers). `refreshed` stands for what a refresh reads back into the state."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from tests.conftest import (
    EIP_ASSOCIATION,
    ELASTIC_IP,
    LOCAL_COMMAND,
    RANDOM_PASSWORD,
    REMOTE_COMMAND,
    TLS_PRIVATE_KEY,
    ProgramRun,
)

INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
KEY_PAIR = "aws:ec2/keyPair:KeyPair"
SCHEDULE = "aws:scheduler/schedule:Schedule"
SCHEDULE_GROUP = "aws:scheduler/scheduleGroup:ScheduleGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
QUEUE = "aws:sqs/queue:Queue"
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"

# Paths (dotted, as wire inputs name them) whose change replaces the resource.
FORCE_NEW: dict[str, tuple[str, ...]] = {
    INSTANCE: (
        "ami",
        "associatePublicIpAddress",
        "availabilityZone",
        "cpuCoreCount",
        "cpuThreadsPerCore",
        "ebsOptimized",
        "ephemeralBlockDevices",
        "hibernation",
        "hostId",
        "ipv6AddressCount",
        "ipv6Addresses",
        "keyName",
        "launchTemplate",
        "networkInterfaces",
        "placementGroup",
        "placementPartitionNumber",
        "privateDnsNameOptions",
        "privateIp",
        "rootBlockDevice.encrypted",
        "rootBlockDevice.kmsKeyId",
        "securityGroups",
        "subnetId",
        "tenancy",
    ),
    SECURITY_GROUP: ("description", "name", "namePrefix", "vpcId"),
    KEY_PAIR: ("keyName", "keyNamePrefix", "publicKey"),
    # internal/service/ec2/ec2_eip.go and ec2_eip_association.go (every input of the latter).
    ELASTIC_IP: (
        "address",
        "customerOwnedIpv4Pool",
        "domain",
        "ipamPoolId",
        "networkBorderGroup",
        "publicIpv4Pool",
    ),
    EIP_ASSOCIATION: (
        "allocationId",
        "allowReassociation",
        "instanceId",
        "networkInterfaceId",
        "privateIpAddress",
        "publicIp",
    ),
    # internal/service/route53/record.go: a record's name and zone (its value, TTL and type
    # change in place).
    "aws:route53/record:Record": ("name", "zoneId"),
    REMOTE_COMMAND: ("triggers",),
    LOCAL_COMMAND: ("triggers",),
    # The schedules' resources: internal/service/scheduler/schedule.go (its description,
    # expression and target are updated in place), schedule_group.go, iam/role.go (the
    # description and policies in place), iam/role_policy.go (the policy in place),
    # sqs/queue.go.
    SCHEDULE: ("groupName", "name", "namePrefix"),
    SCHEDULE_GROUP: ("name", "namePrefix"),
    ROLE: ("name", "namePrefix", "path"),
    ROLE_POLICY: ("name", "namePrefix", "role"),
    QUEUE: ("fifoQueue", "name", "namePrefix"),
}
# Every input of these replaces them.
ALL_FORCE_NEW = (RANDOM_PASSWORD, TLS_PRIVATE_KEY)
# With userDataReplaceOnChange, user-data replaces the instance (the provider's CustomizeDiff).
USER_DATA = ("userData", "userDataBase64")


def unwrap(value: Any) -> Any:
    if isinstance(value, dict) and value.get(SECRET_SIGNATURE):
        return unwrap(value.get("value"))
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def _parts(path: str) -> list[str]:
    """`tags["image"]` and `rootBlockDevice.encrypted` -> their keys."""
    return [part for part in re.split(r'\.|\["|"\]', path) if part]


def _get(inputs: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = inputs
    for part in _parts(path):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _put(inputs: dict[str, Any], path: str, value: Any) -> None:
    parts = _parts(path)
    target = inputs
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def effective_inputs(old: Mapping[str, Any], new: Mapping[str, Any], ignore: list[str]) -> dict[str, Any]:
    """The new inputs after the engine applied ignoreChanges: an ignored path keeps its old
    value where it had one."""
    inputs = copy.deepcopy(dict(new))
    for path in ignore:
        present, value = _get(old, path)
        if present:
            _put(inputs, path, copy.deepcopy(value))
    return inputs


def _force_new_paths(type_: str, inputs: Mapping[str, Any], replace_on: list[str]) -> list[str]:
    if type_ in ALL_FORCE_NEW:
        return list(inputs)
    paths = [*FORCE_NEW.get(type_, ()), *replace_on]
    if type_ == INSTANCE and inputs.get("userDataReplaceOnChange"):
        paths += USER_DATA
    return paths


def _holds(value: Any, names: set[str]) -> bool:
    """Whether an input holds an output of one of these resources (mocks name ids and key
    names after their resource: `NAME-id`, `NAME-1234`)."""
    if isinstance(value, str):
        return any(value.startswith((f"{name}-id", f"{name}-1234")) for name in names)
    if isinstance(value, Mapping):
        return any(_holds(item, names) for item in value.values())
    if isinstance(value, list):
        return any(_holds(item, names) for item in value)
    return False


def replaced(
    old: ProgramRun,
    new: ProgramRun,
    refreshed: Mapping[str, Mapping[str, Any]] | None = None,
    targets: set[str] = frozenset(),  # type: ignore[assignment]
) -> set[str]:
    """The names of the resources `new`'s update would replace; `refreshed`: by resource
    type, the inputs a refresh reads back differently into the state; `targets`: names
    given to `pulumi up --replace`."""
    olds = {key: unwrap(value) for key, value in old.wire_inputs.items()}
    for (type_, _name), inputs in olds.items():
        for path, value in (refreshed or {}).get(type_, {}).items():
            if _get(inputs, path)[0]:
                _put(inputs, path, value)
    result: set[str] = set(targets)
    while True:
        found = set(result)
        for key, new_inputs in new.wire_inputs.items():
            type_, name = key
            if key not in olds or name in found:
                continue
            options = new.options.get(key, {})
            ignored = options.get("ignoreChanges", [])
            inputs = effective_inputs(olds[key], unwrap(new_inputs), ignored)
            for path in _force_new_paths(type_, inputs, options.get("replaceOnChanges", [])):
                before, after = _get(olds[key], path), _get(inputs, path)
                # A kept path keeps its old value, whatever the resource it came from became.
                unknown = after[0] and path not in ignored and _holds(after[1], result)
                if before != after or unknown:
                    found.add(name)
        if found == result:
            return result
        result = found


def changed(old: ProgramRun, new: ProgramRun, name_part: str) -> dict[str, list[str]]:
    """The top-level inputs whose value changes (after ignoreChanges), by resource name, of
    the resources whose name holds name_part: what an update would send."""
    found: dict[str, list[str]] = {}
    for key, new_inputs in new.wire_inputs.items():
        if name_part not in key[1] or key not in old.wire_inputs:
            continue
        before = unwrap(old.wire_inputs[key])
        after = effective_inputs(
            before, unwrap(new_inputs), new.options.get(key, {}).get("ignoreChanges", [])
        )
        if diff := sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)):
            found[key[1]] = diff
    return found
