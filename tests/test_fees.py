"""Fee rules, refund fee policy and fee schedules (payhub.fees)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payhub.errors import (
    AmountError,
    ConfigurationError,
    CurrencyMismatchError,
    ErrorCode,
    InvalidRequestError,
)
from payhub.fees import (
    FeeRule,
    FeeSchedule,
    FixedFee,
    FixedPlusPercentageFee,
    PercentageFee,
    RefundFeePolicy,
    Rounding,
    TierBasis,
    TieredFee,
    _round_ratio,
    fee_to_return,
    parse_fee_rule,
)
from payhub.money import Money

PROPERTY = settings(max_examples=150, deadline=None, database=None)


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


# -- percentage, fixed, fixed + percentage -------------------------------------------


def test_percentage_rounds_with_the_named_mode() -> None:
    rule = PercentageFee(Decimal("0.006"))
    amount = cny(12345)  # 74.07 fen
    assert rule.compute(amount) == cny(74)
    assert rule.compute(amount, rounding=Rounding.HALF_UP) == cny(74)
    assert rule.compute(amount, rounding=Rounding.DOWN) == cny(74)
    assert rule.compute(amount, rounding=Rounding.UP) == cny(75)


@pytest.mark.parametrize(
    ("amount", "rounding", "fee"),
    [
        (100, Rounding.HALF_UP, 1),  # 0.5
        (100, Rounding.HALF_EVEN, 0),
        (100, Rounding.DOWN, 0),
        (100, Rounding.UP, 1),
        (300, Rounding.HALF_UP, 2),  # 1.5
        (300, Rounding.HALF_EVEN, 2),
        (500, Rounding.HALF_EVEN, 2),  # 2.5
        (500, Rounding.HALF_UP, 3),
    ],
)
def test_ties_follow_the_rounding_mode(amount: int, rounding: Rounding, fee: int) -> None:
    assert PercentageFee(Decimal("0.005")).compute(cny(amount), rounding=rounding) == cny(fee)


def test_rounding_members_name_decimal_modes() -> None:
    assert Rounding.HALF_UP.decimal_mode == "ROUND_HALF_UP"
    assert Rounding.HALF_EVEN.decimal_mode == "ROUND_HALF_EVEN"
    assert Rounding.DOWN.decimal_mode == "ROUND_DOWN"
    assert Rounding.UP.decimal_mode == "ROUND_UP"


def test_percentage_minimum_and_maximum() -> None:
    rule = PercentageFee(Decimal("0.006"), minimum=cny(10), maximum=cny(2000))
    assert rule.compute(cny(100)) == cny(10)  # 0.6 raised to the minimum
    assert rule.compute(cny(100_000)) == cny(600)
    assert rule.compute(cny(10_000_000)) == cny(2000)  # 60000 lowered to the maximum


def test_fee_is_capped_at_the_amount() -> None:
    assert PercentageFee(Decimal("0.006"), minimum=cny(100)).compute(cny(50)) == cny(50)
    assert FixedFee(cny(30)).compute(cny(20)) == cny(20)
    assert FixedFee(cny(30)).compute(cny(0)) == cny(0)
    assert FixedPlusPercentageFee(cny(30), Decimal("0.029")).compute(cny(1)) == cny(1)


def test_fixed_and_fixed_plus_percentage() -> None:
    assert FixedFee(cny(30)).compute(cny(10_000)) == cny(30)
    rule = FixedPlusPercentageFee(cny(30), Decimal("0.029"))
    assert rule.compute(cny(10_000)) == cny(320)
    assert rule.compute(cny(10_017)) == cny(30 + 290)  # 290.493 rounds half up to 290
    capped = FixedPlusPercentageFee(cny(30), Decimal("0.029"), minimum=cny(50), maximum=cny(100))
    assert capped.compute(cny(100)) == cny(50)
    assert capped.compute(cny(100_000)) == cny(100)


def test_zero_rate_and_full_rate() -> None:
    assert PercentageFee(Decimal(0)).compute(cny(999)) == cny(0)
    assert PercentageFee(Decimal(1)).compute(cny(999)) == cny(999)


def test_jpy_has_no_minor_digits_but_rounds_the_same() -> None:
    assert PercentageFee(Decimal("0.036")).compute(Money(1250, "JPY")) == Money(45, "JPY")


@pytest.mark.parametrize("rate", [0.006, 1e-3])
def test_float_rate_is_refused(rate: float) -> None:
    with pytest.raises(InvalidRequestError, match="float"):
        PercentageFee(rate)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="float"):
        FixedPlusPercentageFee(cny(1), rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", ["0.006", 0, 1])
def test_rate_must_be_an_explicit_decimal(rate: object) -> None:
    with pytest.raises(InvalidRequestError, match="Decimal"):
        PercentageFee(rate)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (Decimal("-0.001"), "between 0 and 1"),
        (Decimal("1.0001"), "between 0 and 1"),
        (Decimal("0.0000000000001"), "decimal places"),
    ],
)
def test_bad_decimal_rates_are_refused(rate: Decimal, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        PercentageFee(rate)


def test_trailing_zeros_do_not_count_as_decimal_places() -> None:
    assert PercentageFee(Decimal("0.00600000000000000")).compute(cny(1000)) == cny(6)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="above maximum"):
        PercentageFee(Decimal("0.01"), minimum=cny(10), maximum=cny(5))
    with pytest.raises(CurrencyMismatchError):
        PercentageFee(Decimal("0.01"), minimum=cny(1), maximum=Money(5, "USD"))
    with pytest.raises(AmountError, match="negative"):
        FixedFee(cny(-1))
    with pytest.raises(CurrencyMismatchError):
        FixedPlusPercentageFee(cny(1), Decimal("0.01"), maximum=Money(5, "USD"))


def test_compute_checks_its_inputs() -> None:
    with pytest.raises(AmountError, match="negative"):
        PercentageFee(Decimal("0.01")).compute(cny(-100))
    with pytest.raises(CurrencyMismatchError):
        FixedFee(Money(30, "USD")).compute(cny(100))
    with pytest.raises(InvalidRequestError, match="Rounding"):
        PercentageFee(Decimal("0.01")).compute(cny(100), rounding="ROUND_HALF_UP")  # type: ignore[arg-type]
    with pytest.raises(CurrencyMismatchError):
        PercentageFee(Decimal("0.01")).compute(cny(100), monthly_volume=Money(1, "USD"))


def test_a_currency_free_percentage_prices_any_currency() -> None:
    assert PercentageFee(Decimal("0.01")).compute(Money(1000, "USD")) == Money(10, "USD")


# -- tiers ----------------------------------------------------------------------------


def test_amount_tiers_price_the_whole_amount() -> None:
    rule = TieredFee([(cny(10_000), FixedFee(cny(50))), (None, PercentageFee(Decimal("0.006")))])
    assert rule.compute(cny(9_999)) == cny(50)
    assert rule.compute(cny(10_000)) == cny(60)
    assert rule.compute(cny(20_000)) == cny(120)


def test_a_fee_falling_across_a_boundary_is_refused_unless_allowed() -> None:
    tiers = [(cny(10_000), PercentageFee(Decimal("0.01"))), (None, PercentageFee(Decimal("0.006")))]
    with pytest.raises(InvalidRequestError, match="falls"):
        TieredFee(tiers)
    rule = TieredFee(tiers, allow_decrease=True)
    assert rule.compute(cny(9_999)) == cny(100)
    assert rule.compute(cny(10_000)) == cny(60)


def test_marginal_tiers_price_each_slice() -> None:
    rule = TieredFee(
        [(cny(10_000), PercentageFee(Decimal("0.01"))), (None, PercentageFee(Decimal("0.005")))],
        marginal=True,
    )
    assert rule.compute(cny(5_000)) == cny(50)
    assert rule.compute(cny(30_000)) == cny(100 + 100)


def test_volume_tiers_use_the_volume_before_the_payment() -> None:
    rule = TieredFee(
        [
            (cny(1_000_000), PercentageFee(Decimal("0.006"))),
            (None, PercentageFee(Decimal("0.0038"))),
        ],
        by=TierBasis.MONTHLY_VOLUME,
    )
    assert rule.compute(cny(10_000), monthly_volume=cny(0)) == cny(60)
    assert rule.compute(cny(10_000), monthly_volume=cny(999_999)) == cny(60)
    assert rule.compute(cny(10_000), monthly_volume=cny(1_000_000)) == cny(38)
    with pytest.raises(InvalidRequestError, match="monthly_volume"):
        rule.compute(cny(10_000))
    with pytest.raises(AmountError, match="negative"):
        rule.compute(cny(10_000), monthly_volume=cny(-1))


def test_volume_tiers_may_hold_amount_tiers() -> None:
    inner = TieredFee([(cny(100), FixedFee(cny(1))), (None, PercentageFee(Decimal("0.01")))])
    rule = TieredFee([(cny(500_000), inner), (None, FixedFee(cny(0)))], by=TierBasis.MONTHLY_VOLUME)
    assert rule.compute(cny(50), monthly_volume=cny(0)) == cny(1)
    assert rule.compute(cny(1000), monthly_volume=cny(0)) == cny(10)
    assert rule.compute(cny(1000), monthly_volume=cny(500_000)) == cny(0)


@pytest.mark.parametrize(
    ("tiers", "kwargs", "message"),
    [
        ([], {}, "at least one tier"),
        ([(cny(100), FixedFee(cny(1)))], {}, "last tier must have no upper bound"),
        ([(None, FixedFee(cny(1))), (None, FixedFee(cny(1)))], {}, "only the last tier"),
        (
            [(cny(100), FixedFee(cny(1))), (cny(100), FixedFee(cny(1))), (None, FixedFee(cny(1)))],
            {},
            "increase strictly",
        ),
        ([(cny(0), FixedFee(cny(1))), (None, FixedFee(cny(1)))], {}, "positive"),
        (
            [(None, TieredFee([(None, FixedFee(cny(1)))]))],
            {},
            "tier 0 rule must be one of",
        ),
        (
            [(None, FixedFee(cny(1)))],
            {"by": TierBasis.MONTHLY_VOLUME, "marginal": True},
            "marginal",
        ),
        (
            [(None, TieredFee([(None, FixedFee(cny(1)))], by=TierBasis.MONTHLY_VOLUME))],
            {"by": TierBasis.MONTHLY_VOLUME},
            "not a volume-tiered one",
        ),
        ([(None, "1%")], {}, "tier 0 rule"),
    ],
)
def test_bad_tiers_are_refused(
    tiers: list[object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        TieredFee(tiers, **kwargs)  # type: ignore[arg-type]


def test_tiers_must_share_one_currency() -> None:
    with pytest.raises(CurrencyMismatchError):
        TieredFee([(cny(100), FixedFee(Money(1, "USD"))), (None, FixedFee(cny(1)))])


def test_rules_are_immutable_and_hashable() -> None:
    rule = TieredFee([(cny(100), FixedFee(cny(1))), (None, PercentageFee(Decimal("0.01")))])
    assert isinstance(rule.tiers, tuple)
    assert hash(rule) == hash(
        TieredFee([(cny(100), FixedFee(cny(1))), (None, PercentageFee(Decimal("0.01")))])
    )
    with pytest.raises(AttributeError):
        rule.marginal = True  # type: ignore[misc]


# -- exact arithmetic -------------------------------------------------------------------


@PROPERTY
@given(
    numerator=st.integers(0, 10**18),
    exponent=st.integers(0, 8),
    rounding=st.sampled_from(Rounding),
)
def test_integer_rounding_agrees_with_decimal(
    numerator: int, exponent: int, rounding: Rounding
) -> None:
    expected = Decimal(numerator).scaleb(-exponent).quantize(Decimal(1), rounding=rounding.value)
    assert _round_ratio(numerator, 10**exponent, rounding) == int(expected)


rates = st.decimals(min_value=0, max_value=1, places=6, allow_nan=False, allow_infinity=False)


@PROPERTY
@given(rate=rates, minor=st.integers(0, 10**15), rounding=st.sampled_from(Rounding))
def test_percentage_is_exactly_the_rounded_product(
    rate: Decimal, minor: int, rounding: Rounding
) -> None:
    with localcontext() as ctx:
        ctx.prec = 60  # wide enough to multiply exactly
        expected = (Decimal(minor) * rate).quantize(Decimal(1), rounding=rounding.value)
    assert PercentageFee(rate).compute(cny(minor), rounding=rounding) == cny(int(expected))


# -- fee properties for every rule kind --------------------------------------------------

money = st.integers(0, 10**6).map(cny)
optional_money = st.none() | money


@st.composite
def simple_rules(draw: st.DrawFn) -> FeeRule:
    kind = draw(st.sampled_from(["percentage", "fixed", "fixed_plus"]))
    if kind == "fixed":
        return FixedFee(draw(money))
    low, high = draw(optional_money), draw(optional_money)
    if low is not None and high is not None and low > high:
        low, high = high, low
    if kind == "percentage":
        return PercentageFee(draw(rates), minimum=low, maximum=high)
    return FixedPlusPercentageFee(draw(money), draw(rates), minimum=low, maximum=high)


@st.composite
def amount_tiered_rules(draw: st.DrawFn) -> FeeRule:
    bounds = sorted(draw(st.sets(st.integers(1, 10**7), max_size=3)))
    tiers: list[tuple[Money | None, FeeRule]] = [(cny(b), draw(simple_rules())) for b in bounds]
    tiers.append((None, draw(simple_rules())))
    if draw(st.booleans()):
        return TieredFee(tiers, marginal=True)
    try:
        return TieredFee(tiers)
    except InvalidRequestError:  # a falling schedule: price it by slices instead
        return TieredFee(tiers, marginal=True)


@st.composite
def volume_tiered_rules(draw: st.DrawFn) -> FeeRule:
    bounds = sorted(draw(st.sets(st.integers(1, 10**8), max_size=3)))
    inner = simple_rules() | amount_tiered_rules()
    tiers: list[tuple[Money | None, FeeRule]] = [(cny(b), draw(inner)) for b in bounds]
    tiers.append((None, draw(inner)))
    return TieredFee(tiers, by=TierBasis.MONTHLY_VOLUME)


any_rule = simple_rules() | amount_tiered_rules() | volume_tiered_rules()
amounts = st.integers(0, 2 * 10**7)


@PROPERTY
@given(
    rule=any_rule,
    a=amounts,
    b=amounts,
    volume=st.integers(0, 2 * 10**8).map(cny),
    rounding=st.sampled_from(Rounding),
)
def test_fee_is_non_decreasing_and_within_the_amount(
    rule: FeeRule, a: int, b: int, volume: Money, rounding: Rounding
) -> None:
    low, high = sorted((a, b))
    fee_low = rule.compute(cny(low), monthly_volume=volume, rounding=rounding)
    fee_high = rule.compute(cny(high), monthly_volume=volume, rounding=rounding)
    assert cny(0) <= fee_low <= fee_high
    assert fee_low <= cny(low)
    assert fee_high <= cny(high)


@PROPERTY
@given(rule=amount_tiered_rules(), rounding=st.sampled_from(Rounding))
def test_amount_tiers_do_not_fall_at_their_boundaries(rule: FeeRule, rounding: Rounding) -> None:
    assert isinstance(rule, TieredFee)
    for below, _ in rule.tiers:
        if below is not None:
            before = rule.compute(cny(below.minor - 1), rounding=rounding)
            assert before <= rule.compute(below, rounding=rounding)


def test_the_boundary_check_is_what_makes_whole_amount_tiers_monotonic() -> None:
    # The property above would fail for this accepted-on-request schedule.
    rule = TieredFee(
        [(cny(100), FixedFee(cny(5))), (None, PercentageFee(Decimal("0.01")))],
        allow_decrease=True,
    )
    assert rule.compute(cny(100)) < rule.compute(cny(99))


# -- refunds ----------------------------------------------------------------------------


def _refund(policy: RefundFeePolicy, refunds: list[int], *, amount: int, fee: int) -> list[int]:
    returned: list[int] = []
    refunded = 0
    for part in refunds:
        back = fee_to_return(
            policy,
            amount=cny(amount),
            fee=cny(fee),
            refunded=cny(refunded),
            fee_returned=cny(sum(returned)),
            refund=cny(part),
        )
        returned.append(back.minor)
        refunded += part
    return returned


def test_proportional_refunds_return_the_whole_fee_exactly() -> None:
    # 10.00 paid, 0.06 fee; three refunds of 3.33, 3.33, 3.34
    assert _refund(RefundFeePolicy.PROPORTIONAL, [333, 333, 334], amount=1000, fee=6) == [2, 2, 2]
    # 1.00 paid, 0.01 fee: each half refund would round 0.5 up, but the total stays 1
    assert _refund(RefundFeePolicy.PROPORTIONAL, [50, 50], amount=100, fee=1) == [1, 0]
    assert _refund(RefundFeePolicy.PROPORTIONAL, [1000], amount=1000, fee=6) == [6]


def _half_of_one_fen(rounding: Rounding) -> Money:
    """The fee returned by refunding half of a 1.00 payment that cost 0.01."""
    return fee_to_return(
        RefundFeePolicy.PROPORTIONAL,
        amount=cny(100),
        fee=cny(1),
        refunded=cny(0),
        fee_returned=cny(0),
        refund=cny(50),
        rounding=rounding,
    )


def test_proportional_refund_uses_the_named_rounding() -> None:
    assert _half_of_one_fen(Rounding.HALF_UP) == cny(1)
    assert _half_of_one_fen(Rounding.UP) == cny(1)
    assert _half_of_one_fen(Rounding.HALF_EVEN) == cny(0)
    assert _half_of_one_fen(Rounding.DOWN) == cny(0)
    default = fee_to_return(
        RefundFeePolicy.PROPORTIONAL,
        amount=cny(100),
        fee=cny(1),
        refunded=cny(0),
        fee_returned=cny(0),
        refund=cny(50),
    )
    assert default == cny(1)  # HALF_UP by default


def test_full_policy_returns_the_fee_only_with_the_last_refund() -> None:
    assert _refund(RefundFeePolicy.FULL, [300, 300, 400], amount=1000, fee=6) == [0, 0, 6]
    assert _refund(RefundFeePolicy.FULL, [300, 300], amount=1000, fee=6) == [0, 0]
    assert _refund(RefundFeePolicy.FULL, [1000], amount=1000, fee=6) == [6]


def test_none_policy_never_returns_the_fee() -> None:
    assert _refund(RefundFeePolicy.NONE, [300, 700], amount=1000, fee=6) == [0, 0]


def test_refund_beyond_what_is_left_is_refused() -> None:
    with pytest.raises(AmountError, match="exceeds") as excinfo:
        fee_to_return(
            RefundFeePolicy.PROPORTIONAL,
            amount=cny(1000),
            fee=cny(6),
            refunded=cny(600),
            fee_returned=cny(4),
            refund=cny(401),
        )
    assert excinfo.value.code is ErrorCode.REFUND_EXCEEDS_PAID


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"refund": cny(0)}, AmountError, "positive"),
        ({"refund": cny(-5)}, AmountError, "negative"),
        ({"refunded": cny(1001)}, InvalidRequestError, "already refunded"),
        ({"fee_returned": cny(7)}, InvalidRequestError, "fee already returned"),
        ({"refund": Money(5, "USD")}, CurrencyMismatchError, "mixes currencies"),
    ],
)
def test_inconsistent_refund_inputs_are_refused(
    changes: dict[str, Money], error: type[Exception], message: str
) -> None:
    args = {
        "amount": cny(1000),
        "fee": cny(6),
        "refunded": cny(0),
        "fee_returned": cny(0),
        "refund": cny(100),
        **changes,
    }
    with pytest.raises(error, match=message):
        fee_to_return(
            RefundFeePolicy.PROPORTIONAL,
            amount=args["amount"],
            fee=args["fee"],
            refunded=args["refunded"],
            fee_returned=args["fee_returned"],
            refund=args["refund"],
        )


@st.composite
def refund_histories(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    amount = draw(st.integers(1, 10**9))
    fee = draw(st.integers(0, amount))
    cuts = sorted(draw(st.sets(st.integers(1, amount), min_size=1, max_size=8)))
    if draw(st.booleans()):
        cuts.append(amount)  # refunded in full at the end
        cuts = sorted(set(cuts))
    refunds = [b - a for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
    return amount, fee, refunds


@PROPERTY
@given(history=refund_histories(), policy=st.sampled_from(RefundFeePolicy))
def test_refunds_never_return_more_fee_than_was_charged(
    history: tuple[int, int, list[int]], policy: RefundFeePolicy
) -> None:
    amount, fee, refunds = history
    returned = _refund(policy, refunds, amount=amount, fee=fee)
    assert all(part >= 0 for part in returned)
    assert sum(returned) <= fee
    if sum(refunds) == amount and policy is not RefundFeePolicy.NONE:
        assert sum(returned) == fee
    if policy is RefundFeePolicy.NONE:
        assert sum(returned) == 0
    if policy is RefundFeePolicy.PROPORTIONAL:
        # cumulative: after each refund, the fee returned so far is round(fee × refunded / amount)
        refunded = 0
        for index, part in enumerate(refunds):
            refunded += part
            assert sum(returned[: index + 1]) == _round_ratio(
                fee * refunded, amount, Rounding.HALF_UP
            )


@PROPERTY
@given(history=refund_histories(), extra=st.integers(1, 10**6))
def test_refunding_more_than_was_paid_always_raises(
    history: tuple[int, int, list[int]], extra: int
) -> None:
    amount, fee, refunds = history
    refunded = sum(refunds)
    with pytest.raises(AmountError):
        fee_to_return(
            RefundFeePolicy.PROPORTIONAL,
            amount=cny(amount),
            fee=cny(fee),
            refunded=cny(refunded),
            fee_returned=cny(0),
            refund=cny(amount - refunded + extra),
        )


# -- configuration --------------------------------------------------------------------


def test_parse_each_rule_type() -> None:
    assert parse_fee_rule(
        {"type": "percentage", "rate": "0.006", "min": 1, "max": 2000}
    ) == PercentageFee(Decimal("0.006"), minimum=cny(1), maximum=cny(2000))
    assert parse_fee_rule({"type": "fixed", "amount": 30}) == FixedFee(cny(30))
    assert parse_fee_rule(
        {"type": "fixed_plus_percentage", "fixed": 30, "rate": "0.029", "currency": "USD"}
    ) == FixedPlusPercentageFee(Money(30, "USD"), Decimal("0.029"))
    tiered = parse_fee_rule(
        {
            "type": "tiered",
            "by": "monthly_volume",
            "tiers": [
                {"below": 1_000_000, "rule": {"type": "percentage", "rate": "0.006"}},
                {"below": None, "rule": {"type": "percentage", "rate": "0.0038"}},
            ],
        }
    )
    assert tiered == TieredFee(
        [
            (cny(1_000_000), PercentageFee(Decimal("0.006"))),
            (None, PercentageFee(Decimal("0.0038"))),
        ],
        by=TierBasis.MONTHLY_VOLUME,
    )
    marginal = parse_fee_rule(
        {
            "type": "tiered",
            "marginal": True,
            "tiers": [
                {"below": 100, "rule": {"type": "percentage", "rate": "0.01"}},
                {"rule": {"type": "percentage", "rate": "0.02"}},
            ],
        }
    )
    assert isinstance(marginal, TieredFee)
    assert marginal.marginal
    assert marginal.compute(cny(1100)) == cny(1 + 20)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "percentage", "rate": 0.006}, r"fee\.rate: .*never a float"),
        ({"type": "percentage", "rate": 1}, r"fee\.rate: .*decimal string"),
        ({"type": "percentage", "rate": "0.6%"}, r"fee\.rate"),
        ({"type": "percentage", "rate": " 0.006"}, r"fee\.rate"),
        ({"type": "percentage", "rate": "1e-3"}, r"fee\.rate"),
        ({"type": "percentage", "rate": "1.5"}, r"fee: rate must be between 0 and 1"),
        ({"type": "percentage"}, r"fee: missing 'rate'"),
        ({"type": "percentage", "rate": "0.006", "min": 1.5}, r"fee\.min: .*never floats"),
        ({"type": "percentage", "rate": "0.006", "min": -1}, r"fee\.min"),
        ({"type": "percentage", "rate": "0.006", "min": "1"}, r"fee\.min"),
        ({"type": "percentage", "rate": "0.006", "minimum": 1}, r"unknown keys \['minimum'\]"),
        ({"type": "percentage", "rate": "0.006", "min": 5, "max": 1}, "above maximum"),
        ({"type": "fixed", "amount": True}, r"fee\.amount"),
        ({"type": "flat", "amount": 1}, r"fee\.type"),
        ({"amount": 1}, r"fee\.type"),
        ({"type": "fixed", "amount": 1, "currency": "XYZ"}, "unknown currency"),
        ("percentage", "expected a mapping"),
        ({"type": "tiered", "tiers": {}}, r"fee\.tiers: expected a list"),
        ({"type": "tiered", "by": "day", "tiers": []}, r"fee\.by"),
        ({"type": "tiered", "tiers": []}, "at least one tier"),
        ({"type": "tiered", "marginal": "yes", "tiers": []}, r"fee\.marginal"),
        (
            {"type": "tiered", "tiers": [{"below": None, "rule": {"type": "fixed"}}]},
            r"fee\.tiers\[0\]\.rule: missing 'amount'",
        ),
        (
            {"type": "tiered", "tiers": [{"upto": 5, "rule": {"type": "fixed", "amount": 1}}]},
            r"fee\.tiers\[0\]: only 'below' and 'rule'",
        ),
    ],
)
def test_bad_config_raises_configuration_error(config: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_fee_rule(config)


def test_schedule_from_config() -> None:
    schedule = FeeSchedule.from_config(
        {
            "default": {"type": "percentage", "rate": "0.006"},
            "rules": {
                "wechat-main": {"type": "percentage", "rate": "0.0038"},
                "unionpay": {"type": "percentage", "rate": "0.005", "max": 2000},
            },
        }
    )
    assert set(schedule) == {"wechat-main", "unionpay"}
    assert len(schedule) == 2
    assert schedule["wechat-main"] == PercentageFee(Decimal("0.0038"))
    assert schedule.compute("wechat-main", cny(10_000)) == cny(38)
    assert schedule.compute("unionpay", cny(10_000_000)) == cny(2000)
    assert schedule.compute("some-merchant", cny(10_000)) == cny(60)  # the default
    with pytest.raises(KeyError):
        schedule["some-merchant"]


def test_schedule_without_default_names_the_missing_rule() -> None:
    schedule = FeeSchedule({"alipay": FixedFee(cny(1))})
    assert schedule.default is None
    assert schedule.rule_for("alipay") == FixedFee(cny(1))
    with pytest.raises(ConfigurationError, match="'wechat'"):
        schedule.rule_for("wechat")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rule": {}}, r"unknown keys \['rule'\]"),
        ({"rules": {"m": {"type": "fixed", "amount": 1.0}}}, r"fees\.rules\.m\.amount"),
        ({"rules": []}, r"fees\.rules: expected a mapping"),
        ({"default": {"type": "nope"}}, r"fees\.default\.type"),
        ({"currency": 156, "rules": {}}, r"fees\.currency"),
    ],
)
def test_bad_schedule_config(config: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FeeSchedule.from_config(config)


def test_schedule_refuses_what_is_not_a_rule() -> None:
    with pytest.raises(ConfigurationError, match="not a fee rule"):
        FeeSchedule({"m": Decimal("0.006")})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="non-empty"):
        FeeSchedule({"": FixedFee(cny(1))})
