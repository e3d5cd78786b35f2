"""What is waiting: the counts ``payhub health`` and the metrics read, in one
read-only transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.lifecycle import PAID_STATES, InboxOutcome, PaymentState
from payhub.store._base import StoreBase
from payhub.store._schema import (
    anomalies,
    events,
    ledger_batch_members,
    ledger_entries,
    notifications,
    payments,
    recon_items,
    risk_reviews,
)

__all__ = ["Backlog", "BacklogJob"]


@dataclass(frozen=True)
class Backlog:
    """Counts and the age (seconds) of the oldest of each, as of ``at``."""

    at: datetime
    pending: int  #: payments pending longer than the threshold
    pending_oldest: float | None
    undelivered: int  #: outbox events not dispatched, older than the threshold
    undelivered_oldest: float | None
    refused: int  #: notifications held for review (not credited) since the window began
    open_anomalies: int
    reviews_waiting: int  #: paid payments a risk rule holds for a person
    #: pending ledger entries due for settlement longer than the threshold, in no batch
    settlements_due: int = 0
    settlements_due_oldest: float | None = None
    #: reconciliation differences waiting for a person (or an automatic repair)
    recon_open: int = 0
    recon_open_oldest: float | None = None


def _age(at: datetime, oldest: datetime | None) -> float | None:
    return None if oldest is None else max(0.0, (at - oldest).total_seconds())


class BacklogJob(StoreBase):
    def backlog(
        self,
        *,
        pending_after: timedelta,
        undelivered_after: timedelta,
        refused_window: timedelta,
        settle_after: timedelta = timedelta(hours=2),
    ) -> Backlog:
        """The backlog as of now (see :class:`Backlog`)."""
        now = self.now()

        def fn(conn: Connection) -> Backlog:
            pend = conn.execute(
                sa.select(sa.func.count(), sa.func.min(payments.c.created_at)).where(
                    payments.c.status == PaymentState.PENDING.value,
                    payments.c.created_at <= now - pending_after,
                )
            ).one()
            und = conn.execute(
                sa.select(sa.func.count(), sa.func.min(events.c.created_at)).where(
                    events.c.dispatched_at.is_(None),
                    events.c.created_at <= now - undelivered_after,
                )
            ).one()
            refused = conn.execute(
                sa.select(sa.func.count()).where(
                    notifications.c.outcome == InboxOutcome.REVIEW.value,
                    notifications.c.received_at >= now - refused_window,
                )
            ).scalar_one()
            open_anomalies = conn.execute(
                sa.select(sa.func.count()).where(anomalies.c.status == "open")
            ).scalar_one()
            held = risk_reviews.join(payments, payments.c.id == risk_reviews.c.payment_id)
            waiting = conn.execute(
                sa.select(sa.func.count())
                .select_from(held)
                .where(
                    risk_reviews.c.status == "open",
                    payments.c.status.in_([s.value for s in PAID_STATES]),
                )
            ).scalar_one()
            entry, member = ledger_entries, ledger_batch_members
            due = conn.execute(
                sa.select(sa.func.count(), sa.func.min(entry.c.available_on)).where(
                    entry.c.pending_minor.is_not(None),
                    entry.c.available_on <= now - settle_after,
                    ~sa.exists().where(member.c.entry_id == entry.c.id),
                )
            ).one()
            recon = conn.execute(
                sa.select(sa.func.count(), sa.func.min(recon_items.c.created_at)).where(
                    recon_items.c.status == "open"
                )
            ).one()
            return Backlog(
                at=now,
                settlements_due=int(due[0]),
                settlements_due_oldest=_age(now, due[1]),
                recon_open=int(recon[0]),
                recon_open_oldest=_age(now, recon[1]),
                pending=int(pend[0]),
                pending_oldest=_age(now, pend[1]),
                undelivered=int(und[0]),
                undelivered_oldest=_age(now, und[1]),
                refused=int(refused),
                open_anomalies=int(open_anomalies),
                reviews_waiting=int(waiting),
            )

        return self._read(fn)

    def ping(self) -> None:
        """One round trip to the database (raises :class:`StoreError` if unreachable)."""
        self._read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
