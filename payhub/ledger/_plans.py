"""Settlement plans: when a payment's money becomes available to its seller. Pure.

A plan is a code: ``T+N`` and ``D+N`` (working and natural days),
``weekly:mon``..``weekly:sun``, ``monthly:1``..``monthly:31`` (the cycles of
:mod:`payhub.settlement.cycles`), ``daily@HH:MM`` (日结: the next daily
cut-off, Asia/Shanghai) and ``instant`` (秒到: available at once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final

from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.settlement.calendars import WorkingDays
from payhub.settlement.cycles import SettlementCycle, parse_cycle
from payhub.tz import SHANGHAI

__all__ = ["INSTANT", "Plan", "parse_plan"]

INSTANT: Final = "instant"
_DAILY_RE: Final = re.compile(r"daily@([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


@dataclass(frozen=True)
class Plan:
    """A seller's settlement plan (see :func:`parse_plan`)."""

    code: str
    cycle: SettlementCycle | None = None
    cutoff: time | None = None

    @property
    def instant(self) -> bool:
        return self.code == INSTANT

    def available_on(self, paid_at: datetime) -> datetime:
        """When money paid at ``paid_at`` (aware) becomes due for settlement (UTC)."""
        if paid_at.utcoffset() is None:
            raise InvalidRequestError("paid_at must be timezone-aware")
        if self.instant:
            return paid_at.astimezone(UTC)
        if self.cutoff is not None:
            local = paid_at.astimezone(SHANGHAI)
            due = datetime.combine(local.date(), self.cutoff, tzinfo=SHANGHAI)
            if local >= due:
                due += timedelta(days=1)
            return due.astimezone(UTC)
        assert self.cycle is not None
        day = self.cycle.settle_date(paid_at)
        return datetime.combine(day, time(0), tzinfo=self.cycle.tz).astimezone(UTC)


def parse_plan(code: object, *, calendar: WorkingDays | None = None) -> Plan:
    """Read a plan code; :class:`ConfigurationError` if it is not one."""
    if not isinstance(code, str):
        raise ConfigurationError(f"a settlement plan is a string such as 'T+1', not {code!r}")
    if code == INSTANT:
        return Plan(INSTANT)
    match = _DAILY_RE.fullmatch(code)
    if match is not None:
        return Plan(code, cutoff=time(int(match[1]), int(match[2])))
    try:
        cycle = parse_cycle(code, calendar=calendar)
    except ConfigurationError:
        raise ConfigurationError(
            f"unknown settlement plan {code[:40]!r}; expected T+N, D+N, weekly:mon..sun, "
            "monthly:1..31, daily@HH:MM or instant"
        ) from None
    return Plan(code, cycle=cycle)
