"""The stack's power schedules: stopSchedule and startSchedule (each a standard 5-field cron
expression), read in stopScheduleTimezone and run as stopScheduleRoleArn -> the EventBridge
Scheduler expressions that stop and start the stack's servers, and the words that say when.
Nothing here imports Pulumi. (The module keeps its first name, stop_schedule: the start
schedule is the same thing in the other direction, and its names and settings build on the
stop schedule's.)

EventBridge's cron has six fields, `cron(minutes hours day-of-month month day-of-week
year)`, numbers its days of the week 1-7 from Sunday (cron: 0-7, 0 and 7 Sunday), and
wants `?` in one of the two day fields. The expression is parsed by cronsim into the sets
of values it selects, and those sets are written again in EventBridge's syntax (the days
of the week by name), so both select the same minutes.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cronsim import CronSim, CronSimError

CRON_SETTING = "stopSchedule"
START_CRON_SETTING = "startSchedule"
TIMEZONE_SETTING = "stopScheduleTimezone"
ROLE_SETTING = "stopScheduleRoleArn"
OUTPUT = "stopSchedule"  # the stack output that says when its servers stop
START_OUTPUT = "startSchedule"  # ... and when they start
STOP, START = "stop", "start"  # the two directions: EC2's StopInstances and StartInstances
# By direction: its cron setting, and examples of it.
CRON_SETTINGS = {STOP: CRON_SETTING, START: START_CRON_SETTING}
EXAMPLES = {
    STOP: '"0 22 * * *" (every day at 22:00) or "0 22 * * 1-5" (Monday to Friday at 22:00)',
    START: '"30 7 * * *" (every day at 7:30) or "30 7 * * 1-5" (Monday to Friday at 7:30)',
}
# A start the stop schedule undoes this soon (or sooner) is warned of: first boot alone takes
# minutes, and a class needs its server longer than that.
SHORTEST_USEFUL_START_MINUTES = 30
# The starts looked at for that warning: a year of a daily schedule, cheap to walk.
STARTS_CHECKED = 400
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
# EventBridge's names of the days of the week, in cron's order (0 = Sunday).
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Every value each field can take: a field that selects them all is written `*`.
_ALL_MINUTES, _ALL_HOURS = set(range(60)), set(range(24))
_ALL_DAYS, _ALL_MONTHS, _ALL_WEEKDAYS = set(range(1, 32)), set(range(1, 13)), set(range(7))
# An IAM role's ARN, with an optional path: arn:aws:iam::123456789012:role/LabRole.
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role(/[\w+=,.@-]+)+")
# Names zoneinfo lists that are no place's time.
_NOT_PLACES = {"Factory", "localtime", "posixrules"}


# Names of what a stack's stop schedule makes (components/stop_schedule.py), derived from the
# stack's name so `class status` and `class sweep` find them. Given explicitly, not by Pulumi's
# autonaming (which adds 8 characters: `name-1a2b3c4`, and fails past the limit): a name too
# long or with characters the service refuses is cut, made valid and ended with a hash of the
# stack's name, so two long stack names never share one.
# EventBridge Scheduler's group and schedule names: 1-64 of [0-9A-Za-z-_.].
_SCHEDULER_NAME = (64, re.compile(r"[^0-9A-Za-z_.-]"))
# IAM role names: 1-64 of [A-Za-z0-9+=,.@_-].
_ROLE_NAME = (64, re.compile(r"[^A-Za-z0-9+=,.@_-]"))
# SQS queue names: 1-80 of [A-Za-z0-9_-] (a dot only in a FIFO queue's .fifo).
_QUEUE_NAME = (80, re.compile(r"[^A-Za-z0-9_-]"))
_HASH_LENGTH = 8
# IAM's tag values: Unicode letters, digits, white space and _ . : / = + - @, at most 256.
TAG_VALUE_SYMBOLS = "_.:/=+-@"
TAG_VALUE_MAX_LENGTH = 256


def _bounded_name(text: str, rule: tuple[int, re.Pattern[str]]) -> str:
    limit, refused = rule
    clean = refused.sub("-", text)
    if clean == text and len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{clean[: limit - _HASH_LENGTH - 1]}-{digest}"


def schedule_group_name(stack: str) -> str:
    """The stack's EventBridge Scheduler group: every student's schedule of the stack is in it."""
    return _bounded_name(f"flasklab-{stack}", _SCHEDULER_NAME)


def schedule_name(student: str, verb: str = STOP) -> str:
    """A server's schedule in its stack's group: `stop-<student>` and `start-<student>` (a
    one-student stack's are `stop` and `start`)."""
    return _bounded_name(f"{verb}-{student}" if student else verb, _SCHEDULER_NAME)


def role_name(stack: str) -> str:
    """The role flasklab makes for the stack's schedules, both directions (without
    stopScheduleRoleArn). Named `-stop` since the stop schedule came first: a new name would
    replace the role of every stack that has one."""
    return _bounded_name(f"flasklab-{stack}-stop", _ROLE_NAME)


def dead_letter_queue_name(stack: str) -> str:
    """The SQS queue that receives each scheduled stop or start that failed, for `class
    status` (named before starts were scheduled: SQS cannot rename a queue)."""
    return _bounded_name(f"flasklab-{stack}-failed-stops", _QUEUE_NAME)


def tag_value(text: str) -> str:
    """A tag value IAM, EventBridge Scheduler and SQS accept: the characters IAM refuses
    (such as the parentheses and comma of "DAW (2º), grupo A") left out, at most 256."""
    kept = "".join(
        character
        for character in text
        if unicodedata.category(character)[0] in "LNZ" or character in TAG_VALUE_SYMBOLS
    )
    return " ".join(kept.split())[:TAG_VALUE_MAX_LENGTH]


def tag_values(tags: Mapping[str, str]) -> dict[str, str]:
    return {key: tag_value(value) for key, value in tags.items()}


@dataclass(frozen=True)
class PowerSchedule:
    """One direction of the stack's schedules: when its servers are stopped, or started."""

    cron: str  # as the teacher wrote it: standard 5-field cron
    timezone: str  # an IANA time zone, e.g. Europe/Madrid
    role_arn: str  # the role EventBridge Scheduler acts as; '' = flasklab makes one
    verb: str = STOP  # STOP or START

    @property
    def expression(self) -> str:
        """The schedule as EventBridge Scheduler takes it."""
        return eventbridge_expression(self.cron)

    @property
    def when(self) -> str:
        """When, in words, e.g. `at 22:00 every day, Europe/Madrid time`."""
        words = _parsed(self.cron).explain()
        return f"{words[:1].lower()}{words[1:]}, {self.timezone} time"

    @property
    def description(self) -> str:
        """The stack's stopSchedule or startSchedule output: `stops at ...`, `starts at ...`."""
        return f"{self.verb}s {self.when}"


def schedule_problems(values: Mapping[str, Any]) -> Iterator[str]:
    """What is wrong with the schedules' settings (the values as settings.py coerced them)."""
    crons = {verb: _text(values, setting) for verb, setting in CRON_SETTINGS.items()}
    for verb, cron in crons.items():
        if cron:
            yield from _cron_problems(cron, verb)
    yield from _timezone_problems(_text(values, TIMEZONE_SETTING))
    role_arn = _text(values, ROLE_SETTING)
    if role_arn and not _ROLE_ARN.fullmatch(role_arn):
        yield (
            f"{ROLE_SETTING}: {role_arn!r} is not an IAM role's ARN, arn:aws:iam::<12-digit account>:"
            f"role/<name>; in AWS Academy: `pulumi config set {ROLE_SETTING} "
            f"arn:aws:iam::<account>:role/LabRole` (`aws sts get-caller-identity` shows the account). "
            f"Empty = flasklab makes the role."
        )
    elif role_arn and not any(crons.values()):
        yield (
            f"{ROLE_SETTING} is set but {CRON_SETTING} and {START_CRON_SETTING} are empty, so nothing "
            f"would use the role: set one, e.g. `pulumi config set {CRON_SETTING} '0 22 * * *'`, or "
            f"`pulumi config rm {ROLE_SETTING}`."
        )


def schedules_of(values: Mapping[str, Any]) -> dict[str, PowerSchedule]:
    """The schedules of settings that passed schedule_problems, by direction (none set: empty)."""
    return {
        verb: PowerSchedule(
            cron=" ".join(cron.split()),
            timezone=_text(values, TIMEZONE_SETTING),
            role_arn=_text(values, ROLE_SETTING),
            verb=verb,
        )
        for verb, setting in CRON_SETTINGS.items()
        if (cron := _text(values, setting))
    }


def undone_starts(start: PowerSchedule, stop: PowerSchedule) -> str:
    """A warning when the stop schedule stops the servers within SHORTEST_USEFUL_START_MINUTES
    of a scheduled start (at the same minute included), saying when; '' when it never does.
    Both are read in the same time zone, so local times compare as they are (a change of
    clocks moves both alike). Looks at the starts of STARTS_CHECKED days from a fixed date:
    every weekday, month day and month comes round in them."""
    origin = datetime(2027, 1, 1)
    starts = CronSim(start.cron, origin - timedelta(minutes=1))
    for _, started in zip(range(STARTS_CHECKED), starts, strict=False):
        if started - origin > timedelta(days=STARTS_CHECKED):
            break
        stopped = next(CronSim(stop.cron, started - timedelta(minutes=1)))
        if stopped - started <= timedelta(minutes=SHORTEST_USEFUL_START_MINUTES):
            return (
                f"{START_CRON_SETTING} {start.cron!r} starts the servers at {started:%H:%M} (e.g. on "
                f"{started:%A %d %B %Y}) and {CRON_SETTING} {stop.cron!r} stops them again at "
                f"{stopped:%H:%M}, "
                f"{int((stopped - started).total_seconds() // 60)} min later: nobody could use them. "
                f"Start them before class and stop them after it, e.g. `pulumi config set "
                f"{START_CRON_SETTING} '30 7 * * 1-5'` with `{CRON_SETTING} '0 22 * * 1-5'`."
            )
    return ""


def eventbridge_expression(cron: str) -> str:
    """`cron(minutes hours day-of-month month day-of-week year)` selecting what `cron` does."""
    schedule = _parsed(cron)
    day_fields = _day_fields(schedule)
    assert day_fields is not None, "checked by schedule_problems"
    days, weekdays = day_fields
    fields = (
        _field(set(schedule.minutes), _ALL_MINUTES),
        _field(set(schedule.hours), _ALL_HOURS),
        days,
        _field(set(schedule.months), _ALL_MONTHS),
        weekdays,
        "*",
    )
    return f"cron({' '.join(fields)})"


def _cron_problems(cron: str, verb: str) -> Iterator[str]:
    setting, examples = CRON_SETTINGS[verb], EXAMPLES[verb]
    fix = f"Write minute, hour, day of month, month and day of week, e.g. {examples}."
    if len(cron.split()) != len(CRON_FIELDS):
        yield f"{setting}: {cron!r} has {len(cron.split())} fields, not 5. {fix}"
        return
    try:
        schedule = _parsed(cron)
    except CronSimError as error:
        yield f"{setting}: {cron!r} is not a cron expression ({error}). {fix}"
        return
    if not all(isinstance(value, int) and value >= 0 for value in (*schedule.days, *schedule.weekdays)):
        yield (
            f"{setting}: {cron!r} uses L, W or # (last, nearest weekday, nth weekday), which "
            f"flasklab does not translate for EventBridge. Name the days instead, e.g. {examples}."
        )
    elif _day_fields(schedule) is None:
        yield (
            f"{setting}: {cron!r} chooses both days of the month and days of the week, which "
            f"EventBridge cannot combine; put * in one of them, e.g. {examples}."
        )


def _timezone_problems(timezone: str) -> Iterator[str]:
    if timezone in _time_zones():
        return
    by_lowercase = {zone.lower(): zone for zone in _time_zones()}
    close = by_lowercase.get(timezone.lower()) or next(
        iter(difflib.get_close_matches(timezone, _time_zones(), n=1)), ""
    )
    hint = f" Did you mean {close}?" if close else ""
    yield (
        f"{TIMEZONE_SETTING}: {timezone!r} is not a time zone.{hint} Use an IANA name, e.g. "
        f"`pulumi config set {TIMEZONE_SETTING} Europe/Madrid` (or Europe/Stockholm, UTC)."
    )


@cache
def _time_zones() -> frozenset[str]:
    # The system's zone files, or the tzdata package's where there are none (Windows).
    return frozenset(zoneinfo.available_timezones() - _NOT_PLACES)


def _parsed(cron: str) -> CronSim:
    # The start time only matters for iterating, which flasklab never does.
    return CronSim(cron, datetime(2000, 1, 1))


def _day_fields(schedule: CronSim) -> tuple[str, str] | None:
    """EventBridge's day-of-month and day-of-week fields (one of them `?`) selecting the days
    cron selects; None when EventBridge cannot.

    cron(5): when both day fields are restricted (neither starts with *), a day matches if
    EITHER does; when one starts with *, a day must match both. So `0 22 1-31 * 1-5` runs
    every day (1-31 is restricted, and every day is one of 1-31), and `0 22 */1 * 1-5`
    Monday to Friday. cronsim follows the same rule (CronSim.day_and)."""
    days = _field(set(schedule.days), _ALL_DAYS)
    weekdays = _field(_weekdays(schedule), _ALL_WEEKDAYS, WEEKDAYS)
    if not schedule.day_and and "*" in (days, weekdays):
        return "*", "?"  # either matches, and one matches every day
    if weekdays == "*":
        return days, "?"
    if days == "*":
        return "?", weekdays
    return None


def _weekdays(schedule: CronSim) -> set[int]:
    # Sunday is 0 and 7 in cron. (An nth or last weekday, a pair, is refused before.)
    return {day % 7 for day in schedule.weekdays if isinstance(day, int)}


def _chooses(values: set[int], every: set[int]) -> bool:
    """A field chooses when it does not select every value it could."""
    return not every.issubset(values)


def _field(values: set[int], every: set[int], names: tuple[str, ...] = ()) -> str:
    """Values as one field: `*`, or runs of 3 or more as a-b and the rest one by one."""
    if not _chooses(values, every):
        return "*"
    name = (lambda value: names[value]) if names else str
    parts: list[str] = []
    for run in _runs(sorted(values)):
        parts += [f"{name(run[0])}-{name(run[-1])}"] if len(run) >= 3 else [name(v) for v in run]
    return ",".join(parts)


def _runs(values: list[int]) -> Iterator[list[int]]:
    """Sorted values in runs of consecutive ones."""
    run: list[int] = []
    for value in values:
        if run and value != run[-1] + 1:
            yield run
            run = []
        run.append(value)
    if run:
        yield run


def _text(values: Mapping[str, Any], key: str) -> str:
    return str(values.get(key) or "").strip()
