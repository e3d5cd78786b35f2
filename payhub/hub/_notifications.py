"""Notifications: verify and parse, then (with a store) apply in one
transaction, deliver the payment's events, and answer the channel.

Every decision of the path is a function here, written once:
:func:`parse` (a typed error for anything unusable), :func:`rejected` (the
failure ack), :func:`store_notification` (the transaction and its ack). The
I/O loop :func:`handle` is written twice (sync and async) only because the
channel's prerequisite flow, the store and the event handlers are awaited in
the async hub; ``tests/test_hub_twins.py`` keeps the two in step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pydantic

from payhub.channels._base import Channel, HeadersInput, as_headers
from payhub.channels._splitting import SplitOperations
from payhub.errors import PayhubError, ProtocolError
from payhub.hub import _splits as splitting
from payhub.models import Ack, Notification
from payhub.store import ApplyResult

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._base import BaseHub
    from payhub.hub._sync import PayHub

logger = logging.getLogger("payhub.hub")


@dataclass(frozen=True)
class NotificationOutcome:
    """What handling one notification came to.

    ``ack`` is what to answer the channel, always set. ``notification`` is the
    verified notification, or None if it did not verify; ``error`` says why it
    was not accepted (bad signature, not our payment, store unavailable).
    With a store, ``applied`` tells what the transaction did (applied,
    duplicate, review, deferred).
    """

    ack: Ack
    notification: Notification | None = None
    error: PayhubError | None = None
    applied: ApplyResult | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None

    @property
    def out_trade_no(self) -> str | None:
        """The payment the notification was applied to: a refund notification may
        name the refund's own order number (UnionPay), not the payment's."""
        if self.applied is not None:
            return self.applied.out_trade_no
        return None if self.notification is None else self.notification.out_trade_no


def parse(channel: Channel, headers: HeadersInput, body: bytes) -> Notification:
    """Run a channel's parser; a model it fails to build is the channel's bad data."""
    if type(headers) is not httpx.Headers:
        headers = as_headers(headers)
    if type(body) is not bytes:
        body = bytes(body)
    try:
        return channel.parse_notification(headers, body)
    except pydantic.ValidationError as exc:
        raise ProtocolError(
            f"{channel.name}: notification fields are unusable ({exc.error_count()} errors)",
            retryable=False,
        ) from None


def rejected(channel: Channel, exc: PayhubError, what: str) -> NotificationOutcome:
    """A notification not accepted (``what`` failed): a failure ack, so the channel resends."""
    logger.warning("%s: %s: %s", channel.name, what, exc.message)
    return NotificationOutcome(ack=channel.ack(False, exc.code.name), error=exc)


def verify(channel: Channel, headers: HeadersInput, body: bytes) -> NotificationOutcome:
    """Verify and parse; never raises for a bad notification (a failure ack)."""
    try:
        notification = parse(channel, headers, body)
    except PayhubError as exc:
        return rejected(channel, exc, "notification rejected")
    return NotificationOutcome(ack=channel.ack(True), notification=notification)


def store_notification(
    hub: BaseHub, channel: Channel, notification: Notification
) -> NotificationOutcome:
    """Apply a verified notification in one transaction (blocking)."""
    store = hub._require_store()
    hub._checkpoint("after_verify")
    try:
        applied = store.apply_notification(notification, checkpoint=hub._checkpoint)
    except PayhubError as exc:
        logger.warning("%s: notification not applied: %s", channel.name, exc.message)
        return NotificationOutcome(
            ack=channel.ack(False, exc.code.name), notification=notification, error=exc
        )
    if applied.reason:
        logger.info("%s: notification %s: %s", channel.name, applied.outcome.value, applied.reason)
    return NotificationOutcome(ack=channel.ack(True), notification=notification, applied=applied)


def split_event(channel: Channel, headers: httpx.Headers, body: bytes) -> bool:
    """A notification about a split or transfer, not a payment (the channel's look)."""
    return isinstance(channel, SplitOperations) and channel.is_split_notification(headers, body)


# -- the I/O loop, twice -------------------------------------------------------------


def handle(hub: PayHub, channel: str, headers: HeadersInput, body: bytes) -> NotificationOutcome:
    target = hub.channel(channel)
    normalized = as_headers(headers)
    prerequisite = target.notification_prerequisite(normalized)
    if prerequisite is not None:
        try:
            hub._run_flow(target, prerequisite)
        except PayhubError as exc:
            return rejected(target, exc, "notification prerequisite failed")
    if split_event(target, normalized, body):
        return handle_split(hub, target, normalized, body)
    outcome = verify(target, normalized, body)
    if hub._store is None or outcome.notification is None:
        return outcome
    # With a store: one transaction (inbox, lock, checks, transition, outbox),
    # then the events, then the ack.
    outcome = hub._call_store(store_notification, hub, target, outcome.notification)
    if outcome.accepted and outcome.out_trade_no is not None:
        hub._checkpoint("before_event_dispatch")
        hub._dispatch_after_commit(outcome.out_trade_no)
    hub._checkpoint("before_ack")
    return outcome


async def handle_async(
    hub: AsyncPayHub, channel: str, headers: HeadersInput, body: bytes
) -> NotificationOutcome:
    target = hub.channel(channel)
    normalized = as_headers(headers)
    prerequisite = target.notification_prerequisite(normalized)
    if prerequisite is not None:
        try:
            await hub._run_flow(target, prerequisite)
        except PayhubError as exc:
            return rejected(target, exc, "notification prerequisite failed")
    if split_event(target, normalized, body):
        return await handle_split_async(hub, target, normalized, body)
    outcome = verify(target, normalized, body)
    if hub._store is None or outcome.notification is None:
        return outcome
    # With a store: one transaction (inbox, lock, checks, transition, outbox),
    # then the events, then the ack.
    outcome = await hub._call_store(store_notification, hub, target, outcome.notification)
    if outcome.accepted and outcome.out_trade_no is not None:
        hub._checkpoint("before_event_dispatch")
        await hub._dispatch_after_commit(outcome.out_trade_no)
    hub._checkpoint("before_ack")
    return outcome


def handle_split(
    hub: PayHub, target: Channel, headers: httpx.Headers, body: bytes
) -> NotificationOutcome:
    """A split or transfer notification: verified, then applied through the same
    store path as ``hub.split`` / ``hub.payout`` (idempotent: a final record is
    never changed again). A split notice settles its split by query."""
    try:
        notice = splitting.parse_notice(target, headers, body)
        if hub._store is not None:
            splitting.apply_notice(hub, notice)
    except PayhubError as exc:
        return rejected(target, exc, "split notification not applied")
    return NotificationOutcome(ack=target.ack(True))


async def handle_split_async(
    hub: AsyncPayHub, target: Channel, headers: httpx.Headers, body: bytes
) -> NotificationOutcome:
    """A split or transfer notification: verified, then applied through the same
    store path as ``hub.split`` / ``hub.payout`` (idempotent: a final record is
    never changed again). A split notice settles its split by query."""
    try:
        notice = splitting.parse_notice(target, headers, body)
        if hub._store is not None:
            await splitting.apply_notice_async(hub, notice)
    except PayhubError as exc:
        return rejected(target, exc, "split notification not applied")
    return NotificationOutcome(ack=target.ack(True))
