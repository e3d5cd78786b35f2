"""Errors raised by the sandbox's Python API and answered by its control API.

::

    SandboxError                    base; ``status`` is the control API's HTTP status
    ├── UnknownMerchantError        no merchant (app) of that id is registered (404)
    ├── TradeNotFoundError          no such trade (404)
    ├── TradeStateError             the trade's state forbids the operation (409)
    └── InvalidInputError           a malformed argument or configuration (400)

Errors a *client* of a channel protocol makes are not exceptions: they are
answered on the wire exactly as the channel answers them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = [
    "InvalidInputError",
    "SandboxError",
    "TradeNotFoundError",
    "TradeStateError",
    "UnknownMerchantError",
    "parse_fee_rate",
]


class SandboxError(Exception):
    """Base of the sandbox's own errors. ``code`` is a short machine-readable name."""

    status: int = 400
    code: str = "SANDBOX_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class UnknownMerchantError(SandboxError, KeyError):
    status = 404
    code = "UNKNOWN_MERCHANT"

    def __str__(self) -> str:
        return self.message


class TradeNotFoundError(SandboxError, KeyError):
    status = 404
    code = "TRADE_NOT_FOUND"

    def __str__(self) -> str:
        return self.message


class TradeStateError(SandboxError):
    status = 409
    code = "TRADE_STATE"


class InvalidInputError(SandboxError, ValueError):
    status = 400
    code = "INVALID_INPUT"


def parse_fee_rate(value: object) -> Decimal:
    """A merchant's fee rate in [0, 1), from a Decimal or a decimal string; never a float."""
    if isinstance(value, float):
        raise InvalidInputError("fee_rate must be a Decimal or a decimal string, never a float")
    try:
        rate = Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInputError(f"fee_rate: not a decimal: {value!r}") from None
    if not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
        raise InvalidInputError("fee_rate must be in [0, 1)")
    return rate
