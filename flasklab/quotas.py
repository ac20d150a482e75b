"""AWS's limits a class must fit in, worked out before any resource is declared, so that a
class's first `pulumi up` does not stop halfway (some students with servers, others not).

Two quotas of the region (components/account_quotas.py reads them):
- L-1216C47A, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", in
  vCPUs: a new account often has 32 or less (16 t3.medium);
- L-0263D0A3, "EC2-VPC Elastic IPs": 5 by default, one per server with staticAddress.

What counts: this stack's servers, all of them, the ones that already exist too. A class
runs its servers together in class, so the whole class must fit, and the program cannot
tell which servers exist without asking EC2 for each. The quota is the account's and the
region's, shared with every other instance and Elastic IP there (other stacks, other
courses, the account's own): they are not counted, since seeing them would take a call per
instance, so a class that fits here can still meet the limit; the refusal says so.
Nothing here imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SERVICE_CODE = "ec2"
STANDARD_VCPUS = "L-1216C47A"
STANDARD_VCPUS_NAME = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
ELASTIC_IPS = "L-0263D0A3"
ELASTIC_IPS_NAME = "EC2-VPC Elastic IPs"
# Families whose first letter is a standard one but which have quotas of their own
# (Inf, DL, Trn, HPC, high memory, Mac, VT).
OWN_QUOTA_PREFIXES = ("inf", "dl", "trn", "hpc", "u-", "u7", "mac", "vt")
STANDARD_LETTERS = "acdhimrtz"
# Smaller types to suggest, by vCPUs, as (type, memory): the tutorials run in 2 GiB.
SMALLER_TYPES = {1: ("t2.small", "1 vCPU, 2 GiB"), 2: ("t3.small", "2 vCPU, 2 GiB")}


def is_standard(instance_type: str) -> bool:
    """Whether the type counts against the Standard vCPU quota (L-1216C47A)."""
    family = instance_type.split(".")[0].lower()
    return family[:1] in STANDARD_LETTERS and not family.startswith(OWN_QUOTA_PREFIXES)


@dataclass(frozen=True)
class Quota:
    code: str
    name: str
    value: float
    region: str

    def how_to_ask(self, wanted: int) -> str:
        where = f" --region {self.region}" if self.region else ""
        return (
            f'ask AWS for more in the Service Quotas console (Amazon EC2, "{self.name}") or with '
            f"`aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} "
            f"--quota-code {self.code} --desired-value {wanted}{where}` (AWS Academy accounts cannot)"
        )


SHARED = (
    "Other instances and Elastic IPs of this account in the region count against the same quota "
    "and are not included here."
)


def vcpu_problems(servers: Mapping[str, int], vcpus: Mapping[str, int], quota: Quota) -> list[str]:
    """servers: how many servers of each instance type; vcpus: each type's vCPUs."""
    standard = {name: count for name, count in servers.items() if is_standard(name)}
    needed = sum(count * vcpus[name] for name, count in standard.items())
    if needed <= quota.value:
        return []
    limit = int(quota.value)
    count = sum(standard.values())
    what = ", ".join(f"{n} x {name} ({vcpus[name]} vCPU)" for name, n in sorted(standard.items()))
    options = [quota.how_to_ask(needed)]
    per_server = limit // count if count else 0
    if smaller := SMALLER_TYPES.get(min(per_server, 2)):
        options.append(
            f"or choose a smaller type that fits: `pulumi config set instanceType {smaller[0]}` "
            f"({smaller[1]})"
        )
    if len(standard) == 1:
        [(name, _)] = standard.items()
        options.append(f"or make at most {limit // vcpus[name]} servers of {name} in this stack")
    return [
        f"instanceType: this class needs {needed} vCPUs ({what}) and the account's quota in "
        f'{quota.region or "this region"} is {limit} ("{quota.name}", {quota.code}): EC2 would refuse '
        f"servers halfway through `pulumi up`. " + "; ".join(options) + f". {SHARED}"
    ]


def elastic_ip_problems(count: int, quota: Quota) -> list[str]:
    """count: the servers that get an Elastic IP (staticAddress)."""
    if count <= quota.value:
        return []
    limit = int(quota.value)
    return [
        f"staticAddress: this class needs {count} Elastic IPs and the account's quota in "
        f'{quota.region or "this region"} is {limit} ("{quota.name}", {quota.code}). '
        f"{quota.how_to_ask(count)}; or `pulumi config set staticAddress false` (the hosts file then "
        f"changes after each start: `python -m flasklab class status` prints it). {SHARED}"
    ]


# Set to "off" for one command, the check warns instead of refusing: a class that no
# longer fits (its quota lowered, its roster grown) must still be refreshed or destroyed.
CHECK_ENV = "FLASKLAB_QUOTA_CHECK"


def quota_check_off(value: str | None) -> bool:
    return (value or "").strip().lower() == "off"


def escape_hatch() -> str:
    return (
        f"To refresh or destroy the stack as it is: {CHECK_ENV}=off pulumi destroy --run-program "
        f"(or pulumi refresh)."
    )
