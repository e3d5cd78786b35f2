"""The one exception tree of payhub.

::

    PayhubError
    ├── ConfigurationError          bad or missing configuration, unreadable key
    ├── InvalidRequestError         (also a ValueError) the caller's input is wrong
    │   ├── AmountError             malformed, negative, too precise or too large amount
    │   ├── LedgerError             an entry that does not balance, an account that
    │   │                           may not go negative, a replayed key with other
    │   │                           content, an unknown or finished hold/withdrawal
    │   ├── CurrencyMismatchError   arithmetic or comparison across currencies
    │   ├── SplitError              a split or royalty that cannot be made
    │   └── PaymentStateError       the stored payment's state forbids it: already
    │                               paid, closed, in review, refunds beyond paid
    ├── SignatureError              a signature is missing, malformed, of the wrong
    │                               type or does not verify
    ├── NotificationRejected        a verified notification that is not ours
    │                               (app id, merchant id, seller id) or not usable
    ├── ProtocolError               the channel answered something unparseable:
    │                               truncated, not JSON, wrong shape, HTML page
    ├── ChannelError                the channel answered with an error code
    ├── NetworkError                the request did not complete (connect, read)
    │   └── ChannelTimeout          it may have reached the channel: the trade may exist
    ├── NoEligibleChannel           routing found no channel able to take a payment
    ├── RiskBlocked                 a risk rule refused the payment (names the rule)
    ├── StoreError                  the payment store could not be reached or its
    │   │                           transaction failed; nothing was written
    │   └── StoreValueError         the database refused a value (out of range, too
    │                               long, NUL or control characters): never retryable
    ├── UnknownChannelError         no channel (account) of that name is configured
    └── ReportError                 a report file could not be written or opened:
                                    output directory, disk, wrong password

Every error carries a unified payhub ``code`` (see :class:`ErrorCode`; the
error-code manual in ``docs/`` is generated from the same table) and
``retryable``, which says whether sending the same request again can help.
:class:`ChannelError` also carries the channel's own code, sub-code and
message, and the request id when the channel gives one.

Messages never contain a secret: no key, no full signature, no card key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AmountError",
    "ChannelError",
    "ChannelTimeout",
    "ConfigurationError",
    "CurrencyMismatchError",
    "ErrorCode",
    "InvalidRequestError",
    "LedgerError",
    "NetworkError",
    "NoEligibleChannel",
    "NotificationRejected",
    "PayhubError",
    "PaymentStateError",
    "ProtocolError",
    "ReportError",
    "RiskBlocked",
    "SignatureError",
    "SplitError",
    "StoreError",
    "StoreValueError",
    "UnknownChannelError",
]


@dataclass(frozen=True)
class _CodeInfo:
    retryable: bool
    description: str


class ErrorCode(enum.Enum):
    """Unified error codes, the same whatever channel raised them."""

    CONFIGURATION = _CodeInfo(False, "payhub or a channel is configured wrongly")
    INVALID_REQUEST = _CodeInfo(False, "a parameter of the request is missing or invalid")
    INVALID_AMOUNT = _CodeInfo(False, "an amount is malformed, negative, too precise or too large")
    CURRENCY_MISMATCH = _CodeInfo(False, "amounts of different currencies were combined")
    INVALID_SPLIT = _CodeInfo(False, "a split among receivers cannot be made as asked")
    SIGNATURE_INVALID = _CodeInfo(
        False, "a signature is missing, malformed, of the wrong type or does not verify"
    )
    NOT_OURS = _CodeInfo(False, "a notification names another app, merchant or seller")
    PROTOCOL = _CodeInfo(True, "the channel's answer could not be parsed")
    NETWORK = _CodeInfo(True, "the request did not reach the channel or its answer was lost")
    TIMEOUT = _CodeInfo(True, "the channel did not answer in time; the trade may exist")
    CHANNEL_UNAVAILABLE = _CodeInfo(True, "the channel is busy or failing; try again or elsewhere")
    RATE_LIMITED = _CodeInfo(True, "the channel asks to slow down")
    PERMISSION_DENIED = _CodeInfo(False, "the merchant lacks permission for this operation")
    TRADE_NOT_FOUND = _CodeInfo(False, "the channel knows no such trade")
    TRADE_ALREADY_PAID = _CodeInfo(False, "the trade is already paid")
    TRADE_CLOSED = _CodeInfo(False, "the trade is closed")
    TRADE_FINISHED = _CodeInfo(False, "the trade is finished; no refund is possible")
    ORDER_NUMBER_USED = _CodeInfo(False, "the out_trade_no was used for another trade")
    REFUND_EXCEEDS_PAID = _CodeInfo(False, "refunds would exceed the amount paid")
    INSUFFICIENT_BALANCE = _CodeInfo(False, "the merchant balance cannot cover the operation")
    BUYER_ERROR = _CodeInfo(False, "the buyer's account cannot take part in this trade")
    NO_ELIGIBLE_CHANNEL = _CodeInfo(False, "no configured channel can take this payment")
    UNKNOWN_CHANNEL = _CodeInfo(False, "no channel of that name is configured")
    CHANNEL_ERROR = _CodeInfo(False, "the channel refused the request")
    PAYMENT_STATE = _CodeInfo(False, "the stored payment's state does not allow this operation")
    PAYMENT_IN_REVIEW = _CodeInfo(
        False, "the payment is held for review (amount mismatch); a person must decide"
    )
    RISK_BLOCKED = _CodeInfo(
        False, "a risk rule refused the payment before any channel was called"
    )
    UNKNOWN_PAYMENT = _CodeInfo(False, "no stored payment has that out_trade_no")
    UNKNOWN_REFUND = _CodeInfo(False, "no stored refund has that out_refund_no")
    LEDGER_UNBALANCED = _CodeInfo(
        False, "a ledger entry's lines do not sum to zero in each currency"
    )
    LEDGER_INSUFFICIENT_FUNDS = _CodeInfo(
        False, "a ledger account that may not go negative cannot cover the entry"
    )
    LEDGER_IDEMPOTENCY_CONFLICT = _CodeInfo(
        False, "a ledger idempotency key was used before for different content"
    )
    LEDGER_NOT_FOUND = _CodeInfo(False, "no such ledger hold, withdrawal or settlement batch")
    LEDGER_STATE = _CodeInfo(
        False, "the hold or withdrawal is already finished (released, captured, paid, failed)"
    )
    WITHDRAWAL_BELOW_MINIMUM = _CodeInfo(False, "the withdrawal is below the minimum amount")
    STORE_UNAVAILABLE = _CodeInfo(
        True, "the payment store could not be reached or its transaction failed"
    )
    REPORT_FAILED = _CodeInfo(
        False,
        "a report file could not be written or opened: the output directory is not "
        "writable, the disk is full, or the password does not open it",
    )
    STORE_VALUE_REFUSED = _CodeInfo(
        False,
        "the payment store cannot hold a value (out of range, too long, NUL or control "
        "characters); sending it again cannot help",
    )

    NOT_SUPPORTED = _CodeInfo(False, "the channel does not offer this operation")
    RECEIVER_NOT_BOUND = _CodeInfo(
        False, "a split receiver is not bound to the merchant at the channel"
    )
    PAYEE_NAME_MISMATCH = _CodeInfo(
        False, "the payee's real name does not match the account (or is not verified)"
    )

    @property
    def retryable(self) -> bool:
        return self.value.retryable

    @property
    def description(self) -> str:
        return self.value.description


class PayhubError(Exception):
    """Base of every error payhub raises."""

    default_code: ErrorCode = ErrorCode.CHANNEL_ERROR

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.code.retryable if retryable is None else retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.name})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling; errors
        # must cross process pools and task queues intact.
        return (_rebuild_error, (type(self), self.message, dict(self.__dict__)))


def _rebuild_error(cls: type[PayhubError], message: str, state: dict[str, Any]) -> PayhubError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(PayhubError):
    """Bad or missing configuration.

    ``problems`` lists each failing setting and why, ``(setting, reason)``
    (``("app_id", "Field required")``), where the configuration was checked by a
    model (:func:`payhub.config.validated`); empty otherwise. Never a value.
    """

    default_code = ErrorCode.CONFIGURATION

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        retryable: bool | None = None,
        problems: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.problems = problems


class InvalidRequestError(PayhubError, ValueError):
    default_code = ErrorCode.INVALID_REQUEST


class AmountError(InvalidRequestError):
    default_code = ErrorCode.INVALID_AMOUNT


class CurrencyMismatchError(InvalidRequestError):
    default_code = ErrorCode.CURRENCY_MISMATCH


class SplitError(InvalidRequestError):
    default_code = ErrorCode.INVALID_SPLIT


class LedgerError(InvalidRequestError):
    """The ledger refused an entry or an operation; nothing was written.

    ``code`` tells which: ``LEDGER_UNBALANCED``, ``LEDGER_INSUFFICIENT_FUNDS``,
    ``LEDGER_IDEMPOTENCY_CONFLICT``, ``LEDGER_NOT_FOUND``, ``LEDGER_STATE``,
    ``WITHDRAWAL_BELOW_MINIMUM``.
    """

    default_code = ErrorCode.LEDGER_UNBALANCED


class PaymentStateError(InvalidRequestError):
    """The stored payment's state forbids the operation.

    ``code`` tells which: ``TRADE_ALREADY_PAID``, ``TRADE_CLOSED``,
    ``PAYMENT_IN_REVIEW``, ``REFUND_EXCEEDS_PAID``, ``UNKNOWN_PAYMENT``,
    ``UNKNOWN_REFUND``.
    """

    default_code = ErrorCode.PAYMENT_STATE


class SignatureError(PayhubError):
    default_code = ErrorCode.SIGNATURE_INVALID


class NotificationRejected(PayhubError):
    default_code = ErrorCode.NOT_OURS


class ProtocolError(PayhubError):
    default_code = ErrorCode.PROTOCOL


class NetworkError(PayhubError):
    default_code = ErrorCode.NETWORK


class ChannelTimeout(NetworkError):
    default_code = ErrorCode.TIMEOUT


class NoEligibleChannel(PayhubError):
    default_code = ErrorCode.NO_ELIGIBLE_CHANNEL

    def __init__(self, message: str, *, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        #: channel account name -> why it was excluded
        self.reasons: dict[str, str] = dict(reasons or {})


class RiskBlocked(PayhubError):
    """A risk rule (``payhub.risk``) refused the payment: no channel was called,
    nothing was stored as charged. ``rule`` names it; the message says why
    without the buyer's data."""

    default_code = ErrorCode.RISK_BLOCKED

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class StoreError(PayhubError):
    """The payment store failed; the transaction was rolled back, nothing is written."""

    default_code = ErrorCode.STORE_UNAVAILABLE


