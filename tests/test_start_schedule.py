"""startSchedule: the servers started before class by a schedule per server, beside the stop
schedule (same group, time zone, role and dead-letter queue), under Pulumi's mocks and
against moto; and a stack's existing stop schedule untouched when starts are added."""

from __future__ import annotations

import json
import re

import pytest

from flasklab import plan
from flasklab.stop_schedule import START, STOP, PowerSchedule, undone_starts
from tests.conftest import MOCK_ACCOUNT_ID
from tests.replacement_plan import changed, replaced
from tests.test_program import INSTANCE
from tests.test_stop_schedule import (
    CALLER_IDENTITY,
    GROUP,
    LAB_ROLE,
    QUEUE,
    ROLE,
    ROLE_POLICY,
    SCHEDULE,
    _admits,
    _instance_ids,
    _lint,
    problems_of,
)

STACK = "class-demo"
STOP_CRON, START_CRON = "0 22 * * 1-5", "30 7 * * 1-5"


def _by_verb(run, verb: str) -> list[dict]:
    return [s for s in run.of_type(SCHEDULE) if s["inputs"]["name"].startswith(f"{verb}-")]


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (
            {"startSchedule": "30 7 * *"},
            r"^startSchedule: '30 7 \* \*' has 4 fields, not 5\. .*e\.g\. \"30 7",
        ),
        ({"startSchedule": "30 25 * * *"}, r"^startSchedule: '30 25 \* \* \*' is not a cron expression"),
        ({"startSchedule": "30 7 L * *"}, r"^startSchedule: .*uses L, W or #"),
        ({"startSchedule": "30 7 15 * 1"}, r"^startSchedule: .*both days of the month and days of the week"),
    ],
)
def test_a_bad_start_schedule_is_refused_by_its_own_name(raw, said):
    [problem] = problems_of(**raw)
    assert re.search(said, problem), problem


def test_the_role_setting_serves_a_start_schedule_alone():
    assert problems_of(startSchedule="30 7 * * *", stopScheduleRoleArn="LabRole")[0].startswith(
        "stopScheduleRoleArn: 'LabRole' is not an IAM role's ARN"
    )


