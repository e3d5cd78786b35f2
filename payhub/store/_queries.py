"""Reading: payments, attempts, refunds, the inbox and the audit trail, for the
hub's recovery (``sync_*``), the CLI and reports.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.models import (
    AttemptOutcome,
)
from payhub.store._apply import (
    payment_record,
)
from payhub.store._base import StoreBase
from payhub.store._crypt import opened_body
from payhub.store._records import (
    AttemptRecord,
    AuditRecord,
    InboxOutcome,
    InboxRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    TransitionCause,
)
from payhub.store._refunds import _refund_record
from payhub.store._schema import (
    attempts,
    audit,
    notifications,
    payments,
    refunds,
)


class QueriesJob(StoreBase):
    """Reading payments, attempts, refunds, inbox, audit (part of :class:`~payhub.store.Store`)."""

    # -- reading ------------------------------------------------------------

    def payment(self, out_trade_no: str) -> PaymentRecord | None:
        def fn(conn: Connection) -> PaymentRecord | None:
            row = conn.execute(
                sa.select(payments).where(payments.c.out_trade_no == out_trade_no)
            ).first()
            return None if row is None else payment_record(row)

        return self._read(fn)

    def pending_payments(
        self, older_than: timedelta = timedelta(0), *, limit: int | None = None
    ) -> list[PaymentRecord]:
        """Payments still pending, created at least ``older_than`` ago, oldest first."""
        cutoff = self.now() - older_than
        stmt = (
            sa.select(payments)
            .where(payments.c.status == PaymentState.PENDING.value, payments.c.created_at <= cutoff)
            .order_by(payments.c.created_at, payments.c.id)
            .limit(limit)
        )
        return self._read(lambda conn: [payment_record(r) for r in conn.execute(stmt)])

    def pending_refunds(
        self, older_than: timedelta = timedelta(0), *, limit: int | None = None
    ) -> list[RefundRecord]:
        """Refunds still pending (asked of the channel, its answer not known),
        created at least ``older_than`` ago, oldest first."""
        cutoff = self.now() - older_than
        stmt = (
            sa.select(refunds, payments.c.out_trade_no)
            .join(payments, payments.c.id == refunds.c.payment_id)
            .where(refunds.c.status == RefundState.PENDING.value, refunds.c.created_at <= cutoff)
            .order_by(refunds.c.created_at, refunds.c.id)
            .limit(limit)
        )
        return self._read(
            lambda conn: [
                _refund_record(r, r["out_trade_no"]) for r in conn.execute(stmt).mappings()
            ]
        )

    def attempts(self, out_trade_no: str) -> list[AttemptRecord]:
        stmt = (
            sa.select(attempts, payments.c.out_trade_no)
            .join(payments, payments.c.id == attempts.c.payment_id)
            .where(payments.c.out_trade_no == out_trade_no)
            .order_by(attempts.c.seq)
        )

        def fn(conn: Connection) -> list[AttemptRecord]:
            return [
                AttemptRecord(
                    out_trade_no=r["out_trade_no"],
                    seq=r["seq"],
                    channel=r["channel"],
                    outcome=AttemptOutcome(r["outcome"]),
                    error_code=r["error_code"],
                    channel_code=r["channel_code"],
                    message=r["message"],
                    may_exist=bool(r["may_exist"]),
                    channel_trade_id=r["channel_trade_id"],
                    created_at=r["created_at"],
                )
                for r in conn.execute(stmt).mappings()
            ]

        return self._read(fn)

    def sync_channels(self, out_trade_no: str) -> list[str]:
        """Channels where a trade of this payment may exist: its own first."""
        record = self.payment(out_trade_no)
        if record is None:
            return []
        found = [record.channel] if record.channel else []
        for attempt in self.attempts(out_trade_no):
            live = attempt.may_exist or attempt.outcome is AttemptOutcome.SUCCEEDED
            if live and attempt.channel not in found:
                found.append(attempt.channel)
        return found

    def refund(self, out_refund_no: str) -> RefundRecord | None:
        stmt = (
            sa.select(refunds, payments.c.out_trade_no)
            .join(payments, payments.c.id == refunds.c.payment_id)
            .where(refunds.c.out_refund_no == out_refund_no)
        )

        def fn(conn: Connection) -> RefundRecord | None:
            row = conn.execute(stmt).mappings().first()
            return None if row is None else _refund_record(row, row["out_trade_no"])

        return self._read(fn)

    def refunds(self, out_trade_no: str) -> list[RefundRecord]:
        stmt = (
            sa.select(refunds, payments.c.out_trade_no)
            .join(payments, payments.c.id == refunds.c.payment_id)
            .where(payments.c.out_trade_no == out_trade_no)
            .order_by(refunds.c.id)
        )
        return self._read(
            lambda conn: [
                _refund_record(r, r["out_trade_no"]) for r in conn.execute(stmt).mappings()
            ]
        )

    def inbox(self, out_trade_no: str | None = None) -> list[InboxRecord]:
        stmt = sa.select(notifications).order_by(notifications.c.id)
        if out_trade_no is not None:
            stmt = stmt.where(notifications.c.out_trade_no == out_trade_no)

        def fn(conn: Connection) -> list[InboxRecord]:
            return [
                InboxRecord(
                    channel=r["channel"],
                    event_key=r["event_key"],
                    kind=r["kind"],
                    out_trade_no=r["out_trade_no"],
                    outcome=InboxOutcome(r["outcome"]),
                    received_at=r["received_at"],
                    raw_body=opened_body(self._field_keys, r),
                )
                for r in conn.execute(stmt).mappings()
            ]

        return self._read(fn)

    def audit(self, out_trade_no: str) -> list[AuditRecord]:
        stmt = (
            sa.select(audit, payments.c.out_trade_no)
            .join(payments, payments.c.id == audit.c.payment_id)
            .where(payments.c.out_trade_no == out_trade_no)
            .order_by(audit.c.id)
        )

        def fn(conn: Connection) -> list[AuditRecord]:
            return [
                AuditRecord(
                    out_trade_no=r["out_trade_no"],
                    from_status=None
                    if r["from_status"] is None
                    else PaymentState(r["from_status"]),
                    to_status=PaymentState(r["to_status"]),
                    cause=TransitionCause(r["cause"]),
                    source=r["source"],
                    at=r["at"],
                )
                for r in conn.execute(stmt).mappings()
            ]

        return self._read(fn)


