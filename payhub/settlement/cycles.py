"""Settlement cycles: the date on which a payment's money is settled.

>>> from datetime import datetime
>>> cycle = parse_cycle("D+1", cutoff="22:00")
>>> cycle.settle_date(datetime(2024, 5, 6, 21, 59, tzinfo=SHANGHAI))
datetime.date(2024, 5, 7)
>>> cycle.settle_date(datetime(2024, 5, 6, 22, 0, tzinfo=SHANGHAI))
datetime.date(2024, 5, 8)

A payment's *trade date* is its date in the cycle's time zone (Asia/Shanghai
by default); with a daily ``cutoff``, a payment at or after the cutoff counts
as the next day's. The cycle maps the trade date to the settle date:

* ``T+N`` (:class:`WorkingDayCycle`): the N-th Chinese working day after the
  trade date (weekends and public holidays are skipped, make-up working days
  调休 count as working days). ``T+0`` is the trade date itself when it is a
  working day, else the next working day. So with T+1 the payments of Friday,
  Saturday and Sunday all settle on Monday.
* ``D+N`` (:class:`NaturalDayCycle`): N calendar days after the trade date.
* weekly (:class:`WeeklyCycle`): the trades of a week, Monday to Sunday,
  settle on the given weekday of the following week.
* monthly (:class:`MonthlyCycle`): the trades of a calendar month settle on the
  given day of the following month, or on its last day when the month is
  shorter (31 means "month end").

``window(settle_date)`` is the inverse: the half-open interval ``[start, end)``
of payment instants that settle on that date, or ``None`` when nothing settles
on it (a holiday under T+N, a Tuesday under a Monday weekly cycle). Compare
the bounds with other aware datetimes as instants; within one zone with
daylight saving, compare in UTC.

T+N asks a working-day calendar (:mod:`payhub.settlement.calendars`): by
default the ``chinese_calendar`` package (``pip install 'payhub-cn[calendar]'``),
imported only when a T+N cycle first needs it, whose data covers whole years
(2004 to 2026 in chinesecalendar 1.11; :func:`supported_range`). A date no
calendar knows raises :class:`ConfigurationError` unless the calendar's
``beyond`` policy is ``"weekends"``. Shops add each new year's official
schedule in configuration (:func:`~payhub.settlement.calendars.calendar_from_config`)
and pass the calendar to :func:`parse_cycle`.
"""

from __future__ import annotations

import abc
import calendar as month_calendar
import re
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.settlement.calendars import ChineseCalendar, WorkingDays
from payhub.tz import SHANGHAI

__all__ = [
    "DEFAULT_CALENDAR",
    "SHANGHAI",
    "MonthlyCycle",
    "NaturalDayCycle",
    "SettlementCycle",
    "WeeklyCycle",
    "WorkingDayCycle",
    "is_working_day",
    "parse_cycle",
    "supported_range",
]

_MIDNIGHT: Final = time(0)
_MAX_DAYS: Final = 366
_ONE_DAY: Final = timedelta(days=1)
_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# -- the Chinese working-day calendar ----------------------------------------------

#: The calendar of cycles built without one: chinesecalendar, and an error beyond it.
DEFAULT_CALENDAR: Final = WorkingDays([ChineseCalendar()], beyond="error")


def supported_range() -> tuple[date, date]:
    """The first and last dates the installed ``chinesecalendar`` knows (whole years)."""
    return ChineseCalendar().supported_range()


def is_working_day(day: date, calendar: WorkingDays | None = None) -> bool:
    """Whether ``day`` is a working day in mainland China, make-up working days included.

    ``calendar`` defaults to :data:`DEFAULT_CALENDAR`. Raises
    :class:`ConfigurationError` if no calendar knows ``day`` (under the
    ``"error"`` policy) or chinesecalendar is needed and not installed.
    """
    return (calendar or DEFAULT_CALENDAR).is_working_day(day)


def _next_working_day(day: date, calendar: WorkingDays) -> date:
    """The first working day strictly after ``day``."""
    day += _ONE_DAY
    while not calendar.is_working_day(day):
        day += _ONE_DAY
    return day


