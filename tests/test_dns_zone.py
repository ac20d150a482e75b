"""dnsZone: the setting (flasklab/dns_zone.py), the records, the address updater and its role
under Pulumi's mocks (components/dns_names.py), and what a zone added to a running class
replaces (nothing)."""

from __future__ import annotations

import json

import pulumi
import pytest
from parliament import analyze_policy_string

from flasklab import dns_updater, dns_zone, plan
from flasklab.roster import load_servers
from flasklab.settings import ConfigError
from flasklab.stacks import stack_config
from tests.conftest import FAKE_IP, LOG_GROUP, MOCK_ACCOUNT_ID, mock_elastic_ip
from tests.replacement_plan import INSTANCE, changed, replaced

RECORD = "aws:route53/record:Record"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
CLASS = "class-demo"
ZONE = "class.example.org"
ZONE_ID = "Z0MOCKCLASSZONE01"  # tests/conftest.py MOCK_ZONES
STUDENTS = ("ana", "ben", "carla")
ONE = {"serverName": f"flask.{ZONE}", "serverAliases": f'["www.flask.{ZONE}"]'}


# The setting.


def _servers(stack: str, **overrides: str):
    config = stack_config(stack)
    config.update(overrides)
    return load_servers(config, stack)


def test_a_class_student_is_named_in_the_zone_with_www_where_the_stack_has_aliases():
    servers = _servers(CLASS, dnsZone="Class.Example.org.")
    assert [s.server_names for s in servers] == [(f"{s}.{ZONE}", f"www.{s}.{ZONE}") for s in STUDENTS]
    without_aliases = _servers(CLASS, dnsZone=ZONE, serverAliases="[]")
    assert [s.server_names for s in without_aliases] == [(f"{s}.{ZONE}",) for s in STUDENTS]
    assert servers[0].dns_zone == dns_zone.DnsZone(ZONE)


def test_a_one_student_stacks_names_must_be_in_the_zone():
    with pytest.raises(ConfigError, match=r"'practica_flask' is not in the zone class\.example\.org"):
        _servers("dev", dnsZone=ZONE)
    [settings] = _servers("dev", dnsZone=f"{ZONE}/Z0123ABC", **ONE)
    assert settings.server_names == (f"flask.{ZONE}", f"www.flask.{ZONE}")
    assert settings.dns_zone == dns_zone.DnsZone(ZONE, "Z0123ABC")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Z0123456789ABCDEFGHIJ", r"is a hosted zone's id; flasklab needs the zone's name too"),
        ("class example", r"is not a hosted zone's name"),
        (f"{ZONE}/z0123", r"is not a hosted zone's name"),
        ("practica_flask", r"is not a hosted zone's name"),
        ("aula.test", r"'aula\.test' .*public DNS cannot delegate it"),
    ],
)
def test_a_zone_flasklab_cannot_use_is_refused_with_what_to_write(value, message):
    with pytest.raises(ConfigError, match=message):
        _servers(CLASS, dnsZone=value)


def test_a_row_that_names_its_own_server_must_name_it_in_the_zone():
    [problem] = dns_zone.names_problems(dns_zone.DnsZone(ZONE), ["ana.class.example.org", "ana.other.org"])
    assert "'ana.other.org' is not in the zone class.example.org" in problem
    assert list(dns_zone.names_problems(dns_zone.DnsZone(ZONE), [ZONE, f"x.{ZONE}"])) == []
    # A name that only ends like the zone is not in it.
    assert not dns_zone.DnsZone(ZONE).contains("evilclass.example.org")


# The resources under mocks.


def _records(run) -> dict[str, dict]:
    return {r["inputs"]["name"]: r for r in run.of_type(RECORD)}


