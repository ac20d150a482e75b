"""The stack's stop schedule (stopSchedule, stopScheduleTimezone, stopScheduleRoleArn): a
standard 5-field cron expression in a time zone -> the EventBridge Scheduler expression
that stops the stack's servers, and the words that say when. Nothing here imports Pulumi.

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
from datetime import datetime
from functools import cache
from typing import Any

from cronsim import CronSim, CronSimError

CRON_SETTING = "stopSchedule"
TIMEZONE_SETTING = "stopScheduleTimezone"
ROLE_SETTING = "stopScheduleRoleArn"
OUTPUT = "stopSchedule"  # the stack output that says when its servers stop
EXAMPLES = '"0 22 * * *" (every day at 22:00) or "0 22 * * 1-5" (Monday to Friday at 22:00)'
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


def schedule_name(student: str) -> str:
    """A server's schedule in its stack's group (a one-student stack's is `stop`)."""
    return _bounded_name(f"stop-{student}" if student else "stop", _SCHEDULER_NAME)


def role_name(stack: str) -> str:
    """The role flasklab makes for the stack's schedules (without stopScheduleRoleArn)."""
    return _bounded_name(f"flasklab-{stack}-stop", _ROLE_NAME)


def dead_letter_queue_name(stack: str) -> str:
    """The SQS queue that receives each scheduled stop that failed, for `class status`."""
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
class StopScheduleSettings:
    cron: str  # as the teacher wrote it: standard 5-field cron
    timezone: str  # an IANA time zone, e.g. Europe/Madrid
    role_arn: str  # the role EventBridge Scheduler acts as; '' = flasklab makes one

    @property
    def expression(self) -> str:
        """The schedule as EventBridge Scheduler takes it."""
        return eventbridge_expression(self.cron)

    @property
    def when(self) -> str:
        """When the servers are stopped, in words, e.g. `at 22:00 every day, Europe/Madrid time`."""
        words = _parsed(self.cron).explain()
        return f"{words[:1].lower()}{words[1:]}, {self.timezone} time"

    @property
    def description(self) -> str:
        """The stack's stopSchedule output."""
        return f"stops {self.when}"


def stop_schedule_problems(values: Mapping[str, Any]) -> Iterator[str]:
    """What is wrong with the three settings (the values as settings.py coerced them)."""
    cron, timezone, role_arn = (_text(values, key) for key in (CRON_SETTING, TIMEZONE_SETTING, ROLE_SETTING))
    if cron:
        yield from _cron_problems(cron)
    yield from _timezone_problems(timezone)
    if role_arn and not _ROLE_ARN.fullmatch(role_arn):
        yield (
            f"{ROLE_SETTING}: {role_arn!r} is not an IAM role's ARN, arn:aws:iam::<12-digit account>:"
            f"role/<name>; in AWS Academy: `pulumi config set {ROLE_SETTING} "
            f"arn:aws:iam::<account>:role/LabRole` (`aws sts get-caller-identity` shows the account). "
            f"Empty = flasklab makes the role."
        )
    elif role_arn and not cron:
        yield (
            f"{ROLE_SETTING} is set but {CRON_SETTING} is empty, so nothing would use the role: set "
            f"{CRON_SETTING}, e.g. `pulumi config set {CRON_SETTING} '0 22 * * *'`, or "
            f"`pulumi config rm {ROLE_SETTING}`."
        )


def stop_schedule_of(values: Mapping[str, Any]) -> StopScheduleSettings | None:
    """The schedule of settings that passed stop_schedule_problems; None when there is none."""
    cron = _text(values, CRON_SETTING)
    if not cron:
        return None
    return StopScheduleSettings(
        cron=" ".join(cron.split()),
        timezone=_text(values, TIMEZONE_SETTING),
        role_arn=_text(values, ROLE_SETTING),
    )


def eventbridge_expression(cron: str) -> str:
    """`cron(minutes hours day-of-month month day-of-week year)` selecting what `cron` does."""
    schedule = _parsed(cron)
    day_fields = _day_fields(schedule)
    assert day_fields is not None, "checked by stop_schedule_problems"
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


def _cron_problems(cron: str) -> Iterator[str]:
    fix = f"Write minute, hour, day of month, month and day of week, e.g. {EXAMPLES}."
    if len(cron.split()) != len(CRON_FIELDS):
        yield f"{CRON_SETTING}: {cron!r} has {len(cron.split())} fields, not 5. {fix}"
        return
    try:
        schedule = _parsed(cron)
    except CronSimError as error:
        yield f"{CRON_SETTING}: {cron!r} is not a cron expression ({error}). {fix}"
        return
    if not all(isinstance(value, int) and value >= 0 for value in (*schedule.days, *schedule.weekdays)):
        yield (
            f"{CRON_SETTING}: {cron!r} uses L, W or # (last, nearest weekday, nth weekday), which "
            f"flasklab does not translate for EventBridge. Name the days instead, e.g. {EXAMPLES}."
        )
    elif _day_fields(schedule) is None:
        yield (
            f"{CRON_SETTING}: {cron!r} chooses both days of the month and days of the week, which "
            f"EventBridge cannot combine; put * in one of them, e.g. {EXAMPLES}."
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
