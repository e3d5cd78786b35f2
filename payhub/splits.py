"""Splitting a payment among receivers (分账, profit sharing, royalties).

A split is a list of :class:`Share`: fixed amounts, ratios, and at most one
remainder receiver. Fixed parts are taken first; ratios share what is left.

>>> from decimal import Decimal
>>> result = split(Money(1001, "CNY"), [
...     Share.fixed("courier", Money(100, "CNY")),
...     Share.ratio("platform", Decimal("0.3")),
...     Share.remainder("seller"),
... ])
>>> result.as_dict()
{'courier': Money(100, 'CNY'), 'platform': Money(270, 'CNY'), 'seller': Money(631, 'CNY')}

Rules:

* Without a remainder receiver, ratio weights are relative (``2`` and ``1``
  give two thirds and one third of the rest). With one, they are fractions of
  the rest (``Decimal("0.3")`` is 30 %), summing to at most 1, and the
  remainder receiver takes the fraction left over (``1 - sum``).
* Units are apportioned by the largest-remainder (Hamilton) method: every
  receiver first gets its exact quota rounded down, then the units left over
  go one each to the largest fractional parts, ties broken by the order of the
  shares. So each part is within one minor unit of its exact quota, the parts
  always add up to the total exactly, and no part is negative.
* Fixed parts adding up to more than the total raise :class:`SplitError`, as
  does a rest that nobody takes.

Channel limits are checked separately: :func:`check_wechat_profit_sharing`
and :func:`check_alipay_royalty`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Final, NamedTuple

from payhub.errors import AmountError, CurrencyMismatchError, SplitError
from payhub.money import Money

__all__ = [
    "ALIPAY_ROYALTY_MAX_PERCENT",
    "WECHAT_PROFIT_SHARING_MAX_RECEIVERS",
    "Share",
    "ShareKind",
    "SplitPart",
    "SplitResult",
    "check_alipay_royalty",
    "check_wechat_profit_sharing",
    "split",
]

#: WeChat Pay takes at most this many receivers in one profit-sharing request.
WECHAT_PROFIT_SHARING_MAX_RECEIVERS: Final = 50
#: Alipay royalty percentages are whole numbers from 1 to this, and add up to at most this.
ALIPAY_ROYALTY_MAX_PERCENT: Final = 100


class ShareKind(enum.Enum):
    RATIO = "ratio"
    FIXED = "fixed"
    REMAINDER = "remainder"


@dataclass(frozen=True)
class Share:
    """One receiver's claim on a split.

    Build it with :meth:`ratio`, :meth:`fixed` or :meth:`remainder`.
    """

    receiver: str
    kind: ShareKind
    weight: Decimal | int | None = None
    amount: Money | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.receiver, str) or not self.receiver:
            raise SplitError(f"a receiver id must be a non-empty string, not {self.receiver!r}")
        if not isinstance(self.kind, ShareKind):
            raise SplitError(f"kind must be a ShareKind, not {self.kind!r}")
        if self.kind is ShareKind.RATIO:
            if self.amount is not None:
                raise SplitError(f"ratio share of {self.receiver!r} cannot have an amount")
            _check_weight(self.weight, self.receiver)
        elif self.kind is ShareKind.FIXED:
            if self.weight is not None:
                raise SplitError(f"fixed share of {self.receiver!r} cannot have a weight")
            if not isinstance(self.amount, Money):
                raise SplitError(f"fixed share of {self.receiver!r} needs a Money amount")
            if self.amount.minor < 0:
                raise SplitError(f"fixed share of {self.receiver!r} is negative: {self.amount}")
        elif self.weight is not None or self.amount is not None:
            raise SplitError(f"remainder share of {self.receiver!r} takes no weight or amount")

    @classmethod
    def ratio(cls, receiver: str, weight: Decimal | int) -> Share:
        return cls(receiver, ShareKind.RATIO, weight=weight)

    @classmethod
    def fixed(cls, receiver: str, amount: Money) -> Share:
        return cls(receiver, ShareKind.FIXED, amount=amount)

    @classmethod
    def remainder(cls, receiver: str) -> Share:
        return cls(receiver, ShareKind.REMAINDER)


def _check_weight(weight: object, receiver: str) -> Fraction:
    if isinstance(weight, float):
        raise SplitError(
            f"weight of {receiver!r} is a float; use Decimal('0.3') or an int, never 0.3"
        )
    if isinstance(weight, bool) or not isinstance(weight, int | Decimal):
        raise SplitError(f"weight of {receiver!r} must be a Decimal or an int, not {weight!r}")
    if isinstance(weight, Decimal) and not weight.is_finite():
        raise SplitError(f"weight of {receiver!r} must be finite, not {weight}")
    if weight < 0:
        raise SplitError(f"weight of {receiver!r} must not be negative, not {weight}")
    return Fraction(weight)


class SplitPart(NamedTuple):
    receiver: str
    amount: Money


@dataclass(frozen=True)
class SplitResult:
    """The parts of a split, in the order of the shares; they add up to ``total``."""

    total: Money
    parts: tuple[SplitPart, ...]

    def __iter__(self) -> Iterator[SplitPart]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def as_dict(self) -> dict[str, Money]:
        return {part.receiver: part.amount for part in self.parts}

    def amount_of(self, receiver: str) -> Money:
        for part in self.parts:
            if part.receiver == receiver:
                return part.amount
        raise KeyError(receiver)


def split(total: Money, shares: Sequence[Share]) -> SplitResult:
    """Split ``total`` among ``shares`` (see the module docstring for the rules).

    Every share gets a part, possibly zero, in the order given. Raises
    :class:`SplitError` for a split that cannot be made, :class:`AmountError`
    for a negative total, :class:`CurrencyMismatchError` for a fixed amount in
    another currency.
    """
    if not isinstance(total, Money):
        raise SplitError(f"total must be Money, not {type(total).__name__}")
    if total.minor < 0:
        raise AmountError(f"cannot split a negative total {total}")
    shares = tuple(shares)
    _check_shares(shares, total.currency)
    fixed = sum(
        (s.amount for s in shares if s.amount is not None), start=Money.zero(total.currency)
    )
    if fixed > total:
        raise SplitError(f"fixed parts add up to {fixed}, more than the total {total}")
    rest = (total - fixed).minor
    quotas = _quotas(shares, rest)
    minors = _apportion(quotas, rest)
    parts = []
    for index, share in enumerate(shares):
        minor = share.amount.minor if share.amount is not None else minors[index]
        parts.append(SplitPart(share.receiver, Money(minor, total.currency)))
    return SplitResult(total, tuple(parts))


def _check_shares(shares: tuple[Share, ...], currency: str) -> None:
    if not shares:
        raise SplitError("a split needs at least one share")
    seen: set[str] = set()
    for share in shares:
        if not isinstance(share, Share):
            raise SplitError(f"not a Share: {share!r}")
        if share.receiver in seen:
            raise SplitError(f"receiver {share.receiver!r} appears twice")
        seen.add(share.receiver)
        if share.amount is not None and share.amount.currency != currency:
            raise CurrencyMismatchError(
                f"fixed share of {share.receiver!r} is in {share.amount.currency}, "
                f"the total in {currency}"
            )
    if sum(share.kind is ShareKind.REMAINDER for share in shares) > 1:
        raise SplitError("a split takes at most one remainder receiver")


def _quotas(shares: tuple[Share, ...], rest: int) -> dict[int, Fraction]:
    """Each ratio or remainder share's exact part of ``rest``, by share index."""
    weights = {
        index: _check_weight(share.weight, share.receiver)
        for index, share in enumerate(shares)
        if share.kind is ShareKind.RATIO
    }
    weight_sum = sum(weights.values(), start=Fraction(0))
    remainder = next(
        (i for i, share in enumerate(shares) if share.kind is ShareKind.REMAINDER), None
    )
    if remainder is not None:
        if weight_sum > 1:
            raise SplitError(
                f"with a remainder receiver, ratio weights are fractions of the rest and must "
                f"add up to at most 1, not {weight_sum}"
            )
        quotas = {index: rest * weight for index, weight in weights.items()}
        quotas[remainder] = rest * (1 - weight_sum)
        return quotas
    if rest == 0:
        return {index: Fraction(0) for index in weights}
    if weight_sum == 0:
        raise SplitError(
            f"{rest} minor units are left after the fixed parts and no ratio or "
            "remainder receiver takes them"
        )
    return {index: rest * weight / weight_sum for index, weight in weights.items()}


