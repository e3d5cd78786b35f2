"""The notification inbox: one row per channel event, written once.

The inbox is what makes a notification exactly-once: its insert is unique per
(channel, event key), so a resend changes nothing. The row keeps the raw body
always, and the parsed notification only for a refund deferred until its
payment is paid (read again then).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.lifecycle import InboxOutcome
from payhub.models import Notification, NotificationKind
from payhub.store._crypt import FieldKeys, sealed_row
from payhub.store._engine import insert_ignore
from payhub.store._schema import notifications, payments

__all__ = [
    "deferred_notifications",
    "inbox_key",
    "inbox_row",
    "insert_inbox",
    "payment_named",
    "set_inbox_outcome",
]

_MAX_KEY = 191
_REFUND_KINDS = frozenset({NotificationKind.REFUND, NotificationKind.REFUND_FAILED})


def inbox_key(event_key: str) -> str:
    """The inbox column value: the channel's key, hashed if it would not fit."""
    if len(event_key) <= _MAX_KEY:
        return event_key
    return "sha256:" + hashlib.sha256(event_key.encode("utf-8")).hexdigest()


def inbox_row(
    notification: Notification, now: datetime, keys: FieldKeys | None = None
) -> dict[str, Any]:
    """The notification's inbox row (its buyer data sealed with ``keys`` if given)."""
    key = inbox_key(notification.event_key)
    return {
        "channel": notification.channel,
        "event_key": key,
        "kind": notification.kind.value,
        "out_trade_no": notification.out_trade_no,
        "received_at": now,
        **sealed_row(keys, notification.channel, key, notification.raw_body, notification.raw),
        # the parsed copy only if it is deferred: nothing built for the
        # duplicates this insert discards
        "payload": None,
        "outcome": InboxOutcome.APPLIED.value,  # provisional
    }


def insert_inbox(
    conn: Connection, notification: Notification, now: datetime, keys: FieldKeys | None = None
) -> bool:
    """Insert the notification's inbox row (its buyer data sealed with ``keys``
    if given); False if this event was received before."""
    return insert_ignore(conn, notifications, inbox_row(notification, now, keys))


def set_inbox_outcome(
    conn: Connection,
    channel: str,
    key: str,
    outcome: InboxOutcome,
    now: datetime,
    *,
    payload: dict[str, Any] | None = None,
    keys: FieldKeys | None = None,
) -> None:
    """Record what became of an inbox row (and its parsed copy, sealed with
    ``keys`` if given: the row was inserted under them in this transaction)."""
    values: dict[str, Any] = {"outcome": outcome.value, "processed_at": now}
    if payload is not None:
        values["payload"] = payload if keys is None else keys.seal_json(payload, channel, key)
    conn.execute(
        notifications.update()
        .where(notifications.c.channel == channel, notifications.c.event_key == key)
        .values(**values)
    )


def deferred_notifications(conn: Connection, out_trade_no: str) -> list[Any]:
    """The refund notifications deferred until this payment is paid, in arrival order."""
    rows = conn.execute(
        sa.select(notifications)
        .where(
            notifications.c.out_trade_no == out_trade_no,
            notifications.c.outcome == InboxOutcome.DEFERRED.value,
        )
        .order_by(notifications.c.id)
    ).mappings()
    return list(rows.all())


def payment_named(conn: Connection, notification: Notification) -> str:
    """The out_trade_no of the payment a notification is about (without a lock):
    its own, or, for a refund naming only the channel's trade, that trade's."""
    if notification.kind in _REFUND_KINDS and notification.channel_trade_id:
        known = conn.execute(
            sa.select(payments.c.out_trade_no).where(
                payments.c.out_trade_no == notification.out_trade_no
            )
        ).first()
        if known is None:
            rows = conn.execute(
                sa.select(payments.c.out_trade_no).where(
                    payments.c.channel == notification.channel,
                    payments.c.channel_trade_id == notification.channel_trade_id,
                )
            ).all()
            if len(rows) == 1:
                return str(rows[0][0])
    return notification.out_trade_no
