"""Splitting a total among receivers (payhub.splits)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payhub.errors import AmountError, CurrencyMismatchError, SplitError
from payhub.money import Money
from payhub.splits import (
    Share,
    ShareKind,
    SplitPart,
    SplitResult,
    check_alipay_royalty,
    check_wechat_profit_sharing,
    split,
)

PROPERTY = settings(max_examples=200, deadline=None, database=None)


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


def minors(result: SplitResult) -> list[int]:
    return [part.amount.minor for part in result]


# -- examples ---------------------------------------------------------------------------


def test_fixed_ratio_and_remainder() -> None:
    result = split(
        cny(1001),
        [
            Share.fixed("courier", cny(100)),
            Share.ratio("platform", Decimal("0.3")),
            Share.remainder("seller"),
        ],
    )
    assert result.as_dict() == {"courier": cny(100), "platform": cny(270), "seller": cny(631)}
    assert result.total == cny(1001)
    assert result.amount_of("seller") == cny(631)
    assert [part.receiver for part in result] == ["courier", "platform", "seller"]
    assert len(result) == 3
    with pytest.raises(KeyError):
        result.amount_of("nobody")


def test_relative_weights_without_remainder() -> None:
    assert minors(split(cny(100), [Share.ratio("a", 2), Share.ratio("b", 1)])) == [67, 33]
    assert minors(split(cny(90), [Share.ratio("a", 2), Share.ratio("b", 1)])) == [60, 30]
    assert minors(
        split(cny(100), [Share.ratio("a", Decimal("0.2")), Share.ratio("b", Decimal("0.2"))])
    ) == [50, 50]


def test_largest_fraction_wins_the_left_over_unit() -> None:
    # quotas 1/3 and 2/3 of one fen: the larger fraction takes it, though listed second
    assert minors(split(cny(1), [Share.ratio("a", 1), Share.ratio("b", 2)])) == [0, 1]
    # quotas 3.4, 3.3, 3.3: floors 3, 3, 3 and one unit left for the largest fraction
    assert minors(
        split(
            cny(10),
            [Share.ratio("a", Decimal(34)), Share.ratio("b", Decimal(33)), Share.ratio("c", 33)],
        )
    ) == [4, 3, 3]


def test_ties_go_to_the_earlier_share() -> None:
    assert minors(split(cny(100), [Share.ratio(r, 1) for r in "abc"])) == [34, 33, 33]
    assert minors(split(cny(2), [Share.ratio(r, 1) for r in "abc"])) == [1, 1, 0]
    assert minors(split(cny(2), [Share.ratio(r, 1) for r in "cba"])) == [1, 1, 0]


def test_remainder_takes_what_the_fractions_leave() -> None:
    shares = [
        Share.ratio("a", Decimal("0.25")),
        Share.remainder("r"),
        Share.ratio("b", Decimal("0.25")),
    ]
    assert minors(split(cny(10), shares)) == [3, 5, 2]  # 2.5, 5, 2.5: the tie goes to "a"
    assert minors(split(cny(0), shares)) == [0, 0, 0]
    full = [
        Share.ratio("a", Decimal("0.5")),
        Share.ratio("b", Decimal("0.5")),
        Share.remainder("r"),
    ]
    assert minors(split(cny(11), full)) == [6, 5, 0]


def test_remainder_alone_or_with_fixed_parts() -> None:
    assert minors(split(cny(500), [Share.remainder("seller")])) == [500]
    assert minors(split(cny(500), [Share.fixed("a", cny(120)), Share.remainder("seller")])) == [
        120,
        380,
    ]


def test_fixed_parts_equal_to_the_total() -> None:
    result = split(cny(300), [Share.fixed("a", cny(100)), Share.fixed("b", cny(200))])
    assert minors(result) == [100, 200]


def test_zero_weight_gets_nothing() -> None:
    assert minors(split(cny(99), [Share.ratio("a", 0), Share.ratio("b", 3)])) == [0, 99]
    assert minors(split(cny(50), [Share.fixed("a", cny(50)), Share.ratio("b", 0)])) == [50, 0]


def test_other_currencies() -> None:
    result = split(Money(1000, "JPY"), [Share.ratio("a", 1), Share.ratio("b", 2)])
    assert [part.amount for part in result] == [Money(333, "JPY"), Money(667, "JPY")]


@pytest.mark.parametrize(
    ("total", "shares", "message"),
    [
        (cny(100), [Share.fixed("a", cny(60)), Share.fixed("b", cny(41))], "more than the total"),
        (cny(100), [Share.fixed("a", cny(60))], "nobody|no ratio or remainder"),
        (cny(100), [Share.fixed("a", cny(60)), Share.ratio("b", 0)], "no ratio or remainder"),
        (cny(100), [], "at least one share"),
        (cny(100), [Share.ratio("a", 1), Share.ratio("a", 1)], "appears twice"),
        (cny(100), [Share.remainder("a"), Share.remainder("b")], "at most one remainder"),
        (
            cny(100),
            [
                Share.ratio("a", Decimal("0.6")),
                Share.ratio("b", Decimal("0.5")),
                Share.remainder("r"),
            ],
            "at most 1",
        ),
        (cny(100), [Share.ratio("a", 2), Share.remainder("r")], "at most 1"),
    ],
)
def test_impossible_splits(total: Money, shares: list[Share], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        split(total, shares)


def test_bad_inputs() -> None:
    with pytest.raises(AmountError, match="negative"):
        split(cny(-1), [Share.remainder("a")])
    with pytest.raises(CurrencyMismatchError):
        split(cny(100), [Share.fixed("a", Money(10, "USD")), Share.remainder("b")])
    with pytest.raises(SplitError, match="Money"):
        split(100, [Share.remainder("a")])  # type: ignore[arg-type]
    with pytest.raises(SplitError, match="not a Share"):
        split(cny(100), [("a", 1)])  # type: ignore[list-item]


@pytest.mark.parametrize("weight", [0.5, 1e-9])
def test_float_weights_are_refused(weight: float) -> None:
    with pytest.raises(SplitError, match="float"):
        Share.ratio("a", weight)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Share.ratio("a", True), "Decimal or an int"),
        (lambda: Share.ratio("a", "0.5"), "Decimal or an int"),  # type: ignore[arg-type]
        (lambda: Share.ratio("a", Decimal("NaN")), "finite"),
        (lambda: Share.ratio("a", -1), "negative"),
        (lambda: Share.fixed("a", cny(-1)), "negative"),
        (lambda: Share.fixed("a", 100), "Money"),  # type: ignore[arg-type]
        (lambda: Share.ratio("", 1), "non-empty"),
        (lambda: Share("a", ShareKind.REMAINDER, weight=1), "no weight or amount"),
        (lambda: Share("a", ShareKind.RATIO, weight=1, amount=cny(1)), "cannot have an amount"),
        (lambda: Share("a", ShareKind.FIXED, weight=1, amount=cny(1)), "cannot have a weight"),
        (lambda: Share("a", "ratio", weight=1), "ShareKind"),  # type: ignore[arg-type]
    ],
)
def test_bad_shares(make: Callable[[], object], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        make()


# -- properties ---------------------------------------------------------------------------

weights = st.integers(0, 1000) | st.decimals(
    min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False
)
fractions = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[Money, list[Share]]:
    total = draw(st.integers(0, 10**12))
    count = draw(st.integers(1, 12))
    with_remainder = draw(st.booleans())
    fixed_budget = total
    shares: list[Share] = []
    fraction_left = Decimal(1)
    for index in range(count):
        kind = draw(st.sampled_from(["fixed", "ratio"]))
        if kind == "fixed":
            amount = draw(st.integers(0, fixed_budget))
            fixed_budget -= amount
            shares.append(Share.fixed(f"f{index}", cny(amount)))
        elif with_remainder:
            weight = min(draw(fractions), fraction_left)
            fraction_left -= weight
            shares.append(Share.ratio(f"r{index}", weight))
        else:
            shares.append(Share.ratio(f"r{index}", draw(weights)))
    if with_remainder:
        shares.insert(draw(st.integers(0, len(shares))), Share.remainder("rest"))
    elif not any(s.kind is ShareKind.RATIO and s.weight for s in shares):
        shares.append(Share.ratio("last", 1))  # someone must take the rest
    return cny(total), shares


def exact_quotas(total: Money, shares: list[Share]) -> list[Fraction | None]:
    """Each ratio or remainder share's exact part; None for fixed shares."""
    rest = total.minor - sum(s.amount.minor for s in shares if s.amount is not None)
    ratio_sum = sum((Fraction(s.weight) for s in shares if s.weight is not None), Fraction(0))
    has_remainder = any(s.kind is ShareKind.REMAINDER for s in shares)
    quotas: list[Fraction | None] = []
    for share in shares:
        if share.kind is ShareKind.FIXED:
            quotas.append(None)
        elif share.kind is ShareKind.REMAINDER:
            quotas.append(rest * (1 - ratio_sum))
        elif has_remainder:
            quotas.append(rest * Fraction(share.weight or 0))
        else:
            quotas.append(rest * Fraction(share.weight or 0) / ratio_sum)
    return quotas


