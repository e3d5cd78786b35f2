"""Fee rules: what a channel charges for a payment, what the platform charges a seller.

A rule turns a payment amount into a fee, exactly, in integer minor units:

>>> from decimal import Decimal
>>> rule = PercentageFee(Decimal("0.006"), minimum=Money(1, "CNY"))
>>> rule.compute(Money(12345, "CNY"))
Money(74, 'CNY')
>>> rule.compute(Money(12345, "CNY"), rounding=Rounding.UP)
Money(75, 'CNY')

Rates are :class:`~decimal.Decimal` only: a float, an int or a string is
refused, so ``0.006`` (a binary float) can never slip in. Every rounding names
its mode (:class:`Rounding`, ``HALF_UP`` by default); the arithmetic is exact
integer arithmetic on the rate's numerator and denominator, so no decimal
context precision can round twice.

Every fee is clamped to ``[0, amount]``: a rule never yields a negative fee,
and never more than the payment itself (a 0.50 payment under a 1.00 minimum
costs 0.50). Every rule is non-decreasing in the amount; a tiered schedule
whose fee would *fall* across a tier boundary is refused unless asked for with
``allow_decrease=True``.

:class:`FeeSchedule` maps channel account names (what each channel charges) or
merchant names (what the platform charges its sellers) to rules, and is read
from a plain dict with :meth:`FeeSchedule.from_config`.

:func:`fee_to_return` says how much of the fee comes back with a refund under
a :class:`RefundFeePolicy`.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Final, TypeAlias

from payhub.errors import (
    AmountError,
    ConfigurationError,
    CurrencyMismatchError,
    ErrorCode,
    InvalidRequestError,
)
from payhub.money import Money

__all__ = [
    "MAX_RATE_PLACES",
    "FeeRule",
    "FeeSchedule",
    "FixedFee",
    "FixedPlusPercentageFee",
    "PercentageFee",
    "RefundFeePolicy",
    "Rounding",
    "TierBasis",
    "TieredFee",
    "fee_to_return",
    "parse_fee_rule",
]

#: A rate may have at most this many decimal places (0.000000000001 = one in 10^12).
MAX_RATE_PLACES: Final = 12


class Rounding(enum.Enum):
    """How a fraction of a minor unit is rounded. Each member's value is a :mod:`decimal` mode."""

    HALF_UP = ROUND_HALF_UP
    HALF_EVEN = ROUND_HALF_EVEN
    DOWN = ROUND_DOWN
    UP = ROUND_UP

    @property
    def decimal_mode(self) -> str:
        """The :mod:`decimal` rounding constant, e.g. ``decimal.ROUND_HALF_UP``."""
        return str(self.value)


def _round_ratio(numerator: int, denominator: int, rounding: Rounding) -> int:
    """``numerator / denominator`` rounded to an integer with ``rounding``, exactly.

    Only for ``numerator >= 0`` and ``denominator > 0`` (fees and refunds are
    never negative), where DOWN is toward zero and UP away from it.
    """
    if numerator < 0 or denominator <= 0:
        raise ValueError("_round_ratio needs numerator >= 0 and denominator > 0")
    quotient, rest = divmod(numerator, denominator)
    if rest == 0 or rounding is Rounding.DOWN:
        return quotient
    if rounding is Rounding.UP:
        return quotient + 1
    twice = 2 * rest
    if twice > denominator:
        return quotient + 1
    if twice < denominator:
        return quotient
    if rounding is Rounding.HALF_UP:
        return quotient + 1
    return quotient + (quotient % 2)  # HALF_EVEN: a tie goes to the even neighbour


def _apply_rate(amount: Money, rate: Decimal, rounding: Rounding) -> Money:
    numerator, denominator = rate.as_integer_ratio()
    return Money(_round_ratio(amount.minor * numerator, denominator, rounding), amount.currency)


# -- validation helpers ---------------------------------------------------------


