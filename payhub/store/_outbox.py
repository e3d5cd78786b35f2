"""The outbox: events written in the transaction of the change that caused them,
claimed under a lease and marked dispatched by the hub.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.events import Event
from payhub.store._base import StoreBase
from payhub.store._schema import (
    events,
)

DEFAULT_EVENT_LEASE = timedelta(minutes=5)


class OutboxJob(StoreBase):
    """The outbox: list, claim, mark, release events (part of :class:`~payhub.store.Store`)."""

    # -- outbox -------------------------------------------------------------

    def events(
        self,
        *,
        out_trade_no: str | None = None,
        pending: bool | None = None,
        limit: int | None = None,
        after: Event | None = None,
    ) -> list[Event]:
        """Outbox events, oldest first; ``pending=True`` only those not yet dispatched;
        ``after`` continues a listing after that event."""
        stmt = sa.select(events).order_by(events.c.seq).limit(limit)
        if after is not None:
            stmt = stmt.where(events.c.seq > after.seq)
        if out_trade_no is not None:
            stmt = stmt.where(events.c.out_trade_no == out_trade_no)
        if pending is True:
            stmt = stmt.where(events.c.dispatched_at.is_(None))
        elif pending is False:
            stmt = stmt.where(events.c.dispatched_at.is_not(None))
        return self._read(lambda conn: [_event(r) for r in conn.execute(stmt).mappings()])

    def claim_event(self, event_id: str, lease: timedelta = DEFAULT_EVENT_LEASE) -> Event | None:
        """Take an undispatched event for delivery, unless another dispatcher holds it."""

        def fn(conn: Connection) -> Event | None:
            now = self.now()
            claimed = conn.execute(
                events.update()
                .where(
                    events.c.id == event_id,
                    events.c.dispatched_at.is_(None),
                    sa.or_(events.c.claimed_until.is_(None), events.c.claimed_until < now),
                )
                .values(claimed_until=now + lease, attempts=events.c.attempts + 1)
            ).rowcount
            if claimed != 1:
                return None
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).mappings().one()
            return _event(row)

        return self.run(fn)

    def mark_dispatched(self, event_id: str) -> None:
        self.run(
            lambda conn: conn.execute(
                events.update()
                .where(events.c.id == event_id)
                .values(dispatched_at=self.now(), claimed_until=None, last_error=None)
            )
        )

    def release_event(self, event_id: str, error: str) -> None:
        """A handler failed: the event stays undispatched, to be retried."""
        self.run(
            lambda conn: conn.execute(
                events.update()
                .where(events.c.id == event_id, events.c.dispatched_at.is_(None))
                .values(claimed_until=None, last_error=error[:512])
            )
        )


def _event(row: Any) -> Event:
    return Event(
        id=row["id"],
        type=row["type"],
        out_trade_no=row["out_trade_no"],
        payload=dict(row["payload"]),
        created_at=row["created_at"],
        seq=int(row["seq"]),
        attempts=int(row["attempts"]),
    )