@PROPERTY
@given(case=split_cases())
def test_parts_add_up_exactly_and_stay_within_a_unit_of_their_quota(
    case: tuple[Money, list[Share]],
) -> None:
    total, shares = case
    result = split(total, shares)
    assert [part.receiver for part in result] == [s.receiver for s in shares]
    assert sum(minors(result)) == total.minor
    assert all(part.amount.minor >= 0 for part in result)
    assert all(part.amount.currency == "CNY" for part in result)
    for share, part, quota in zip(shares, result, exact_quotas(total, shares), strict=True):
        if quota is None:
            assert part.amount == share.amount
        else:
            assert quota - 1 < part.amount.minor < quota + 1


@PROPERTY
@given(
    total=st.integers(0, 10**12),
    weights_=st.lists(st.integers(0, 10**6), min_size=1, max_size=10).filter(any),
    scale=st.integers(2, 1000),
)
def test_only_relative_weights_matter(total: int, weights_: list[int], scale: int) -> None:
    plain = split(cny(total), [Share.ratio(str(i), w) for i, w in enumerate(weights_)])
    scaled = split(cny(total), [Share.ratio(str(i), w * scale) for i, w in enumerate(weights_)])
    assert plain == scaled


@PROPERTY
@given(
    total=st.integers(0, 10**9),
    fixed=st.lists(st.integers(0, 10**9), min_size=1, max_size=5),
)
def test_fixed_parts_over_the_total_raise(total: int, fixed: list[int]) -> None:
    shares = [Share.fixed(f"f{i}", cny(a)) for i, a in enumerate(fixed)] + [Share.remainder("r")]
    if sum(fixed) > total:
        with pytest.raises(SplitError, match="more than the total"):
            split(cny(total), shares)
    else:
        assert split(cny(total), shares).amount_of("r") == cny(total - sum(fixed))


