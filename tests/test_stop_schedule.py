"""stopSchedule: cron -> EventBridge Scheduler's cron, and the schedule (with its role) that
stops a stack's servers, under Pulumi's mocks."""

from __future__ import annotations

import json
import re
from datetime import datetime

import boto3
import parliament
import pytest
from cronsim import CronSim
from hypothesis import assume, given
from hypothesis import strategies as st

from flasklab import plan
from flasklab.settings import ConfigError, load_settings
from flasklab.stop_schedule import PowerSchedule, eventbridge_expression, schedule_problems
from tests.conftest import FAKE_AMI, MOCK_ACCOUNT_ID
from tests.test_program import INSTANCE

SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GROUP = "aws:scheduler/scheduleGroup:ScheduleGroup"
QUEUE = "aws:sqs/queue:Queue"
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
LAB_ROLE = "arn:aws:iam::210987654321:role/LabRole"


def problems_of(**raw: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(raw, "test")
    return caught.value.problems


# The translation.


@pytest.mark.parametrize(
    ("cron", "expression"),
    [
        ("0 22 * * *", "cron(0 22 * * ? *)"),
        ("0 22 * * 1-5", "cron(0 22 ? * MON-FRI *)"),
        ("0 22 * * MON-FRI", "cron(0 22 ? * MON-FRI *)"),
        # Sunday is 0 and 7 in cron, 1 in EventBridge: named, never numbered.
        ("30 21 * * 0", "cron(30 21 ? * SUN *)"),
        ("30 21 * * 7", "cron(30 21 ? * SUN *)"),
        ("0 22 * * 5-7", "cron(0 22 ? * SUN,FRI,SAT *)"),
        ("0 22 * * 0-6", "cron(0 22 * * ? *)"),
        ("0 22 1,15 * *", "cron(0 22 1,15 * ? *)"),
        ("0 22 * 1-6,9-12 1-5", "cron(0 22 ? 1-6,9-12 MON-FRI *)"),
        ("*/15 20-22 * * *", "cron(0,15,30,45 20-22 * * ? *)"),
        # cron(5): both day fields restricted (no leading *) means either matches, so a day of
        # the month that covers every day runs every day, whatever the days of the week say...
        ("0 22 1-31 * 1-5", "cron(0 22 * * ? *)"),
        ("0 22 1-15 * 0-6", "cron(0 22 * * ? *)"),
        # ...and a field that starts with * means both must match.
        ("0 22 */1 * 1-5", "cron(0 22 ? * MON-FRI *)"),
    ],
)
def test_cron_becomes_eventbridges_cron(cron, expression):
    assert eventbridge_expression(cron) == expression


# A cron field: *, a value, a range, a list, or a step over either.
def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    span = st.tuples(value, value).map(sorted).map(lambda pair: f"{pair[0]}-{pair[1]}")
    item = st.one_of(value.map(str), span)
    stepped = st.tuples(st.one_of(st.just("*"), span), st.integers(1, high)).map(lambda p: f"{p[0]}/{p[1]}")
    listed = st.lists(item, min_size=1, max_size=4).map(",".join)
    return st.one_of(st.just("*"), listed, stepped)


CRONS = st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 7)).map(" ".join)


def _times_of_day(cron: str) -> tuple[set, set]:
    """The minutes and hours a standard cron expression selects, as cronsim reads it."""
    schedule = CronSim(cron, datetime(2000, 1, 1))
    return schedule.minutes, schedule.hours


def _days_run(cron: str, count: int = 40) -> list[datetime]:
    """The first days the expression runs on from 2000-01-01, under cron's own day rule
    (cronsim: both day fields restricted -> either matches; one starting with * -> both)."""
    day_fields = " ".join(cron.split()[2:])
    runs = CronSim(f"0 0 {day_fields}", datetime(2000, 1, 1))
    found = []
    for moment in runs:
        found.append(moment)
        if len(found) == count:
            break
    return found


