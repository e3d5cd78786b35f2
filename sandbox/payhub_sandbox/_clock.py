"""Clocks: the real one, and a manual one tests move by hand.

Every time the sandbox looks at comes from its clock, so a test can put a
notification's retries, a trade's timeout or a bill link's expiry exactly
where it wants them.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

__all__ = ["CHINA_TZ", "Clock", "ManualClock", "SystemClock"]

#: Asia/Shanghai. China has kept UTC+8 without daylight saving since 1991, so a
#: fixed offset is exact for every date a payment can carry.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class Clock(Protocol):
    """Anything with ``now()`` returning a timezone-aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to.

    >>> clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> clock.advance(90)
    >>> clock.now().isoformat()
    '2024-01-01T00:01:30+00:00'
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        if start.utcoffset() is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never back) by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware, not earlier than now)."""
        if when.utcoffset() is None:
            raise ValueError("needs a timezone-aware datetime")
        with self._lock:
            if when < self._now:
                raise ValueError("a clock only moves forward")
            self._now = when.astimezone(UTC)

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()!r})"