# -- channel limits -----------------------------------------------------------------------


def test_wechat_profit_sharing_takes_at_most_50_receivers() -> None:
    check_wechat_profit_sharing([SplitPart(f"r{i}", cny(1)) for i in range(50)])
    with pytest.raises(SplitError, match="at most 50"):
        check_wechat_profit_sharing([SplitPart(f"r{i}", cny(1)) for i in range(51)])


def test_wechat_check_takes_a_split_result() -> None:
    result = split(cny(100), [Share.ratio("a", 1), Share.ratio("b", 1)])
    check_wechat_profit_sharing(result)
    zero = split(cny(1), [Share.ratio("a", 1), Share.ratio("b", 1)])
    with pytest.raises(SplitError, match="at least 1 fen"):
        check_wechat_profit_sharing(zero)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([], "at least one receiver"),
        ([SplitPart("a", cny(1)), SplitPart("a", cny(2))], "appears twice"),
        ([SplitPart("a", Money(1, "USD"))], "CNY"),
        ([SplitPart("a", cny(0))], "at least 1 fen"),
    ],
)
def test_wechat_profit_sharing_refusals(parts: list[SplitPart], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        check_wechat_profit_sharing(parts)


def test_alipay_royalty_accepts_whole_percentages_up_to_100() -> None:
    check_alipay_royalty({"a": 1})
    check_alipay_royalty({"a": 100})
    check_alipay_royalty({"a": 30, "b": 70})


@pytest.mark.parametrize(
    ("percentages", "message"),
    [
        ({}, "at least one receiver"),
        ({"a": 0}, "1 to 100"),
        ({"a": 101}, "1 to 100"),
        ({"a": -5}, "1 to 100"),
        ({"a": 1.5}, "must be an int"),
        ({"a": 20.0}, "must be an int"),
        ({"a": Decimal(20)}, "must be an int"),
        ({"a": "20"}, "must be an int"),
        ({"a": True}, "must be an int"),
        ({"a": 60, "b": 41}, "add up to 101"),
    ],
)
def test_alipay_royalty_refusals(percentages: dict[str, object], message: str) -> None:
    with pytest.raises(SplitError, match=message):
        check_alipay_royalty(percentages)  # type: ignore[arg-type]


@PROPERTY
@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.integers(-5, 110), max_size=6))
def test_alipay_royalty_check_matches_its_rule(percentages: dict[str, int]) -> None:
    valid = (
        bool(percentages)
        and all(1 <= p <= 100 for p in percentages.values())
        and sum(percentages.values()) <= 100
    )
    if valid:
        check_alipay_royalty(percentages)
    else:
        with pytest.raises(SplitError):
            check_alipay_royalty(percentages)