@given(CRONS)
def test_eventbridges_cron_selects_the_same_times_as_the_teachers(cron):
    assume(not list(schedule_problems({"stopSchedule": cron, "stopScheduleTimezone": "UTC"})))
    expression = eventbridge_expression(cron)
    assert len(expression) <= 256  # EventBridge's limit
    fields = re.fullmatch(r"cron\((.*)\)", expression)[1].split()
    minutes, hours, days, months, weekdays, year = fields
    assert year == "*" and [days, weekdays].count("?") == 1
    assert not re.search(r"\d", weekdays), "days of the week by name: EventBridge numbers them from 1"
    # Read back as standard cron (`?` is `*`: with one day field `*`, cron ANDs them, as
    # EventBridge does), it runs at the same times of day on the same days.
    back = " ".join((minutes, hours, days.replace("?", "*"), months, weekdays.replace("?", "*")))
    assert _times_of_day(back) == _times_of_day(cron)
    assert _days_run(back) == _days_run(cron)


def test_the_output_says_when_in_words():
    schedule = PowerSchedule("0 22 * * 1-5", "Europe/Madrid", "")
    assert schedule.description == "stops at 22:00 on Monday through Friday, Europe/Madrid time"


# The refusals: what is wrong, and how to fix it.


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"stopSchedule": "0 22 * *"}, r"stopSchedule: '0 22 \* \*' has 4 fields, not 5\. .*e\.g\. \"0 22"),
        (
            {"stopSchedule": "0 25 * * *"},
            r"stopSchedule: '0 25 \* \* \*' is not a cron expression \(Bad hour\)",
        ),
        ({"stopSchedule": "0 22 L * *"}, r"uses L, W or # .* Name the days instead"),
        ({"stopSchedule": "0 22 * * 5#2"}, r"uses L, W or #"),
        ({"stopSchedule": "0 22 15 * 1"}, r"both days of the month and days of the week.*put \* in one"),
        (
            {"stopSchedule": "0 22 * * *", "stopScheduleTimezone": "europe/madrid"},
            r"Did you mean Europe/Madrid\?",
        ),
        ({"stopScheduleTimezone": "Mars/Olympus"}, r"'Mars/Olympus' is not a time zone\. Use an IANA name"),
        (
            {"stopSchedule": "0 22 * * *", "stopScheduleRoleArn": "LabRole"},
            r"'LabRole' is not an IAM role's ARN.*arn:aws:iam::<account>:role/LabRole",
        ),
        (
            {"stopScheduleRoleArn": LAB_ROLE},
            r"stopScheduleRoleArn is set but stopSchedule and startSchedule are empty",
        ),
    ],
)
def test_a_bad_stop_schedule_is_refused_with_how_to_fix_it(raw, said):
    [problem] = problems_of(**raw)
    assert re.search(said, problem), problem


@pytest.mark.parametrize(
    "bad",
    [
        {"stopSchedule": "at ten"},
        {"stopSchedule": "0 22 * * *", "stopScheduleTimezone": "CET+1"},
        {"stopSchedule": "0 22 * * *", "stopScheduleRoleArn": "arn:aws:iam::1234:role/LabRole"},
    ],
)
def test_the_program_refuses_a_bad_stop_schedule_before_creating_anything(run_program, bad):
    import pulumi

    with pytest.raises(pulumi.RunError, match=r"nothing was created:\n  - stopSchedule"):
        run_program("dev", **bad)
    [attempt] = run_program.runs
    assert attempt.resources == [] and attempt.calls == []


# The program.


@pytest.fixture
def ec2_scheduler(ec2):
    return ec2, boto3.client("scheduler", region_name="eu-west-1")


def test_no_stop_schedule_by_default(run_program):
    run = run_program("class-demo")
    assert run.of_type(SCHEDULE) == run.of_type(ROLE) == run.of_type(ROLE_POLICY) == []
    assert run.of_type(GROUP) == run.of_type(QUEUE) == []
    assert "stopSchedule" not in run.outputs


def _instance_ids(run) -> list[str]:
    """The ids the mocked AWS gave the stack's instances (conftest: `<name>-id`)."""
    return [f"{instance['name']}-id" for instance in run.of_type(INSTANCE)]


