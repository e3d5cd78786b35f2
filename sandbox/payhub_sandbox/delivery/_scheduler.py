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

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx

from payhub.money import Money
from payhub_sandbox._clock import Clock
from payhub_sandbox._state import Trade
from payhub_sandbox.delivery._faults import (
    Binding,
    DeliveryFault,
    DeliveryFaults,
    NotificationNotFoundError,
    TamperUnsupportedError,
    tamperer_for,
)
from payhub_sandbox.delivery._listeners import NOTIFICATION_EXTENSION
from payhub_sandbox.delivery._records import (
    AckRule,
    DeliveryAttempt,
    DeliveryStatus,
    OutboundNotification,
    event_type_of,
    scaled,
)

__all__ = [
    "AckRule",
    "DeliveryAttempt",
    "DeliveryScheduler",
    "DeliveryStatus",
    "OutboundNotification",
    "event_type_of",
    "scaled",
]

logger = logging.getLogger("payhub_sandbox.delivery")

_RESPONSE_BODY_KEPT = 2000


@dataclass(frozen=True)
class _Send:
    """One unit of work: the next scheduled attempt, or an extra send (a replay, a
    manual resend) of a notification that is already done."""

    notification: OutboundNotification
    extra: str | None = None
    serial: int = 0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.notification.id, self.extra or "attempt", self.serial)


@dataclass(frozen=True)
class _Result:
    status: int | None
    body: str
    error: str | None
    acknowledged: bool


