"""`class status|stop|start|sweep` against an emulated AWS account (moto): two courses,
servers of stacks that exist, and strays of stacks and students that do not."""

from __future__ import annotations

import dataclasses

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from flasklab import plan
from flasklab.__main__ import main
from flasklab.classroom import account, status, sweep
from flasklab.settings import Settings
from flasklab.stacks import load_stack_servers
from tests.conftest import FAKE_AMI, REGION

# The example stacks: class-demo (ana, ben, carla) in COURSE, ana-bookworm in another.
COURSE = load_stack_servers("class-demo")[0].course


@dataclasses.dataclass
class Launched:
    instance_id: str
    group_id: str
    key_pair_id: str


def launch(ec2, tags: dict[str, str]) -> Launched:
    """A server as `pulumi up` makes it: instance, security group and key pair, each tagged."""
    name = f"{tags.get('Name', 'x')}-{len(ec2.describe_key_pairs()['KeyPairs'])}"
    group = ec2.create_security_group(
        GroupName=name, Description="flasklab", TagSpecifications=tagged("security-group", tags)
    )
    key = ec2.create_key_pair(KeyName=name, TagSpecifications=tagged("key-pair", tags))
    instance_id = launch_instance(ec2, tags, SecurityGroupIds=[group["GroupId"]], KeyName=name)
    return Launched(instance_id, group["GroupId"], key["KeyPairId"])


def launch_instance(ec2, tags: dict[str, str], **more) -> str:
    """One instance in its own reservation, as `pulumi up` makes each."""
    [instance] = ec2.run_instances(
        ImageId=FAKE_AMI, MinCount=1, MaxCount=1, TagSpecifications=tagged("instance", tags), **more
    )["Instances"]
    return instance["InstanceId"]


def tagged(kind: str, tags: dict[str, str]) -> list:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def stray(settings: Settings, **changes: str) -> dict[str, str]:
    return plan.tags(dataclasses.replace(settings, **changes))


@pytest.fixture
def account_of_two_courses(ec2) -> dict[str, Launched]:
    """class-demo's three students; ana-bookworm (the other course); strays: a student no
    longer on class-demo's roster, a deleted stack of each course, and a look-alike that
    flasklab did not make (no managed-by tag)."""
    class_demo = load_stack_servers("class-demo")
    [bookworm] = load_stack_servers("ana-bookworm")
    assert bookworm.course != COURSE
    launched = {s.student: launch(ec2, plan.tags(s)) for s in class_demo}
    launched["bookworm"] = launch(ec2, plan.tags(bookworm))
    launched["dora"] = launch(ec2, stray(class_demo[0], student="dora"))
    launched["old-class"] = launch(ec2, stray(class_demo[0], stack="class-2025", student=""))
    launched["old-other"] = launch(ec2, stray(bookworm, stack="ana-2025"))
    not_ours = {k: v for k, v in stray(class_demo[0], stack="gone").items() if k != plan.TAG_MANAGED_BY}
    launched["not-ours"] = launch(ec2, not_ours)
    return launched


def states(ec2) -> dict[str, str]:
    reservations = ec2.describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def public_ips(ec2) -> dict[str, str]:
    reservations = ec2.describe_instances()["Reservations"]
    return {i["InstanceId"]: i.get("PublicIpAddress", "") for r in reservations for i in r["Instances"]}


def run_class(*arguments: str) -> int:
    return main(["class", *arguments])


def test_status_lists_the_courses_servers_and_a_hosts_file_of_their_current_addresses(
    ec2, account_of_two_courses, capsys
):
    servers = account_of_two_courses
    ec2.stop_instances(InstanceIds=[servers["ben"].instance_id])
    assert run_class("status", "--course", COURSE, "--region", REGION) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert sorted(rows) == sorted(["ana", "ben", "carla", "dora", "-"])  # "-": class-2025's server
    assert "running" in rows["ana"] and "stopped" in rows["ben"] and "0h 00m" in rows["ana"]
    assert servers["bookworm"].instance_id not in out and servers["not-ours"].instance_id not in out
    ips = public_ips(ec2)
    hosts = [line for line in out.splitlines() if line and line[0].isdigit()]
    assert f"{ips[servers['ana'].instance_id]} ana.practica_flask ana.www.practica_flask" in hosts
    assert ips[servers["carla"].instance_id] in {line.split()[0] for line in hosts}
    assert len(hosts) == 4  # ana, carla, dora, class-2025: ben is stopped
    assert (
        f"# ben: stopped, no public address (python -m flasklab class start --course {COURSE} --student ben)"
        in out
    )


