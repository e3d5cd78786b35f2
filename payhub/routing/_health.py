"""Health of channel accounts: outcomes, the circuit breaker, and its state stores.

The breaker of one account::

    CLOSED ──(N consecutive failures, or failure rate > threshold
      ▲        over the window with >= min_samples outcomes)──▶ OPEN
      │                                                         │ cool_down
      │                                                         ▼
      └──────(probe succeeds)──── HALF_OPEN ◀──(probe fails: OPEN again)

In HALF_OPEN exactly one caller holds the probe lease (``acquire_probe``);
everyone else sees the account as unavailable until the probe's outcome is
recorded or its lease expires.

A store keeps, per account: when the circuit opened (None when closed), the
consecutive-failure count, the probe lease, the sliding window of outcomes
in buckets, and the volume of successful payments per day and month. OPEN
and HALF_OPEN are not stored: HALF_OPEN is OPEN after the cool-down. Every
transition is atomic in the store, so many routers (threads, processes,
machines with a shared store) keep one view. Times are integer milliseconds
of the router's clock, so a manual clock drives a store in tests.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from payhub.errors import ChannelTimeout, PayhubError
from payhub.money import Money
from payhub.routing._policy import BreakerConfig

__all__ = [
    "AccountHealth",
    "CircuitState",
    "HealthStore",
    "InMemoryHealthStore",
    "Outcome",
    "VolumePeriod",
]


class Outcome(enum.StrEnum):
    """What one attempt at a channel account came to."""

    SUCCESS = "success"
    FAILURE = "failure"  #: network error, 5xx, unparseable answer, "system busy"
    TIMEOUT = "timeout"  #: counts as a failure
    #: The channel answered and refused the request itself (bad parameter,
    #: already paid): proof the channel works, never a failure.
    BUSINESS_ERROR = "business_error"

    @classmethod
    def of(cls, error: BaseException | None) -> Outcome:
        """Classify an attempt's error: None is a success, a timeout a timeout,
        a retryable payhub error a failure, any other payhub error a business error.

        Anything else (a bug, ``KeyboardInterrupt``) is not an outcome of the
        channel and is re-raised.
        """
        if error is None:
            return cls.SUCCESS
        if isinstance(error, ChannelTimeout):
            return cls.TIMEOUT
        if isinstance(error, PayhubError):
            return cls.FAILURE if error.retryable else cls.BUSINESS_ERROR
        raise error

    @property
    def is_failure(self) -> bool:
        return self is Outcome.FAILURE or self is Outcome.TIMEOUT


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class VolumePeriod:
    """The Asia/Shanghai day (``"20250131"``) and month (``"202501"``) volume is counted in."""

    day: str
    month: str


class AccountHealth(NamedTuple):
    """What a store knows of one account at one instant (times in ms).

    ``successes``/``failures`` are counted over the breaker window and are 0
    unless the read asked for the window. Volumes are minor units of the
    currency and period the read asked for. (A named tuple: cheap to make on
    the hot path.)
    """

    opened_at: int | None = None
    probe_until: int = 0
    consecutive_failures: int = 0
    successes: int = 0
    failures: int = 0
    daily_volume: int = 0
    monthly_volume: int = 0

    def state(self, now: int, breaker: BreakerConfig) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if now >= self.opened_at + breaker.cool_down_ms:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def probe_in_flight(self, now: int) -> bool:
        return self.probe_until > now


CLOSED_HEALTH = AccountHealth()


class HealthStore(Protocol):
    """Where breaker state and volumes live; every method is one atomic step.

    ``read`` is on the payment hot path: a store must answer it for all the
    accounts at once (one round trip for a networked store).
    """

    def read(
        self,
        names: Sequence[str],
        *,
        now: int,
        breaker: BreakerConfig,
        currency: str,
        period: VolumePeriod,
        window: bool = False,
    ) -> list[AccountHealth]:
        """The health of each of ``names``, in order (``window``: count the window too)."""
        ...

    def record(
        self,
        name: str,
        outcome: Outcome,
        *,
        now: int,
        breaker: BreakerConfig,
        period: VolumePeriod,
        volume: Money | None = None,
    ) -> tuple[CircuitState, CircuitState]:
        """Count an outcome, move the breaker, add ``volume`` on success; (before, after)."""
        ...

    def acquire_probe(self, name: str, *, now: int, breaker: BreakerConfig) -> bool:
        """Take the half-open probe lease: True for exactly one caller while it lasts."""
        ...

    def add_volume(self, name: str, amount: Money, *, period: VolumePeriod) -> None:
        """Count ``amount`` in the account's daily and monthly volume."""
        ...

    def reset(self, name: str) -> None:
        """Forget the account's breaker state (close its circuit); volumes stay."""
        ...


class _Breaker:
    __slots__ = ("buckets", "consecutive", "opened_at", "probe_until")

    def __init__(self) -> None:
        self.opened_at: int | None = None
        self.consecutive = 0
        self.probe_until = 0
        self.buckets: dict[int, list[int]] = {}  # bucket -> [successes, failures]

    def window(self, now: int, breaker: BreakerConfig) -> tuple[int, int]:
        first = now // breaker.bucket_ms - breaker.buckets + 1
        successes = failures = 0
        for bucket, (s, f) in self.buckets.items():
            if bucket >= first:
                successes += s
                failures += f
        return successes, failures

    def count(self, now: int, breaker: BreakerConfig, index: int) -> None:
        current = now // breaker.bucket_ms
        self.buckets.setdefault(current, [0, 0])[index] += 1
        first = current - breaker.buckets + 1
        for bucket in [b for b in self.buckets if b < first]:
            del self.buckets[bucket]