def _previous_working_day(day: date, calendar: WorkingDays) -> date:
    """The last working day strictly before ``day``."""
    day -= _ONE_DAY
    while not calendar.is_working_day(day):
        day -= _ONE_DAY
    return day


# -- cycles -------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementCycle(abc.ABC):
    """What every cycle shares: the time zone, the daily cutoff, and the date arithmetic.

    ``cutoff`` is a wall-clock time in ``tz``; payments at or after it count
    as the next day's. The default, midnight, means no cutoff.
    """

    _: KW_ONLY
    tz: tzinfo = SHANGHAI
    cutoff: time = _MIDNIGHT

    def __post_init__(self) -> None:
        if not isinstance(self.tz, tzinfo):
            raise ConfigurationError(f"tz must be a tzinfo such as ZoneInfo, not {self.tz!r}")
        if not isinstance(self.cutoff, time) or self.cutoff.tzinfo is not None:
            raise ConfigurationError(
                f"cutoff must be a naive time (a wall-clock time in tz), not {self.cutoff!r}"
            )

    # -- public API

    def trade_date(self, paid_at: datetime) -> date:
        """The day ``paid_at`` counts for: its date in ``tz``, pushed a day on by the cutoff."""
        instant = _instant(paid_at)
        try:
            local = instant.astimezone(self.tz)
            day = local.date()
            if self.cutoff != _MIDNIGHT and local.time() >= self.cutoff:
                day += _ONE_DAY
            # Make the day agree with the window bounds even where daylight saving
            # skips or repeats the cutoff time (never in Asia/Shanghai).
            while instant < self._day_start(day):
                day -= _ONE_DAY
            while instant >= self._day_start(day + _ONE_DAY):
                day += _ONE_DAY
        except OverflowError:
            raise InvalidRequestError(f"paid_at {paid_at} is out of range") from None
        return day

    def settle_date(self, paid_at: datetime) -> date:
        """The date a payment made at ``paid_at`` (an aware datetime) is settled on."""
        trade = self.trade_date(paid_at)
        try:
            return self._settle(trade)
        except OverflowError:
            raise InvalidRequestError(f"paid_at {paid_at} is out of range") from None

    def window(self, settle_date: date) -> tuple[datetime, datetime] | None:
        """The half-open interval ``[start, end)`` of payment instants settled on ``settle_date``.

        Bounds are aware datetimes in ``tz``. ``None`` when nothing settles on
        that date (it is not one of the cycle's settle dates).
        """
        settle_date = _plain_date(settle_date)
        try:
            trade_dates = self._trade_dates(settle_date)
            if trade_dates is None:
                return None
            first, last = trade_dates
            start = self._day_start(first).astimezone(self.tz)
            end = self._day_start(last + _ONE_DAY).astimezone(self.tz)
        except OverflowError:
            raise InvalidRequestError(f"settle date {settle_date} is out of range") from None
        return start, end

    def is_settle_date(self, day: date) -> bool:
        """Whether some payments settle on ``day``."""
        day = _plain_date(day)
        try:
            return self._trade_dates(day) is not None
        except OverflowError:
            raise InvalidRequestError(f"settle date {day} is out of range") from None

    def __str__(self) -> str:
        return self.code

    @property
    @abc.abstractmethod
    def code(self) -> str:
        """The cycle as :func:`parse_cycle` reads it: ``"T+1"``, ``"weekly:mon"``..."""

    # -- for subclasses

    @abc.abstractmethod
    def _settle(self, trade_date: date) -> date:
        """The settle date of payments of ``trade_date``."""

    @abc.abstractmethod
    def _trade_dates(self, settle_date: date) -> tuple[date, date] | None:
        """The first and last trade dates settled on ``settle_date``, or None."""

    def _day_start(self, trade_date: date) -> datetime:
        """The instant (in UTC) from which payments count for ``trade_date``."""
        if self.cutoff == _MIDNIGHT:
            local = datetime.combine(trade_date, _MIDNIGHT, tzinfo=self.tz)
        else:
            local = datetime.combine(trade_date - _ONE_DAY, self.cutoff, tzinfo=self.tz)
        return local.astimezone(UTC)


