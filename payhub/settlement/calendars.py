"""Working-day calendars for ``T+N`` cycles: pluggable, layered, explicit about their ends.

China's working days are set each year by the State Council's notice on
public holidays (国务院办公厅关于 YYYY 年部分节假日安排的通知), published
around November for the next year: holidays that fall on weekdays, and
make-up working days (调休上班) that fall on weekends. No library knows a
year before that notice, so payhub asks a list of calendars in order:

1. the shop's own schedules from configuration (:class:`HolidaySchedule`),
   so a shop can add next year's notice the day it is published;
2. providers registered through the ``register_calendars`` hook — by default
   ``chinesecalendar`` (:class:`ChineseCalendar`, the ``calendar`` extra);
3. for a day none of them knows, the ``beyond`` policy: ``"error"`` (the
   default: a :class:`~payhub.errors.ConfigurationError` naming the fix) or
   ``"weekends"`` (Monday to Friday are working days; a warning is logged
   and ``on_beyond(day)`` is called once per year, so the shop can raise an
   alert before the guess matters).

>>> from datetime import date
>>> calendar = WorkingDays([HolidaySchedule.from_config({"2027": {
...     "holidays": ["2027-01-01"], "workdays": []}})], beyond="error")
>>> calendar.is_working_day(date(2027, 1, 1)), calendar.is_working_day(date(2027, 1, 4))
(False, True)
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, get_args, runtime_checkable

from payhub.errors import ConfigurationError
from payhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "DEFAULT_PROVIDERS",
    "Beyond",
    "CalendarFactory",
    "ChineseCalendar",
    "HolidaySchedule",
    "WorkdayCalendar",
    "WorkingDays",
    "calendar_from_config",
    "calendar_providers",
    "register_calendars",
]

logger = logging.getLogger("payhub.settlement")

#: What to do for a day no calendar knows.
Beyond = Literal["error", "weekends"]
#: The providers asked when the configuration names none.
DEFAULT_PROVIDERS: Final = ("chinesecalendar",)
_SATURDAY: Final = 5


@runtime_checkable
class WorkdayCalendar(Protocol):
    """A source of official working days.

    ``is_workday(day)`` is True or False for a day the calendar knows (its
    years' official schedule), and None for a day it has no data for — never a
    guess. Make-up working days on weekends are True; holidays on weekdays False.
    """

    def is_workday(self, day: date, /) -> bool | None: ...


#: ``factory(options)`` builds a calendar from its configuration mapping.
CalendarFactory = Callable[[Mapping[str, Any]], WorkdayCalendar]


# -- chinesecalendar ------------------------------------------------------------------


def _chinese_calendar() -> ModuleType:
    try:
        return importlib.import_module("chinese_calendar")
    except ImportError:
        raise ConfigurationError(
            "T+N settlement cycles need a working-day calendar: pip install "
            "'payhub-cn[calendar]' (the chinesecalendar package), or configure the "
            "year's official schedule under settlement calendar 'schedules'"
        ) from None


@functools.cache
def _range_of(module: ModuleType) -> tuple[date, date]:
    # chinese_calendar answers for every date of the years its holiday table
    # spans (its own _validate_date check), and raises for any other year.
    years = [day.year for day in module.holidays]
    return date(min(years), 1, 1), date(max(years), 12, 31)


@dataclass(frozen=True)
class ChineseCalendar:
    """The ``chinesecalendar`` package (imported on first use): whole years, from 2004."""

    def supported_range(self) -> tuple[date, date]:
        """The first and last dates the installed package knows."""
        return _range_of(_chinese_calendar())

    def is_workday(self, day: date, /) -> bool | None:
        module = _chinese_calendar()
        first, last = _range_of(module)
        if not first <= day <= last:
            return None
        try:
            return bool(module.is_workday(day))
        except NotImplementedError:  # its own range check, should ours ever differ
            return None


# -- the shop's own schedules -----------------------------------------------------------


@dataclass(frozen=True)
class HolidaySchedule:
    """Official schedules a shop configures, year by year.

    For a year it holds, a day is a working day unless it is Saturday, Sunday
    or one of ``holidays``; a make-up working day in ``workdays`` is one even
    on a weekend. Years it does not hold: None (ask the next calendar).
    """

    years: frozenset[int]
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        both = self.holidays & self.workdays
        if both:
            raise ConfigurationError(
                f"calendar schedules: {min(both)} is both a holiday and a make-up working day"
            )
        for day in self.holidays | self.workdays:
            if day.year not in self.years:
                raise ConfigurationError(f"calendar schedules: {day} is not in its year's list")
        for day in self.workdays:
            if day.weekday() < _SATURDAY:
                raise ConfigurationError(
                    f"calendar schedules: make-up working day {day} is a "
                    f"{day.strftime('%A')}, already a working day (a typo?)"
                )

    def is_workday(self, day: date, /) -> bool | None:
        if day.year not in self.years:
            return None
        if day in self.workdays:
            return True
        return day.weekday() < _SATURDAY and day not in self.holidays

    @classmethod
    def from_config(cls, schedules: object) -> HolidaySchedule:
        """``{"2027": {"holidays": ["2027-01-01", ...], "workdays": ["2027-02-06", ...]}}``."""
        if not isinstance(schedules, Mapping):
            raise ConfigurationError(
                "calendar schedules: expected {year: {'holidays': [...], 'workdays': [...]}}"
            )
        years: set[int] = set()
        holidays: set[date] = set()
        workdays: set[date] = set()
        for year, lists in schedules.items():
            if not (isinstance(year, str | int) and str(year).isdigit() and len(str(year)) == 4):
                raise ConfigurationError(f"calendar schedules: {year!r} is not a year")
            if not isinstance(lists, Mapping) or not set(lists) <= {"holidays", "workdays"}:
                raise ConfigurationError(
                    f"calendar schedules {year}: expected {{'holidays': [...], 'workdays': [...]}}"
                )
            years.add(int(year))
            holidays |= _dates(lists.get("holidays", ()), f"{year} holidays")
            workdays |= _dates(lists.get("workdays", ()), f"{year} workdays")
        return cls(frozenset(years), frozenset(holidays), frozenset(workdays))


def _dates(values: object, where: str) -> set[date]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigurationError(f"calendar schedules {where}: expected a list of dates")
    found: set[date] = set()
    for value in values:
        if isinstance(value, date):
            found.add(value)
            continue
        try:
            found.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"calendar schedules {where}: {str(value)[:40]!r} is not a YYYY-MM-DD date"
            ) from None
    return found


# -- the layered calendar cycles use -----------------------------------------------------


class WorkingDays:
    """Calendars asked in order; the ``beyond`` policy for a day none of them knows."""

    def __init__(
        self,
        calendars: Sequence[WorkdayCalendar],
        *,
        beyond: Beyond = "error",
        on_beyond: Callable[[date], None] | None = None,
    ) -> None:
        if beyond not in get_args(Beyond):
            raise ConfigurationError(
                f"calendar 'beyond' must be 'error' or 'weekends', not {beyond!r}"
            )
        for calendar in calendars:
            if not isinstance(calendar, WorkdayCalendar):
                raise ConfigurationError(f"{calendar!r} is not a WorkdayCalendar")
        self.calendars: tuple[WorkdayCalendar, ...] = tuple(calendars)
        self.beyond: Beyond = beyond
        self.on_beyond = on_beyond
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WorkingDays({list(self.calendars)!r}, beyond={self.beyond!r})"

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day in mainland China (make-up days included)."""
        for calendar in self.calendars:
            answer = calendar.is_workday(day)
            if answer is not None:
                return answer
        if self.beyond == "error":
            raise ConfigurationError(
                f"no working-day calendar knows {day}: add {day.year}'s official schedule "
                "(the State Council's holiday notice) under the settlement calendar's "
                "'schedules', upgrade chinesecalendar, or set 'beyond': 'weekends'"
            )
        self._warn(day)
        return day.weekday() < _SATURDAY

    def _warn(self, day: date) -> None:
        with self._lock:
            if day.year in self._warned:
                return
            self._warned.add(day.year)
        logger.warning(
            "no working-day calendar knows %s: counting Monday to Friday as working days "
            "for %d until its official schedule is configured",
            day,
            day.year,
        )
        if self.on_beyond is not None:
            self.on_beyond(day)


# -- configuration and plugins --------------------------------------------------------


@hookimpl
def register_calendars(register: Callable[[str, CalendarFactory], None]) -> None:
    """The built-in provider, registered through the hook third parties use."""
    register("chinesecalendar", lambda options: ChineseCalendar())


def calendar_providers(pm: pluggy.PluginManager | None = None) -> dict[str, CalendarFactory]:
    """Every calendar provider registered through ``register_calendars``, by name."""
    if pm is None:
        from payhub.plugins import get_plugin_manager  # noqa: PLC0415 - entry points on demand

        pm = get_plugin_manager()
    found: dict[str, CalendarFactory] = {}

    def register(name: str, factory: CalendarFactory) -> None:
        if not isinstance(name, str) or not name or not callable(factory):
            raise ConfigurationError(f"a calendar provider needs a name and a factory: {name!r}")
        previous = found.get(name)
        if previous is not None and previous is not factory:
            raise ConfigurationError(f"two plugins register calendar provider {name!r}")
        found[name] = factory

    pm.hook.register_calendars(register=register)
    return found


_KEYS: Final = frozenset({"providers", "schedules", "beyond", "options"})


def calendar_from_config(
    config: Mapping[str, Any] | None = None,
    *,
    plugin_manager: pluggy.PluginManager | None = None,
    on_beyond: Callable[[date], None] | None = None,
) -> WorkingDays:
    """The working-day calendar a configuration describes::

        {"schedules": {"2027": {"holidays": [...], "workdays": [...]}},
         "providers": ["chinesecalendar"],     # the default
         "beyond": "error",                    # or "weekends"
         "options": {"provider name": {...}}}  # passed to that provider's factory

    The schedules are asked first, then the providers in order.
    """
    config = config or {}
    if not isinstance(config, Mapping):
        raise ConfigurationError("the settlement calendar configuration must be a mapping")
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ConfigurationError(f"settlement calendar: unknown keys {unknown}")
    calendars: list[WorkdayCalendar] = []
    if config.get("schedules"):
        calendars.append(HolidaySchedule.from_config(config["schedules"]))
    names = config.get("providers", DEFAULT_PROVIDERS)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConfigurationError("settlement calendar 'providers' must be a list of names")
    options = config.get("options", {})
    if not isinstance(options, Mapping):
        raise ConfigurationError("settlement calendar 'options' must be a mapping")
    if names:
        providers = calendar_providers(plugin_manager)
        for name in names:
            factory = providers.get(name)
            if factory is None:
                raise ConfigurationError(
                    f"unknown calendar provider {name!r}; known: {sorted(providers)}"
                )
            calendars.append(factory(options.get(name, {})))
    return WorkingDays(calendars, beyond=config.get("beyond", "error"), on_beyond=on_beyond)
