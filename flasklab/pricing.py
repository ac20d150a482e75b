"""What AWS charges for what a class uses, in one region: from the AWS Price List API
(boto3's `pricing` client, whose endpoint is in us-east-1) with the date AWS published the
prices, or, when the API cannot be reached (no credentials, no network, a denied call),
from a built-in table dated OFFLINE_DATE.

The public IPv4 rate is AWS's flat one in every commercial region since 2024-02-01
($0.005 an hour per address, in use or idle, Elastic or not), so it is built in; so are
Route 53's (dnsZone), one price worldwide, as AWS listed them on ROUTE53_DATE."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

PRICING_REGION = "us-east-1"  # where the Price List API answers for every region
IPV4_HOURLY = 0.005
IPV4_SINCE = "2024-02-01"
# Route 53 (global, not by region): a public hosted zone a month (the first 25 of an account),
# and standard queries by the million (the first billion a month).
ROUTE53_ZONE_MONTHLY = 0.50
ROUTE53_QUERIES_PER_MILLION = 0.40
ROUTE53_DATE = "2025-06"
# The built-in prices (Linux On-Demand, USD), as AWS published them then: check them with
# the API when you can (the command says which it used).
OFFLINE_DATE = "2025-06"
OFFLINE: dict[str, dict[str, Any]] = {
    "us-east-1": {
        "instances": {"t2.micro": 0.0116, "t2.small": 0.023, "t2.medium": 0.0464, "t3.micro": 0.0104,
                      "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832},
        "gp3": 0.08,
        "snapshot": 0.05,
    },
    "eu-west-1": {
        "instances": {"t2.micro": 0.0126, "t2.small": 0.025, "t2.medium": 0.05, "t3.micro": 0.0114,
                      "t3.small": 0.0228, "t3.medium": 0.0456, "t3.large": 0.0912},
        "gp3": 0.088,
        "snapshot": 0.05,
    },
    "eu-central-1": {
        "instances": {"t2.micro": 0.0134, "t2.small": 0.0268, "t2.medium": 0.0536, "t3.micro": 0.012,
                      "t3.small": 0.024, "t3.medium": 0.048, "t3.large": 0.096},
        "gp3": 0.0952,
        "snapshot": 0.054,
    },
    "eu-north-1": {
        "instances": {"t3.micro": 0.0108, "t3.small": 0.0216, "t3.medium": 0.0432, "t3.large": 0.0864},
        "gp3": 0.0836,
        "snapshot": 0.0475,
    },
}  # fmt: skip


class PricesUnavailable(Exception):
    """The prices cannot be had; the message says why."""


@dataclass(frozen=True)
class Prices:
    region: str
    instance_hourly: Mapping[str, float]  # by instance type; a type left out: not known
    gp3_gb_month: float
    snapshot_gb_month: float
    ipv4_hourly: float
    source: str  # where the prices come from, with their date
    dns_zone_monthly: float = ROUTE53_ZONE_MONTHLY
    dns_queries_per_million: float = ROUTE53_QUERIES_PER_MILLION


def offline_prices(region: str, instance_types: Iterable[str]) -> Prices:
    table = OFFLINE.get(region)
    if table is None:
        known = ", ".join(OFFLINE)
        raise PricesUnavailable(f"the built-in table has no prices for {region} (it has {known})")
    hourly = {name: table["instances"][name] for name in instance_types if name in table["instances"]}
    source = f"flasklab's built-in table of {OFFLINE_DATE} (the Price List API could not be reached)"
    return Prices(region, hourly, table["gp3"], table["snapshot"], IPV4_HOURLY, source)


def _match(**fields: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in fields.items()]


def _on_demand_usd(product: Mapping[str, Any]) -> float:
    for term in product["terms"]["OnDemand"].values():
        for dimension in term["priceDimensions"].values():
            return float(dimension["pricePerUnit"]["USD"])
    raise PricesUnavailable(f"product {product['product'].get('sku', '?')} has no On-Demand price")


def _price(
    client: Any, service: str, filters: list[dict[str, str]], usage: Callable[[str], bool], what: str
) -> tuple[float, str]:
    """The On-Demand USD price of the one product whose usage type passes `usage`, and the
    date AWS published it."""
    token = ""
    while True:
        page = client.get_products(
            ServiceCode=service, Filters=filters, FormatVersion="aws_v1", MaxResults=100,
            **({"NextToken": token} if token else {}),
        )  # fmt: skip
        for item in page.get("PriceList", []):
            product = json.loads(item)
            if usage(product["product"]["attributes"].get("usagetype", "")):
                return _on_demand_usd(product), str(product.get("publicationDate", "?"))[:10]
        token = page.get("NextToken", "")
        if not token:
            raise PricesUnavailable(f"the Price List API lists no price for {what}")


def api_prices(client: Any, region: str, instance_types: Iterable[str]) -> Prices:
    hourly: dict[str, float] = {}
    dates: set[str] = set()
    for name in sorted(set(instance_types)):
        filters = _match(
            regionCode=region, instanceType=name, operatingSystem="Linux", tenancy="Shared",
            preInstalledSw="NA", capacitystatus="Used", licenseModel="No License required",
        )  # fmt: skip
        hourly[name], date = _price(client, "AmazonEC2", filters, lambda u: "BoxUsage" in u, name)
        dates.add(date)
    gp3, date = _price(
        client, "AmazonEC2", _match(regionCode=region, productFamily="Storage", volumeApiName="gp3"),
        lambda u: u.endswith("VolumeUsage.gp3"), "gp3 volumes",
    )  # fmt: skip
    dates.add(date)
    snapshot, date = _price(
        client, "AmazonEC2", _match(regionCode=region, productFamily="Storage Snapshot"),
        lambda u: u.endswith("EBS:SnapshotUsage"), "EBS snapshots",
    )  # fmt: skip
    dates.add(date)
    source = f"the AWS Price List API, prices published {', '.join(sorted(dates))}"
    return Prices(region, hourly, gp3, snapshot, IPV4_HOURLY, source)


def pricing_client() -> Any:
    return boto3.client("pricing", region_name=PRICING_REGION)


def term_prices(region: str, instance_types: Iterable[str], client: Any | None = None) -> tuple[Prices, str]:
    """The prices, and why the built-in table stood in ('' when the API answered)."""
    types = list(instance_types)
    try:
        return api_prices(client or pricing_client(), region, types), ""
    except (BotoCoreError, ClientError, PricesUnavailable) as error:
        reason = " ".join(str(error).split())
        return offline_prices(region, types), reason