def _check_rate(rate: object, what: str = "rate") -> Decimal:
    if isinstance(rate, float):
        raise InvalidRequestError(
            f"{what} must be a Decimal, not a float: write Decimal('0.006'), never 0.006"
        )
    if not isinstance(rate, Decimal):
        raise InvalidRequestError(
            f"{what} must be a Decimal, not {type(rate).__name__}: convert it explicitly, "
            "e.g. Decimal('0.006')"
        )
    if not rate.is_finite():
        raise InvalidRequestError(f"{what} must be a finite Decimal, not {rate}")
    if rate < 0 or rate > 1:
        raise InvalidRequestError(f"{what} must be between 0 and 1, not {rate}")
    exponent = rate.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_RATE_PLACES:
        raise InvalidRequestError(f"{what} has more than {MAX_RATE_PLACES} decimal places")
    return rate


def _check_money(value: object, what: str) -> Money:
    if not isinstance(value, Money):
        raise InvalidRequestError(f"{what} must be Money, not {type(value).__name__}")
    if value.minor < 0:
        raise AmountError(f"{what} must not be negative, got {value}")
    return value


def _common_currency(what: str, *values: Money | None) -> str | None:
    currencies = {v.currency for v in values if v is not None}
    if len(currencies) > 1:
        raise CurrencyMismatchError(f"{what} mixes currencies {sorted(currencies)}")
    return currencies.pop() if currencies else None


def _check_bounds(minimum: Money | None, maximum: Money | None) -> None:
    if minimum is not None:
        _check_money(minimum, "minimum")
    if maximum is not None:
        _check_money(maximum, "maximum")
    _common_currency("minimum and maximum", minimum, maximum)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InvalidRequestError(f"minimum {minimum} is above maximum {maximum}")


def _bounded(fee: Money, minimum: Money | None, maximum: Money | None) -> Money:
    if minimum is not None and fee < minimum:
        fee = minimum
    if maximum is not None and fee > maximum:
        fee = maximum
    return fee


# -- rules ------------------------------------------------------------------------


class _Rule(abc.ABC):
    """What every rule shares: input checks and the final clamp to ``[0, amount]``."""

    def compute(
        self,
        amount: Money,
        *,
        monthly_volume: Money | None = None,
        rounding: Rounding = Rounding.HALF_UP,
    ) -> Money:
        """The fee for a payment of ``amount``, never negative and never above ``amount``.

        ``monthly_volume`` is the month's volume *before* this payment; only a
        rule tiered by monthly volume needs it, the others ignore it.
        """
        _check_money(amount, "amount")
        if not isinstance(rounding, Rounding):
            raise InvalidRequestError(f"rounding must be a Rounding, not {rounding!r}")
        currency = self.currency
        if currency is not None and currency != amount.currency:
            raise CurrencyMismatchError(
                f"a fee rule in {currency} cannot price an amount in {amount.currency}"
            )
        if monthly_volume is not None:
            _check_money(monthly_volume, "monthly_volume")
            if monthly_volume.currency != amount.currency:
                raise CurrencyMismatchError(
                    f"monthly_volume is in {monthly_volume.currency}, the amount in "
                    f"{amount.currency}"
                )
        fee = self._fee(amount, monthly_volume, rounding)
        return min(max(fee, Money.zero(amount.currency)), amount)

    @property
    @abc.abstractmethod
    def currency(self) -> str | None:
        """The currency of the rule's fixed amounts, or None when it has none."""

    @abc.abstractmethod
    def _fee(self, amount: Money, monthly_volume: Money | None, rounding: Rounding) -> Money:
        """The fee before the clamp to ``[0, amount]``; inputs are already checked."""


@dataclass(frozen=True)
class PercentageFee(_Rule):
    """``amount × rate``, rounded, then raised to ``minimum`` and lowered to ``maximum``."""

    rate: Decimal
    minimum: Money | None = None
    maximum: Money | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate)
        _check_bounds(self.minimum, self.maximum)

    @property
    def currency(self) -> str | None:
        return _common_currency("the rule", self.minimum, self.maximum)

    def _fee(self, amount: Money, monthly_volume: Money | None, rounding: Rounding) -> Money:
        return _bounded(_apply_rate(amount, self.rate, rounding), self.minimum, self.maximum)


