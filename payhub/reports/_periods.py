"""When a schedule is due, and which period each run covers (pure date arithmetic).

* daily at ``HH:MM``: the run on day D covers day D-1, ``[D-1 00:00, D 00:00)``;
* weekly on ISO weekday W at ``HH:MM``: the run on day D covers the seven days before it;
* monthly on day M (1-28) at ``HH:MM``: the run covers the previous calendar month.

All in the schedule's time zone (Asia/Shanghai by default); stored times are UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final, Literal

from payhub.errors import InvalidRequestError

__all__ = ["FREQUENCIES", "Frequency", "check_schedule", "next_run", "period_of", "run_moment"]

Frequency = Literal["daily", "weekly", "monthly"]
FREQUENCIES: Final = ("daily", "weekly", "monthly")
_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


def _at(at_time: str) -> time:
    match = _HHMM.fullmatch(at_time)
    if match is None:
        raise InvalidRequestError(f"at time {at_time!r} is not HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def check_schedule(frequency: str, at_time: str, day: int | None) -> None:
    """Refuse a schedule that names no real moment."""
    if frequency not in FREQUENCIES:
        raise InvalidRequestError(f"frequency {frequency!r} is not one of {', '.join(FREQUENCIES)}")
    _at(at_time)
    if frequency == "daily" and day is not None:
        raise InvalidRequestError("a daily schedule takes no day")
    if frequency == "weekly" and (day is None or not 1 <= day <= 7):
        raise InvalidRequestError("a weekly schedule needs --day 1 (Monday) to 7 (Sunday)")
    if frequency == "monthly" and (day is None or not 1 <= day <= 28):
        raise InvalidRequestError("a monthly schedule needs --day 1 to 28 (every month has it)")


def _is_run_day(frequency: str, day: int | None, d: date) -> bool:
    if frequency == "daily":
        return True
    if frequency == "weekly":
        return d.isoweekday() == day
    return d.day == day


def run_moment(d: date, at_time: str, tz: tzinfo) -> datetime:
    """The UTC moment of ``at_time`` on local day ``d``."""
    return datetime.combine(d, _at(at_time), tzinfo=tz).astimezone(UTC)


def next_run(
    frequency: str, at_time: str, day: int | None, tz: tzinfo, after: datetime
) -> datetime:
    """The first run moment strictly after ``after``."""
    local = after.astimezone(tz).date()
    for offset in range(0, 32):
        d = local + timedelta(days=offset)
        if _is_run_day(frequency, day, d):
            moment = run_moment(d, at_time, tz)
            if moment > after:
                return moment
    raise AssertionError("a schedule runs at least every 31 days")  # pragma: no cover


def period_of(frequency: str, moment: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a run at ``moment`` covers, as aware UTC datetimes."""
    d = moment.astimezone(tz).date()
    if frequency == "daily":
        first, last = d - timedelta(days=1), d
    elif frequency == "weekly":
        first, last = d - timedelta(days=7), d
    else:
        last = d.replace(day=1)
        first = (last - timedelta(days=1)).replace(day=1)
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last, time(0), tzinfo=tz).astimezone(UTC)
    return start, end
