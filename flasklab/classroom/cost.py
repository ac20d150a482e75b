"""`class cost --stack S [--hours-per-week H] [--weeks W]`: what a term of the stack costs.

From the stack's settings (its servers, their instance types and disks, staticAddress) and
AWS's prices for its region (flasklab.pricing: the Price List API, or a dated built-in
table): compute for the hours the servers run, disks all term long (a stopped server keeps
its disk), public IPv4 addresses (while running; an Elastic IP all term long) and the
snapshots kept when servers are rebuilt or removed (an estimate), and with a dnsZone the
hosted zone and its queries (an assumption: DNS_RESOLVERS resolvers ask for each name once
a TTL while its server runs); the start link's and the address updater's Lambda requests
are within AWS's free monthly allowance. Taxes, data transfer
(the first 100 GB a month out to the internet are free) and the Free Tier are left out.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from flasklab.dns_updater import RECORD_TTL_SECONDS
from flasklab.pricing import IPV4_SINCE, ROUTE53_DATE, Prices, PricesUnavailable, term_prices
from flasklab.settings import ConfigError, Settings
from flasklab.stacks import load_stack_servers, stack_course_and_region

HOURS_PER_WEEK = 10.0  # a course's classes and the time students work on their servers
WEEKS = 15  # a term
DAYS_PER_MONTH = 365.25 / 12  # AWS bills storage by GB-month
# What an 8 GiB Debian disk with a course's app holds (a snapshot stores what is used), and
# the share of the term a snapshot is kept: one rebuild or removal per server, halfway.
SNAPSHOT_GB = 3.0
SNAPSHOT_SHARE = 0.5
# Who asks for a server's name while it runs: the student's resolver, the teacher's, and one
# more (a classmate, Let's Encrypt, a phone); each asks again once the TTL has run out.
DNS_RESOLVERS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="the stack, as in stacks/Pulumi.NAME.yaml")
    parser.add_argument(
        "--hours-per-week", type=float, default=HOURS_PER_WEEK, help="hours each server runs a week"
    )
    parser.add_argument("--weeks", type=int, default=WEEKS, help="weeks in the term (15)")
    parser.add_argument("--region", help="when the stack file sets no aws:region (default: AWS_REGION)")


@dataclass(frozen=True)
class Term:
    hours_per_week: float
    weeks: int

    @property
    def running_hours(self) -> float:
        return self.hours_per_week * self.weeks

    @property
    def all_hours(self) -> float:
        return self.weeks * 7 * 24.0

    @property
    def months(self) -> float:
        return self.weeks * 7 / DAYS_PER_MONTH


@dataclass(frozen=True)
class Line:
    item: str
    basis: str
    usd: float


def estimate(servers: Sequence[Settings], prices: Prices, term: Term) -> list[Line]:
    """One line per thing billed; an instance type without a price is named, at $0."""
    lines = []
    for name, count in sorted(Counter(s.instance_type for s in servers).items()):
        hourly = prices.instance_hourly.get(name)
        if hourly is None:
            lines.append(Line(f"compute: {count} x {name}", "no price known for this type: not counted", 0.0))
            continue
        basis = f"{term.running_hours:g} h each at ${hourly:g}/h"
        lines.append(Line(f"compute: {count} x {name}", basis, count * term.running_hours * hourly))
    gib = sum(s.root_volume_gib for s in servers)
    basis = (
        f"{gib} GiB in all, {term.months:.2f} months (also while stopped) at "
        f"${prices.gp3_gb_month:g}/GB-month"
    )
    lines.append(Line(f"disks: {len(servers)} x gp3", basis, gib * term.months * prices.gp3_gb_month))
    static = sum(1 for s in servers if s.static_address)
    if static:
        basis = f"{term.all_hours:g} h each (the whole term, also while stopped) at ${prices.ipv4_hourly:g}/h"
        lines.append(Line(f"Elastic IPs: {static}", basis, static * term.all_hours * prices.ipv4_hourly))
    if dynamic := len(servers) - static:
        basis = f"{term.running_hours:g} h each (only while running) at ${prices.ipv4_hourly:g}/h"
        lines.append(
            Line(f"public IPv4: {dynamic}", basis, dynamic * term.running_hours * prices.ipv4_hourly)
        )
    if any(s.start_link for s in servers):
        basis = "Lambda and function URL requests: a class's clicks stay within the free million a month"
        lines.append(Line("start link", basis, 0.0))
    lines += dns_lines(servers, prices, term)
    months = term.months * SNAPSHOT_SHARE
    basis = (
        f"estimate: one per server, {SNAPSHOT_GB:g} GB, kept {months:.2f} months at "
        f"${prices.snapshot_gb_month:g}/GB-month"
    )
    usd = len(servers) * SNAPSHOT_GB * months * prices.snapshot_gb_month
    lines.append(Line(f"snapshots: {len(servers)}", basis, usd))
    return lines


def dns_lines(servers: Sequence[Settings], prices: Prices, term: Term) -> list[Line]:
    """The hosted zone (counted whole, though other stacks may share it) and its queries."""
    zone = servers[0].dns_zone
    if zone is None:
        return []
    basis = f"{term.months:.2f} months at ${prices.dns_zone_monthly:g} a month (once, if stacks share it)"
    lines = [Line(f"Route 53 zone {zone.name}", basis, term.months * prices.dns_zone_monthly)]
    names = sum(len(s.server_names) for s in servers)
    per_hour = DNS_RESOLVERS * 3600 / RECORD_TTL_SECONDS
    queries = names * term.running_hours * per_hour
    basis = (
        f"assumed: {DNS_RESOLVERS} resolvers ask for each name once a TTL ({RECORD_TTL_SECONDS} s) while "
        f"its server runs, {queries / 1e6:.2f} million at ${prices.dns_queries_per_million:g}/million"
    )
    lines.append(Line(f"DNS queries: {names} names", basis, queries / 1e6 * prices.dns_queries_per_million))
    if not any(s.static_address for s in servers):
        basis = "one Lambda request per start of an instance in the region: within the free million a month"
        lines.append(Line("address updater", basis, 0.0))
    return lines


def report(stack: str, servers: Sequence[Settings], prices: Prices, term: Term) -> Table:
    table = Table(title=f"A term of stack {stack} in {prices.region}: {len(servers)} servers, "
                  f"{term.hours_per_week:g} h a week for {term.weeks} weeks")  # fmt: skip
    for column in ("what", "how it is counted", "USD"):
        table.add_column(column, justify="right" if column == "USD" else "left")
    lines = estimate(servers, prices, term)
    for line in lines:
        table.add_row(line.item, line.basis, f"{line.usd:,.2f}")
    table.add_row("total", "", f"{sum(line.usd for line in lines):,.2f}", style="bold")
    return table


def prices_note(prices: Prices, why_offline: str) -> str:
    """Where the prices come from and when AWS published them (or why the table stood in)."""
    offline = f": {why_offline}" if why_offline else ""
    return (
        f"Prices: {prices.source}{offline}. Public IPv4: AWS's flat rate since {IPV4_SINCE}. "
        f"Route 53: built in, as listed on {ROUTE53_DATE}. "
        f"Without taxes, data transfer or the Free Tier."
    )


def run(args: argparse.Namespace) -> int:
    console = Console()
    try:
        servers = load_stack_servers(args.stack)
    except ConfigError as error:
        console.print(str(error), markup=False)
        return 2
    region = stack_course_and_region(args.stack)[1] or args.region or os.environ.get("AWS_REGION", "")
    if not region:
        console.print(f"stack {args.stack} sets no aws:region: pass --region (e.g. --region eu-west-1).")
        return 2
    try:
        prices, why_offline = term_prices(region, [s.instance_type for s in servers])
    except PricesUnavailable as error:
        console.print(f"No prices for this stack: {error}. Check the network and your AWS credentials "
                      f"(`aws configure`): the Price List API needs them.", markup=False)  # fmt: skip
        return 2
    console.print(report(args.stack, servers, prices, Term(args.hours_per_week, args.weeks)))
    console.print(prices_note(prices, why_offline), markup=False)
    return 0
