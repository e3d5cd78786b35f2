"""Asynchronous notifications: scheduled, posted, retried, logged.

A channel builds the exact request once per event (an
:class:`OutboundNotification`: URL, headers, body bytes) and hands it over with
its retry schedule and its acknowledgement rule. :meth:`DeliveryScheduler.deliver_due`
posts every notification whose next attempt is due on the sandbox clock and
records each attempt. Every resend of one event carries the same bytes.

No lock is held while a request is in flight: the receiving shop may call
back into the sandbox (query the trade) from its handler, even in-process.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from payhub_sandbox._clock import Clock

__all__ = [
    "AckRule",
    "DeliveryAttempt",
    "DeliveryScheduler",
    "DeliveryStatus",
    "OutboundNotification",
    "scaled",
]

logger = logging.getLogger("payhub_sandbox.delivery")

#: Decides from the receiver's response whether the notification was acknowledged.
AckRule = Callable[[httpx.Response], bool]

_RESPONSE_BODY_KEPT = 2000


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
        }


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
        }


class DeliveryScheduler:
    """Posts due notifications through one httpx client; thread-safe."""

    def __init__(
        self,
        *,
        clock: Clock,
        lock: threading.RLock,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._clock = clock
        self._lock = lock
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._notifications: dict[str, OutboundNotification] = {}
        self._acks: dict[str, AckRule] = {}
        self._in_flight: set[str] = set()
        self._attempts: list[DeliveryAttempt] = []
        self._ids = itertools.count(1)

    # -- scheduling -------------------------------------------------------

    def new_id(self) -> str:
        with self._lock:
            return f"N{next(self._ids):06d}"

    def enqueue(self, notification: OutboundNotification, ack: AckRule) -> None:
        """Schedule ``notification``; its first attempt is due at ``next_at`` (default now)."""
        if notification.next_at is None:
            notification = replace(notification, next_at=self._clock.now())
        with self._lock:
            self._notifications[notification.id] = notification
            self._acks[notification.id] = ack

    def notifications(self) -> list[OutboundNotification]:
        with self._lock:
            return list(self._notifications.values())

    def attempts(self) -> list[DeliveryAttempt]:
        with self._lock:
            return list(self._attempts)

    def _take_due(self, force: bool) -> list[OutboundNotification]:
        now = self._clock.now()
        with self._lock:
            due = [
                n
                for n in self._notifications.values()
                if n.status is DeliveryStatus.PENDING
                and n.id not in self._in_flight
                and n.next_at is not None
                and (force or n.next_at <= now)
            ]
            due.sort(key=lambda n: (n.next_at or n.created_at, n.id))
            self._in_flight.update(n.id for n in due)
        return due

    def deliver_due(self, *, force: bool = False) -> list[DeliveryAttempt]:
        """POST every notification whose next attempt is due now (every pending one
        if ``force``); record and return the attempts, in order."""
        made: list[DeliveryAttempt] = []
        for notification in self._take_due(force):
            try:
                made.append(self._attempt(notification))
            finally:
                with self._lock:
                    self._in_flight.discard(notification.id)
        return made

    # -- one attempt ------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=self._transport, timeout=self._timeout, follow_redirects=False
                )
            return self._client

    def _attempt(self, notification: OutboundNotification) -> DeliveryAttempt:
        at = self._clock.now()
        status: int | None = None
        body = ""
        error: str | None = None
        acknowledged = False
        try:
            response = self._http().post(
                notification.url, content=notification.body, headers=list(notification.headers)
            )
            status = response.status_code
            body = response.content[:_RESPONSE_BODY_KEPT].decode("utf-8", "replace")
            acknowledged = self._acks[notification.id](response)
        except Exception as exc:  # the receiver may fail in any way; that is the point
            error = f"{type(exc).__name__}: {exc}"
            logger.info(
                "notification %s to %s failed: %s", notification.id, notification.url, error
            )
        with self._lock:
            current = self._notifications[notification.id]
            number = current.attempts + 1
            attempt = DeliveryAttempt(
                notification_id=current.id,
                event_id=current.event_id,
                channel=current.channel,
                merchant_id=current.merchant_id,
                trade_no=current.trade_no,
                kind=current.kind,
                url=current.url,
                number=number,
                at=at,
                status_code=status,
                response_body=body,
                error=error,
                acknowledged=acknowledged,
            )
            self._attempts.append(attempt)
            self._notifications[current.id] = _advance(current, number, at, acknowledged)
        return attempt

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _advance(
    notification: OutboundNotification, number: int, at: datetime, acknowledged: bool
) -> OutboundNotification:
    if acknowledged:
        return replace(
            notification, attempts=number, next_at=None, status=DeliveryStatus.ACKNOWLEDGED
        )
    if number >= notification.max_attempts:
        return replace(notification, attempts=number, next_at=None, status=DeliveryStatus.GAVE_UP)
    delay = timedelta(seconds=notification.delays[number - 1])
    return replace(notification, attempts=number, next_at=at + delay)


def scaled(delays: Sequence[float], time_factor: float) -> tuple[float, ...]:
    """A channel's retry delays (seconds) compressed by the sandbox's time factor."""
    return tuple(d / time_factor for d in delays)
