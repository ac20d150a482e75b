"""Shared fixtures: settings of the example stacks, and the real Pulumi program run
under Pulumi's mocks (no CLI, no AWS account)."""

from __future__ import annotations

import gc
import hashlib
import json
import runpy
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from flasklab.app_secrets import AppSecrets, rules_for
from flasklab.roster import is_class
from flasklab.settings import PROJECT_DIR, Settings
from flasklab.stacks import STACKS_DIR, stack_config, stack_names

EXAMPLE_STACKS = stack_names()
# Stacks of one student each, and class stacks (a roster: a server per student).
STUDENT_STACKS = [stack for stack in EXAMPLE_STACKS if not is_class(stack_config(stack))]
CLASS_STACKS = [stack for stack in EXAMPLE_STACKS if stack not in STUDENT_STACKS]
FAKE_AMI = "ami-0fedcba9876543210"
FAKE_IP = "198.51.100.23"
MOCK_ACCOUNT_ID = "123456789012"
# What the mocked AWS says of instance types: the arm64-only families.
ARM_FAMILIES = {"t4g", "a1", "m7g"}
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
TLS_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
ELASTIC_IP = "aws:ec2/eip:Eip"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
SERVICE_QUOTA = "aws:servicequotas/getServiceQuota:getServiceQuota"
GET_ZONE = "aws:route53/getZone:getZone"
# The mocked account's public hosted zones (dnsZone): id -> name. Any other is not there.
MOCK_ZONES = {"Z0MOCKCLASSZONE01": "class.example.org", "Z0MOCKOTHERZONE02": "other.example.org"}
# A grown account's quotas: Standard vCPUs (L-1216C47A) and Elastic IPs (L-0263D0A3).
MOCK_QUOTAS = {"L-1216C47A": 1152.0, "L-0263D0A3": 5.0}
EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
MOCK_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockMockMockMockMockMockMockMockMockMockMoc"
MOCK_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-private-key-7Hq\n-----END OPENSSH PRIVATE KEY-----\n"
)
MOCK_STATUS_REPORT = (
    "flasklab: ready: http://practica_flask/ is served (first boot finished without errors).\n"
    "first boot took 61 s\n"
    "flasklab-check: flasklab-status exited 0\n"
)
# Fixed stand-ins for the generated secrets, so rendered files can be compared exactly.
TEST_SECRETS = AppSecrets(
    secret_key="TestSecretKey0123456789abcdefghijklmnopqrstuvwxyz",
    database_password="TestDatabasePassword0123456789ab",
)


def secrets_for_tests(settings: Settings) -> AppSecrets:
    """TEST_SECRETS as the settings use them (no database password without a database)."""
    return TEST_SECRETS if settings.database else AppSecrets(TEST_SECRETS.secret_key)


def mock_elastic_ip(resource_name: str) -> str:
    """The Elastic IP the mocked EC2 allocates: one per resource, in TEST-NET-3."""
    return f"203.0.113.{int(hashlib.sha256(resource_name.encode()).hexdigest()[:4], 16) % 250 + 2}"


def mock_zone(lookup: dict) -> Any:
    """route53.get_zone against MOCK_ZONES: by id or by name; a failed invoke otherwise, as the
    provider's "no matching Route 53 Hosted Zone found"."""
    by_name = {name: zone_id for zone_id, name in MOCK_ZONES.items()}
    zone_id = lookup.get("zoneId") or by_name.get(lookup.get("name", ""), "")
    if zone_id not in MOCK_ZONES:
        return {}, [("name", "no matching Route 53 Hosted Zone found")]
    return {"zoneId": zone_id, "id": zone_id, "name": MOCK_ZONES[zone_id], "privateZone": False}


def mock_random_password(resource_name: str) -> str:
    """What the mocked pulumi-random provider generates for a RandomPassword."""
    return "Mock" + hashlib.sha256(resource_name.encode()).hexdigest()[:28]


def mock_secrets(stack: str, settings: Settings) -> AppSecrets:
    """The secrets the program renders under the mocks, unless the config chose them."""
    prefix = f"flasklab-{stack}-secrets"
    return AppSecrets(
        **{
            rule.field: settings.chosen_secrets.value(rule)
            or mock_random_password(f"{prefix}-{rule.resource_suffix}")
            for rule in rules_for(settings.database is not None)
        }
    )


