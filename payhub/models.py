"""Typed models of what flows between a shop, payhub and a channel.

Requests (what the shop builds) forbid unknown fields and are immutable.
Parsed channel data (query results, notifications, bill records) keep what the
channel sent in ``raw`` so nothing is lost in translation.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from payhub.errors import AmountError
from payhub.money import Money

__all__ = [
    "Ack",
    "AttemptOutcome",
    "BillRecord",
    "BillRecordKind",
    "BuyerHints",
    "Notification",
    "NotificationKind",
    "PayMethod",
    "PaymentAttempt",
    "PaymentQueryResult",
    "PaymentRequest",
    "PaymentResult",
    "PaymentStatus",
    "RefundQueryRequest",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "ResultKind",
    "ReturnInfo",
    "order_number_problem",
]

_ORDER_NO_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}", re.ASCII)


def order_number_problem(value: object) -> str | None:
    """Why payhub's grammar refuses ``value`` as an ``out_trade_no`` or ``out_refund_no``.

    The one grammar of the shop's own numbers: 1-64 ASCII letters, digits,
    ``_`` or ``-``. So no whitespace anywhere (``"A1 "`` is not ``"A1"`` on any
    database, and some would pad it to match), no control characters, nothing
    a database could fold, pad or truncate. Requests hold their numbers to it;
    the store checks it again when a payment or refund is created.

    >>> order_number_problem("ORDER-1") is None
    True
    >>> order_number_problem("ORDER-1 ")
    "must be 1-64 ASCII letters, digits, '_' or '-'"
    """
    if isinstance(value, str) and _ORDER_NO_RE.fullmatch(value):
        return None
    return "must be 1-64 ASCII letters, digits, '_' or '-'"


def _order_no(value: str) -> str:
    problem = order_number_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError("must be timezone-aware")
    return value


def _positive(value: Money) -> Money:
    if value.minor <= 0:
        raise AmountError("amount must be positive")
    return value


OrderNo = Annotated[str, AfterValidator(_order_no)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
PositiveMoney = Annotated[Money, AfterValidator(_positive)]

_REQUEST = ConfigDict(extra="forbid", frozen=True, strict=True)
_PARSED = ConfigDict(extra="forbid", frozen=True)


class PayMethod(enum.StrEnum):
    """How the buyer pays."""

    PAGE = "page"  #: desktop browser, redirect or form to the channel's cashier
    WAP = "wap"  #: mobile browser
    APP = "app"  #: native app SDK
    QR = "qr"  #: the shop shows a QR code the buyer scans
    JSAPI = "jsapi"  #: inside the channel's own app (WeChat official account, mini program)
    H5 = "h5"  #: mobile browser outside the channel's app (WeChat H5)


class ResultKind(enum.StrEnum):
    REDIRECT = "redirect"
    FORM = "form"
    QR = "qr"
    APP = "app"
    JSAPI = "jsapi"


class BuyerHints(BaseModel):
    """What the shop knows of the buyer; each channel uses what it needs."""

    model_config = _REQUEST

    ip: str | None = None
    user_id: str | None = None  #: Alipay buyer id / UnionPay account hint
    openid: str | None = None  #: WeChat openid for JSAPI
    #: the shop's own id of the buyer (account, e-mail): for risk rules, never sent to a channel
    account: str | None = Field(default=None, max_length=128)
    #: a device fingerprint the shop computed: for risk rules, never sent to a channel
    device_id: str | None = Field(default=None, max_length=128)


class PaymentRequest(BaseModel):
    """A payment the shop asks for.

    >>> PaymentRequest(out_trade_no="A1", amount=Money(100), subject="Card", method="qr")
    ... # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    out_trade_no: OrderNo
    amount: PositiveMoney
    subject: str = Field(min_length=1, max_length=256)
    method: PayMethod
    notify_url: str | None = None
    return_url: str | None = None
    expires_at: AwareDatetime | None = None
    buyer: BuyerHints | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    #: Pin the payment to one configured channel account; routing picks otherwise.
    channel: str | None = None
    #: what is bought and how many (risk rules: per-product quantity limits)
    product_id: str | None = Field(default=None, max_length=64)
    quantity: int | None = Field(default=None, ge=1)
    #: The seller of a multi-seller platform whose ledger accounts the payment
    #: credits (docs/ledger.md); None: the shop itself.
    seller: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$",
    )
    #: The payment will be split (分账) later (``hub.split``): its money stays
    #: frozen at the channel until split or finished. WeChat Pay
    #: ``settle_info.profit_sharing = true``; Alipay
    #: ``extend_params.royalty_freeze = "true"``.
    split: bool = False


class AttemptOutcome(enum.StrEnum):
    """How one try of one channel for a payment ended."""

    SUCCEEDED = "succeeded"
    RETRYABLE_FAILURE = "retryable_failure"  #: the next channel was tried
    BUSINESS_ERROR = "business_error"  #: raised at once; no other channel was tried
    TIMEOUT = "timeout"  #: no answer: the trade may exist at that channel


class PaymentAttempt(BaseModel):
    """One try of one channel account for a payment (see ``PaymentResult.attempts``)."""

    model_config = _PARSED

    channel: str
    seq: int
    outcome: AttemptOutcome
    #: payhub's unified error code (``ErrorCode`` name) when it failed
    code: str | None = None
    #: the channel's own error code when it answered with one
    channel_code: str | None = None
    #: a timeout: the trade may exist there, so a later notification is recognised
    may_exist: bool = False


