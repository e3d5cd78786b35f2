"""Settlement: when the money of a payment is settled.

See :mod:`payhub.settlement.cycles`, :mod:`payhub.settlement.calendars` and
``docs/policy.md``.
"""

from payhub.settlement.calendars import (
    ChineseCalendar,
    HolidaySchedule,
    WorkdayCalendar,
    WorkingDays,
    calendar_from_config,
    calendar_providers,
)
from payhub.settlement.cycles import (
    DEFAULT_CALENDAR,
    SHANGHAI,
    MonthlyCycle,
    NaturalDayCycle,
    SettlementCycle,
    WeeklyCycle,
    WorkingDayCycle,
    is_working_day,
    parse_cycle,
    supported_range,
)

__all__ = [
    "DEFAULT_CALENDAR",
    "SHANGHAI",
    "ChineseCalendar",
    "HolidaySchedule",
    "MonthlyCycle",
    "NaturalDayCycle",
    "SettlementCycle",
    "WeeklyCycle",
    "WorkdayCalendar",
    "WorkingDayCycle",
    "WorkingDays",
    "calendar_from_config",
    "calendar_providers",
    "is_working_day",
    "parse_cycle",
    "supported_range",
]