@dataclass(frozen=True)
class FixedFee(_Rule):
    """The same ``amount`` for every payment (capped at the payment amount)."""

    amount: Money

    def __post_init__(self) -> None:
        _check_money(self.amount, "amount")

    @property
    def currency(self) -> str | None:
        return self.amount.currency

    def _fee(self, amount: Money, monthly_volume: Money | None, rounding: Rounding) -> Money:
        return self.amount


@dataclass(frozen=True)
class FixedPlusPercentageFee(_Rule):
    """``fixed + amount × rate`` (the rate part rounded), then bounded by minimum and maximum."""

    fixed: Money
    rate: Decimal
    minimum: Money | None = None
    maximum: Money | None = None

    def __post_init__(self) -> None:
        _check_money(self.fixed, "fixed")
        _check_rate(self.rate)
        _check_bounds(self.minimum, self.maximum)
        _common_currency("the rule", self.fixed, self.minimum, self.maximum)

    @property
    def currency(self) -> str | None:
        return self.fixed.currency

    def _fee(self, amount: Money, monthly_volume: Money | None, rounding: Rounding) -> Money:
        fee = self.fixed + _apply_rate(amount, self.rate, rounding)
        return _bounded(fee, self.minimum, self.maximum)


class TierBasis(enum.Enum):
    """What chooses the tier of a :class:`TieredFee`."""

    AMOUNT = "amount"
    MONTHLY_VOLUME = "monthly_volume"


_SIMPLE_RULES: Final = (PercentageFee, FixedFee, FixedPlusPercentageFee)