def _apportion(quotas: dict[int, Fraction], rest: int) -> dict[int, int]:
    """Largest-remainder rounding of ``quotas`` (which add up to ``rest``) to integers."""
    floors = {index: quota.numerator // quota.denominator for index, quota in quotas.items()}
    left_over = rest - sum(floors.values())
    # Largest fractional part first; ties go to the earlier share (smaller index).
    order = sorted(quotas, key=lambda index: (-(quotas[index] - floors[index]), index))
    for index in order[:left_over]:
        floors[index] += 1
    return floors


def check_wechat_profit_sharing(parts: Iterable[SplitPart]) -> None:
    """Check parts against WeChat Pay profit sharing (分账) limits, or raise SplitError.

    At most 50 receivers a request, each a distinct receiver with at least
    one fen, in CNY. Leave out the part the merchant keeps itself (often the
    remainder receiver): it is unfrozen, not shared.
    """
    parts = list(parts)
    if not parts:
        raise SplitError("a WeChat profit-sharing request needs at least one receiver")
    if len(parts) > WECHAT_PROFIT_SHARING_MAX_RECEIVERS:
        raise SplitError(
            f"WeChat profit sharing takes at most {WECHAT_PROFIT_SHARING_MAX_RECEIVERS} "
            f"receivers a request, not {len(parts)}; split it into several requests"
        )
    seen: set[str] = set()
    for receiver, amount in parts:
        if receiver in seen:
            raise SplitError(f"receiver {receiver!r} appears twice")
        seen.add(receiver)
        if amount.currency != "CNY":
            raise SplitError(f"WeChat profit sharing is in CNY, not {amount.currency}")
        if amount.minor < 1:
            raise SplitError(
                f"WeChat profit sharing needs at least 1 fen per receiver; {receiver!r} "
                f"would get {amount}"
            )


def check_alipay_royalty(percentages: Mapping[str, int]) -> None:
    """Check Alipay royalty percentages (``amount_percentage``), or raise SplitError.

    Each is a whole number from 1 to 100 (an int: never a float, a Decimal or a
    string), and together they add up to at most 100.
    """
    if not percentages:
        raise SplitError("an Alipay royalty needs at least one receiver")
    for receiver, percent in percentages.items():
        if isinstance(percent, bool) or not isinstance(percent, int):
            raise SplitError(
                f"Alipay royalty percentage of {receiver!r} must be an int, not {percent!r}"
            )
        if not 1 <= percent <= ALIPAY_ROYALTY_MAX_PERCENT:
            raise SplitError(
                f"Alipay royalty percentage of {receiver!r} must be 1 to "
                f"{ALIPAY_ROYALTY_MAX_PERCENT}, not {percent}"
            )
    total = sum(percentages.values())
    if total > ALIPAY_ROYALTY_MAX_PERCENT:
        raise SplitError(
            f"Alipay royalty percentages add up to {total}, more than {ALIPAY_ROYALTY_MAX_PERCENT}"
        )