def test_each_students_names_get_a_short_lived_record_the_updater_owns(run_program):
    run = run_program(CLASS, dnsZone=ZONE)
    records = _records(run)
    assert sorted(records) == sorted(n for s in STUDENTS for n in (f"{s}.{ZONE}", f"www.{s}.{ZONE}"))
    for record in records.values():
        inputs = record["inputs"]
        assert (inputs["zoneId"], inputs["type"], inputs["ttl"]) == (ZONE_ID, "A", 60)
        assert inputs["records"] == [run.public_ip]
        assert inputs["allowOverwrite"] is True
        assert run.options[(RECORD, record["name"])]["ignoreChanges"] == ["records"]
    assert [c["args"] for c in run.calls if c["token"] == "aws:route53/getZone:getZone"] == [
        {"name": ZONE, "privateZone": False}
    ]


def test_the_outputs_the_hosts_lines_and_ssh_show_the_zone_names(run_program):
    run = run_program(CLASS, dnsZone=ZONE)
    ana = run.outputs["students"]["ana"]
    assert ana["serverNames"] == [f"ana.{ZONE}", f"www.ana.{ZONE}"]
    assert ana["hostsLine"] == f"{run.public_ip} ana.{ZONE} www.ana.{ZONE}"
    assert ana["sshCommand"].endswith(f"admin@ana.{ZONE}")
    assert "no hosts line needed" in run.outputs["dnsZone"] and ZONE in run.outputs["dnsZone"]
    one = run_program("dev", dnsZone=ZONE, **ONE)
    assert one.outputs["serverNames"] == [f"flask.{ZONE}", f"www.flask.{ZONE}"]
    assert one.outputs["url"] == f"http://flask.{ZONE}/"
    assert "dnsZone" not in run_program(CLASS).outputs


def test_one_rule_for_started_instances_invokes_the_stacks_updater(run_program):
    run = run_program(CLASS, dnsZone=ZONE)
    prefix = f"flasklab-{CLASS}-dns"
    rule = run.one(RULE)
    assert json.loads(rule["inputs"]["eventPattern"]) == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["running"]},
    }
    function = run.one(FUNCTION)["inputs"]
    assert (function["runtime"], function["handler"]) == ("python3.12", "dns_updater.handler")
    assert function["role"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{prefix}-role"
    variables = function["environment"]["variables"]
    assert variables[dns_updater.ZONE_ENV] == ZONE_ID
    assert json.loads(variables[dns_updater.TAGS_ENV]) == {
        "stack": CLASS,
        "course": "web-deploy-2026",
        "managed-by": "flasklab",
    }
    assert variables[dns_updater.STUDENT_TAG_ENV] == plan.TAG_STUDENT
    # The names ship beside the handler: Lambda's environment holds 4 KB, some 60 students' names.
    assert ZONE not in json.dumps(variables)
    code = function["code"].assets
    assert code["dns_updater.py"].path == dns_updater.__file__
    assert json.loads(code[dns_updater.NAMES_FILE].text) == {
        s: [f"{s}.{ZONE}", f"www.{s}.{ZONE}"] for s in STUDENTS
    }
    target = run.one(TARGET)["inputs"]
    function_arn = f"arn:aws:lambda:eu-west-1:{MOCK_ACCOUNT_ID}:function:{prefix}-updater"
    assert (target["rule"], target["arn"]) == (f"{prefix}-started", function_arn)
    [permission] = run.of_type(PERMISSION)
    assert permission["inputs"]["principal"] == "events.amazonaws.com"
    assert permission["inputs"]["action"] == "lambda:InvokeFunction"
    rule_arn = f"arn:aws:events:eu-west-1:{MOCK_ACCOUNT_ID}:rule/{prefix}-started"
    assert permission["inputs"]["sourceArn"] == rule_arn
    assert permission["inputs"]["function"] == f"{prefix}-updater"


def test_the_updaters_role_may_upsert_only_this_stacks_a_records_and_parliament_agrees(run_program):
    run = run_program(CLASS, dnsZone=ZONE)
    role = run.one(ROLE)["inputs"]
    [trust] = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}
    text = run.one(ROLE_POLICY)["inputs"]["policy"]
    describe, change, logs = json.loads(text)["Statement"]
    assert logs == _writes_own_log(run)
    assert (describe["Action"], describe["Resource"]) == ("ec2:DescribeInstances", "*")
    assert change["Action"] == "route53:ChangeResourceRecordSets"
    assert change["Resource"] == f"arn:aws:route53:::hostedzone/{ZONE_ID}"
    assert change["Condition"] == {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(_records(run)),
            "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
            "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
        }
    }
    findings = analyze_policy_string(text).findings
    assert findings == [], [str(finding) for finding in findings]