@dataclass
class ProgramRun:
    """What one run of __main__.py under mocks declared."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    # The HTTP checks the readiness component asked for: (site, expectation, timeout), and
    # what pulumi.log.error reported.
    http_checks: list[tuple[Any, Any, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    # Each resource's inputs as the SDK sent them to the engine, secrets still wrapped:
    # what the engine would write to the state; and which of its outputs it asked the
    # engine to keep secret.
    # Keyed by (type, name): registrations run on several threads, in any order.
    wire_inputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secret_outputs_asked: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    urns: dict[tuple[str, str], str] = field(default_factory=dict)
    # Each resource's options as the engine gets them: ignoreChanges, replaceOnChanges and
    # the names of its before_delete hooks.
    options: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    # How many HTTP checks ran at the same time, at most.
    most_checks_at_once: int = 0
    checks_running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    status_report: str = MOCK_STATUS_REPORT
    public_ip: str = FAKE_IP
    # The build tag the state keeps for an instance made by an earlier `pulumi up` ('': new).
    kept_build: str = ""
    # The reports of commands whose exit status would have failed `pulumi up`.
    failed_commands: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_]

    def one(self, type_: str) -> dict[str, Any]:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]


def mock_ami(lookup: dict) -> dict:
    """getAmi's answer: FAKE_AMI for the default image (Debian 13 on x86_64), another id
    for each other name pattern, so tests can tell which lookup a server's image came from."""
    filters = {f["name"]: f["values"][0] for f in lookup["filters"]}
    pattern, architecture = filters["name"], filters["architecture"]
    other = "ami-" + hashlib.sha256(pattern.encode()).hexdigest()[:17]
    ami = FAKE_AMI if pattern == "debian-13-amd64-*" else other
    return {"id": ami, "name": pattern.replace("*", "20261101-2000"), "architecture": architecture}


def _run_wait(run: ProgramRun, spec_json: str) -> str:
    """What `python -m flasklab.readiness` prints for this spec, run here (its HTTP wait is
    the test's stand-in). An exit status that would fail the command, and so `pulumi up`,
    is recorded with the report it prints (a mock that raised would leave the program's
    tasks failing into the next test)."""
    from flasklab import readiness

    spec = readiness.WaitSpec.from_json(spec_json)
    report, verdict = readiness.run_wait(spec)
    if readiness.exit_status(spec, verdict):
        with run.lock:
            run.failed_commands.append(report)
    return f"{report}\n{verdict.to_json()}\n"


def mock_vcpus(instance_type: str) -> int:
    """A type's default vCPUs as AWS gives them (t2's smallest have one; xlarge four, ...)."""
    if instance_type in ("t2.nano", "t2.micro", "t2.small"):
        return 1
    size = instance_type.split(".")[-1]
    return {"xlarge": 4, "2xlarge": 8, "4xlarge": 16}.get(size, 2)