class DeliveryScheduler:
    """Posts due notifications through one httpx client; thread-safe.

    :attr:`faults` holds the delivery faults (see :mod:`payhub_sandbox.delivery._faults`):
    each notification is matched against them when it is scheduled.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        lock: threading.RLock,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        trade_lookup: Callable[[str], Trade | None] | None = None,
    ) -> None:
        self._clock = clock
        self._lock = lock
        self._transport = transport
        self._timeout = timeout
        self._trade_lookup = trade_lookup
        self._client: httpx.Client | None = None
        self._notifications: dict[str, OutboundNotification] = {}
        self._acks: dict[str, AckRule] = {}
        self._in_flight: set[str] = set()
        self._attempts: list[DeliveryAttempt] = []
        self._extras: list[tuple[datetime, int, str, str]] = []
        """Extra sends of finished notifications: (due, serial, notification id, why)."""
        self._extra_serials = itertools.count(1)
        self._ids = itertools.count(1)
        self.faults = DeliveryFaults(clock_now=clock.now, lock=lock)

    # -- scheduling -------------------------------------------------------

    def new_id(self) -> str:
        with self._lock:
            return f"N{next(self._ids):06d}"

    def enqueue(self, notification: OutboundNotification, ack: AckRule) -> None:
        """Schedule ``notification``; its first attempt is due at ``next_at`` (default now),
        unless a delivery fault delays or holds it."""
        if notification.next_at is None:
            notification = replace(notification, next_at=self._clock.now())
        with self._lock:
            trade = self._trade_lookup(notification.trade_no) if self._trade_lookup else None
            event_type = event_type_of(notification)
            bound = self.faults.bind(
                notification, None if trade is None else trade.out_trade_no, event_type
            )
            if bound is not None:
                fault, binding = bound
                notification = replace(notification, fault_id=fault.id)
                if binding.delay and notification.next_at is not None:
                    notification = replace(
                        notification,
                        next_at=notification.next_at + timedelta(seconds=binding.delay),
                    )
                if fault.reorder and event_type == "payment":
                    notification = replace(notification, held=True, next_at=None)
            self._notifications[notification.id] = notification
            self._acks[notification.id] = ack

    def notifications(self) -> list[OutboundNotification]:
        with self._lock:
            return list(self._notifications.values())

    def notification(self, notification_id: str) -> OutboundNotification:
        with self._lock:
            try:
                return self._notifications[notification_id]
            except KeyError:
                raise NotificationNotFoundError(f"no notification {notification_id!r}") from None

    def attempts(self) -> list[DeliveryAttempt]:
        with self._lock:
            return list(self._attempts)

    # -- faults -------------------------------------------------------------

    def remove_fault(self, fault_id: str) -> DeliveryFault:
        """Remove a fault; notifications it holds back are released."""
        with self._lock:
            fault = self.faults.remove(fault_id)
            self._release(lambda n: n.fault_id == fault_id)
            return fault

    def clear_faults(self) -> list[DeliveryFault]:
        """Remove every fault; every held notification is released."""
        with self._lock:
            removed = self.faults.clear()
            self._release(lambda n: True)
            return removed

    def _release(self, which: Callable[[OutboundNotification], bool]) -> None:
        now = self._clock.now()
        with self._lock:
            for n in list(self._notifications.values()):
                if n.held and which(n):
                    self._notifications[n.id] = replace(n, held=False, next_at=now)

    # -- delivering ---------------------------------------------------------

    def _take_due(self, force: bool, done: set[tuple[str, str, int]]) -> list[_Send]:
        now = self._clock.now()
        with self._lock:
            sends = [
                _Send(n)
                for n in self._notifications.values()
                if n.status is DeliveryStatus.PENDING
                and n.id not in self._in_flight
                and n.next_at is not None
                and (force or n.next_at <= now)
                and (n.id, "attempt", 0) not in done
            ]
            busy = {s.notification.id for s in sends} | self._in_flight
            for due, serial, nid, why in sorted(self._extras):
                if (force or due <= now) and nid not in busy:
                    self._extras.remove((due, serial, nid, why))
                    sends.append(_Send(self._notifications[nid], why, serial))
                    busy.add(nid)
            sends.sort(key=lambda s: (s.notification.next_at or now, s.notification.id, s.serial))
            self._in_flight.update(s.notification.id for s in sends)
        return sends

    def deliver_due(self, *, force: bool = False) -> list[DeliveryAttempt]:
        """POST every notification whose next attempt is due now (every pending one
        if ``force``), and every replay due; record and return the attempts, in order.

        A notification released while this runs (a payment held until its refund
        was sent) is delivered in the same call.
        """
        made: list[DeliveryAttempt] = []
        done: set[tuple[str, str, int]] = set()
        while sends := self._take_due(force, done):
            try:
                for send in sends:
                    done.add(send.key)
                    made.extend(self._send(send))
                    with self._lock:
                        self._in_flight.discard(send.notification.id)
            finally:
                with self._lock:
                    self._in_flight.difference_update(s.notification.id for s in sends)
        return made

    def resend(self, notification_id: str) -> list[DeliveryAttempt]:
        """Send a notification now: a pending one's next attempt is made at once (a held
        one is released); an acknowledged or abandoned one is sent once more."""
        with self._lock:
            current = self.notification(notification_id)
            if current.id in self._in_flight:
                return []
            if current.status is DeliveryStatus.PENDING:
                current = replace(current, held=False, next_at=self._clock.now())
                self._notifications[current.id] = current
                send = _Send(current)
            else:
                send = _Send(current, "resend", next(self._extra_serials))
            self._in_flight.add(current.id)
        try:
            return self._send(send)
        finally:
            with self._lock:
                self._in_flight.discard(current.id)

    # -- one attempt ------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=self._transport, timeout=self._timeout, follow_redirects=False
                )
            return self._client

    def _send(self, send: _Send) -> list[DeliveryAttempt]:
        notification = send.notification
        at = self._clock.now()
        bound = self.faults.bound(notification.id)
        fault = None if bound is None else bound[0]
        binding = None if bound is None else bound[1]
        effects: list[str] = [send.extra] if send.extra else []
        headers, body = notification.headers, notification.body
        dropped = False
        copies = 1
        concurrent = False
        if fault is not None and binding is not None and send.extra is None:
            with self._lock:
                if binding.delay and notification.attempts == 0:
                    effects.append("delayed")
                if binding.dropped < fault.drop_first:
                    binding.dropped += 1
                    dropped = True
                    effects.append("dropped")
                elif fault.tamper is not None and binding.tampered < fault.tamper_attempts:
                    binding.tampered += 1
                    headers, body, effect = _tamper(notification, fault)
                    effects.append(effect)
            copies = 1 if dropped else fault.duplicates
            concurrent = fault.concurrent and copies > 1
            if copies > 1:
                effects.append("duplicate")
            if concurrent:
                effects.append("concurrent")
        if dropped:
            results = [_Result(None, "", "dropped on the way (delivery fault)", False)]
        else:
            results = self._post_copies(notification, headers, body, copies, concurrent)
        acknowledged = any(r.acknowledged for r in results)
        made: list[DeliveryAttempt] = []
        with self._lock:
            current = self._notifications[notification.id]
            number = current.attempts + 1
            for index, result in enumerate(results, 1):
                made.append(
                    DeliveryAttempt(
                        notification_id=current.id,
                        event_id=current.event_id,
                        channel=current.channel,
                        merchant_id=current.merchant_id,
                        trade_no=current.trade_no,
                        kind=current.kind,
                        url=current.url,
                        number=number,
                        at=at,
                        status_code=result.status,
                        response_body=result.body,
                        error=result.error,
                        acknowledged=result.acknowledged,
                        copy=index,
                        copies=len(results),
                        fault_id=None if fault is None else fault.id,
                        effects=tuple(effects),
                    )
                )
            self._attempts.extend(made)
            if send.extra is None:
                updated = _advance(current, number, at, acknowledged)
            else:
                updated = replace(current, attempts=number)
            self._notifications[current.id] = updated
            if fault is not None and binding is not None:
                just_acknowledged = (
                    send.extra is None
                    and current.status is DeliveryStatus.PENDING
                    and updated.status is DeliveryStatus.ACKNOWLEDGED
                )
                if just_acknowledged or send.extra == "replay":
                    self._schedule_replay(updated.id, fault, binding, at)
            if not dropped and event_type_of(current) == "refund":
                trade_no = current.trade_no
                self._release(lambda n: n.trade_no == trade_no)
        return made

    def _schedule_replay(
        self, notification_id: str, fault: DeliveryFault, binding: Binding, at: datetime
    ) -> None:
        """After an acknowledgement (or a replay), the next replay, if the fault wants one."""
        if fault.replay_after is None or binding.replays_sent >= fault.replays:
            return
        binding.replays_sent += 1
        due = at + timedelta(seconds=fault.replay_after)
        self._extras.append((due, next(self._extra_serials), notification_id, "replay"))

    def _post_copies(
        self,
        notification: OutboundNotification,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        copies: int,
        concurrent: bool,
    ) -> list[_Result]:
        if not concurrent:
            return [self._post(notification, headers, body) for _ in range(copies)]
        barrier = threading.Barrier(copies)
        results: list[_Result | None] = [None] * copies

        def run(index: int) -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=self._timeout)
            results[index] = self._post(notification, headers, body)

        threads = [
            threading.Thread(
                target=run, args=(i,), name=f"payhub-sandbox-copy-{i + 1}", daemon=True
            )
            for i in range(copies)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [
            r if r is not None else _Result(None, "", "the copy's thread died", False)
            for r in results
        ]

    def _post(
        self,
        notification: OutboundNotification,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
    ) -> _Result:
        try:
            response = self._http().post(
                notification.url,
                content=body,
                headers=list(headers),
                extensions={
                    # Lets a listener (see _listeners) say which notification this is.
                    NOTIFICATION_EXTENSION: {
                        "id": notification.id,
                        "channel": notification.channel,
                        "kind": notification.kind,
                    }
                },
            )
            return _Result(
                response.status_code,
                response.content[:_RESPONSE_BODY_KEPT].decode("utf-8", "replace"),
                None,
                self._acks[notification.id](response),
            )
        except Exception as exc:  # the receiver may fail in any way; that is the point
            error = f"{type(exc).__name__}: {exc}"
            logger.info(
                "notification %s to %s failed: %s", notification.id, notification.url, error
            )
            return _Result(None, "", error, False)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _tamper(
    notification: OutboundNotification, fault: DeliveryFault
) -> tuple[tuple[tuple[str, str], ...], bytes, str]:
    """The forged headers and body, and the effect's name."""
    tamperer = tamperer_for(notification.channel)
    try:
        if tamperer is None:
            raise TamperUnsupportedError(f"no tamperer for channel {notification.channel!r}")
        if fault.tamper == "amount":
            amount = None if fault.tamper_amount is None else Money.parse(fault.tamper_amount)
            headers, body = tamperer.tamper_amount(notification, amount)
            return headers, body, "tampered-amount"
        headers, body = tamperer.tamper_signature(notification)
        return headers, body, "tampered-signature"
    except TamperUnsupportedError as exc:
        logger.warning("notification %s sent untampered: %s", notification.id, exc.message)
        return notification.headers, notification.body, "tamper-unsupported"


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
