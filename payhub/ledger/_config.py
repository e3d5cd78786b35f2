"""The ledger's configuration: fees, plans, refund-fee policies, withdrawal rules.

Read from the hub configuration's ``"ledger"`` section (all optional; zero
fees and ``D+1`` by default)::

    {"ledger": {
        "default_plan": "T+1",
        "plans": {"alice": "instant", "bob": "daily@23:00"},
        "channel_fees": {"rules": {"alipay-main": {"type": "percentage", "rate": "0.006"}}},
        "seller_fees": {"default": {"type": "percentage", "rate": "0.01"}},
        "instant_fee_rate": "0.002",
        "refund_fee_policy": "proportional",
        "seller_refund_fee_policy": "proportional",
        "withdrawal": {"minimum": 1000, "fee": {"type": "fixed", "amount": 200}},
        "calendar": {...}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.fees import (
    FeeRule,
    FeeSchedule,
    PercentageFee,
    RefundFeePolicy,
    Rounding,
    parse_fee_rule,
)
from payhub.ledger._model import check_party
from payhub.ledger._plans import Plan, parse_plan
from payhub.money import Money
from payhub.settlement.calendars import WorkingDays, calendar_from_config

__all__ = ["DEFAULT_PLAN", "LedgerConfig", "WithdrawalRules"]

DEFAULT_PLAN = "D+1"
_KEYS = frozenset(
    {
        "default_plan",
        "plans",
        "channel_fees",
        "seller_fees",
        "instant_fee_rate",
        "refund_fee_policy",
        "seller_refund_fee_policy",
        "withdrawal",
        "calendar",
        "rounding",
    }
)


@dataclass(frozen=True)
class WithdrawalRules:
    """A withdrawal must be at least ``minimum`` minor units; ``fee`` prices it."""

    minimum: int = 1
    fee: FeeRule | None = None


@dataclass
class LedgerConfig:
    """Everything the posting rules need to know that is not in the fact itself."""

    default_plan: str = DEFAULT_PLAN
    plans: dict[str, str] = field(default_factory=dict)
    channel_fees: FeeSchedule = field(default_factory=FeeSchedule)
    seller_fees: FeeSchedule = field(default_factory=FeeSchedule)
    instant_fee_rate: Decimal = Decimal(0)
    refund_fee_policy: RefundFeePolicy = RefundFeePolicy.PROPORTIONAL
    seller_refund_fee_policy: RefundFeePolicy = RefundFeePolicy.PROPORTIONAL
    withdrawal: WithdrawalRules = field(default_factory=WithdrawalRules)
    calendar: WorkingDays | None = None
    rounding: Rounding = Rounding.HALF_UP

    def __post_init__(self) -> None:
        self._plans: dict[str, Plan] = {}
        self.plan_of(None)  # the default plan must parse
        for seller, code in self.plans.items():
            check_party(seller)
            self._plans[seller] = parse_plan(code, calendar=self.calendar)
        try:
            self._instant = PercentageFee(self.instant_fee_rate)
        except InvalidRequestError as exc:
            raise ConfigurationError(f"ledger.instant_fee_rate: {exc.message}") from None

    def plan_of(self, seller: str | None) -> Plan:
        if seller is not None and seller in self._plans:
            return self._plans[seller]
        plan = self._plans.get("\0default")
        if plan is None:
            plan = parse_plan(self.default_plan, calendar=self.calendar)
            self._plans["\0default"] = plan
        return plan

    def set_plan(self, seller: str, code: str) -> Plan:
        """Change a seller's plan for the payments posted from now on."""
        check_party(seller)
        plan = parse_plan(code, calendar=self.calendar)
        self.plans[seller] = code
        self._plans[seller] = plan
        return plan

    def channel_fee(self, channel: str | None, amount: Money) -> Money:
        if channel is None or (
            channel not in self.channel_fees and self.channel_fees.default is None
        ):
            return Money.zero(amount.currency)
        return self.channel_fees.compute(channel, amount, rounding=self.rounding)

    def seller_fee(self, seller: str, amount: Money) -> Money:
        if seller not in self.seller_fees and self.seller_fees.default is None:
            return Money.zero(amount.currency)
        return self.seller_fees.compute(seller, amount, rounding=self.rounding)

    def instant_fee(self, amount: Money) -> Money:
        return self._instant.compute(amount, rounding=self.rounding)

    def withdrawal_fee(self, amount: Money) -> Money:
        rule = self.withdrawal.fee
        return Money.zero(amount.currency) if rule is None else rule.compute(amount)

    @classmethod
    def from_config(cls, config: object) -> LedgerConfig:
        """Read the ``"ledger"`` section; any mistake is a :class:`ConfigurationError`."""
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ConfigurationError("ledger: expected a mapping")
        unknown = set(config) - _KEYS
        if unknown:
            raise ConfigurationError(f"ledger: unknown keys {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        if "calendar" in config:
            kwargs["calendar"] = calendar_from_config(config["calendar"])
        if "default_plan" in config:
            kwargs["default_plan"] = config["default_plan"]
        plans = config.get("plans", {})
        if not isinstance(plans, Mapping):
            raise ConfigurationError("ledger.plans: expected {seller: plan}")
        kwargs["plans"] = dict(plans)
        for key in ("channel_fees", "seller_fees"):
            if key in config:
                kwargs[key] = FeeSchedule.from_config(config[key], path=f"ledger.{key}")
        if "instant_fee_rate" in config:
            rate = config["instant_fee_rate"]
            if not isinstance(rate, str):
                raise ConfigurationError(
                    "ledger.instant_fee_rate: a decimal string such as '0.002'"
                )
            try:
                kwargs["instant_fee_rate"] = Decimal(rate)
            except ArithmeticError:
                raise ConfigurationError("ledger.instant_fee_rate: not a decimal") from None
        for key in ("refund_fee_policy", "seller_refund_fee_policy"):
            if key in config:
                try:
                    kwargs[key] = RefundFeePolicy(config[key])
                except ValueError:
                    raise ConfigurationError(
                        f"ledger.{key}: one of {[p.value for p in RefundFeePolicy]}"
                    ) from None
        if "rounding" in config:
            try:
                kwargs["rounding"] = Rounding[str(config["rounding"]).upper()]
            except KeyError:
                raise ConfigurationError(
                    f"ledger.rounding: one of {[r.name for r in Rounding]}"
                ) from None
        if "withdrawal" in config:
            kwargs["withdrawal"] = _withdrawal(config["withdrawal"])
        return cls(**kwargs)


def _withdrawal(config: object) -> WithdrawalRules:
    if not isinstance(config, Mapping) or set(config) - {"minimum", "fee"}:
        raise ConfigurationError("ledger.withdrawal: expected {'minimum': minor, 'fee': {rule}}")
    minimum = config.get("minimum", 1)
    if type(minimum) is not int or minimum < 1:
        raise ConfigurationError("ledger.withdrawal.minimum: a positive integer of minor units")
    fee = config.get("fee")
    rule = None if fee is None else parse_fee_rule(fee, path="ledger.withdrawal.fee")
    return WithdrawalRules(minimum=minimum, fee=rule)