def _mocks(run: ProgramRun, not_offered: set[str], quotas: dict[str, float]):
    import pulumi

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            state = dict(args.inputs)
            if args.typ == "aws:ec2/instance:Instance":
                ip = run.public_ip
                state.update(publicIp=ip, publicDns=f"ec2-{ip.replace('.', '-')}.compute.amazonaws.com")
                if run.kept_build:  # an existing server: the engine keeps its build tag
                    state["tags"] = {**state["tags"], "flasklab-build": run.kept_build}
            if args.typ == ELASTIC_IP:
                ip = mock_elastic_ip(args.name)
                state.update(
                    publicIp=ip,
                    publicDns=f"ec2-{ip.replace('.', '-')}.compute.amazonaws.com",
                    allocationId=f"{args.name}-id",
                )
            if args.typ == LAMBDA_FUNCTION:
                state.update(
                    name=args.name, arn=f"arn:aws:lambda:eu-west-1:{MOCK_ACCOUNT_ID}:function:{args.name}"
                )
            if args.typ == EVENT_RULE:
                state.update(
                    name=args.name, arn=f"arn:aws:events:eu-west-1:{MOCK_ACCOUNT_ID}:rule/{args.name}"
                )
            if args.typ == LOG_GROUP:
                group = state.get("name", args.name)
                state.setdefault("arn", f"arn:aws:logs:eu-west-1:{MOCK_ACCOUNT_ID}:log-group:{group}")
            if args.typ == FUNCTION_URL:
                state["functionUrl"] = f"https://{args.name}.lambda-url.eu-west-1.on.aws/"
            if args.typ == "aws:ec2/keyPair:KeyPair":
                state.setdefault("keyName", f"{args.name}-1234")
            if args.typ == "aws:iam/role:Role":
                state.setdefault("arn", f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{args.name}")
            if args.typ == "aws:sqs/queue:Queue":
                queue = state.get("name", args.name)
                state.setdefault("arn", f"arn:aws:sqs:eu-west-1:{MOCK_ACCOUNT_ID}:{queue}")
                state.setdefault("url", f"https://sqs.eu-west-1.amazonaws.com/{MOCK_ACCOUNT_ID}/{queue}")
            if args.typ == RANDOM_PASSWORD:
                state["result"] = mock_random_password(args.name)
            if args.typ == TLS_PRIVATE_KEY:
                state.update(publicKeyOpenssh=MOCK_PUBLIC_KEY, privateKeyOpenssh=MOCK_PRIVATE_KEY)
            if args.typ == REMOTE_COMMAND:
                state["stdout"] = run.status_report
            if args.typ == LOCAL_COMMAND:
                state["stdout"] = _run_wait(run, args.inputs["stdin"])
            run.resources.append({"type": args.typ, "name": args.name, "inputs": dict(args.inputs)})
            return f"{args.name}-id", state

        def call(self, args: pulumi.runtime.MockCallArgs):
            run.calls.append({"token": args.token, "args": dict(args.args)})
            if args.token == "aws:ec2/getAmi:getAmi":
                return mock_ami(args.args)
            if args.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
                [wanted] = args.args["filters"][0]["values"]
                return {
                    "instanceTypes": [] if wanted in not_offered else [wanted],
                    "locationTypes": ["region"],
                }
            if args.token == "aws:ec2/getInstanceType:getInstanceType":
                family = args.args["instanceType"].split(".")[0]
                return {
                    "supportedArchitectures": ["arm64"] if family in ARM_FAMILIES else ["i386", "x86_64"],
                    "defaultVcpus": mock_vcpus(args.args["instanceType"]),
                }
            if args.token == SERVICE_QUOTA:
                code = args.args["quotaCode"]
                if code not in quotas:  # a failed invoke, as the engine returns AWS Academy's denial
                    return {}, [("quotaCode", f"reading Service Quota ({code}): AccessDeniedException")]
                return {
                    "quotaCode": code,
                    "serviceCode": args.args["serviceCode"],
                    "value": float(quotas[code]),
                }
            if args.token == GET_ZONE:
                return mock_zone(args.args)
            if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
                arn = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/teacher"
                return {"accountId": MOCK_ACCOUNT_ID, "arn": arn, "userId": "AIDAMOCK", "id": MOCK_ACCOUNT_ID}
            raise NotImplementedError(args.token)

    return Mocks()


def stack_file_config(stack: str) -> dict[str, str]:
    """A stack file's config as Pulumi hands it to the program: strings, JSON for lists."""
    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in (document.get("config") or {}).items()
    }


@pytest.fixture
def run_program(monkeypatch):
    """run_program(stack, **overrides) runs __main__.py under mocks and resolves its outputs."""
    return program_runner(monkeypatch)


