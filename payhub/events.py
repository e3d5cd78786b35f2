"""Outbox events: what shop code subscribes to.

Every state change the store applies writes one event in the same database
transaction (the *outbox*). After the commit the hub hands each event to the
handlers subscribed to its type; a handler that raises leaves the event
undispatched, to be retried by ``hub.dispatch_events()`` or
``payhub events dispatch``. Delivery is therefore *at least once*; the stable
:attr:`Event.id` lets shop code make its effect exactly-once:

>>> def deliver_card(event: Event) -> None:  # doctest: +SKIP
...     if shop.already_done(event.id):
...         return
...     shop.send_card_key(event.out_trade_no, done_marker=event.id)
>>> hub.subscribe(EventType.PAYMENT_SUCCEEDED, deliver_card)  # doctest: +SKIP
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict

__all__ = ["Event", "EventHandler", "EventType", "Subscribers", "stable_event_id"]


class EventType(enum.StrEnum):
    """The event types payhub writes. ``"*"`` subscribes to all of them."""

    PAYMENT_SUCCEEDED = "payment.succeeded"  #: credited: deliver the goods
    #: credited, but a risk rule holds it for review: do NOT deliver yet; a
    #: ``payment.succeeded`` follows if a person approves (``payhub reviews``)
    PAYMENT_REVIEW = "payment.review"
    PAYMENT_REFUNDED = "payment.refunded"  #: a refund succeeded (partial or full)
    PAYMENT_CLOSED = "payment.closed"  #: closed unpaid
    PAYMENT_AMOUNT_MISMATCH = "payment.amount_mismatch"  #: held for review, not credited
    PAYMENT_DUPLICATE = "payment.duplicate"  #: paid twice (another channel): refund one
    PAYMENT_LATE = "payment.late"  #: paid after it was closed: refund or review
    REFUND_FAILED = "refund.failed"  #: a refund failed; its amount is refundable again
    REFUND_REVIEW = "refund.review"  #: a refund notification that cannot be applied
    #: the channel's paid time is implausible (before the payment, or in the
    #: future); the payment was credited, a person should look
    PAYMENT_TIME_ANOMALY = "payment.time_anomaly"
    #: a duplicate or late payment was refunded (``hub.refund_duplicate``); the
    #: payment itself is unchanged: do not take back what it delivered
    DUPLICATE_REFUNDED = "payment.duplicate_refunded"
    #: an anomaly was resolved (by a refund of the duplicate, or by an operator)
    ANOMALY_RESOLVED = "anomaly.resolved"


class Event(BaseModel):
    """One outbox event, as a handler receives it.

    ``id`` is the same every time this event is delivered (after a crash, by
    another process, by ``payhub events dispatch``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: str
    out_trade_no: str | None
    payload: dict[str, Any]
    created_at: datetime
    #: the outbox order (increasing in the order events were written)
    seq: int = 0
    #: how many times delivery was started, this one included
    attempts: int = 1


EventHandler: TypeAlias = Callable[[Event], object]


def stable_event_id(*parts: str) -> str:
    """A 32-hex-digit id derived from what makes the event unique (its source)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


class Subscribers:
    """Handlers by event type; ``"*"`` matches every type."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable[[Event], Any]]] = {}

    def add(self, event_type: str, handler: Callable[[Event], Any]) -> None:
        if not callable(handler):
            raise TypeError("an event handler must be callable")
        self._handlers.setdefault(str(event_type), []).append(handler)

    def remove(self, event_type: str, handler: Callable[[Event], Any]) -> None:
        handlers = self._handlers.get(str(event_type), [])
        if handler in handlers:
            handlers.remove(handler)

    def __bool__(self) -> bool:
        return any(self._handlers.values())

    def for_type(self, event_type: str) -> list[Callable[[Event], Any]]:
        return [*self._handlers.get(event_type, ()), *self._handlers.get("*", ())]
