"""The account's quotas a class must fit in, read before any resource is declared (as
components/instance_type.py reads the region's offerings); flasklab.quotas decides.

Service Quotas may be closed to the stack's credentials (AWS Academy's role can deny
servicequotas:GetServiceQuota): then `pulumi up` warns and goes on, and EC2 itself is the
limit, as it was before this check."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from flasklab import plan, quotas
from flasklab.settings import Settings

# How much of the data source's error the warning quotes.
REASON_LIMIT = 300


def account_quota(code: str, name: str, region: str) -> quotas.Quota | None:
    """The quota's value in the stack's region; None (with a warning) when it cannot be read."""
    try:
        answer = aws.servicequotas.get_service_quota(service_code=quotas.SERVICE_CODE, quota_code=code)
    except Exception as error:  # the provider's error for any failed call: denied, throttled, offline
        reason = " ".join(str(error).split())[:REASON_LIMIT]
        pulumi.log.warn(
            f'flasklab could not read the account\'s quota "{name}" ({code}): {reason}. `pulumi up` goes on '
            f"without checking that the class fits; if AWS refuses servers halfway, the Service Quotas "
            f"console shows the quota (AWS Academy may not let you read it)."
        )
        return None
    return quotas.Quota(code, name, float(answer.value), region)


def quota_problems(
    servers: Sequence[Settings], instance_types: Mapping[str, plan.InstanceTypeFacts]
) -> list[str]:
    """Why the class does not fit the account's quotas (none: it fits, or they cannot be read)."""
    region = aws.config.region or ""
    problems: list[str] = []
    by_type = Counter(settings.instance_type for settings in servers)
    if any(quotas.is_standard(name) for name in by_type) and (
        vcpu_quota := account_quota(quotas.STANDARD_VCPUS, quotas.STANDARD_VCPUS_NAME, region)
    ):
        vcpus = {name: facts.vcpus for name, facts in instance_types.items()}
        problems += quotas.vcpu_problems(by_type, vcpus, vcpu_quota)
    static = sum(1 for settings in servers if settings.static_address)
    if static and (eip_quota := account_quota(quotas.ELASTIC_IPS, quotas.ELASTIC_IPS_NAME, region)):
        problems += quotas.elastic_ip_problems(static, eip_quota)
    return problems