@dataclass(frozen=True)
class TieredFee(_Rule):
    """A rule chosen by tier: ``tiers`` is a list of ``(below, rule)``.

    ``below`` is the tier's upper bound, exclusive; the last tier's is None
    (no bound). With ``by=TierBasis.AMOUNT`` the payment amount picks the tier
    and the tier's rule prices the whole amount; with ``marginal=True`` each
    tier's rule prices only the part of the amount inside the tier (like tax
    brackets) and the parts' fees are added. With
    ``by=TierBasis.MONTHLY_VOLUME`` the month's volume before this payment
    picks the tier (``compute`` then needs ``monthly_volume``).

    Tier rules of an amount-tiered fee are simple (percentage, fixed,
    fixed-plus-percentage); a volume-tiered fee may also hold amount-tiered
    ones. A whole-amount schedule whose fee would fall across a boundary
    (say 1.00 fixed below 100.00, then 0.38 %) is refused, since a larger
    payment would cost less, unless ``allow_decrease=True``.
    """

    tiers: Sequence[tuple[Money | None, FeeRule]]
    by: TierBasis = TierBasis.AMOUNT
    marginal: bool = False
    allow_decrease: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.by, TierBasis):
            raise InvalidRequestError(f"by must be a TierBasis, not {self.by!r}")
        tiers = tuple(tuple(tier) for tier in self.tiers)
        if not tiers:
            raise InvalidRequestError("a tiered fee needs at least one tier")
        if any(len(tier) != 2 for tier in tiers):
            raise InvalidRequestError("each tier is a pair (below, rule)")
        object.__setattr__(self, "tiers", tiers)
        self._check_bounds()
        self._check_rules()
        if self.marginal and self.by is not TierBasis.AMOUNT:
            raise InvalidRequestError("only a fee tiered by amount can be marginal")
        if self.by is TierBasis.AMOUNT and not self.marginal and not self.allow_decrease:
            self._check_no_decrease()

    def _check_bounds(self) -> None:
        previous: Money | None = None
        for index, (below, _) in enumerate(self.tiers):
            last = index == len(self.tiers) - 1
            if below is None:
                if not last:
                    raise InvalidRequestError("only the last tier may have no upper bound")
                continue
            if last:
                raise InvalidRequestError(
                    "the last tier must have no upper bound (below=None), so every amount "
                    "has a tier"
                )
            _check_money(below, f"tier {index} bound")
            if below.is_zero():
                raise InvalidRequestError(f"tier {index} bound must be positive")
            if previous is not None:
                _common_currency("tier bounds", previous, below)
                if below <= previous:
                    raise InvalidRequestError("tier bounds must increase strictly")
            previous = below

    def _check_rules(self) -> None:
        allowed: tuple[type[_Rule], ...] = _SIMPLE_RULES
        if self.by is TierBasis.MONTHLY_VOLUME:
            allowed = (*_SIMPLE_RULES, TieredFee)
        for index, (_, rule) in enumerate(self.tiers):
            if not isinstance(rule, allowed):
                raise InvalidRequestError(
                    f"tier {index} rule must be one of {[t.__name__ for t in allowed]}, "
                    f"not {type(rule).__name__}"
                )
            if isinstance(rule, TieredFee) and rule.by is not TierBasis.AMOUNT:
                raise InvalidRequestError(
                    f"tier {index}: a volume tier may hold an amount-tiered rule, not a "
                    "volume-tiered one"
                )
        _common_currency(
            "the tiered fee",
            *(below for below, _ in self.tiers),
            *(_rule_money(rule) for _, rule in self.tiers),
        )

    def _check_no_decrease(self) -> None:
        for index in range(len(self.tiers) - 1):
            below, rule = self.tiers[index]
            assert below is not None  # checked: only the last tier is unbounded
            next_rule = self.tiers[index + 1][1]
            just_below = Money(below.minor - 1, below.currency)
            for rounding in Rounding:
                before = rule.compute(just_below, rounding=rounding)
                after = next_rule.compute(below, rounding=rounding)
                if after < before:
                    raise InvalidRequestError(
                        f"the fee falls from {before} at {just_below} to {after} at {below} "
                        f"({rounding.name}); pass allow_decrease=True if that is intended"
                    )

    @property
    def currency(self) -> str | None:
        return _common_currency(
            "the tiered fee",
            *(below for below, _ in self.tiers),
            *(_rule_money(rule) for _, rule in self.tiers),
        )

    def _tier_rule(self, value: Money) -> FeeRule:
        for below, rule in self.tiers:
            if below is None or value < below:
                return rule
        raise AssertionError("the last tier is unbounded")  # pragma: no cover

    def _fee(self, amount: Money, monthly_volume: Money | None, rounding: Rounding) -> Money:
        if self.by is TierBasis.MONTHLY_VOLUME:
            if monthly_volume is None:
                raise InvalidRequestError(
                    "this fee is tiered by monthly volume: pass monthly_volume"
                )
            return self._tier_rule(monthly_volume).compute(amount, rounding=rounding)
        if not self.marginal:
            return self._tier_rule(amount).compute(amount, rounding=rounding)
        total = Money.zero(amount.currency)
        lower = 0
        for below, rule in self.tiers:
            upper = amount.minor if below is None else min(amount.minor, below.minor)
            if upper <= lower:
                break
            total += rule.compute(Money(upper - lower, amount.currency), rounding=rounding)
            lower = upper
        return total


FeeRule: TypeAlias = PercentageFee | FixedFee | FixedPlusPercentageFee | TieredFee
_RULE_TYPES: Final = (PercentageFee, FixedFee, FixedPlusPercentageFee, TieredFee)


def _rule_money(rule: FeeRule) -> Money | None:
    """Some Money of the rule, to compare currencies (None if it has none)."""
    currency = rule.currency
    return None if currency is None else Money.zero(currency)


# -- refunds ----------------------------------------------------------------------