def test_a_class_too_big_to_name_each_record_is_held_below_the_zone():
    names = [f"student-{i:03d}.{ZONE}" for i in range(400)]
    statements = dns_zone.updater_statements("aws", dns_zone.DnsZone(ZONE, ZONE_ID), names)
    policy = {"Version": "2012-10-17", "Statement": statements}
    condition = statements[1]["Condition"]
    assert condition["ForAllValues:StringLike"] == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"*.{ZONE}"]
    }
    assert condition["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
        "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
    }
    assert len(json.dumps(policy)) < 10_240
    assert analyze_policy_string(json.dumps(policy)).findings == []


def test_with_static_addresses_the_records_follow_the_elastic_ips_and_nothing_updates_them(run_program):
    run = run_program(CLASS, dnsZone=ZONE, staticAddress="true")
    for student in STUDENTS:
        record = _records(run)[f"{student}.{ZONE}"]
        assert record["inputs"]["records"] == [mock_elastic_ip(f"flasklab-{CLASS}-{student}-address")]
        assert run.options[(RECORD, record["name"])]["ignoreChanges"] == []
    assert run.of_type(FUNCTION) == [] and run.of_type(RULE) == [] and run.of_type(ROLE) == []


def test_a_zone_added_to_a_running_class_replaces_no_server(run_program):
    before = run_program(CLASS)
    after = run_program(CLASS, dnsZone=ZONE)
    servers = {name for (type_, name) in before.wire_inputs if type_ == INSTANCE}
    assert len(servers) == 3
    assert not replaced(before, after) & servers


def test_a_refresh_never_puts_an_old_address_back(run_program):
    """The servers were started elsewhere and `pulumi up --refresh` reads their new addresses
    (or none, stopped): the records keep the updater's, and no update touches them."""
    after = run_program(CLASS, dnsZone=ZONE)
    for address in ("203.0.113.77", ""):
        run_program.public_ip = address
        again = run_program(CLASS, dnsZone=ZONE)
        assert changed(after, again, "-dns-") == {}
        assert not replaced(after, again)


def test_a_zone_added_while_the_servers_are_stopped_makes_records_route_53_accepts(run_program):
    """A refresh of stopped servers reads no public address; Route 53 refuses an empty A
    record, so each is made pointing nowhere (TEST-NET-1) until the updater's next start."""
    import ipaddress

    from components.dns_names import STOPPED_SERVER_ADDRESS

    run_program.public_ip = ""
    run = run_program(CLASS, dnsZone=ZONE)
    addresses = {value for record in _records(run).values() for value in record["inputs"]["records"]}
    assert addresses == {STOPPED_SERVER_ADDRESS}
    assert ipaddress.ip_address(STOPPED_SERVER_ADDRESS) in ipaddress.ip_network("192.0.2.0/24")


def test_a_zone_not_in_the_account_stops_pulumi_up_before_any_resource(run_program):
    with pytest.raises(
        pulumi.RunError, match=r"dnsZone: the hosted zone missing\.example\.org could not be read"
    ):
        run_program(CLASS, dnsZone="missing.example.org")
    with pytest.raises(
        pulumi.RunError, match=r"that id is the zone other\.example\.org, not class\.example\.org"
    ):
        run_program(CLASS, dnsZone=f"{ZONE}/Z0MOCKOTHERZONE02")
    run = run_program(CLASS, dnsZone=f"{ZONE}/{ZONE_ID}")
    assert {r["inputs"]["zoneId"] for r in run.of_type(RECORD)} == {ZONE_ID}


