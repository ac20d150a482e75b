"""stopSchedule: cron -> EventBridge Scheduler's cron, and the schedule (with its role) that
stops a stack's servers, under Pulumi's mocks."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from cronsim import CronSim
from hypothesis import assume, given
from hypothesis import strategies as st

from flasklab import plan
from flasklab.settings import ConfigError, load_settings
from flasklab.stop_schedule import StopScheduleSettings, eventbridge_expression, stop_schedule_problems
from tests.conftest import MOCK_ACCOUNT_ID
from tests.test_program import INSTANCE

SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
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


def _selected(cron: str) -> tuple[set, ...]:
    """What a standard cron expression selects, as cronsim reads it (Sunday as 0)."""
    schedule = CronSim(cron, datetime(2000, 1, 1))
    weekdays = {day % 7 for day in schedule.weekdays}
    return schedule.minutes, schedule.hours, schedule.days, schedule.months, weekdays


@given(CRONS)
def test_eventbridges_cron_selects_the_same_times_as_the_teachers(cron):
    assume(not list(stop_schedule_problems({"stopSchedule": cron, "stopScheduleTimezone": "UTC"})))
    expression = eventbridge_expression(cron)
    assert len(expression) <= 256  # EventBridge's limit
    fields = re.fullmatch(r"cron\((.*)\)", expression)[1].split()
    minutes, hours, days, months, weekdays, year = fields
    assert year == "*" and [days, weekdays].count("?") == 1
    assert not re.search(r"\d", weekdays), "days of the week by name: EventBridge numbers them from 1"
    # Read back as standard cron (`?` is `*`; cron reads the names alike), it selects the same.
    back = " ".join((minutes, hours, days.replace("?", "*"), months, weekdays.replace("?", "*")))
    assert _selected(back) == _selected(cron)


def test_the_output_says_when_in_words():
    schedule = StopScheduleSettings("0 22 * * 1-5", "Europe/Madrid", "")
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
        ({"stopScheduleRoleArn": LAB_ROLE}, r"stopScheduleRoleArn is set but stopSchedule is empty"),
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


def test_no_stop_schedule_by_default(run_program):
    run = run_program("class-demo")
    assert run.of_type(SCHEDULE) == run.of_type(ROLE) == run.of_type(ROLE_POLICY) == []
    assert "stopSchedule" not in run.outputs


def _instance_ids(run) -> list[str]:
    """The ids the mocked AWS gave the stack's instances (conftest: `<name>-id`)."""
    return [f"{instance['name']}-id" for instance in run.of_type(INSTANCE)]


def _admits(policy: dict, tags: dict[str, str]) -> bool:
    """Whether the policy's only statement lets the role stop an instance with these tags."""
    [statement] = policy["Statement"]
    wanted = statement["Condition"]["StringEquals"]
    return all(tags.get(key.removeprefix("aws:ResourceTag/")) == value for key, value in wanted.items())


def test_a_class_stack_stops_every_student_with_a_role_of_its_own(run_program):
    run = run_program("class-demo", stopSchedule="0 22 * * 1-5")
    schedule = run.one(SCHEDULE)["inputs"]
    assert schedule["scheduleExpression"] == "cron(0 22 ? * MON-FRI *)"
    assert schedule["scheduleExpressionTimezone"] == "Europe/Madrid"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule["target"]
    assert target["arn"] == "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
    ids = _instance_ids(run)
    assert len(ids) == 3
    assert sorted(json.loads(target["input"])["InstanceIds"]) == sorted(ids)
    role = run.one(ROLE)
    assert target["roleArn"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{role['name']}"
    # Only this account's EventBridge Scheduler may take the role...
    [trust] = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}
    assert role["inputs"]["tags"][plan.TAG_STACK] == "class-demo"
    # ...and it may stop instances of this account, each student's, and no other stack's.
    policy_inputs = run.one(ROLE_POLICY)["inputs"]
    assert policy_inputs["role"] == f"{role['name']}-id"
    policy = json.loads(policy_inputs["policy"])
    [statement] = policy["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "ec2:StopInstances")
    assert statement["Resource"] == f"arn:aws:ec2:*:{MOCK_ACCOUNT_ID}:instance/*"
    for instance in run.of_type(INSTANCE):
        tags = instance["inputs"]["tags"]
        assert _admits(policy, tags)
        assert not _admits(policy, {**tags, plan.TAG_STACK: "other-class"})
        assert not _admits(policy, {**tags, plan.TAG_COURSE: "other-course"})
    assert run.outputs["stopSchedule"] == "stops at 22:00 on Monday through Friday, Europe/Madrid time"


def test_an_existing_role_is_used_as_it_is(run_program):
    run = run_program(
        "dev",
        stopSchedule="30 21 * * *",
        stopScheduleTimezone="Europe/Stockholm",
        stopScheduleRoleArn=LAB_ROLE,
    )
    target = run.one(SCHEDULE)["inputs"]["target"]
    assert target["roleArn"] == LAB_ROLE
    assert json.loads(target["input"]) == {"InstanceIds": _instance_ids(run)}
    assert len(_instance_ids(run)) == 1
    assert run.of_type(ROLE) == run.of_type(ROLE_POLICY) == []
    assert CALLER_IDENTITY not in [call["token"] for call in run.calls]
    assert run.outputs["stopSchedule"] == "stops at 21:30 every day, Europe/Stockholm time"
