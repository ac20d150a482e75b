"""`class cost`: a term's estimate from the AWS Price List API (its `pricing` client stubbed
with botocore's Stubber: moto has no Price List API) and from the dated built-in table
when the API cannot be reached (no credentials here)."""

from __future__ import annotations

import argparse
import dataclasses
import json

import boto3
import pytest
from botocore.stub import Stubber

from flasklab import pricing
from flasklab.classroom import cost

REGION = "eu-west-1"
PUBLISHED = "2026-11-27T18:03:12Z"
TERM = cost.Term(hours_per_week=10, weeks=15)


def price_item(usage_type: str, usd: str, **attributes: str) -> str:
    """One PriceList entry as the API returns it (a JSON string)."""
    sku = "SKU" + usage_type.replace(":", "").replace(".", "")[-10:]
    return json.dumps(
        {
            "product": {
                "productFamily": "x",
                "attributes": {"usagetype": usage_type, **attributes},
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}
                        },
                        "effectiveDate": "2026-11-01T00:00:00Z",
                    }
                }
            },
            "version": "20261127180312",
            "publicationDate": PUBLISHED,
        }
    )


def filters(**fields: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]


def expect(
    stubber: Stubber, service_filters: list[dict[str, str]], items: list[str], token: str = ""
) -> None:
    params = {
        "ServiceCode": "AmazonEC2",
        "Filters": service_filters,
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    response = {"FormatVersion": "aws_v1", "PriceList": items, **({"NextToken": "page2"} if token else {})}
    stubber.add_response("get_products", response, params)


@pytest.fixture
def stubbed():
    client = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def stub_prices(stubber: Stubber) -> None:
    compute = filters(
        regionCode=REGION, instanceType="t3.medium", operatingSystem="Linux", tenancy="Shared",
        preInstalledSw="NA", capacitystatus="Used", licenseModel="No License required",
    )  # fmt: skip
    # A page with only a product of another usage (a reservation), then the one asked for.
    expect(stubber, compute, [price_item("EU-Reservation:t3.medium", "0.0456")], token="page2")
    second = {
        "ServiceCode": "AmazonEC2", "Filters": compute, "FormatVersion": "aws_v1", "MaxResults": 100,
        "NextToken": "page2",
    }  # fmt: skip
    stubber.add_response(
        "get_products", {"PriceList": [price_item("EU-BoxUsage:t3.medium", "0.0460000000")]}, second
    )
    expect(
        stubber,
        filters(regionCode=REGION, productFamily="Storage", volumeApiName="gp3"),
        [price_item("EU-EBS:VolumeUsage.gp3", "0.0880000000")],
    )
    expect(
        stubber,
        filters(regionCode=REGION, productFamily="Storage Snapshot"),
        [price_item("EU-EBS:SnapshotArchiveStorage", "0.0125"), price_item("EU-EBS:SnapshotUsage", "0.05")],
    )


def test_the_price_list_api_gives_the_prices_and_their_date(stubbed):
    client, stubber = stubbed
    stub_prices(stubber)
    prices, why_offline = pricing.term_prices(REGION, ["t3.medium"], client)
    assert why_offline == ""
    assert prices.instance_hourly == {"t3.medium": 0.046}
    assert (prices.gp3_gb_month, prices.snapshot_gb_month, prices.ipv4_hourly) == (0.088, 0.05, 0.005)
    assert prices.source == "the AWS Price List API, prices published 2026-11-27"


def test_a_term_of_thirty_students_from_the_api(stubbed, roster):
    client, stubber = stubbed
    stub_prices(stubber)
    servers = _thirty(roster)
    prices, _ = pricing.term_prices(REGION, ["t3.medium"], client)
    lines = {line.item.split(":")[0]: line.usd for line in cost.estimate(servers, prices, TERM)}
    assert lines["compute"] == pytest.approx(30 * 150 * 0.046)
    assert lines["disks"] == pytest.approx(30 * 8 * TERM.months * 0.088)
    assert lines["public IPv4"] == pytest.approx(30 * 150 * 0.005)
    assert lines["snapshots"] == pytest.approx(30 * 3 * TERM.months / 2 * 0.05)


def _thirty(roster, static: bool = False, **more: str):
    from flasklab.roster import load_servers
    from flasklab.stacks import stack_config

    roster("student\n" + "".join(f"s{n:02d}\n" for n in range(30)))
    raw = stack_config("class-demo") | {
        "roster": "rosters/test.csv",
        "instanceType": "t3.medium",
        "staticAddress": static,
        **more,
    }
    return load_servers(raw, "class-demo")


def test_elastic_ips_cost_every_hour_of_the_term(roster):
    prices = pricing.offline_prices(REGION, ["t3.medium"])
    lines = {
        line.item.split(":")[0]: line for line in cost.estimate(_thirty(roster, static=True), prices, TERM)
    }
    assert "public IPv4" not in lines
    assert lines["Elastic IPs"].usd == pytest.approx(30 * 15 * 7 * 24 * 0.005) == pytest.approx(378)
    assert "also while stopped" in lines["Elastic IPs"].basis
    assert "start link" not in lines


def test_the_start_link_is_named_at_no_cost(roster):
    servers = [dataclasses.replace(s, start_link=True) for s in _thirty(roster)]
    lines = {line.item: line for line in cost.estimate(servers, pricing.offline_prices(REGION, []), TERM)}
    assert lines["start link"].usd == 0 and "free" in lines["start link"].basis


def test_a_dns_zone_costs_its_months_and_its_assumed_queries(roster):
    prices = pricing.offline_prices(REGION, ["t3.medium"])
    lines = {
        line.item: line for line in cost.estimate(_thirty(roster, dnsZone="class.example.org"), prices, TERM)
    }
    zone = lines["Route 53 zone class.example.org"]
    assert zone.usd == pytest.approx(TERM.months * 0.50)
    # 60 names (each student's and its www.) x 150 h x 3 resolvers x 60 queries an hour.
    queries = lines["DNS queries: 60 names"]
    assert queries.usd == pytest.approx(60 * 150 * 3 * 60 / 1e6 * 0.40)
    assert "assumed" in queries.basis and "1.62 million" in queries.basis
    assert lines["address updater"].usd == 0
    static = {
        line.item for line in cost.estimate(_thirty(roster, True, dnsZone="class.example.org"), prices, TERM)
    }
    assert "address updater" not in static and "Route 53 zone class.example.org" in static
    plain = {line.item for line in cost.estimate(_thirty(roster), prices, TERM)}
    assert not any("Route 53" in item or "DNS" in item for item in plain)


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """No AWS credentials anywhere: boto3 stops before any request leaves the machine."""
    for variable in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("COLUMNS", "200")


def test_without_the_api_the_dated_built_in_table_is_used(no_credentials):
    prices, why_offline = pricing.term_prices(REGION, ["t3.medium", "z9.huge"])
    assert "credentials" in why_offline
    assert prices.source.startswith(f"flasklab's built-in table of {pricing.OFFLINE_DATE}")
    assert prices.instance_hourly == {"t3.medium": 0.0456}, "a type the table lacks has no price"


def test_a_region_the_table_lacks_is_said(monkeypatch):
    with pytest.raises(pricing.PricesUnavailable, match="no prices for ap-south-2"):
        pricing.offline_prices("ap-south-2", ["t3.medium"])


def test_a_denied_price_list_call_falls_back_to_the_table(stubbed):
    client, stubber = stubbed
    stubber.add_client_error(
        "get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts"
    )
    prices, why_offline = pricing.term_prices(REGION, ["t3.medium"], client)
    assert "pricing:GetProducts" in why_offline and prices.gp3_gb_month == 0.088


def test_the_command_prints_the_term_offline(no_credentials, capsys):
    args = argparse.Namespace(stack="class-demo", hours_per_week=10.0, weeks=15, region=None)
    assert cost.run(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 servers, 10 h a week for 15 weeks" in out
    assert "compute: 3 x t2.medium" in out and "22.50" in out  # 3 x 150 h x $0.05
    assert f"built-in table of {pricing.OFFLINE_DATE}" in out and "Unable to locate credentials" in out
    assert "32.81" in out, "the total"
