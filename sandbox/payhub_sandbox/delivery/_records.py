"""What the delivery of notifications is made of: values, no behaviour.

An :class:`OutboundNotification` (one event, its exact request and its
progress), a :class:`DeliveryAttempt` (one POST and its answer), their
:class:`DeliveryStatus`, the acknowledgement rule a channel hands over with a
notification, and :func:`scaled` retry delays. Both the scheduler and the
delivery faults import these; this module imports neither.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

__all__ = [
    "AckRule",
    "DeliveryAttempt",
    "DeliveryStatus",
    "OutboundNotification",
    "event_type_of",
    "scaled",
]

#: Decides from the receiver's response whether the notification was acknowledged.
AckRule = Callable[[httpx.Response], bool]


class DeliveryStatus(enum.Enum):
    PENDING = "PENDING"
    """More attempts will be made."""
    ACKNOWLEDGED = "ACKNOWLEDGED"
    """The receiver answered with the channel's acknowledgement; no more attempts."""
    GAVE_UP = "GAVE_UP"
    """Every attempt of the schedule failed."""


@dataclass(frozen=True)
class OutboundNotification:
    """One event to deliver, with its delivery progress."""

    id: str
    channel: str
    merchant_id: str
    event_id: str
    """The channel's id of the event (Alipay ``notify_id``), equal on every resend."""
    kind: str
    trade_no: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created_at: datetime
    delays: tuple[float, ...]
    """Seconds between attempts (already divided by the time factor)."""
    attempts: int = 0
    next_at: datetime | None = None
    status: DeliveryStatus = DeliveryStatus.PENDING
    event_type: str = ""
    """Channel-neutral: ``payment``, ``refund``, ``close``, ``finish`` or ``other``;
    empty: guessed from ``kind`` (see :func:`event_type_of`)."""
    held: bool = False
    """Held back by a ``reorder`` fault until a refund notification of its trade is sent."""
    fault_id: str | None = None
    """The delivery fault bound to this notification when it was scheduled."""

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "merchant_id": self.merchant_id,
            "event_id": self.event_id,
            "kind": self.kind,
            "trade_no": self.trade_no,
            "url": self.url,
            "body": self.body.decode("latin-1"),
            "created_at": self.created_at.isoformat(),
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "next_at": None if self.next_at is None else self.next_at.isoformat(),
            "status": self.status.value,
            "event_type": event_type_of(self),
            "held": self.held,
            "fault_id": self.fault_id,
        }


def event_type_of(notification: OutboundNotification) -> str:
    """The notification's channel-neutral event type: its ``event_type``, or a guess
    from its ``kind`` (``TRADE_SUCCESS (refund)``, ``04 refund``, ``REFUND.SUCCESS``
    → refund; ``TRADE_SUCCESS``, ``01 consume``, ``TRANSACTION.SUCCESS`` → payment)."""
    if notification.event_type:
        return notification.event_type
    kind = notification.kind.lower()
    if "refund" in kind or "undo" in kind:
        return "refund"
    if "close" in kind:
        return "close"
    if "finish" in kind:
        return "finish"
    if any(word in kind for word in ("success", "consume", "transaction", "paid")):
        return "payment"
    return "other"


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of one notification, and what came back."""

    notification_id: str
    event_id: str
    channel: str
    merchant_id: str
    trade_no: str
    kind: str
    url: str
    number: int
    """1 for the first attempt, up to the schedule's ``max_attempts``."""
    at: datetime
    status_code: int | None
    response_body: str
    """The receiver's body (decoded leniently, truncated); empty on a network error."""
    error: str | None
    acknowledged: bool
    copy: int = 1
    """Which of the attempt's copies this is (a ``duplicates`` fault sends several)."""
    copies: int = 1
    fault_id: str | None = None
    """The delivery fault that shaped this attempt, if any."""
    effects: tuple[str, ...] = ()
    """What was done to it: ``delayed``, ``duplicate``, ``concurrent``, ``dropped``,
    ``tampered-amount``, ``tampered-signature``, ``tamper-unsupported``, ``replay``,
    ``resend`` (a manual one)."""

    @property
    def sent(self) -> bool:
        """Whether the request left the sandbox (a dropped attempt never did)."""
        return "dropped" not in self.effects

    def to_json(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "event_id": self.event_id,
            "channel": self.channel,
            "merchant_id": self.merchant_id,
            "trade_no": self.trade_no,
            "kind": self.kind,
            "url": self.url,
            "number": self.number,
            "at": self.at.isoformat(),
            "status_code": self.status_code,
            "response_body": self.response_body,
            "error": self.error,
            "acknowledged": self.acknowledged,
            "copy": self.copy,
            "copies": self.copies,
            "fault_id": self.fault_id,
            "effects": list(self.effects),
        }


def scaled(delays: Sequence[float], time_factor: float) -> tuple[float, ...]:
    """A channel's retry delays (seconds) compressed by the sandbox's time factor."""
    return tuple(d / time_factor for d in delays)