def _sheet(saved, folder) -> tuple[str, str]:
    from flasklab.__main__ import main

    assert main(["class", "sheet", "--stack", CLASS, "--outputs", str(saved), "--out", str(folder)]) == 0
    return (folder / "index.html").read_text(), (folder / "hosts").read_text()


def test_the_sheet_gives_the_zone_names_and_says_the_hosts_file_is_optional(
    saved_outputs, tmp_path, monkeypatch
):
    from flasklab.classroom import outputs as class_outputs

    saved = saved_outputs(CLASS, dnsZone=ZONE)
    with monkeypatch.context() as patch:
        # The stack file as if it set dnsZone (the sheet reads the zone from the stack's settings).
        patch.setattr(class_outputs, "load_stack_servers", lambda stack: _servers(stack, dnsZone=ZONE))
        page, hosts = _sheet(saved, tmp_path / "sheet")
    assert f"DNS zone <code>{ZONE}</code>" in page and "no hosts line needed" in page
    assert f"ana.{ZONE}" in page and f"admin@ana.{ZONE}" in page
    assert f"# Optional: the names are in the DNS zone {ZONE}" in hosts
    assert f"{FAKE_IP} ana.{ZONE} www.ana.{ZONE}" in hosts
    page, hosts = _sheet(saved_outputs(CLASS), tmp_path / "plain")
    assert "DNS zone" not in page + hosts and "add its hosts line to the hosts file" in page


def test_with_letsencrypt_the_web_server_and_the_certificate_request_use_the_zone_names():
    """What a rehearsal boots (the rendered files); the boot with a local ACME server is wt-acme's."""
    from flasklab.render import render_files
    from tests.conftest import secrets_for_tests

    servers = _servers(CLASS, dnsZone=ZONE, tls="letsencrypt", tlsEmail="teacher@example.org")
    ben = next(s for s in servers if s.student == "ben")  # nginx-uwsgi-systemd
    files = {f.path: f.content for f in render_files(ben, secrets_for_tests(ben))}
    [request] = [content for path, content in files.items() if path.endswith("flasklab-letsencrypt")]
    assert f"--cert-name ben.{ZONE}" in request
    assert f"--domain ben.{ZONE}" in request and f"--domain www.ben.{ZONE}" in request
    [site] = [content for path, content in files.items() if path.startswith("/etc/nginx/sites-available/")][
        :1
    ]
    assert f"server_name ben.{ZONE} www.ben.{ZONE};" in site


def test_another_zone_makes_the_records_anew_and_never_a_server(run_program):
    """A record's name and zone force a new record (route53/record.go); the servers stay."""
    before = run_program(CLASS, dnsZone=ZONE)
    after = run_program(CLASS, dnsZone=f"{ZONE}/{ZONE_ID}", serverAliases="[]")
    assert not replaced(before, after), "the same zone by id: nothing made anew"
    moved = run_program(CLASS, dnsZone="other.example.org")
    gone = replaced(before, moved)
    assert not {name for name in gone if name.endswith("-instance")}


def _writes_own_log(run) -> dict:
    """The function writes to its own log group, and its role may write there only."""
    [group] = run.of_type(LOG_GROUP)
    assert group["inputs"]["name"] == f"/flasklab/{CLASS}/dns-updater"
    assert run.one(FUNCTION)["inputs"]["loggingConfig"]["logGroup"] == group["inputs"]["name"]
    arn = f"arn:aws:logs:eu-west-1:{MOCK_ACCOUNT_ID}:log-group:{group['inputs']['name']}"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    return {"Effect": "Allow", "Action": actions, "Resource": f"{arn}:*"}