def _instant(paid_at: datetime) -> datetime:
    if not isinstance(paid_at, datetime):
        raise InvalidRequestError(f"paid_at must be a datetime, not {type(paid_at).__name__}")
    if paid_at.tzinfo is None or paid_at.utcoffset() is None:
        raise InvalidRequestError(
            f"paid_at must be timezone-aware, got the naive {paid_at.isoformat()}"
        )
    return paid_at


def _plain_date(day: date) -> date:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidRequestError(f"expected a date, not {type(day).__name__}")
    return day


def _check_days(days: object) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= _MAX_DAYS:
        raise ConfigurationError(f"days must be an int from 0 to {_MAX_DAYS}, not {days!r}")


@dataclass(frozen=True)
class WorkingDayCycle(SettlementCycle):
    """``T+N``: the N-th Chinese working day after the trade date (T+0: the same working day).

    ``calendar`` says which days are working days (see
    :mod:`payhub.settlement.calendars`); None: :data:`DEFAULT_CALENDAR`.
    """

    days: int
    calendar: WorkingDays | None = field(default=None, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_days(self.days)
        if self.calendar is not None and not isinstance(self.calendar, WorkingDays):
            raise ConfigurationError(
                f"calendar must be a WorkingDays (see calendar_from_config), not {self.calendar!r}"
            )

    @property
    def code(self) -> str:
        return f"T+{self.days}"

    @property
    def working_days(self) -> WorkingDays:
        return self.calendar or DEFAULT_CALENDAR

    def _settle(self, trade_date: date) -> date:
        calendar = self.working_days
        # Always ask about the trade date, so one outside the calendar is refused
        # even when the working days after it happen to be known.
        if calendar.is_working_day(trade_date) and self.days == 0:
            return trade_date
        if self.days == 0:
            return _next_working_day(trade_date, calendar)
        day = trade_date
        for _ in range(self.days):
            day = _next_working_day(day, calendar)
        return day

    def _trade_dates(self, settle_date: date) -> tuple[date, date] | None:
        calendar = self.working_days
        if not calendar.is_working_day(settle_date):
            return None
        if self.days == 0:
            # Working day S takes itself and the days off just before it.
            return _previous_working_day(settle_date, calendar) + _ONE_DAY, settle_date
        # S is the N-th working day after every date from the N-th working day
        # before S up to the day before the (N-1)-th.
        later = settle_date
        for _ in range(self.days - 1):
            later = _previous_working_day(later, calendar)
        return _previous_working_day(later, calendar), later - _ONE_DAY


@dataclass(frozen=True)
class NaturalDayCycle(SettlementCycle):
    """``D+N``: N calendar days after the trade date."""

    days: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_days(self.days)

    @property
    def code(self) -> str:
        return f"D+{self.days}"

    def _settle(self, trade_date: date) -> date:
        return trade_date + timedelta(days=self.days)

    def _trade_dates(self, settle_date: date) -> tuple[date, date] | None:
        trade = settle_date - timedelta(days=self.days)
        return trade, trade


@dataclass(frozen=True)
class WeeklyCycle(SettlementCycle):
    """The trades of a week (Monday to Sunday) settle on ``weekday`` of the next week.

    ``weekday`` is 0 for Monday to 6 for Sunday, as :meth:`date.weekday`.
    """

    weekday: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.weekday, bool) or self.weekday not in range(7):
            raise ConfigurationError(
                f"weekday must be 0 (Monday) to 6 (Sunday), not {self.weekday!r}"
            )

    @property
    def code(self) -> str:
        return f"weekly:{_WEEKDAYS[self.weekday]}"

    def _settle(self, trade_date: date) -> date:
        monday = trade_date - timedelta(days=trade_date.weekday())
        return monday + timedelta(days=7 + self.weekday)

    def _trade_dates(self, settle_date: date) -> tuple[date, date] | None:
        if settle_date.weekday() != self.weekday:
            return None
        monday = settle_date - timedelta(days=self.weekday + 7)
        return monday, monday + timedelta(days=6)