def _admits(statement: dict, tags: dict[str, str]) -> bool:
    """Whether the policy's statement lets the role stop an instance with these tags."""
    wanted = statement["Condition"]["StringEquals"]
    return all(tags.get(key.removeprefix("aws:ResourceTag/")) == value for key, value in wanted.items())


def _lint(policy: dict) -> list[str]:
    """parliament's findings on an IAM policy flasklab writes."""
    return [str(finding) for finding in parliament.analyze_policy_string(json.dumps(policy)).findings]


def test_a_class_stack_stops_each_student_with_a_schedule_of_their_own(run_program):
    run = run_program("class-demo", stopSchedule="0 22 * * 1-5")
    schedules = run.of_type(SCHEDULE)
    ids = _instance_ids(run)
    assert len(schedules) == len(ids) == 3
    # One instance per schedule: a student's server that is gone or pending fails only its own stop.
    assert sorted(json.loads(s["inputs"]["target"]["input"])["InstanceIds"][0] for s in schedules) == sorted(
        ids
    )
    assert all(len(json.loads(s["inputs"]["target"]["input"])["InstanceIds"]) == 1 for s in schedules)
    assert sorted(s["inputs"]["name"] for s in schedules) == ["stop-ana", "stop-ben", "stop-carla"]
    group = run.one(GROUP)["inputs"]
    assert group["name"] == "flasklab-class-demo"
    queue = run.one(QUEUE)["inputs"]
    assert queue["name"] == "flasklab-class-demo-failed-stops"
    assert queue["messageRetentionSeconds"] == 14 * 24 * 3600
    role = run.one(ROLE)
    for schedule in schedules:
        inputs = schedule["inputs"]
        assert inputs["groupName"] == "flasklab-class-demo"
        assert inputs["scheduleExpression"] == "cron(0 22 ? * MON-FRI *)"
        assert inputs["scheduleExpressionTimezone"] == "Europe/Madrid"
        assert inputs["flexibleTimeWindow"] == {"mode": "OFF"}
        target = inputs["target"]
        assert target["arn"] == "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
        assert target["roleArn"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{role['name']}"
        assert target["deadLetterConfig"] == {
            "arn": f"arn:aws:sqs:eu-west-1:{MOCK_ACCOUNT_ID}:flasklab-class-demo-failed-stops"
        }
        assert target["retryPolicy"]["maximumEventAgeInSeconds"] == 3600
    # One role for the stack, which only this account's EventBridge Scheduler may take...
    assert role["inputs"]["name"] == "flasklab-class-demo-stop"
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}
    assert role["inputs"]["tags"][plan.TAG_STACK] == "class-demo"
    # ...and which may stop instances of this account, each student's, and no other stack's,
    # and report a failed stop to the stack's queue.
    policy_inputs = run.one(ROLE_POLICY)["inputs"]
    assert policy_inputs["role"] == f"{role['name']}-id"
    policy = json.loads(policy_inputs["policy"])
    stop, send = policy["Statement"]
    assert (stop["Effect"], stop["Action"]) == ("Allow", "ec2:StopInstances")
    assert stop["Resource"] == f"arn:aws:ec2:*:{MOCK_ACCOUNT_ID}:instance/*"
    assert (send["Action"], send["Resource"]) == ("sqs:SendMessage", target["deadLetterConfig"]["arn"])
    for instance in run.of_type(INSTANCE):
        tags = instance["inputs"]["tags"]
        assert _admits(stop, tags)
        assert not _admits(stop, {**tags, plan.TAG_STACK: "other-class"})
        assert not _admits(stop, {**tags, plan.TAG_COURSE: "other-course"})
    # (parliament lints identity policies; a trust policy has no Resource, so it is not one.)
    assert _lint(policy) == []
    assert run.outputs["stopSchedule"] == "stops at 22:00 on Monday through Friday, Europe/Madrid time"