def test_stop_and_start_one_student(ec2, account_of_two_courses):
    servers = account_of_two_courses
    ben = servers["ben"].instance_id
    assert run_class("stop", "--course", COURSE, "--student", "ben", "--region", REGION) == 0
    after_stop = states(ec2)
    assert after_stop[ben] == "stopped"
    assert {state for id_, state in after_stop.items() if id_ != ben} == {"running"}
    assert run_class("start", "--course", COURSE, "--student", "ben", "--region", REGION) == 0
    assert set(states(ec2).values()) == {"running"}


def test_stop_and_start_the_whole_course_leaves_the_other_course_running(ec2, account_of_two_courses, capsys):
    servers = account_of_two_courses
    of_course = {servers[k].instance_id for k in ("ana", "ben", "carla", "dora", "old-class")}
    assert run_class("stop", "--course", COURSE, "--region", REGION) == 0
    after_stop = states(ec2)
    assert {after_stop[i] for i in of_course} == {"stopped"}
    assert {state for i, state in after_stop.items() if i not in of_course} == {"running"}
    assert "stopped: class-2025, ana, ben, carla, dora" in capsys.readouterr().out
    assert run_class("start", "--course", COURSE, "--region", REGION) == 0
    assert set(states(ec2).values()) == {"running"}


def test_stop_of_a_student_not_in_the_course_names_its_students(ec2, account_of_two_courses, capsys):
    assert run_class("stop", "--course", COURSE, "--student", "eva", "--region", REGION) == 2
    err = capsys.readouterr().err
    assert "no server of eva" in err and "ana, ben, carla, class-2025, dora" in err
    assert set(states(ec2).values()) == {"running"}


def test_a_course_without_servers_says_so(ec2, account_of_two_courses, capsys):
    for command in ("status", "stop", "start"):
        assert run_class(command, "--course", "no-such-course", "--region", REGION) == 0
        assert f"no servers of course no-such-course in {REGION}" in capsys.readouterr().out
    assert set(states(ec2).values()) == {"running"}