@dataclass(frozen=True)
class MonthlyCycle(SettlementCycle):
    """The trades of a calendar month settle on ``day`` of the next month (or its last day)."""

    day: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.day, bool) or self.day not in range(1, 32):
            raise ConfigurationError(f"day must be 1 to 31, not {self.day!r}")

    @property
    def code(self) -> str:
        return f"monthly:{self.day}"

    def _settle_day_of(self, year: int, month: int) -> date:
        return date(year, month, min(self.day, month_calendar.monthrange(year, month)[1]))

    def _settle(self, trade_date: date) -> date:
        if trade_date.month == 12:
            return self._settle_day_of(trade_date.year + 1, 1)
        return self._settle_day_of(trade_date.year, trade_date.month + 1)

    def _trade_dates(self, settle_date: date) -> tuple[date, date] | None:
        if settle_date != self._settle_day_of(settle_date.year, settle_date.month):
            return None
        last = settle_date.replace(day=1) - _ONE_DAY
        return last.replace(day=1), last


# -- parsing --------------------------------------------------------------------------

_CYCLE_RE: Final = re.compile(
    r"(?P<kind>[TD])\+(?P<days>0|[1-9][0-9]{0,2})"
    r"|weekly:(?P<weekday>mon|tue|wed|thu|fri|sat|sun)"
    r"|monthly:(?P<day>[1-9]|[12][0-9]|3[01])",
    re.ASCII,
)
_CUTOFF_RE: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


def parse_cycle(
    text: str,
    *,
    tz: tzinfo | str = SHANGHAI,
    cutoff: time | str | None = None,
    calendar: WorkingDays | None = None,
) -> SettlementCycle:
    """Read a cycle: ``"T+1"``, ``"D+0"``, ``"weekly:mon"``, ``"monthly:31"``...

    The forms are ``T+N`` and ``D+N`` (N from 0 to 366), ``weekly:`` and a
    weekday (``mon`` to ``sun``), ``monthly:`` and a day (1 to 31).

    ``tz`` is a tzinfo or an IANA name; ``cutoff`` a naive time or ``"HH:MM"``
    (None: midnight, no cutoff); ``calendar`` the working days of ``T+N``
    (None: :data:`DEFAULT_CALENDAR`; see :func:`calendar_from_config`).
    Anything else raises :class:`ConfigurationError`.

    >>> cycle = parse_cycle("T+1")
    >>> cycle.days, cycle.tz is payhub.tz.SHANGHAI, cycle.cutoff
    (1, True, datetime.time(0, 0))
    """
    if not isinstance(text, str):
        raise ConfigurationError(f"a settlement cycle is a string such as 'T+1', not {text!r}")
    match = _CYCLE_RE.fullmatch(text)
    if match is None:
        raise ConfigurationError(
            f"unknown settlement cycle {text[:40]!r}; expected T+N, D+N, weekly:mon..sun "
            "or monthly:1..31"
        )
    zone = _zone(tz)
    cut = _cutoff(cutoff)
    if match["kind"] == "T":
        return WorkingDayCycle(int(match["days"]), tz=zone, cutoff=cut, calendar=calendar)
    if match["kind"] == "D":
        return NaturalDayCycle(int(match["days"]), tz=zone, cutoff=cut)
    if match["weekday"] is not None:
        return WeeklyCycle(_WEEKDAYS.index(match["weekday"]), tz=zone, cutoff=cut)
    return MonthlyCycle(int(match["day"]), tz=zone, cutoff=cut)


def _zone(tz: tzinfo | str) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        raise ConfigurationError(f"tz must be a tzinfo or an IANA zone name, not {tz!r}")
    if tz == "Asia/Shanghai":
        return SHANGHAI  # the one constant (payhub.tz), so cycles compare equal
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {tz[:40]!r}") from None


def _cutoff(cutoff: time | str | None) -> time:
    if cutoff is None:
        return _MIDNIGHT
    if isinstance(cutoff, time):
        return cutoff
    if isinstance(cutoff, str):
        match = _CUTOFF_RE.fullmatch(cutoff)
        if match is not None:
            return time(int(match[1]), int(match[2]))
    raise ConfigurationError(f"cutoff must be a time or 'HH:MM', not {cutoff!r}")