class StoreValueError(StoreError):
    """A value the store cannot hold: an amount beyond 64 bits, an identifier longer
    than its column or with NUL, control characters or surrogates, text the
    database refuses. Refused before any SQL where the store can tell, else
    translated from the database's own refusal. Nothing was written, and sending
    the same value again cannot help (``retryable`` is False)."""

    default_code = ErrorCode.STORE_VALUE_REFUSED


class ReportError(PayhubError):
    """A report's file could not be written (output directory, disk) or opened
    (wrong password, not a report file). A run that fails so is recorded as
    failed with this message; no file of it is left as if complete."""

    default_code = ErrorCode.REPORT_FAILED


class UnknownChannelError(PayhubError, KeyError):
    default_code = ErrorCode.UNKNOWN_CHANNEL

    def __str__(self) -> str:
        return self.message


class ChannelError(PayhubError):
    """The channel answered, with an error code.

    ``channel_code``/``channel_sub_code``/``channel_message`` are the channel's
    own words; ``code`` is payhub's unified code and decides ``retryable``.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        channel_code: str | None = None,
        channel_sub_code: str | None = None,
        channel_message: str | None = None,
        code: ErrorCode | None = None,
        retryable: bool | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.channel = channel
        self.channel_code = channel_code
        self.channel_sub_code = channel_sub_code
        self.channel_message = channel_message
        self.http_status = http_status
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"ChannelError({self.message!r}, channel={self.channel!r}, code={self.code.name}, "
            f"channel_code={self.channel_code!r}, channel_sub_code={self.channel_sub_code!r}, "
            f"retryable={self.retryable})"
        )