def test_a_class_starts_each_student_with_a_schedule_of_their_own(run_program):
    run = run_program(STACK, stopSchedule=STOP_CRON, startSchedule=START_CRON)
    ids = sorted(_instance_ids(run))
    starts, stops = _by_verb(run, START), _by_verb(run, STOP)
    assert len(starts) == len(stops) == len(ids) == 3
    assert sorted(s["inputs"]["name"] for s in starts) == ["start-ana", "start-ben", "start-carla"]
    # One instance per start: a server that is gone fails only its own start.
    assert sorted(json.loads(s["inputs"]["target"]["input"])["InstanceIds"][0] for s in starts) == ids
    assert all(len(json.loads(s["inputs"]["target"]["input"])["InstanceIds"]) == 1 for s in starts)
    # In the stop schedule's group, time zone, role and dead-letter queue: one of each.
    role, queue = run.one(ROLE), run.one(QUEUE)["inputs"]
    assert run.one(GROUP)["inputs"]["name"] == "flasklab-class-demo"
    for schedule in starts:
        inputs = schedule["inputs"]
        assert inputs["groupName"] == "flasklab-class-demo"
        assert inputs["scheduleExpression"] == "cron(30 7 ? * MON-FRI *)"
        assert inputs["scheduleExpressionTimezone"] == "Europe/Madrid"
        assert inputs["flexibleTimeWindow"] == {"mode": "OFF"}
        assert inputs["description"].startswith("flasklab: starts ")
        target = inputs["target"]
        assert target["arn"] == "arn:aws:scheduler:::aws-sdk:ec2:startInstances"
        assert target["roleArn"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{role['name']}"
        assert target["deadLetterConfig"] == {
            "arn": f"arn:aws:sqs:eu-west-1:{MOCK_ACCOUNT_ID}:{queue['name']}"
        }
        assert target["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 3}
    # The role's one statement on the stack's instances now allows both, on this stack's only.
    policy = json.loads(run.one(ROLE_POLICY)["inputs"]["policy"])
    on_instances, send = policy["Statement"]
    assert on_instances["Action"] == ["ec2:StartInstances", "ec2:StopInstances"]
    assert send["Action"] == "sqs:SendMessage"
    for instance in run.of_type(INSTANCE):
        tags = instance["inputs"]["tags"]
        assert _admits(on_instances, tags)
        assert not _admits(on_instances, {**tags, plan.TAG_STACK: "other-class"})
    assert _lint(policy) == []
    assert (
        role["inputs"]["description"]
        == "EventBridge Scheduler starts and stops the servers of flasklab stack class-demo"
    )
    assert run.outputs["startSchedule"] == "starts at 07:30 on Monday through Friday, Europe/Madrid time"
    assert run.outputs["stopSchedule"] == "stops at 22:00 on Monday through Friday, Europe/Madrid time"
    assert run.warnings == []


def test_a_start_schedule_alone_may_start_and_not_stop(run_program):
    run = run_program(STACK, startSchedule=START_CRON)
    assert _by_verb(run, STOP) == [] and len(_by_verb(run, START)) == 3
    [on_instances, _] = json.loads(run.one(ROLE_POLICY)["inputs"]["policy"])["Statement"]
    assert on_instances["Action"] == "ec2:StartInstances"
    assert "stopSchedule" not in run.outputs


def test_a_start_schedule_with_the_teachers_role(run_program):
    run = run_program("dev", startSchedule="0 8 * * *", stopScheduleRoleArn=LAB_ROLE)
    [schedule] = run.of_type(SCHEDULE)
    assert schedule["inputs"]["name"] == "start"
    assert schedule["inputs"]["target"]["roleArn"] == LAB_ROLE
    assert json.loads(schedule["inputs"]["target"]["input"]) == {"InstanceIds": _instance_ids(run)}
    assert run.of_type(ROLE) == run.of_type(ROLE_POLICY) == []
    assert CALLER_IDENTITY not in [call["token"] for call in run.calls]


def _resources(run) -> set[tuple[str, str]]:
    """(type, name) of what the program declares (the stack itself is registered once a test)."""
    return {key for key in run.wire_inputs if key[0] != "pulumi:pulumi:Stack"}


def test_adding_starts_to_a_stop_schedule_replaces_and_deletes_nothing(run_program):
    """A stack with a stop schedule (as before startSchedule existed) gets the start schedules
    added: every resource it had keeps its name (and so its URN), none is replaced, and the
    stop schedules do not change at all; only the role's policy and description are updated."""
    stopping = run_program(STACK, stopSchedule=STOP_CRON)
    both = run_program(STACK, stopSchedule=STOP_CRON, startSchedule=START_CRON)
    had, has = _resources(stopping), _resources(both)
    assert had <= has, "nothing the stack had is deleted"
    assert all(both.urns[key] == stopping.urns[key] for key in had)
    assert stopping.urns[(SCHEDULE, "flasklab-class-demo-stop-ana")] == (
        "urn:pulumi:class-demo::flasklab::flasklab:index:StopSchedule$aws:scheduler/schedule:Schedule::"
        "flasklab-class-demo-stop-ana"
    )
    assert replaced(stopping, both) == set()
    assert changed(stopping, both, "-stop") == {
        "flasklab-class-demo-stop-role": ["description"],
        "flasklab-class-demo-stop-policy": ["policy"],
    }
    # The names the stop schedule's resources had before the start schedule existed.
    assert {name for type_, name in stopping.wire_inputs if type_ == SCHEDULE} == {
        "flasklab-class-demo-stop-ana",
        "flasklab-class-demo-stop-ben",
        "flasklab-class-demo-stop-carla",
    }
    added = {name for type_, name in has - had}
    assert added == {f"flasklab-class-demo-stop-{s}.start" for s in ("ana", "ben", "carla")}
    # And taking the start schedule away again leaves the stop schedule as it was.
    assert replaced(both, run_program(STACK, stopSchedule=STOP_CRON)) == set()


def test_a_student_called_like_a_start_schedule_keeps_their_own(run_program, roster):
    roster("student\nana\nana-start\n")
    run = run_program(STACK, roster="rosters/test.csv", stopSchedule=STOP_CRON, startSchedule=START_CRON)
    names = [name for type_, name in run.wire_inputs if type_ == SCHEDULE]
    assert len(names) == len(set(names)) == 4


# The warning: a start the stop schedule undoes at once.


def _schedules(start: str, stop: str) -> tuple[PowerSchedule, PowerSchedule]:
    return PowerSchedule(start, "Europe/Madrid", "", START), PowerSchedule(stop, "Europe/Madrid", "", STOP)


@pytest.mark.parametrize(
    ("start", "stop", "said"),
    [
        ("0 22 * * *", "0 22 * * *", "stops them again at 22:00, 0 min later"),
        ("45 21 * * 1-5", "0 22 * * *", "stops them again at 22:00, 15 min later"),
        # Only on Saturdays does the stop come right after the start.
        ("0 8 * * *", "15 8 * * 6", "stops them again at 08:15, 15 min later"),
        # Every hour at :59 it stops, and the start at :40 is 19 minutes before one.
        ("40 7 * * *", "59 * * * *", "19 min later"),
    ],
)
def test_a_start_the_stop_schedule_undoes_at_once_is_warned_of(start, stop, said):
    warning = undone_starts(*_schedules(start, stop))
    assert said in warning and "nobody could use them" in warning


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        ("30 7 * * 1-5", "0 22 * * 1-5"),
        ("30 7 * * 1-5", "0 7 * * *"),  # stopped before it starts: 23 h 30 min up
        ("0 8 * * 1", "0 9 * * 1"),  # an hour of class on Mondays
        ("0 22 * * 5", "0 22 * * 1-4"),  # started Friday night, stopped Monday night
    ],
)
def test_starts_that_leave_time_for_class_are_not_warned_of(start, stop):
    assert undone_starts(*_schedules(start, stop)) == ""


def test_the_program_warns_of_a_start_the_stop_undoes(run_program):
    run = run_program(STACK, stopSchedule="0 22 * * *", startSchedule="50 21 * * *")
    [warning] = run.warnings
    assert warning.startswith("startSchedule '50 21 * * *' starts the servers at 21:50")
    assert len(_by_verb(run, START)) == 3, "a warning, not a refusal: the teacher may mean it"
