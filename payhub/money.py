"""Money: an integer count of minor units in one ISO 4217 currency.

A float is never accepted, anywhere. Channel amount strings ("12.34" yuan for
Alipay, "1234" fen for UnionPay) are parsed with a strict ASCII grammar before
anything else looks at them.

>>> Money.parse("12.30", "CNY")
Money(1230, 'CNY')
>>> Money.parse("12.30", "CNY").to_decimal_string()
'12.30'
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar, Final

from pydantic_core import core_schema

from payhub.errors import AmountError, CurrencyMismatchError

__all__ = ["CURRENCY_EXPONENTS", "Money"]

#: Minor-unit exponents of the currencies payhub knows (ISO 4217).
CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "HKD": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "SGD": 2,
    "TWD": 2,
    "MOP": 2,
    "JPY": 0,
    "KRW": 0,
}

# ASCII digits only: `\d` would admit full-width and other Unicode digits.
_DECIMAL_RE: Final = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?", re.ASCII)
_INTEGER_RE: Final = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_MAX_DIGITS: Final = 18  # keeps every amount well inside a signed 64-bit column


class Money:
    """An exact amount: ``minor`` units (fen, cents) of ``currency``.

    Amounts may be negative (a refund line in a bill, a ledger debit), but
    channel strings never carry a sign, so :meth:`parse` rejects one.
    Arithmetic and comparison are defined only between equal currencies.
    """

    __slots__ = ("_currency", "_minor")
    _minor: int
    _currency: str

    def __init__(self, minor: int, currency: str = "CNY") -> None:
        if type(minor) is not int:  # bool is an int subclass; floats never enter
            raise AmountError(f"minor units must be an int, not {type(minor).__name__}")
        if currency not in CURRENCY_EXPONENTS:
            raise AmountError(f"unknown currency {currency!r}")
        object.__setattr__(self, "_minor", minor)
        object.__setattr__(self, "_currency", currency)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Money is immutable")

    # -- construction -------------------------------------------------------

    @classmethod
    def zero(cls, currency: str = "CNY") -> Money:
        return cls(0, currency)

    @classmethod
    def parse(
        cls, text: str, currency: str = "CNY", *, max_minor: int | None = None
    ) -> Money:
        """Parse a major-unit decimal string such as ``"12.34"`` (Alipay's format).

        Accepts ``12``, ``12.3`` and ``12.34``; rejects signs, exponents,
        whitespace, non-ASCII digits, ``NaN``/``Infinity``, more decimals than
        the currency has, and amounts above ``max_minor``.
        """
        exponent = _exponent(currency)
        if not isinstance(text, str):
            raise AmountError(f"amount must be a string, not {type(text).__name__}")
        match = _DECIMAL_RE.fullmatch(text)
        if match is None:
            raise AmountError(f"malformed amount {_shown(text)}")
        whole, fraction = match.group(1), match.group(2) or ""
        if text.endswith(".") or (match.group(2) is not None and not fraction):
            raise AmountError(f"malformed amount {_shown(text)}")
        if len(fraction) > exponent:
            raise AmountError(
                f"amount {_shown(text)} has more than {exponent} decimals for {currency}"
            )
        if len(whole) + exponent > _MAX_DIGITS:
            raise AmountError(f"amount {_shown(text)} is too large")
        minor = int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if exponent else 0)
        return cls(minor, currency)._within(max_minor, text)

    @classmethod
    def parse_minor(
        cls, text: str, currency: str = "CNY", *, max_minor: int | None = None
    ) -> Money:
        """Parse an integer minor-unit string such as ``"1234"`` (UnionPay's ``txnAmt``)."""
        _exponent(currency)
        if not isinstance(text, str) or _INTEGER_RE.fullmatch(text) is None:
            raise AmountError(f"malformed minor-unit amount {_shown(text)}")
        if len(text) > _MAX_DIGITS:
            raise AmountError(f"amount {_shown(text)} is too large")
        return cls(int(text), currency)._within(max_minor, text)

    @classmethod
    def of_minor_json(
        cls, value: object, currency: str = "CNY", *, max_minor: int | None = None
    ) -> Money:
        """Accept a JSON integer of minor units (WeChat Pay's ``total``); never a float."""
        if type(value) is not int or value < 0:
            raise AmountError(f"amount must be a non-negative JSON integer, got {_shown(value)}")
        return cls(value, currency)._within(max_minor, value)

    def _within(self, max_minor: int | None, text: object) -> Money:
        if max_minor is not None and self._minor > max_minor:
            raise AmountError(f"amount {_shown(text)} exceeds the channel limit")
        return self

    # -- views --------------------------------------------------------------

    @property
    def minor(self) -> int:
        return self._minor

    @property
    def currency(self) -> str:
        return self._currency

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self._currency]

    def to_decimal(self) -> Decimal:
        """The amount in major units, exactly, with the currency's decimals."""
        # Built from a string, not scaleb()/quantize(): those round to the
        # context's 28 digits (or raise), constructing from a string never does.
        return Decimal(f"{self._minor}E-{self.exponent}")

    def to_decimal_string(self) -> str:
        """Major units with exactly the currency's decimals: ``"12.30"``."""
        return f"{self.to_decimal():f}"

    def is_zero(self) -> bool:
        return self._minor == 0

    # -- arithmetic ---------------------------------------------------------

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other._currency != self._currency:
            raise CurrencyMismatchError(
                f"cannot combine {self._currency} with {other._currency}"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self._minor + self._same(other)._minor, self._currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self._minor - self._same(other)._minor, self._currency)

    def __neg__(self) -> Money:
        return Money(-self._minor, self._currency)

    def __abs__(self) -> Money:
        return Money(abs(self._minor), self._currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError("Money can only be multiplied by an int; use payhub.fees for rates")
        return Money(self._minor * factor, self._currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self._minor < self._same(other)._minor

    def __le__(self, other: Money) -> bool:
        return self._minor <= self._same(other)._minor

    def __gt__(self, other: Money) -> bool:
        return self._minor > self._same(other)._minor

    def __ge__(self, other: Money) -> bool:
        return self._minor >= self._same(other)._minor

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self._minor == other._minor and self._currency == other._currency

    def __hash__(self) -> int:
        return hash((self._minor, self._currency))

    def __repr__(self) -> str:
        return f"Money({self._minor}, {self._currency!r})"

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self._currency}"

    def __reduce__(self) -> tuple[type[Money], tuple[int, str]]:
        return (Money, (self._minor, self._currency))

    # -- pydantic -----------------------------------------------------------

    _JSON_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "minor": {"type": "integer"},
            "currency": {"type": "string", "enum": sorted(CURRENCY_EXPONENTS)},
        },
        "required": ["minor", "currency"],
    }

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda m: {"minor": m.minor, "currency": m.currency}
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return dict(cls._JSON_SCHEMA)

    @classmethod
    def _validate(cls, value: object) -> Money:
        if isinstance(value, Money):
            return value
        if isinstance(value, dict) and set(value) == {"minor", "currency"}:
            return cls(value["minor"], value["currency"])
        raise AmountError(
            "expected Money or {'minor': int, 'currency': str}; floats and strings are refused"
        )


def _exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise AmountError(f"unknown currency {currency!r}") from None


def _shown(value: object) -> str:
    """A short, safe rendering of untrusted input for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
