"""When a ``RecurringRun`` fires: pure functions of its trigger, its history and the
clock, so the controller's decisions can be tested without waiting for time.

KFP's scheduled-workflow rules, which these follow:

* The next fire time is strictly after ``base = max(last scheduled time, startTime)``,
  where a schedule that never fired uses its creation time as the last one.
  A cron trigger fires at the cron's next time after ``base``; an interval trigger
  at ``base + interval``. Nothing fires after ``endTime``.
* Catch-up (the default): every missed fire time up to now is run, oldest first,
  as many at a time as ``maxConcurrency`` leaves room for. ``noCatchup``: only the
  most recent missed fire time is run; the rest are skipped.

Cron expressions have 5 fields (minute first) or 6 (seconds first, as KFP writes
them), or are one of robfig/cron's descriptors (``@daily``, ``@every 15m``, ...),
which KFP's backend accepts too; times are UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

__all__ = [
    "Decision", "Schedule", "decide", "format_time", "parse_cron", "parse_every", "parse_time",
]


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (``2026-01-01T00:00:00Z``) as an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add 'Z' for UTC")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# robfig/cron's descriptors (what KFP's backend parses cron with), as 5-field crons.
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def parse_every(expression: str) -> int | None:
    """The seconds of ``@every <duration>`` (Go's duration: ``1h30m``, ``90s``), or None
    when ``expression`` is not one; ``ValueError`` for a bad duration."""
    if not expression.startswith("@every"):
        return None
    text = expression[len("@every"):].strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"cron {expression!r}: the duration must look like 1h30m, 15m or 90s")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"cron {expression!r}: the interval must be a whole number of "
                         "seconds, at least 1")
    return int(seconds)


def parse_cron(expression: str) -> tuple[str, bool]:
    """The expression (descriptors such as ``@daily`` expanded) and whether its first
    field is seconds; ``ValueError`` naming what is wrong otherwise."""
    if parse_every(expression) is not None:
        raise ValueError(f"cron {expression!r} is an interval, not a cron expression")
    expression = _DESCRIPTORS.get(expression.strip(), expression)
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"cron {expression!r} has {len(fields)} fields; use 5 (minute "
                         "hour day-of-month month day-of-week), 6 (seconds first, as KFP), "
                         f"a descriptor ({', '.join(_DESCRIPTORS)}) or @every <duration>")
    seconds_first = len(fields) == 6
    if not croniter.is_valid(expression, second_at_beginning=seconds_first):
        raise ValueError(f"cron {expression!r} is not a valid cron expression")
    return expression, seconds_first


@dataclass(frozen=True)
class Schedule:
    """A trigger (exactly one of ``cron`` or ``interval_seconds``) and its window."""

    cron: str | None = None
    interval_seconds: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("a schedule needs exactly one of cron or interval_seconds")
        if self.cron is not None and (every := parse_every(self.cron)) is not None:
            # ``@every 15m`` is an interval trigger written as a cron (robfig/cron).
            object.__setattr__(self, "interval_seconds", every)
            object.__setattr__(self, "cron", None)
        if self.cron is not None:
            parse_cron(self.cron)
        if self.interval_seconds is not None and self.interval_seconds < 1:
            raise ValueError("interval_seconds must be at least 1")

    def _base(self, after: datetime) -> datetime:
        return max(after, self.start) if self.start is not None else after

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (and after ``start``), or None
        when it would fall after ``end``."""
        base = self._base(after)
        if self.interval_seconds is not None:
            fire = base + timedelta(seconds=self.interval_seconds)
        else:
            assert self.cron is not None
            expression, seconds_first = parse_cron(self.cron)
            fire = croniter(expression, base, second_at_beginning=seconds_first).get_next(
                datetime)
        if self.end is not None and fire > self.end:
            return None
        return fire

    def latest_at_or_before(self, after: datetime, now: datetime) -> datetime | None:
        """The last fire time in ``(after, now]``, found without walking every one."""
        first = self.next_after(after)
        if first is None or first > now:
            return None
        limit = min(now, self.end) if self.end is not None else now
        if self.interval_seconds is not None:
            steps = int((limit - first).total_seconds()) // self.interval_seconds
            return first + timedelta(seconds=steps * self.interval_seconds)
        assert self.cron is not None
        expression, seconds_first = parse_cron(self.cron)
        # croniter's get_prev is strictly before its start: start one second later so a
        # fire exactly at ``limit`` counts.
        prev = croniter(expression, limit + timedelta(seconds=1),
                        second_at_beginning=seconds_first).get_prev(datetime)
        return prev if prev >= first else first


@dataclass(frozen=True)
class Decision:
    """What the controller does now: create runs for ``fire`` (oldest first), then
    look again at ``wake`` (None: nothing more will ever fire). ``blocked`` says
    that due runs wait for active ones to finish."""

    fire: tuple[datetime, ...]
    next_fire: datetime | None
    blocked: bool


def decide(schedule: Schedule, *, last: datetime | None, created: datetime, now: datetime,
           active: int, max_concurrency: int, catchup: bool = True) -> Decision:
    """The fire times due at ``now`` that may start given ``active`` running runs.

    ``last`` is the last scheduled time a run was created for (None if never).
    """
    since = last or created
    room = max(0, max_concurrency - active)
    fire: list[datetime] = []
    if not catchup:
        latest = schedule.latest_at_or_before(since, now)
        if latest is not None:
            if room:
                fire.append(latest)
                since = latest
            else:
                return Decision((), latest, blocked=True)
    else:
        while len(fire) < room:
            candidate = schedule.next_after(since)
            if candidate is None or candidate > now:
                break
            fire.append(candidate)
            since = candidate
    next_fire = schedule.next_after(since)
    blocked = next_fire is not None and next_fire <= now
    return Decision(tuple(fire), next_fire, blocked)