def resources_left(ec2) -> tuple[set[str], set[str]]:
    groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    keys = {k["KeyPairId"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    return groups, keys


def test_sweep_lists_the_leftovers_and_deletes_them_only_with_yes(ec2, account_of_two_courses, capsys):
    servers = account_of_two_courses
    before = (states(ec2), resources_left(ec2))
    assert run_class("sweep", "--course", COURSE, "--region", REGION) == 0
    listing = capsys.readouterr().out
    assert (states(ec2), resources_left(ec2)) == before
    assert "stacks known from the stack files in stacks/" in listing
    for gone in ("dora", "old-class"):
        for resource_id in dataclasses.astuple(servers[gone]):
            assert resource_id in listing
    for kept in ("ana", "ben", "carla", "bookworm", "old-other", "not-ours"):
        assert servers[kept].instance_id not in listing
    assert "dora is not a student of stack class-demo" in listing
    assert "stack class-2025 does not exist" in listing

    # Running servers of a course whose stack files are here: the whole deletion is refused.
    assert run_class("sweep", "--course", COURSE, "--region", REGION, "--yes") == 1
    assert "nothing deleted: 2 of these servers are running (class-2025, dora)" in capsys.readouterr().out
    assert (states(ec2), resources_left(ec2)) == before
    # Stopped first, as the refusal says, they go.
    ec2.stop_instances(InstanceIds=[servers["dora"].instance_id, servers["old-class"].instance_id])
    assert run_class("sweep", "--course", COURSE, "--region", REGION, "--yes") == 0
    after = states(ec2)
    terminated = {i for i, state in after.items() if state == "terminated"}
    assert terminated == {servers["dora"].instance_id, servers["old-class"].instance_id}
    groups, keys = resources_left(ec2)
    for name, server in servers.items():
        swept = name in ("dora", "old-class")
        assert (server.group_id in groups, server.key_pair_id in keys) == (not swept, not swept), name


def test_sweep_keeps_a_security_group_still_in_use_and_says_so(
    ec2, account_of_two_courses, monkeypatch, capsys
):
    refuse_once(monkeypatch, sweep, "DeleteSecurityGroup", "DependencyViolation")
    servers = account_of_two_courses
    ec2.stop_instances(InstanceIds=[servers["dora"].instance_id, servers["old-class"].instance_id])
    assert run_class("sweep", "--course", COURSE, "--region", REGION, "--yes") == 1
    out = capsys.readouterr().out
    assert "is still in use" in out and "so it is kept" in out and "Traceback" not in out
    groups, keys = resources_left(ec2)
    assert len({servers["dora"].group_id, servers["old-class"].group_id} & groups) == 1
    assert not {servers["dora"].key_pair_id, servers["old-class"].key_pair_id} & keys


def test_more_servers_than_a_page_are_all_found(ec2):
    [ana] = [s for s in load_stack_servers("class-demo") if s.student == "ana"]
    # One reservation each, as `pulumi up` makes them: EC2 pages reservations.
    launched = {launch_instance(ec2, stray(ana, student=f"s{n:03d}")) for n in range(130)}
    client = account.ec2_client(REGION)
    assert {s.instance_id for s in account.find_servers(client, COURSE, page_size=7)} == launched
    # moto's default page is 100 reservations, as AWS pages describe_instances too.
    assert len(ec2.describe_instances(MaxResults=100)["Reservations"]) == 100
    assert {s.instance_id for s in account.find_servers(client, COURSE)} == launched


def test_stop_pages_through_every_server_too(ec2, monkeypatch):
    [ana] = [s for s in load_stack_servers("class-demo") if s.student == "ana"]
    launched = {launch_instance(ec2, stray(ana, student=f"s{n:03d}")) for n in range(12)}
    real_find = account.find_servers
    monkeypatch.setattr(
        "flasklab.classroom.power.target_servers",
        lambda client, target: real_find(client, target.course, page_size=5, stack=target.stack),
    )
    assert run_class("stop", "--course", COURSE, "--region", REGION) == 0
    assert {states(ec2)[i] for i in launched} == {"stopped"}


def test_missing_credentials_say_how_to_give_them(ec2, monkeypatch, capsys):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    for command in ("status", "stop", "sweep"):
        assert run_class(command, "--course", COURSE, "--region", REGION) == 2
        err = capsys.readouterr().err
        assert "no AWS credentials found: run `aws configure`, or for AWS Academy" in err, command
        assert "Traceback" not in err


def test_a_missing_region_says_how_to_give_it(ec2, monkeypatch, capsys):
    assert run_class("status", "--course", COURSE) == 2
    err = capsys.readouterr().err
    assert "no AWS region given: pass --region" in err and "AWS_REGION" in err
    monkeypatch.setenv("AWS_REGION", REGION)
    assert run_class("status", "--course", COURSE) == 0


def test_refused_permissions_say_what_is_missing(ec2, monkeypatch, capsys):
    refuse_once(monkeypatch, status, "DescribeInstances", "UnauthorizedOperation")
    assert run_class("status", "--course", COURSE, "--region", REGION) == 2
    assert "your AWS user may not do DescribeInstances (UnauthorizedOperation)" in capsys.readouterr().err


def test_throttling_is_retried_by_boto3_and_explained_when_it_persists(
    ec2, account_of_two_courses, monkeypatch, capsys
):
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)  # the backoff, in no time
    throttled = throttle(monkeypatch, status, "DescribeInstances", times=3)
    assert run_class("status", "--course", COURSE, "--region", REGION) == 0
    assert throttled == [3]  # three refusals, then moto answered
    assert "ana.practica_flask" in capsys.readouterr().out

    throttle(monkeypatch, status, "DescribeInstances", times=1000)
    assert run_class("status", "--course", COURSE, "--region", REGION) == 2
    err = capsys.readouterr().err
    assert f"AWS kept throttling DescribeInstances after {account.MAX_ATTEMPTS} attempts" in err


def error_body(code: str) -> str:
    return (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{code}.</Message></Error></Errors></Response>"
    )


def throttle(monkeypatch, module, operation: str, times: int) -> list[int]:
    """EC2's RequestLimitExceeded for the command's first `times` requests of an operation,
    each retried by boto3 (moto models no throttling; it still answers the read behind,
    and that answer is dropped). Returns [how many were refused]."""
    refused = [0]

    def answer(request, **_):
        if refused[0] >= times:
            return None
        refused[0] += 1
        return AWSResponse(request.url, 503, {}, MockRawResponse(error_body("RequestLimitExceeded")))

    hook_clients(monkeypatch, module, f"before-send.ec2.{operation}", answer)
    return refused


def refuse_once(monkeypatch, module, operation: str, code: str) -> None:
    """EC2's error `code` for the command's first call of an operation, in place of the
    call (moto models neither a group in use nor permissions)."""
    refused = [0]

    def answer(**_):
        if refused[0]:
            return None
        refused[0] += 1
        http = AWSResponse("https://ec2", 400, {}, MockRawResponse(error_body(code)))
        return http, {"Error": {"Code": code, "Message": f"{code}."}, "ResponseMetadata": {}}

    hook_clients(monkeypatch, module, f"before-call.ec2.{operation}", answer)


def hook_clients(monkeypatch, module, event: str, handler) -> None:
    """The command module's EC2 clients, with the handler ahead of moto's."""
    real_client = account.ec2_client

    def client_with_handler(region, max_attempts=account.MAX_ATTEMPTS):
        client = real_client(region, max_attempts)
        client.meta.events.register_first(event, handler)
        return client

    monkeypatch.setattr(module, "ec2_client", client_with_handler)


def test_pulumi_stack_ls_names_are_read_without_their_organization():
    text = '[{"name": "dev", "current": true}, {"name": "acme/class-demo", "current": false}]'
    assert sweep.stacks_of_pulumi_json(text) == ["class-demo", "dev"]


def test_without_the_pulumi_cli_the_stack_files_say_which_students_exist(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    known = sweep.known_servers()
    assert known.source == sweep.STACK_FILES
    assert known.students["class-demo"] == {"ana", "ben", "carla"}
    assert known.students["dev"] == {""}
    assert known.why_stray("dev", "") == ""
    assert known.why_stray("class-demo", "dora") == "dora is not a student of stack class-demo"


def test_server_names_beyond_a_tag_value_are_left_out_whole_and_counted():
    names = tuple(f"alias{n:02d}.practica-flask.example.org" for n in range(12))  # 34 characters each
    tags = plan.server_names_tags(names)
    kept = tags[plan.TAG_SERVER_NAMES].split(" ")
    assert len(tags[plan.TAG_SERVER_NAMES]) <= plan.TAG_VALUE_LIMIT < len(" ".join(names))
    assert kept == list(names[: len(kept)]) and len(kept) == 7  # 7 * 34 + 6 spaces = 244
    assert tags[plan.TAG_SERVER_NAMES_OMITTED] == str(len(names) - len(kept))
    assert plan.server_names_tags(names[:3]) == {plan.TAG_SERVER_NAMES: " ".join(names[:3])}


def test_status_says_which_names_did_not_fit_the_tag(ec2, capsys):
    [ana] = [s for s in load_stack_servers("class-demo") if s.student == "ana"]
    aliases = tuple(f"alias{n:02d}.practica-flask.example.org" for n in range(12))
    launch(ec2, plan.tags(dataclasses.replace(ana, server_aliases=aliases)))
    assert run_class("status", "--course", COURSE, "--region", REGION) == 0
    out = capsys.readouterr().out
    assert "# ana: 6 more names did not fit the instance's tag; add them from serverAliases" in out


def test_a_stack_pulumi_lists_without_a_readable_stack_file_keeps_its_resources(monkeypatch):
    monkeypatch.setattr(sweep, "existing_stacks", lambda: (["class-demo", "elsewhere"], "test", []))
    known = sweep.known_servers()
    assert known.students["elsewhere"] is None
    assert known.why_stray("elsewhere", "anyone") == ""
    assert any("the students of stack elsewhere cannot be read" in note for note in known.notes)
    assert known.why_stray("class-demo", "dora")
    assert known.why_stray("gone", "") == "stack gone does not exist"