class RefundFeePolicy(enum.Enum):
    """How much of a payment's fee comes back when the payment is refunded.

    ``PROPORTIONAL``: the fee comes back in proportion to the amount refunded,
    computed cumulatively, so the partial refunds together return exactly the
    whole fee once the payment is refunded in full.
    ``NONE``: the fee is never returned.
    ``FULL``: the fee is returned only when the payment is refunded in full:
    the refund that completes the full refund returns the whole (remaining)
    fee, and every partial refund before it returns nothing.
    """

    PROPORTIONAL = "proportional"
    NONE = "none"
    FULL = "full"


def fee_to_return(
    policy: RefundFeePolicy,
    *,
    amount: Money,
    fee: Money,
    refunded: Money,
    fee_returned: Money,
    refund: Money,
    rounding: Rounding = Rounding.HALF_UP,
) -> Money:
    """The part of ``fee`` returned with a new refund of ``refund``.

    ``amount`` and ``fee`` are the original payment and its fee; ``refunded``
    and ``fee_returned`` what earlier refunds of it took back. Under
    PROPORTIONAL the fee returned so far after this refund is
    ``round(fee × refunded_after / amount)`` (``rounding``, HALF_UP by default)
    and this refund returns that minus ``fee_returned`` (never less than 0).
    In every policy the fee returned over all refunds never exceeds ``fee``.

    >>> fee_to_return(RefundFeePolicy.PROPORTIONAL, amount=Money(1000), fee=Money(6),
    ...               refunded=Money(0), fee_returned=Money(0), refund=Money(250))
    Money(2, 'CNY')

    Raises :class:`AmountError` (code ``REFUND_EXCEEDS_PAID``) when the refund
    is more than what is left to refund.
    """
    if not isinstance(policy, RefundFeePolicy):
        raise InvalidRequestError(f"policy must be a RefundFeePolicy, not {policy!r}")
    if not isinstance(rounding, Rounding):
        raise InvalidRequestError(f"rounding must be a Rounding, not {rounding!r}")
    for what, value in (
        ("amount", amount),
        ("fee", fee),
        ("refunded", refunded),
        ("fee_returned", fee_returned),
        ("refund", refund),
    ):
        _check_money(value, what)
    currency = amount.currency
    _common_currency("the refund", amount, fee, refunded, fee_returned, refund)
    if refund.is_zero():
        raise AmountError("a refund must be positive")
    if refunded > amount:
        raise InvalidRequestError(f"already refunded {refunded} is more than the amount {amount}")
    if fee_returned > fee:
        raise InvalidRequestError(f"fee already returned {fee_returned} is more than the fee {fee}")
    after = refunded + refund
    if after > amount:
        raise AmountError(
            f"refund of {refund} exceeds the {amount - refunded} left to refund",
            code=ErrorCode.REFUND_EXCEEDS_PAID,
        )
    if policy is RefundFeePolicy.NONE:
        return Money.zero(currency)
    if policy is RefundFeePolicy.FULL:
        return fee - fee_returned if after == amount else Money.zero(currency)
    target = _round_ratio(fee.minor * after.minor, amount.minor, rounding)
    return Money(max(target - fee_returned.minor, 0), currency)


# -- configuration ----------------------------------------------------------------

_RATE_RE: Final = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
_RULE_KEYS: Final[dict[str, frozenset[str]]] = {
    "percentage": frozenset({"type", "currency", "rate", "min", "max"}),
    "fixed": frozenset({"type", "currency", "amount"}),
    "fixed_plus_percentage": frozenset({"type", "currency", "fixed", "rate", "min", "max"}),
    "tiered": frozenset({"type", "currency", "by", "marginal", "allow_decrease", "tiers"}),
}


def _mapping(config: object, path: str) -> Mapping[str, object]:
    if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
        raise ConfigurationError(f"{path}: expected a mapping with string keys")
    return config


def _config_rate(value: object, path: str) -> Decimal:
    if isinstance(value, float):
        raise ConfigurationError(f"{path}: a rate is a string such as '0.006', never a float")
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or _RATE_RE.fullmatch(value) is None:
        raise ConfigurationError(f"{path}: a rate is a decimal string such as '0.006'")
    return Decimal(value)


