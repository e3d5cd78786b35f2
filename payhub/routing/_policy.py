"""Configuration of routing: per-account policies, rules, the breaker, failover.

All are frozen pydantic models; they are built once, from code or from a
plain configuration dict, and never change while a router runs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.fees import (
    FeeRule,
    FixedFee,
    FixedPlusPercentageFee,
    PercentageFee,
    TierBasis,
    TieredFee,
    parse_fee_rule,
)
from payhub.models import PayMethod
from payhub.money import Money

__all__ = [
    "BreakerConfig",
    "ChannelAccountPolicy",
    "FailoverPolicy",
    "RoutingRule",
    "RuleAction",
    "Strategy",
]

_FROZEN = ConfigDict(extra="forbid", frozen=True)
_FEE_RULE_TYPES = (PercentageFee, FixedFee, FixedPlusPercentageFee, TieredFee)


class Strategy(enum.StrEnum):
    """How a router orders the eligible channel accounts of a payment."""

    #: Cheapest fee for this amount first (the default); ties by priority, then name.
    LOWEST_FEE = "lowest_fee"
    #: Lowest ``priority`` number first; ties by name.
    PRIORITY = "priority"
    #: Volume split by ``weight``, stable per ``out_trade_no`` (rendezvous hashing).
    WEIGHTED = "weighted"
    #: Best success rate over the breaker window first, exploring a configurable share.
    SUCCESS_RATE = "success_rate"


def _fee_rule(value: object) -> FeeRule | None:
    if value is None or isinstance(value, _FEE_RULE_TYPES):
        return value
    if isinstance(value, Mapping):
        return parse_fee_rule(value)
    raise ConfigurationError(
        f"fee must be a payhub.fees rule or a fee configuration mapping, not {type(value).__name__}"
    )


def _same_currency(*values: Money | None) -> str | None:
    currencies = {value.currency for value in values if value is not None}
    if len(currencies) > 1:
        raise ConfigurationError(f"limits mix currencies {sorted(currencies)}")
    return currencies.pop() if currencies else None


class ChannelAccountPolicy(BaseModel):
    """How the router treats one channel account (keyed by the account's name).

    Amount limits are inclusive and in one currency; a payment in another
    currency is refused by an account that has limits (an account without
    limits takes every currency its channel supports). ``daily_limit`` caps
    the volume of successful payments per Asia/Shanghai calendar day, as
    counted in the health store. ``priority``: a lower number comes first.

    >>> from decimal import Decimal
    >>> from payhub.fees import PercentageFee
    >>> from payhub.money import Money
    >>> ChannelAccountPolicy(priority=1, max_amount=Money(500_00),
    ...                      fee=PercentageFee(Decimal("0.006")))  # doctest: +ELLIPSIS
    ChannelAccountPolicy(enabled=True, priority=1, ...)
    """

    model_config = _FROZEN

    enabled: bool = True
    priority: int = 100
    min_amount: Money | None = None
    max_amount: Money | None = None
    daily_limit: Money | None = None
    #: What the channel charges this account (a :mod:`payhub.fees` rule, or its config dict).
    fee: Annotated[FeeRule | None, PlainValidator(_fee_rule)] = None
    #: Share of the volume under :attr:`Strategy.WEIGHTED`; 0 means "only as a fallback".
    weight: int = Field(default=1, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _check_limits(self) -> ChannelAccountPolicy:
        _same_currency(self.min_amount, self.max_amount, self.daily_limit)
        for what, value in (
            ("min_amount", self.min_amount),
            ("max_amount", self.max_amount),
            ("daily_limit", self.daily_limit),
        ):
            if value is not None and value.minor < 0:
                raise ConfigurationError(f"{what} must not be negative")
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise ConfigurationError(
                f"min_amount {self.min_amount} is above max_amount {self.max_amount}"
            )
        return self

    @property
    def limits_currency(self) -> str | None:
        """The currency of the amount limits, or None when there are none."""
        return _same_currency(self.min_amount, self.max_amount, self.daily_limit)

    @property
    def fee_needs_monthly_volume(self) -> bool:
        fee = self.fee
        return isinstance(fee, TieredFee) and fee.by is TierBasis.MONTHLY_VOLUME


class RuleAction(enum.StrEnum):
    PIN = "pin"  #: only the rule's accounts may take a matching payment
    EXCLUDE = "exclude"  #: the rule's accounts may not take a matching payment


class RoutingRule(BaseModel):
    """Pin or exclude accounts for the payments a rule matches.

    A rule matches a payment when every condition it sets holds: the method is
    one of ``methods``, the amount lies in ``[min_amount, max_amount]`` (same
    currency), and each ``metadata`` key has that value in the request's
    metadata. A rule without conditions matches every payment. Every matching
    rule applies: excludes remove accounts, and pins restrict the candidates
    to the pinned accounts (two matching pins keep only accounts both name).

    >>> from payhub.money import Money
    >>> RoutingRule(name="big-to-unionpay", action="pin", accounts={"unionpay"},
    ...             min_amount=Money(1000_00))  # doctest: +ELLIPSIS
    RoutingRule(name='big-to-unionpay', ...)
    """

    model_config = _FROZEN

    name: str = Field(min_length=1)
    action: RuleAction
    accounts: frozenset[str] = Field(min_length=1)
    methods: frozenset[PayMethod] | None = None
    min_amount: Money | None = None
    max_amount: Money | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_range(self) -> RoutingRule:
        _same_currency(self.min_amount, self.max_amount)
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise ConfigurationError(f"rule {self.name!r}: min_amount is above max_amount")
        return self

    def matches(self, method: PayMethod, amount: Money, metadata: Mapping[str, str]) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        low, high = self.min_amount, self.max_amount
        if low is not None and (low.currency != amount.currency or amount < low):
            return False
        if high is not None and (high.currency != amount.currency or amount > high):
            return False
        return all(metadata.get(key) == value for key, value in self.metadata.items())


class BreakerConfig(BaseModel):
    """When a channel account's circuit opens, and for how long.

    The circuit opens after ``consecutive_failures`` failures in a row, or
    when, over the sliding ``window``, at least ``min_samples`` outcomes were
    counted and the share of failures is above ``failure_rate``. It stays
    open for ``cool_down``, then lets one probe through (half-open); the probe
    holds a lease for ``probe_lease`` (set it to at least the longest a
    payment attempt can take), after which another caller may probe.

    The window is ``buckets`` slices of ``window / buckets``; it covers the
    current slice and the ``buckets - 1`` before it, so an outcome leaves the
    window between ``window - window/buckets`` and ``window`` after it happened.
    """

    model_config = _FROZEN

    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0.0, le=1.0)
    min_samples: int = Field(default=20, ge=1)
    window: timedelta = timedelta(seconds=60)
    buckets: int = Field(default=12, ge=1, le=120)
    cool_down: timedelta = timedelta(seconds=30)
    probe_lease: timedelta = timedelta(seconds=30)

    @model_validator(mode="after")
    def _check_times(self) -> BreakerConfig:
        window_ms = _ms(self.window)
        if window_ms <= 0 or window_ms % self.buckets:
            raise ConfigurationError(
                "window must be positive and a whole number of milliseconds per bucket"
            )
        if _ms(self.cool_down) <= 0 or _ms(self.probe_lease) <= 0:
            raise ConfigurationError("cool_down and probe_lease must be positive")
        return self

    @property
    def bucket_ms(self) -> int:
        return _ms(self.window) // self.buckets

    @property
    def cool_down_ms(self) -> int:
        return _ms(self.cool_down)

    @property
    def probe_lease_ms(self) -> int:
        return _ms(self.probe_lease)


class FailoverPolicy(BaseModel):
    """How many candidates ``hub.pay`` may try, and for how long in all.

    An attempt starts only if fewer than ``max_attempts`` were made and the
    ``deadline`` (counted from the routing decision) has not passed.
    """

    model_config = _FROZEN

    max_attempts: int = Field(default=3, ge=1)
    deadline: timedelta = timedelta(seconds=30)

    @model_validator(mode="after")
    def _check_deadline(self) -> FailoverPolicy:
        if self.deadline <= timedelta(0):
            raise ConfigurationError("deadline must be positive")
        return self


def _ms(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1000 + value.microseconds // 1000


def parse_strategy(value: object) -> Strategy:
    """A :class:`Strategy` from itself or its value; :class:`InvalidRequestError` otherwise."""
    if isinstance(value, Strategy):
        return value
    if isinstance(value, str) and value in _STRATEGY_VALUES:
        return Strategy(value)
    known = ", ".join(sorted(_STRATEGY_VALUES))
    raise InvalidRequestError(f"unknown routing strategy {value!r} (known: {known})")


_STRATEGY_VALUES: Final = frozenset(strategy.value for strategy in Strategy)
