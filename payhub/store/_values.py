"""What the store accepts, checked before any SQL.

The databases would refuse (or, worse, accept) these values each in its own way:
PostgreSQL refuses NUL in text, MariaDB outside strict mode clamps an amount
to 2**63-1 and pads trailing spaces in comparisons, SQLite stores anything of
any length. So the store decides first, the same way on all three, from the
column sizes in :mod:`payhub.store._schema`:

* a payment or refund the shop creates: its numbers follow payhub's one
  grammar (:func:`payhub.models.order_number_problem`), its amount fits a
  64-bit column: else :class:`InvalidRequestError` / :class:`AmountError`,
  as for any other bad request;
* identifiers from a channel (notifications, query and refund answers): they
  fit their column and have no NUL, control, format or surrogate characters
  and no whitespace at either end; amounts fit 64 bits: else
  :class:`StoreValueError`, which is never retryable (a resend of the same
  notification is refused the same way).

Anything about a value that still reaches the database and is refused there
is translated to :class:`StoreValueError` too (see ``Store.run``).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import sqlalchemy as sa

from payhub.errors import AmountError, InvalidRequestError, PayhubError, StoreValueError
from payhub.models import (
    Notification,
    PaymentQueryResult,
    PaymentRequest,
    RefundRequest,
    RefundResult,
    order_number_problem,
)
from payhub.money import Money
from payhub.store._schema import attempts, payments, refunds

__all__ = [
    "BIGINT_MAX",
    "check_attempt",
    "check_fact",
    "check_notification",
    "check_payment_request",
    "check_query_result",
    "check_refund_request",
    "check_refund_result",
    "identifier_problem",
]

#: The largest amount, in minor units, a BIGINT column holds.
BIGINT_MAX = 2**63 - 1

#: Unicode categories never found in an identifier: control (NUL, DEL, C1),
#: format (zero-width, direction marks) and (lone) surrogates.
_FORBIDDEN = frozenset({"Cc", "Cf", "Cs"})


def identifier_problem(value: object, max_length: int) -> str | None:
    """Why ``value`` cannot be stored and compared as an identifier, or None."""
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length} fit"
    # Printable ASCII (the usual order number) has none of them: skip the per-character look-up.
    if not (value.isascii() and value.isprintable()) and any(
        unicodedata.category(ch) in _FORBIDDEN for ch in value
    ):
        return "holds NUL, control, format or surrogate characters"
    if value != value.strip():
        return "has whitespace at its start or end"
    return None


def _text_problem(value: str, max_length: int | None) -> str | None:
    """Free text (a subject, a reason): any characters but NUL and surrogates."""
    if max_length is not None and len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length} fit"
    if "\x00" in value or any(unicodedata.category(ch) == "Cs" for ch in value):
        return "holds NUL or surrogate characters"
    return None


def _length(column: sa.Column[Any]) -> int:
    length = getattr(column.type, "length", None)
    assert isinstance(length, int), column
    return length


def _identifier(
    value: str | None,
    column: sa.Column[Any],
    what: str,
    error: type[PayhubError] = StoreValueError,
) -> None:
    if value is None:
        return
    problem = identifier_problem(value, _length(column))
    if problem:
        raise error(f"{what} {problem}")


def _amount(money: Money | None, what: str, error: type[PayhubError] = StoreValueError) -> None:
    if money is not None and abs(money.minor) > BIGINT_MAX:
        raise error(f"{what} {money.currency} is beyond what the store holds (64-bit minor units)")


def _order_number(value: str, what: str) -> None:
    problem = order_number_problem(value)
    if problem:
        raise InvalidRequestError(f"{what} {problem}")


def check_payment_request(request: PaymentRequest) -> None:
    """A payment the shop creates (``Store.begin_payment``)."""
    _order_number(request.out_trade_no, "out_trade_no")
    _amount(request.amount, "amount", AmountError)
    problem = _text_problem(request.subject, _length(payments.c.subject))
    if problem:
        raise InvalidRequestError(f"subject {problem}")
    _identifier(request.seller, payments.c.seller, "seller", InvalidRequestError)


def check_refund_request(channel: str | None, request: RefundRequest) -> None:
    """A refund the shop creates (``Store.reserve_refund``)."""
    _order_number(request.out_trade_no, "out_trade_no")
    _order_number(request.out_refund_no, "out_refund_no")
    _identifier(channel, refunds.c.channel, "channel", InvalidRequestError)
    _amount(request.amount, "amount", AmountError)
    if request.reason is not None:
        problem = _text_problem(request.reason, _length(refunds.c.reason))
        if problem:
            raise InvalidRequestError(f"reason {problem}")


def check_attempt(out_trade_no: str, channel: str, channel_trade_id: str | None) -> None:
    """One try of one channel (``Store.record_attempt``)."""
    _identifier(out_trade_no, payments.c.out_trade_no, "out_trade_no")
    _identifier(channel, attempts.c.channel, "channel")
    _identifier(channel_trade_id, attempts.c.channel_trade_id, "channel_trade_id")


def check_fact(channel: str, out_trade_no: str, channel_trade_id: str | None = None) -> None:
    """What names a trade in anything a channel says about it."""
    _identifier(channel, payments.c.channel, "channel")
    _identifier(out_trade_no, payments.c.out_trade_no, "out_trade_no")
    _identifier(channel_trade_id, payments.c.channel_trade_id, "channel_trade_id")


def check_notification(notification: Notification) -> None:
    """A verified notification (``Store.apply_notification``), before the inbox insert."""
    check_fact(notification.channel, notification.out_trade_no, notification.channel_trade_id)
    _identifier(notification.out_refund_no, refunds.c.out_refund_no, "out_refund_no")
    # Longer keys are stored hashed (inbox_key), so only the characters matter here.
    problem = identifier_problem(notification.event_key, len(notification.event_key) or 1)
    if problem:
        raise StoreValueError(f"event_key {problem}")
    _amount(notification.amount, "amount")
    _amount(notification.refund_amount, "refund_amount")
    _amount(notification.refunded_total, "refunded_total")


def check_query_result(channel: str, result: PaymentQueryResult) -> None:
    """A channel's answer to a query (``Store.apply_query``)."""
    check_fact(channel, result.out_trade_no, result.channel_trade_id)
    _amount(result.amount, "amount")


def check_refund_result(result: RefundResult) -> None:
    """A channel's answer to a refund (``Store.apply_refund_result``)."""
    _identifier(result.channel_trade_id, payments.c.channel_trade_id, "channel_trade_id")
    _identifier(result.channel_refund_id, refunds.c.channel_refund_id, "channel_refund_id")