def _config_minor(value: object, path: str, currency: str) -> Money:
    if isinstance(value, float):
        raise ConfigurationError(f"{path}: amounts are integer minor units, never floats")
    if type(value) is not int or value < 0:
        raise ConfigurationError(f"{path}: expected a non-negative integer of minor units")
    return Money(value, currency)


def _config_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{path}: expected true or false")
    return value


def _optional_minor(config: Mapping[str, object], key: str, path: str, cur: str) -> Money | None:
    value = config.get(key)
    return None if value is None else _config_minor(value, f"{path}.{key}", cur)


def parse_fee_rule(config: object, *, currency: str = "CNY", path: str = "fee") -> FeeRule:
    """Build a rule from a plain dict; amounts are integer minor units, rates strings.

    >>> parse_fee_rule({"type": "percentage", "rate": "0.006", "min": 1, "max": 2000})
    PercentageFee(rate=Decimal('0.006'), minimum=Money(1, 'CNY'), maximum=Money(2000, 'CNY'))

    Types: ``percentage`` (rate, min, max), ``fixed`` (amount),
    ``fixed_plus_percentage`` (fixed, rate, min, max), ``tiered`` (tiers: a list
    of ``{"below": minor or null, "rule": {...}}``, by: ``amount`` or
    ``monthly_volume``, marginal, allow_decrease). ``currency`` (default CNY)
    may be set on any rule and applies to the rules inside it. Any mistake
    raises :class:`ConfigurationError` naming where it is (``path``).
    """
    conf = _mapping(config, path)
    if "currency" in conf:
        currency_value = conf["currency"]
        if not isinstance(currency_value, str):
            raise ConfigurationError(f"{path}.currency: expected a currency code")
        currency = currency_value
    try:
        Money.zero(currency)
    except AmountError:
        raise ConfigurationError(f"{path}.currency: unknown currency {currency!r}") from None
    kind = conf.get("type")
    if not isinstance(kind, str) or kind not in _RULE_KEYS:
        raise ConfigurationError(f"{path}.type: expected one of {sorted(_RULE_KEYS)}, got {kind!r}")
    unknown = set(conf) - _RULE_KEYS[kind]
    if unknown:
        raise ConfigurationError(f"{path}: unknown keys {sorted(unknown)} for a {kind} fee")
    try:
        return _build_rule(kind, conf, currency, path)
    except ConfigurationError:
        raise
    except InvalidRequestError as exc:
        raise ConfigurationError(f"{path}: {exc.message}") from exc


def _required(config: Mapping[str, object], key: str, path: str) -> object:
    if key not in config:
        raise ConfigurationError(f"{path}: missing {key!r}")
    return config[key]


def _build_rule(kind: str, conf: Mapping[str, object], currency: str, path: str) -> FeeRule:
    if kind == "fixed":
        return FixedFee(_config_minor(_required(conf, "amount", path), f"{path}.amount", currency))
    minimum = _optional_minor(conf, "min", path, currency)
    maximum = _optional_minor(conf, "max", path, currency)
    if kind == "percentage":
        rate = _config_rate(_required(conf, "rate", path), f"{path}.rate")
        return PercentageFee(rate, minimum=minimum, maximum=maximum)
    if kind == "fixed_plus_percentage":
        fixed = _config_minor(_required(conf, "fixed", path), f"{path}.fixed", currency)
        rate = _config_rate(_required(conf, "rate", path), f"{path}.rate")
        return FixedPlusPercentageFee(fixed, rate, minimum=minimum, maximum=maximum)
    by_value = conf.get("by", "amount")
    try:
        by = TierBasis(by_value)
    except ValueError:
        raise ConfigurationError(
            f"{path}.by: expected 'amount' or 'monthly_volume', got {by_value!r}"
        ) from None
    tiers_value = _required(conf, "tiers", path)
    if not isinstance(tiers_value, list | tuple):
        raise ConfigurationError(f"{path}.tiers: expected a list")
    tiers: list[tuple[Money | None, FeeRule]] = []
    for index, tier_value in enumerate(tiers_value):
        tier_path = f"{path}.tiers[{index}]"
        tier = _mapping(tier_value, tier_path)
        if set(tier) - {"below", "rule"}:
            raise ConfigurationError(f"{tier_path}: only 'below' and 'rule' are allowed")
        below = _optional_minor(tier, "below", tier_path, currency)
        rule = parse_fee_rule(
            _required(tier, "rule", tier_path), currency=currency, path=f"{tier_path}.rule"
        )
        tiers.append((below, rule))
    return TieredFee(
        tiers,
        by=by,
        marginal=_config_bool(conf.get("marginal", False), f"{path}.marginal"),
        allow_decrease=_config_bool(conf.get("allow_decrease", False), f"{path}.allow_decrease"),
    )


