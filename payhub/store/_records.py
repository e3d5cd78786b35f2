"""What the store gives back: typed, immutable views of its rows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from payhub.lifecycle import (
    AnomalyKind,
    InboxOutcome,
    PaymentState,
    RefundState,
    TransitionCause,
)
from payhub.models import AttemptOutcome, PayMethod
from payhub.money import Money

__all__ = [
    "AnomalyKind",
    "AnomalyRecord",
    "AnomalyStatus",
    "ApplyResult",
    "AttemptRecord",
    "AuditRecord",
    "InboxOutcome",
    "InboxRecord",
    "PaymentRecord",
    "PaymentState",
    "RefundRecord",
    "RefundState",
    "TransitionCause",
]

_RECORD = ConfigDict(extra="forbid", frozen=True)


class PaymentRecord(BaseModel):
    model_config = _RECORD

    out_trade_no: str
    amount: Money
    subject: str
    method: PayMethod
    status: PaymentState
    channel: str | None
    channel_trade_id: str | None
    #: what ``channel`` needs to find the trade again (its PaymentResult.channel_context)
    channel_context: dict[str, str] = Field(default_factory=dict)
    paid_at: datetime | None
    refunded: Money
    created_at: datetime
    updated_at: datetime
    version: int
    #: the seller whose ledger accounts it credits (None: the shop)
    seller: str | None = None


class AttemptRecord(BaseModel):
    model_config = _RECORD

    out_trade_no: str
    seq: int
    channel: str
    outcome: AttemptOutcome
    error_code: str | None
    channel_code: str | None
    message: str | None
    may_exist: bool
    channel_trade_id: str | None
    created_at: datetime


class RefundRecord(BaseModel):
    model_config = _RECORD

    out_refund_no: str
    out_trade_no: str
    channel: str
    amount: Money
    status: RefundState
    channel_refund_id: str | None
    reason: str | None
    origin: str
    created_at: datetime
    updated_at: datetime
    #: what ``channel`` needs to find the refund again (its RefundRequest.refund_context)
    channel_context: dict[str, str] = Field(default_factory=dict)
    #: the anomaly this refund returns a duplicate or late payment of
    #: (``hub.refund_duplicate``); None for a refund of the payment itself
    anomaly_id: int | None = None


class InboxRecord(BaseModel):
    model_config = _RECORD

    channel: str
    event_key: str
    kind: str
    out_trade_no: str
    outcome: InboxOutcome
    received_at: datetime
    raw_body: bytes


class AnomalyStatus(enum.StrEnum):
    OPEN = "open"  #: to refund or review
    RESOLVED = "resolved"  #: refunded, or closed by a person (who and why are kept)


class AnomalyRecord(BaseModel):
    """Something a channel said that payhub recorded instead of crediting.

    ``amount``: the money concerned (the duplicate trade, the refund), if known.
    A resolved anomaly tells when, by whom (``resolved_by``: an operator, or
    ``"payhub"`` when a refund of the duplicate settled it) and why.
    """

    model_config = _RECORD

    id: int = 0
    kind: AnomalyKind
    out_trade_no: str
    channel: str
    channel_trade_id: str | None
    amount: Money | None
    source: str
    detail: dict[str, Any]
    status: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class AuditRecord(BaseModel):
    model_config = _RECORD

    out_trade_no: str
    from_status: PaymentState | None
    to_status: PaymentState
    cause: TransitionCause
    source: str
    at: datetime


class ApplyResult(BaseModel):
    """What applying a notification or a channel's answer did, in one transaction."""

    model_config = _RECORD

    outcome: InboxOutcome
    out_trade_no: str
    #: (from, to) when the payment's state changed
    transition: tuple[PaymentState, PaymentState] | None = None
    payment: PaymentRecord | None = None
    #: ids of the outbox events written
    event_ids: tuple[str, ...] = ()
    #: why it is not applied (review, ignored), for logs
    reason: str | None = None
