"""Settlement: when the money of a payment is settled.

See :mod:`payhub.settlement.cycles` and ``docs/policy.md``.
"""

from payhub.settlement.cycles import (
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