# -- schedules --------------------------------------------------------------------


class FeeSchedule(Mapping[str, FeeRule]):
    """Fee rules by name: channel account names, or merchant names, with a default.

    Keep one schedule for what channels charge (keyed by channel account) and
    one for what the platform charges sellers (keyed by merchant).

    >>> from decimal import Decimal
    >>> schedule = FeeSchedule({"alipay-main": PercentageFee(Decimal("0.006"))})
    >>> schedule.compute("alipay-main", Money(10000))
    Money(60, 'CNY')
    """

    __slots__ = ("_default", "_rules")

    def __init__(
        self, rules: Mapping[str, FeeRule] | None = None, *, default: FeeRule | None = None
    ) -> None:
        checked: dict[str, FeeRule] = {}
        for name, rule in (rules or {}).items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"fee schedule names must be non-empty strings: {name!r}")
            if not isinstance(rule, _RULE_TYPES):
                raise ConfigurationError(f"fee schedule {name!r}: not a fee rule: {rule!r}")
            checked[name] = rule
        if default is not None and not isinstance(default, _RULE_TYPES):
            raise ConfigurationError(f"fee schedule default: not a fee rule: {default!r}")
        self._rules = checked
        self._default = default

    def __getitem__(self, name: str) -> FeeRule:
        return self._rules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"FeeSchedule({self._rules!r}, default={self._default!r})"

    @property
    def default(self) -> FeeRule | None:
        return self._default

    def rule_for(self, name: str) -> FeeRule:
        """The rule of ``name``, else the default; :class:`ConfigurationError` if neither."""
        rule = self._rules.get(name, self._default)
        if rule is None:
            raise ConfigurationError(f"no fee rule for {name!r} and no default")
        return rule

    def compute(
        self,
        name: str,
        amount: Money,
        *,
        monthly_volume: Money | None = None,
        rounding: Rounding = Rounding.HALF_UP,
    ) -> Money:
        """The fee ``name``'s rule charges for ``amount``."""
        return self.rule_for(name).compute(amount, monthly_volume=monthly_volume, rounding=rounding)

    @classmethod
    def from_config(cls, config: object, *, path: str = "fees") -> FeeSchedule:
        """Read ``{"currency": "CNY", "default": {rule}, "rules": {name: {rule}}}``.

        ``currency`` (default CNY) and ``default`` are optional. See
        :func:`parse_fee_rule` for the rule format.
        """
        conf = _mapping(config, path)
        unknown = set(conf) - {"currency", "default", "rules"}
        if unknown:
            raise ConfigurationError(f"{path}: unknown keys {sorted(unknown)}")
        currency = conf.get("currency", "CNY")
        if not isinstance(currency, str):
            raise ConfigurationError(f"{path}.currency: expected a currency code")
        rules_conf = _mapping(conf.get("rules", {}), f"{path}.rules")
        rules = {
            name: parse_fee_rule(value, currency=currency, path=f"{path}.rules.{name}")
            for name, value in rules_conf.items()
        }
        default_conf = conf.get("default")
        default = (
            None
            if default_conf is None
            else parse_fee_rule(default_conf, currency=currency, path=f"{path}.default")
        )
        return cls(rules, default=default)