class _Volume:
    __slots__ = ("daily", "day", "month", "monthly")

    def __init__(self, period: VolumePeriod) -> None:
        self.day, self.month = period.day, period.month
        self.daily = self.monthly = 0


def _state(breaker_state: _Breaker, now: int, breaker: BreakerConfig) -> CircuitState:
    opened_at = breaker_state.opened_at
    if opened_at is None:
        return CircuitState.CLOSED
    if now >= opened_at + breaker.cool_down_ms:
        return CircuitState.HALF_OPEN
    return CircuitState.OPEN


class InMemoryHealthStore:
    """The default store: this process only, thread-safe (one lock, short sections).

    The Redis store implements the same transitions in Lua; the test suite
    runs one set of breaker tests against both.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}
        self._volumes: dict[tuple[str, str], _Volume] = {}  # (name, currency) -> volume
        # What the last reads returned, for one (currency, period, window bucket).
        self._snapshots: dict[str, AccountHealth] = {}
        self._snapshot_key: tuple[object, ...] = ()

    def __repr__(self) -> str:
        return f"<InMemoryHealthStore of {len(self._breakers)} accounts>"

    def read(
        self,
        names: Sequence[str],
        *,
        now: int,
        breaker: BreakerConfig,
        currency: str,
        period: VolumePeriod,
        window: bool = False,
    ) -> list[AccountHealth]:
        # A snapshot stays valid until a write to its account; with the window,
        # also only within one bucket of it (and one shape of window).
        bucket_ms = breaker.bucket_ms
        key = (
            currency,
            period,
            *((now // bucket_ms, bucket_ms, breaker.buckets) if window else ()),
        )
        with self._lock:
            snapshots = self._snapshots
            if self._snapshot_key != key:
                snapshots.clear()
                self._snapshot_key = key
            result: list[AccountHealth] = []
            for name in names:
                health = snapshots.get(name)
                if health is None:
                    health = snapshots[name] = self._health(
                        name, now, breaker, currency=currency, period=period, window=window
                    )
                result.append(health)
            return result

    def _health(
        self,
        name: str,
        now: int,
        breaker: BreakerConfig,
        *,
        currency: str,
        period: VolumePeriod,
        window: bool,
    ) -> AccountHealth:
        state = self._breakers.get(name)
        volume = self._volumes.get((name, currency))
        if state is None and volume is None:
            return CLOSED_HEALTH
        successes = failures = 0
        if state is None:
            state = _Breaker()
        elif window:
            successes, failures = state.window(now, breaker)
        daily = monthly = 0
        if volume is not None:
            daily = volume.daily if volume.day == period.day else 0
            monthly = volume.monthly if volume.month == period.month else 0
        return AccountHealth(
            state.opened_at,
            state.probe_until,
            state.consecutive,
            successes,
            failures,
            daily,
            monthly,
        )

    def record(
        self,
        name: str,
        outcome: Outcome,
        *,
        now: int,
        breaker: BreakerConfig,
        period: VolumePeriod,
        volume: Money | None = None,
    ) -> tuple[CircuitState, CircuitState]:
        with self._lock:
            self._snapshots.pop(name, None)
            state = self._breakers.get(name)
            if state is None:
                state = self._breakers[name] = _Breaker()
            before = after = _state(state, now, breaker)
            if outcome is Outcome.SUCCESS or outcome is Outcome.BUSINESS_ERROR:
                if before is CircuitState.HALF_OPEN:
                    # The channel answered: close, and start counting afresh.
                    state = self._breakers[name] = _Breaker()
                    after = CircuitState.CLOSED
                state.consecutive = 0
                if outcome is Outcome.SUCCESS:
                    state.count(now, breaker, 0)
                    if volume is not None and volume.minor > 0:
                        self._add_volume(name, volume, period)
            else:
                state.count(now, breaker, 1)
                state.consecutive += 1
                if before is CircuitState.HALF_OPEN:
                    state.opened_at, state.probe_until = now, 0
                    after = CircuitState.OPEN
                elif before is CircuitState.CLOSED and _should_open(state, now, breaker):
                    state.opened_at = now
                    after = CircuitState.OPEN
            return before, after

    def acquire_probe(self, name: str, *, now: int, breaker: BreakerConfig) -> bool:
        with self._lock:
            state = self._breakers.get(name)
            if state is None or _state(state, now, breaker) is not CircuitState.HALF_OPEN:
                return False
            if state.probe_until > now:
                return False
            self._snapshots.pop(name, None)
            state.probe_until = now + breaker.probe_lease_ms
            return True

    def add_volume(self, name: str, amount: Money, *, period: VolumePeriod) -> None:
        with self._lock:
            self._add_volume(name, amount, period)

    def _add_volume(self, name: str, amount: Money, period: VolumePeriod) -> None:
        self._snapshots.pop(name, None)
        key = (name, amount.currency)
        volume = self._volumes.get(key)
        if volume is None:
            volume = self._volumes[key] = _Volume(period)
        if volume.day != period.day:
            volume.day, volume.daily = period.day, 0
        if volume.month != period.month:
            volume.month, volume.monthly = period.month, 0
        volume.daily += amount.minor
        volume.monthly += amount.minor

    def reset(self, name: str) -> None:
        with self._lock:
            self._snapshots.pop(name, None)
            self._breakers.pop(name, None)


def _should_open(state: _Breaker, now: int, breaker: BreakerConfig) -> bool:
    if state.consecutive >= breaker.consecutive_failures:
        return True
    successes, failures = state.window(now, breaker)
    total = successes + failures
    return total >= breaker.min_samples and failures / total > breaker.failure_rate
