"""Whether an AWS region exists, known offline: botocore's own endpoint data lists EC2's
regions in every partition (aws, aws-cn, aws-us-gov, ...). A mistyped region (`us-east1`)
is refused at once with the closest names, instead of a network error 20 s later.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import cache

import boto3


@cache
def ec2_regions() -> frozenset[str]:
    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def region_problem(region: str, where: str = "region") -> str:
    """'' if EC2 has the region, else what is wrong and the closest names."""
    if region in ec2_regions():
        return ""
    close = difflib.get_close_matches(region.strip().lower(), sorted(ec2_regions()), n=3, cutoff=0.6)
    hint = f" Did you mean {close[0]}?" if close else " Regions look like eu-west-1 or us-east-1."
    if len(close) > 1:
        hint += f" (Also close: {', '.join(close[1:])}.)"
    return (
        f"{where}: {region!r} is not an AWS region EC2 has.{hint} If AWS opened it recently, update "
        f"boto3, whose list this is: `pip install -U boto3`."
    )


def refuse_unknown_region(region: str | None, where: str, error: Callable[[str], Exception]) -> None:
    """Raises error(message) for a region EC2 does not have (nothing for None: boto3's own)."""
    if region and (problem := region_problem(region, where)):
        raise error(problem)