class PaymentResult(BaseModel):
    """What the caller shows the buyer to complete the payment."""

    model_config = _PARSED

    channel: str
    out_trade_no: str
    kind: ResultKind
    redirect_url: str | None = None
    form_html: str | None = None
    qr_code: str | None = None
    app_order_string: str | None = None
    app_params: dict[str, str] | None = None
    channel_trade_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
    #: What the channel needs later to find this trade again (e.g. UnionPay's
    #: ``{"txnTime": ...}``): small and not secret. The store keeps it and the
    #: hub hands it back to ``Channel.query(..., context=...)``; most channels
    #: leave it empty.
    channel_context: dict[str, str] = Field(default_factory=dict)
    #: Every channel tried for this payment, in order; the last one took it.
    attempts: tuple[PaymentAttempt, ...] = ()


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  #: created, not paid yet
    PAID = "paid"  #: paid; refunds may follow
    CLOSED = "closed"  #: closed unpaid, or fully refunded (see refunded_amount)
    FINISHED = "finished"  #: paid, and no refund is possible any more
    REFUNDED = "refunded"  #: (WeChat) some refund happened
    FAILED = "failed"  #: payment failed


class PaymentQueryResult(BaseModel):
    model_config = _PARSED

    channel: str
    out_trade_no: str
    status: PaymentStatus
    amount: Money | None = None
    channel_trade_id: str | None = None
    paid_at: AwareDatetime | None = None
    buyer_id: str | None = None
    refunded_amount: Money | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    out_trade_no: OrderNo
    out_refund_no: OrderNo
    amount: PositiveMoney
    #: The payment's total; some channels (WeChat, UnionPay) need it on the wire.
    total: PositiveMoney | None = None
    reason: str | None = Field(default=None, max_length=256)
    notify_url: str | None = None
    #: The payment's ``PaymentResult.channel_context`` (a hub with a store fills
    #: it in, as it does ``total``); UnionPay takes the original ``txnTime`` from it.
    payment_context: dict[str, str] = Field(default_factory=dict)
    #: What the channel needs to find this refund again, fixed before the refund
    #: is first sent (``Channel.refund_context``; UnionPay: the refund's own
    #: ``txnTime``). A hub with a store fills it, keeps it with the refund and
    #: sends the same one on every retry of the same ``out_refund_no``.
    refund_context: dict[str, str] = Field(default_factory=dict)


class RefundQueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    out_trade_no: OrderNo
    out_refund_no: OrderNo
    #: The refund's ``RefundRequest.refund_context`` (a hub with a store fills it).
    refund_context: dict[str, str] = Field(default_factory=dict)


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"
    NOT_FOUND = "not_found"


class RefundResult(BaseModel):
    model_config = _PARSED

    channel: str
    out_trade_no: str
    out_refund_no: str
    status: RefundStatus
    amount: Money | None = None
    refunded_total: Money | None = None
    channel_trade_id: str | None = None
    channel_refund_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
    #: when the channel says the refund succeeded, where its answer says (the
    #: day reconciliation looks for it in the channel's bill)
    succeeded_at: AwareDatetime | None = None


class NotificationKind(enum.StrEnum):
    PAYMENT = "payment"  #: a payment succeeded (or finished)
    REFUND = "refund"  #: a refund (partial or full) succeeded
    REFUND_FAILED = "refund_failed"  #: a refund failed or was closed
    CLOSED = "closed"  #: the trade was closed unpaid (timeout or close)
    FINISHED = "finished"  #: the trade can take no more refunds
    PENDING = "pending"  #: the trade was created; informational


class Notification(BaseModel):
    """A verified, parsed asynchronous notification.

    ``event_key`` is stable across resends of the same event by the channel and
    is what the inbox de-duplicates on.
    """

    model_config = _PARSED

    channel: str
    kind: NotificationKind
    out_trade_no: str
    channel_trade_id: str | None
    #: The trade's total. None only where a channel's notification does not carry
    #: it (UnionPay refunds name only the refund's amount); such a notification is
    #: never proof of payment.
    amount: Money | None
    status: PaymentStatus
    event_key: str
    #: This refund's own amount, where the channel says it (WeChat, UnionPay).
    refund_amount: Money | None = None
    #: The trade's refunds so far, where the channel reports a running total
    #: instead (Alipay's ``refund_fee``). Never add it to what is already refunded.
    refunded_total: Money | None = None
    out_refund_no: str | None = None
    occurred_at: AwareDatetime | None = None
    merchant_id: str | None = None
    #: The channel's signed data proves the payment came after the order's
    #: payment deadline: recorded as a late payment (an anomaly and a
    #: ``payment.late`` event), never credited, acknowledged as received.
    after_deadline: bool = False
    raw: dict[str, Any]
    raw_body: bytes = b""

    @field_validator("event_key")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("event_key must not be empty")
        return value


class ReturnInfo(BaseModel):
    """The verified browser return. Never proof of payment: query or wait."""

    model_config = _PARSED

    channel: str
    out_trade_no: str
    channel_trade_id: str | None = None
    amount: Money | None = None
    raw: dict[str, str]


class Ack(BaseModel):
    """The exact HTTP answer a channel expects to a notification."""

    model_config = _PARSED

    status_code: int
    body: bytes = b""
    content_type: str | None = None
    ok: bool

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Content-Type": self.content_type} if self.content_type else {}


class BillRecordKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class BillRecord(BaseModel):
    """One line of a channel's bill; refund amounts are negative.

    ``fee`` has one meaning on every channel: what the channel charged the
    merchant for this line. It is positive on a payment (the merchant paid
    it) and negative on a refund when the channel returns (part of) the fee;
    ``None`` when the bill does not say.
    """

    model_config = _PARSED

    channel: str
    bill_date: date | None = None
    kind: BillRecordKind
    channel_trade_id: str
    out_trade_no: str
    out_refund_no: str | None = None
    subject: str | None = None
    amount: Money
    #: Charged to the merchant: positive on payments, negative when returned on refunds.
    fee: Money | None = None
    created_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    raw: dict[str, str]