def _run_to_the_end(result: ProgramRun, exported: dict[str, Any]) -> None:
    """__main__.py, then its outputs resolved, as `pulumi up` runs it."""
    import pulumi
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")
    for name, value in exported.items():
        output = pulumi.Output.from_input(value)
        result.outputs[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            result.secret_outputs.add(name)
    # As the real runtime does before the program ends: every outstanding task (such as
    # the readiness checks, which no output waits for) runs to its end.
    _sync_await(wait_for_rpcs())


def program_runner(monkeypatch: pytest.MonkeyPatch):
    """The run_program fixture's function (benchmarks/class_program.py uses it too)."""
    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime.mocks import MockMonitor

    # The monitor's own, once: each run's recorder wraps it, not the last run's recorder
    # (which would record a later run's resources into the earlier run).
    register = MockMonitor.RegisterResource

    def run(
        stack: str, secret_keys: tuple[str, ...] = (), env_rebuild: str = "", **overrides: Any
    ) -> ProgramRun:
        """env_rebuild: FLASKLAB_REBUILD for this run, as `class rebuild` sets it."""
        from flasklab.build import REBUILD_ENV

        result = ProgramRun()
        result.status_report, result.public_ip = run.status_report, run.public_ip
        result.kept_build = run.kept_build
        run.runs.append(result)
        config = stack_file_config(stack) if stack in EXAMPLE_STACKS else {}
        for key, value in overrides.items():
            config[f"flasklab:{key}"] = value if isinstance(value, str) else json.dumps(value)
        monkeypatch.delenv("PULUMI_CONFIG", raising=False)
        monkeypatch.setenv(REBUILD_ENV, env_rebuild)
        pulumi.runtime.set_mocks(
            _mocks(result, run.not_offered, run.quotas), project="flasklab", stack=stack, preview=False
        )

        def recording_register(monitor, request):
            key = (request.type, request.name)
            result.wire_inputs[key] = json_format.MessageToDict(request.object)
            result.secret_outputs_asked[key] = list(request.additionalSecretOutputs)
            result.options[key] = {
                "ignoreChanges": list(request.ignoreChanges),
                "replaceOnChanges": list(request.replaceOnChanges),
                "beforeDelete": list(request.hooks.before_delete),
            }
            response = register(monitor, request)
            result.urns[key] = response.urn
            return response

        monkeypatch.setattr(MockMonitor, "RegisterResource", recording_register)
        runtime_config.set_all_config(config, [f"flasklab:{key}" for key in secret_keys])
        from flasklab import readiness

        def recorded_check(site, expect, timeout, certified=None):
            with result.lock:
                result.http_checks.append((site, expect, timeout))
                result.checks_running += 1
                result.most_checks_at_once = max(result.most_checks_at_once, result.checks_running)
            time.sleep(run.http_check_seconds)
            with result.lock:
                result.checks_running -= 1
            return list(run.http_problems)

        monkeypatch.setattr(readiness, "wait_until_serving", recorded_check)
        # What EC2 says of an instance when the wait asks ('': it cannot be asked).
        monkeypatch.setattr(readiness, "instance_state", lambda instance_id, region: run.instance_state)
        monkeypatch.setattr(
            pulumi.log, "error", lambda message, resource=None, **kw: result.errors.append(message)
        )
        monkeypatch.setattr(
            pulumi.log, "warn", lambda message, resource=None, **kw: result.warnings.append(message)
        )
        exported: dict[str, Any] = {}
        monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
        monkeypatch.syspath_prepend(str(PROJECT_DIR))
        thresholds = gc.get_threshold()  # the program sets its own: pytest's come back after
        try:
            _run_to_the_end(result, exported)
        finally:
            gc.set_threshold(*thresholds)
        return result

    run.runs = []  # every ProgramRun, also of programs that raised
    run.http_problems = []  # what the public address's HTTP check finds (none: it serves)
    run.http_check_seconds = 0.0  # how long each HTTP check takes
    run.not_offered = set()  # instance types the stack's region does not offer
    # The account's quotas by code (a code left out: the call is denied, as in AWS Academy).
    run.quotas = dict(MOCK_QUOTAS)
    run.instance_state = ("", "")  # what EC2 says of a new instance (state, address) when asked
    run.status_report = MOCK_STATUS_REPORT  # what READY_COMMAND prints on a new server
    run.public_ip = FAKE_IP  # what EC2 says the instances' public address is
    run.kept_build = ""  # what an existing instance was built from (ProgramRun.kept_build)
    return run


def run_the_wait(spec) -> subprocess.CompletedProcess[str]:
    """`python -m flasklab.readiness` in a process of its own, as `pulumi up`'s local command
    runs it, with the wait's spec (flasklab.readiness.WaitSpec) on its standard input."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "flasklab.readiness"],
        input=spec.to_json(),
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=300,
        check=False,
    )


def boot_prerequisites_missing() -> str:
    """Why boot tests cannot run here ('' when they can)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return "boot tests need root"
    tools = ("debootstrap", "systemd-nspawn", "slirp4netns", "ip")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return f"boot tests need {', '.join(missing)} (scripts/setup.sh installs them)" if missing else ""


@pytest.fixture
def rehearsal_of():
    """rehearsal_of(settings_or_target) prepares and boots a container; it is always
    stopped and removed at the end of the test. before_boot(root), if given, changes the
    prepared container's root folder before it boots (a test's own stand-ins, never the
    user-data)."""
    from flasklab.rehearsal.run import Rehearsal
    from flasklab.rehearsal.target import Target, target_for

    started = []

    def boot(subject, before_boot=None) -> Rehearsal:
        target = subject if isinstance(subject, Target) else target_for(subject)
        rehearsal = Rehearsal(target)
        started.append(rehearsal)
        rehearsal.prepare()
        if before_boot is not None:
            before_boot(rehearsal.root)
        rehearsal.boot()
        return rehearsal

    yield boot
    for rehearsal in started:
        rehearsal.stop()
        rehearsal.remove()


@pytest.fixture
def key_pair(tmp_path) -> tuple[Path, str]:
    """An ED25519 key pair, as the stack makes its own: (private key file, public key)."""
    private = tmp_path / "flasklab-test.pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    return private, private.with_suffix(".pem.pub").read_text().strip()


# Boot tests that boot more than one container, one after another, or take one through
# many rounds of grading (every fault of the catalogue on one server): the longest.
SEVERAL_BOOTS = ("test_benchmarks.py", "test_rehearsal_isolation.py", "reboot", "test_fault_boot.py")


def pytest_collection_modifyitems(items):
    """The longest boot tests first, then the other boot tests, then the rest: run side by
    side (pytest-xdist), the long ones then do not trail behind at the end of the run."""

    def order(item) -> tuple[bool, bool]:
        several = any(part in item.nodeid for part in SEVERAL_BOOTS)
        return (item.get_closest_marker("boot") is None, not several)

    items.sort(key=order)


@pytest.fixture
def roster(tmp_path, monkeypatch):
    """roster(text) writes rosters/test.csv in a stand-in project folder that also holds the
    real one's rosters, so `roster: rosters/test.csv` names it."""
    return roster_writer(tmp_path, monkeypatch)


def roster_writer(folder, monkeypatch: pytest.MonkeyPatch):
    """The roster fixture's function (benchmarks/class_program.py uses it too)."""
    import shutil

    from flasklab import roster as roster_module

    shutil.copytree(PROJECT_DIR / "rosters", folder / "rosters")
    monkeypatch.setattr(roster_module, "PROJECT_DIR", folder)

    def write(text: str | bytes) -> None:
        path = folder / "rosters" / "test.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return write


@pytest.fixture
def saved_outputs(run_program, tmp_path):
    """saved_outputs(stack, **overrides) runs the program under mocks and saves its outputs
    as `pulumi stack output --json --show-secrets` prints them; the file's path."""

    def save(stack: str, **overrides: Any):
        path = tmp_path / f"{stack}-outputs.json"
        path.write_text(json.dumps(run_program(stack, **overrides).outputs, indent=2))
        return path

    return save


@pytest.fixture(autouse=True)
def no_aws_of_this_machine(monkeypatch):
    """No test reads this machine's AWS config or credentials, nor asks the instance metadata
    service for them (the class commands ask EC2 first, and go on without it when they cannot)."""
    for variable in (
        "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    ):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# The emulated account's region: the example stacks' aws:region.
REGION = "eu-west-1"


@pytest.fixture
def ec2(monkeypatch, tmp_path) -> Iterator[Any]:
    """An emulated account with fake credentials; no AWS config of this machine is read."""
    for variable in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # any AMI id is taken; faster
    monkeypatch.setenv("COLUMNS", "200")  # rich's tables, unwrapped
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture
def handout_project(saved_outputs, tmp_path, monkeypatch):
    """class-demo in a stand-in project for `class handout` (tests/handout_project.py)."""
    from tests.handout_project import make_project

    return make_project(tmp_path, monkeypatch, saved_outputs("class-demo"))


@pytest.fixture
def smtp_server(tmp_path):
    """A real SMTP server on 127.0.0.1 with STARTTLS and a login (tests/smtp_server.py)."""
    from tests.smtp_server import running_smtp_server

    with running_smtp_server(tmp_path) as server:
        yield server


@pytest.fixture
def plain_smtp_server(tmp_path):
    """The same server without STARTTLS: a mail must never go to it."""
    from tests.smtp_server import running_smtp_server

    with running_smtp_server(tmp_path, starttls=False) as server:
        yield server
