"""Money: exact minor units, strict parsing of channel amount strings, no floats."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from payhub.errors import AmountError, CurrencyMismatchError, InvalidRequestError
from payhub.money import Money

# -- parse: major-unit decimal strings (Alipay's total_amount) ----------------


@pytest.mark.parametrize(
    ("text", "minor"),
    [("12", 1200), ("12.3", 1230), ("12.34", 1234), ("0.01", 1), ("0", 0), ("0.00", 0)],
)
def test_parse_accepts_plain_decimals(text: str, minor: int) -> None:
    assert Money.parse(text, "CNY") == Money(minor, "CNY")


def test_parse_defaults_to_cny_and_jpy_has_no_decimals() -> None:
    assert Money.parse("12.34") == Money(1234, "CNY")
    assert Money.parse("1500", "JPY") == Money(1500, "JPY")


@pytest.mark.parametrize(
    "text",
    [
        "1e2",
        "1E2",
        "１００.００",  # full-width digits
        "١٢٣",  # Arabic-Indic digits
        "۱۲۳",  # extended Arabic-Indic digits
        " 100.00",
        "100.00 ",
        "100.00\n",
        "-1",
        "+1",
        "NaN",
        "nan",
        "Infinity",
        "inf",
        "-0",
        "01",
        "00.10",
        "1.",
        ".5",
        "1,000.00",
        "1_000",
        "",
        "0x10",
        "12.3.4",
    ],
)
def test_parse_rejects_anything_but_strict_ascii(text: str) -> None:
    with pytest.raises(AmountError):
        Money.parse(text, "CNY")


def test_parse_rejects_more_decimals_than_the_currency_has() -> None:
    with pytest.raises(AmountError, match="decimals"):
        Money.parse("1.234", "CNY")
    with pytest.raises(AmountError):
        Money.parse("1.5", "JPY")
    with pytest.raises(AmountError):
        Money.parse("1.0", "JPY")


@pytest.mark.parametrize("value", [None, 12.34, 12, Decimal("12.34"), b"12.34"])
def test_parse_refuses_non_strings(value: object) -> None:
    with pytest.raises(AmountError):
        Money.parse(value, "CNY")  # type: ignore[arg-type]


def test_parse_unknown_currency() -> None:
    with pytest.raises(AmountError, match="currency"):
        Money.parse("1.00", "XXX")


def test_parse_max_minor_is_the_channel_limit() -> None:
    assert Money.parse("100.00", "CNY", max_minor=10000) == Money(10000)
    with pytest.raises(AmountError, match="limit"):
        Money.parse("100.01", "CNY", max_minor=10000)


def test_parse_refuses_absurdly_long_amounts() -> None:
    with pytest.raises(AmountError, match="too large"):
        Money.parse("1" + "0" * 40, "CNY")


def test_error_message_shows_a_bounded_rendering_of_the_input() -> None:
    with pytest.raises(AmountError) as info:
        Money.parse("9" * 500 + "x", "CNY")
    assert len(str(info.value)) < 120


def test_amount_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the point is the base class
        Money.parse("abc")
    assert issubclass(AmountError, InvalidRequestError)


# -- parse_minor: integer minor-unit strings (UnionPay's txnAmt) --------------


def test_parse_minor_accepts_integers() -> None:
    assert Money.parse_minor("1234") == Money(1234, "CNY")
    assert Money.parse_minor("0") == Money(0)
    assert Money.parse_minor("1234", "JPY") == Money(1234, "JPY")


@pytest.mark.parametrize("text", ["1.00", "-1", "+1", "01", "", " 1", "1e3", "１２", None, 12])
def test_parse_minor_rejects(text: object) -> None:
    with pytest.raises(AmountError):
        Money.parse_minor(text)  # type: ignore[arg-type]


def test_parse_minor_limits() -> None:
    with pytest.raises(AmountError):
        Money.parse_minor("1001", max_minor=1000)
    with pytest.raises(AmountError):
        Money.parse_minor("9" * 19)


# -- of_minor_json: JSON integers (WeChat Pay's amount.total) -----------------


def test_of_minor_json_accepts_int() -> None:
    assert Money.of_minor_json(100) == Money(100, "CNY")
    assert Money.of_minor_json(0, "CNY") == Money(0)


@pytest.mark.parametrize("value", [100.0, 1.5, True, False, "100", -1, None, Decimal(100)])
def test_of_minor_json_rejects(value: object) -> None:
    with pytest.raises(AmountError):
        Money.of_minor_json(value)


def test_of_minor_json_limit() -> None:
    with pytest.raises(AmountError):
        Money.of_minor_json(101, max_minor=100)


# -- construction, immutability ----------------------------------------------


@pytest.mark.parametrize("minor", [1.0, True, False, Decimal(1), "1", None])
def test_constructor_refuses_non_int(minor: object) -> None:
    with pytest.raises(AmountError):
        Money(minor)  # type: ignore[arg-type]


def test_constructor_refuses_unknown_currency() -> None:
    with pytest.raises(AmountError):
        Money(1, "cny")


def test_immutable() -> None:
    m = Money(100)
    with pytest.raises(AttributeError):
        m._minor = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.currency = "USD"  # type: ignore[misc]
    assert m == Money(100)


# -- arithmetic ---------------------------------------------------------------


def test_arithmetic_same_currency() -> None:
    a, b = Money(150), Money(50)
    assert a + b == Money(200)
    assert a - b == Money(100)
    assert b - a == Money(-100)
    assert -a == Money(-150)
    assert abs(Money(-3)) == Money(3)
    assert a * 3 == Money(450)
    assert 3 * a == Money(450)
    assert b < a
    assert a > b
    assert a >= Money(150)
    assert b <= Money(50)
    assert Money.zero("JPY") == Money(0, "JPY")
    assert Money(0).is_zero()


def test_arithmetic_across_currencies_is_refused() -> None:
    cny, usd = Money(100, "CNY"), Money(100, "USD")
    for op in (
        lambda: cny + usd,
        lambda: cny - usd,
        lambda: cny < usd,
        lambda: cny <= usd,
        lambda: cny > usd,
        lambda: cny >= usd,
    ):
        with pytest.raises(CurrencyMismatchError):
            op()


def test_no_mixing_with_plain_numbers() -> None:
    with pytest.raises(TypeError):
        Money(100) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100) * 1.1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100) * True  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100) * Decimal("0.006")  # type: ignore[operator]


# -- views --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1230, "CNY"), "12.30"),
        (Money(1, "CNY"), "0.01"),
        (Money(0, "CNY"), "0.00"),
        (Money(100, "CNY"), "1.00"),
        (Money(-5, "CNY"), "-0.05"),
        (Money(1500, "JPY"), "1500"),
        (Money(0, "JPY"), "0"),
    ],
)
def test_to_decimal_string(money: Money, text: str) -> None:
    assert money.to_decimal_string() == text


def test_to_decimal_is_exact() -> None:
    assert Money(1234).to_decimal() == Decimal("12.34")
    # beyond the default 28-digit decimal context: still exact, never rounded
    big = 10**40 + 7
    text = str(big)[:-2] + "." + str(big)[-2:]
    assert Money(big).to_decimal() == Decimal(text)
    assert Money(big).to_decimal_string() == text
    assert Money(-big).to_decimal_string() == "-" + text
    assert Money(big, "JPY").to_decimal_string() == str(big)


def test_repr_and_str() -> None:
    assert repr(Money(1230, "CNY")) == "Money(1230, 'CNY')"
    assert str(Money(1230, "CNY")) == "12.30 CNY"


def test_equality_and_hash() -> None:
    assert Money(100, "CNY") == Money(100, "CNY")
    assert Money(100, "CNY") != Money(100, "USD")
    assert Money(100, "CNY") != Money(101, "CNY")
    assert Money(100) != 100
    assert len({Money(100), Money(100), Money(100, "USD")}) == 2
    assert {Money(100): "x"}[Money.parse("1.00")] == "x"


def test_pickle_and_copy() -> None:
    m = Money(1234, "JPY")
    for restored in (pickle.loads(pickle.dumps(m)), copy.copy(m), copy.deepcopy(m)):
        assert restored == m
        assert restored.currency == "JPY"
        with pytest.raises(AttributeError):
            restored._minor = 1  # type: ignore[misc]


# -- pydantic -----------------------------------------------------------------


class _Order(BaseModel):
    price: Money


def test_pydantic_round_trip() -> None:
    order = _Order(price=Money(1234, "USD"))
    assert order.model_dump() == {"price": {"minor": 1234, "currency": "USD"}}
    assert _Order.model_validate(order.model_dump()) == order
    assert _Order.model_validate_json(order.model_dump_json()).price == Money(1234, "USD")
    assert _Order.model_validate({"price": {"minor": 5, "currency": "CNY"}}).price == Money(5)


@pytest.mark.parametrize(
    "price",
    [
        12.34,
        "12.34",
        1234,
        {"minor": 12.0, "currency": "CNY"},
        {"minor": True, "currency": "CNY"},
        {"minor": "1234", "currency": "CNY"},
        {"minor": 1, "currency": "XXX"},
        {"minor": 1},
        {"minor": 1, "currency": "CNY", "extra": 1},
    ],
)
def test_pydantic_refuses_floats_strings_and_bad_shapes(price: object) -> None:
    with pytest.raises(ValidationError):
        _Order.model_validate({"price": price})


def test_pydantic_json_refuses_float_minor() -> None:
    with pytest.raises(ValidationError):
        _Order.model_validate_json('{"price": {"minor": 1234.0, "currency": "CNY"}}')


def test_pydantic_json_schema() -> None:
    schema = _Order.model_json_schema()
    price = schema["properties"]["price"]
    assert price["properties"]["minor"] == {"type": "integer"}
    assert "CNY" in price["properties"]["currency"]["enum"]


# -- property -----------------------------------------------------------------

_PARSE_LIMIT = 10**18  # parse() keeps every amount inside a signed 64-bit column


@given(st.integers(min_value=0) | st.integers(min_value=_PARSE_LIMIT - 10, max_value=10**40))
def test_decimal_string_round_trips_through_parse(n: int) -> None:
    text = Money(n, "CNY").to_decimal_string()
    if n < _PARSE_LIMIT:
        assert Money.parse(text, "CNY") == Money(n, "CNY")
    else:
        with pytest.raises(AmountError, match="too large"):
            Money.parse(text, "CNY")


@given(st.integers(min_value=0, max_value=_PARSE_LIMIT - 1), st.sampled_from(["JPY", "USD"]))
def test_round_trip_other_currencies(n: int, currency: str) -> None:
    money = Money(n, currency)
    assert Money.parse(money.to_decimal_string(), currency) == money
    assert Money.parse_minor(str(n), currency) == money