def test_a_missing_instance_fails_only_its_own_stop(ec2_scheduler):
    """Against moto: the schedules' inputs as EventBridge Scheduler sends them to EC2. One
    server is gone (swept, replaced): the others still stop."""
    ec2, scheduler = ec2_scheduler
    ids = [
        ec2.run_instances(ImageId=FAKE_AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        for _ in range(3)
    ]
    ids[0] = "i-0123456789abcdef0"  # swept: EC2 no longer knows it
    scheduler.create_schedule_group(Name="flasklab-class-demo")
    for n, instance_id in enumerate(ids):
        scheduler.create_schedule(
            Name=f"stop-s{n}",
            GroupName="flasklab-class-demo",
            ScheduleExpression="cron(0 22 * * ? *)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances",
                "RoleArn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/r",
                "Input": json.dumps({"InstanceIds": [instance_id]}),
            },
        )
    failed = []
    for listed in scheduler.list_schedules(GroupName="flasklab-class-demo")["Schedules"]:
        schedule = scheduler.get_schedule(GroupName="flasklab-class-demo", Name=listed["Name"])
        try:  # what the universal target does: the API call with the input as its request
            ec2.stop_instances(**json.loads(schedule["Target"]["Input"]))
        except ec2.exceptions.ClientError:
            failed.append(schedule["Name"])
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert failed == ["stop-s0"]
    assert [states[i] for i in ids[1:]] == ["stopped", "stopped"]
    # The old single schedule: the same call with every id fails for the whole class.
    ec2.start_instances(InstanceIds=ids[1:])
    with pytest.raises(ec2.exceptions.ClientError):
        ec2.stop_instances(InstanceIds=ids)
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    assert [states[i] for i in ids[1:]] == ["running", "running"]


def test_names_and_tags_fit_iam_and_eventbridge(run_program):
    stack = "curso-" + "despliegue-de-aplicaciones-web." * 3  # 99 characters, with dots
    run = run_program(stack, stopSchedule="0 22 * * *", course="DAW (2º), grupo A")
    role = run.one(ROLE)["inputs"]
    group = run.one(GROUP)["inputs"]
    queue = run.one(QUEUE)["inputs"]
    [schedule] = run.of_type(SCHEDULE)
    assert re.fullmatch(r"[\w+=,.@-]{1,64}", role["name"]), role["name"]
    assert re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", group["name"]), group["name"]
    assert re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", schedule["inputs"]["name"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", queue["name"]), queue["name"]
    # Cut names end in a hash of the whole stack name: another long name gets other names.
    other = run_program(stack[:-1] + "x", stopSchedule="0 22 * * *")
    assert other.one(ROLE)["inputs"]["name"] != role["name"]
    assert other.one(GROUP)["inputs"]["name"] != group["name"]
    # IAM's tag values: letters, digits, white space and _ . : / = + - @ only.
    for tags in (role["tags"], group["tags"], queue["tags"]):
        assert tags[plan.TAG_COURSE] == "DAW 2º grupo A"
        assert all(re.fullmatch(r"[\w\s.:/=+@-]*", value) for value in tags.values())
    # The instances keep the course as written, and the policy matches it so.
    [instance] = run.of_type(INSTANCE)
    assert instance["inputs"]["tags"][plan.TAG_COURSE] == "DAW (2º), grupo A"
    stop, _ = json.loads(run.one(ROLE_POLICY)["inputs"]["policy"])["Statement"]
    assert _admits(stop, instance["inputs"]["tags"])


def test_an_existing_role_is_used_as_it_is(run_program):
    run = run_program(
        "dev",
        stopSchedule="30 21 * * *",
        stopScheduleTimezone="Europe/Stockholm",
        stopScheduleRoleArn=LAB_ROLE,
    )
    [schedule] = run.of_type(SCHEDULE)
    target = schedule["inputs"]["target"]
    assert target["roleArn"] == LAB_ROLE
    assert json.loads(target["input"]) == {"InstanceIds": _instance_ids(run)}
    assert schedule["inputs"]["name"] == "stop"
    assert len(_instance_ids(run)) == 1
    assert run.of_type(ROLE) == run.of_type(ROLE_POLICY) == []
    assert CALLER_IDENTITY not in [call["token"] for call in run.calls]
    assert run.outputs["stopSchedule"] == "stops at 21:30 every day, Europe/Stockholm time"
