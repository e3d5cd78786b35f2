"""The risk review queue: payments a risk rule held, approved or declined by a
person, and the risk audit (every decision, blocks included).

What a verdict means is decided in :mod:`payhub.risk`; this job records it.
A held payment's credit writes ``payment.review`` instead of
``payment.succeeded`` (:data:`payhub.lifecycle.HELD_EVENTS`, carried out in
``_apply``); approving writes the ``payment.succeeded`` it held back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import ErrorCode, InvalidRequestError, PaymentStateError
from payhub.events import EventType, stable_event_id
from payhub.lifecycle import PaymentState
from payhub.money import Money
from payhub.store._audit import write_risk_audit
from payhub.store._base import StoreBase, _lock_payment, logger
from payhub.store._engine import insert_ignore
from payhub.store._schema import events, payments, risk_audit, risk_reviews

__all__ = ["ReviewRecord", "ReviewStatus", "ReviewsJob", "RiskAuditRecord"]


class ReviewStatus(enum.StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True)
class ReviewRecord:
    """A payment held for review, with its payment's state and amounts."""

    out_trade_no: str
    status: ReviewStatus
    rule: str
    verdict: dict[str, Any]
    created_at: datetime
    payment_state: PaymentState
    amount: Money
    refunded: Money
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str | None = None
    out_refund_no: str | None = None

    @property
    def waiting(self) -> bool:
        """Open and paid: the money is taken, the goods wait for a person."""
        return self.status is ReviewStatus.OPEN and self.payment_state.is_paid


@dataclass(frozen=True)
class RiskAuditRecord:
    out_trade_no: str
    action: str
    rule: str | None
    actor: str
    detail: dict[str, Any]
    at: datetime


_COLUMNS = (
    *risk_reviews.c,
    payments.c.status.label("payment_status"),
    payments.c.amount_minor,
    payments.c.currency,
    payments.c.refunded_minor,
)


def _record(r: Any) -> ReviewRecord:
    currency = str(r["currency"])
    return ReviewRecord(
        out_trade_no=r["out_trade_no"],
        status=ReviewStatus(r["status"]),
        rule=r["rule"],
        verdict=dict(r["verdict"]),
        created_at=r["created_at"],
        payment_state=PaymentState(r["payment_status"]),
        amount=Money(int(r["amount_minor"]), currency),
        refunded=Money(int(r["refunded_minor"]), currency),
        decided_at=r["decided_at"],
        decided_by=r["decided_by"],
        note=r["note"],
        out_refund_no=r["out_refund_no"],
    )


def _one_line(value: object, what: str, size: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"a review decision needs a non-empty {what}")
    value = value.strip()
    if len(value) > size or any(ord(ch) < 32 for ch in value):
        raise InvalidRequestError(f"the {what} must be one line of at most {size} characters")
    return value


class ReviewsJob(StoreBase):
    """Risk decisions and the review queue (part of :class:`~payhub.store.Store`)."""

    def record_risk(self, out_trade_no: str, verdict: dict[str, Any], *, hold: bool) -> None:
        """Audit a verdict's decision and observe hits; with ``hold``, queue the
        stored payment for review (one transaction, before any channel is called).

        ``verdict`` is :meth:`payhub.risk.RiskVerdict.as_json`. A blocked payment
        has no payment row: only its audit rows are written.
        """

        def fn(conn: Connection) -> None:
            now = self.now()
            action = str(verdict["action"])
            if action != "allow":
                write_risk_audit(
                    conn, out_trade_no, action=action, rule=verdict.get("rule"),
                    actor="payhub", detail=verdict, at=now,
                )
            for hit in verdict.get("hits", ()):
                if hit.get("observed"):
                    write_risk_audit(
                        conn, out_trade_no, action="observe", rule=hit["rule"],
                        actor="payhub", detail=hit, at=now,
                    )
            if not hold:
                return
            row = _lock_payment(conn, out_trade_no)
            if row is None:
                raise PaymentStateError(
                    f"no stored payment {out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
                )
            insert_ignore(
                conn,
                risk_reviews,
                {
                    "payment_id": row["id"],
                    "out_trade_no": out_trade_no,
                    "status": ReviewStatus.OPEN.value,
                    "rule": str(verdict.get("rule") or ""),
                    "verdict": verdict,
                    "created_at": now,
                },
            )
            conn.execute(
                payments.update().where(payments.c.id == row["id"]).values(risk_hold=True)
            )

        self.run(fn)

    def reviews(
        self, *, status: ReviewStatus | str | None = ReviewStatus.OPEN, limit: int | None = None
    ) -> list[ReviewRecord]:
        """Held payments, oldest first (by default the open ones)."""
        stmt = (
            sa.select(*_COLUMNS)
            .join(payments, payments.c.id == risk_reviews.c.payment_id)
            .order_by(risk_reviews.c.id)
            .limit(limit)
        )
        if status is not None:
            try:
                value = ReviewStatus(status).value
            except ValueError:
                raise InvalidRequestError(f"unknown review status {status!r}") from None
            stmt = stmt.where(risk_reviews.c.status == value)
        return self._read(lambda conn: [_record(r) for r in conn.execute(stmt).mappings()])

    def review(self, out_trade_no: str) -> ReviewRecord:
        """One payment's review; :class:`PaymentStateError` (UNKNOWN_PAYMENT) if none."""
        return self._read(lambda conn: self._review(conn, out_trade_no))

    def risk_audit(self, out_trade_no: str | None = None) -> list[RiskAuditRecord]:
        """The risk audit, oldest first (of one order number if given)."""
        stmt = sa.select(risk_audit).order_by(risk_audit.c.id)
        if out_trade_no is not None:
            stmt = stmt.where(risk_audit.c.out_trade_no == out_trade_no)
        return self._read(
            lambda conn: [
                RiskAuditRecord(
                    r["out_trade_no"], r["action"], r["rule"], r["actor"], dict(r["detail"]),
                    r["at"],
                )
                for r in conn.execute(stmt).mappings()
            ]
        )

    def _review(self, conn: Connection, out_trade_no: str, *, lock: bool = False) -> ReviewRecord:
        stmt = (
            sa.select(*_COLUMNS)
            .join(payments, payments.c.id == risk_reviews.c.payment_id)
            .where(risk_reviews.c.out_trade_no == out_trade_no)
        )
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise PaymentStateError(
                f"no review of payment {out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
            )
        return _record(row)

    def _decide(
        self,
        conn: Connection,
        out_trade_no: str,
        status: ReviewStatus,
        operator: str,
        note: str | None,
    ) -> tuple[ReviewRecord, bool]:
        """Lock, check and mark a review; (the review, whether it changed now)."""
        if _lock_payment(conn, out_trade_no) is None:
            raise PaymentStateError(
                f"no stored payment {out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
            )
        review = self._review(conn, out_trade_no)
        if review.status is status:
            return review, False
        if review.status is not ReviewStatus.OPEN:
            raise PaymentStateError(
                f"the review of {out_trade_no!r} is already {review.status.value}",
                code=ErrorCode.PAYMENT_STATE,
            )
        if not review.payment_state.is_paid:
            raise PaymentStateError(
                f"payment {out_trade_no!r} is {review.payment_state.value}: a review is "
                "decided once it is paid",
                code=ErrorCode.PAYMENT_STATE,
            )
        now = self.now()
        conn.execute(
            risk_reviews.update()
            .where(risk_reviews.c.out_trade_no == out_trade_no)
            .values(status=status.value, decided_at=now, decided_by=operator, note=note)
        )
        action = "approve" if status is ReviewStatus.APPROVED else "decline"
        write_risk_audit(
            conn, out_trade_no, action=action, rule=review.rule, actor=operator,
            detail={"note": note}, at=now,
        )
        logger.info("risk review of %s: %s by %s", out_trade_no, status.value, operator)
        return self._review(conn, out_trade_no), True

    def approve_review(
        self, out_trade_no: str, *, operator: str, note: str | None = None
    ) -> tuple[ReviewRecord, list[str]]:
        """Approve a held, paid payment: the hold is lifted and the
        ``payment.succeeded`` it held back is written (delivery released).
        Approving again changes nothing. Returns the review and new event ids."""
        who = _one_line(operator, "operator", 128, required=True)
        why = _one_line(note, "note", 512, required=False)
        assert who is not None

        def fn(conn: Connection) -> tuple[ReviewRecord, list[str]]:
            review, changed = self._decide(conn, out_trade_no, ReviewStatus.APPROVED, who, why)
            if not changed:
                return review, []
            conn.execute(
                payments.update()
                .where(payments.c.out_trade_no == out_trade_no)
                .values(risk_hold=False)
            )
            event_id = stable_event_id(out_trade_no, "risk-review-approved")
            inserted = insert_ignore(
                conn,
                events,
                {
                    "id": event_id,
                    "type": EventType.PAYMENT_SUCCEEDED.value,
                    "out_trade_no": out_trade_no,
                    "payload": {
                        "out_trade_no": out_trade_no,
                        "amount": {
                            "minor": review.amount.minor,
                            "currency": review.amount.currency,
                        },
                        "status": review.payment_state.value,
                        "cause": "review",
                        "source": f"risk review approved by {who}",
                    },
                    "created_at": self.now(),
                    "attempts": 0,
                },
            )
            return review, [event_id] if inserted else []

        return self.run(fn)

    def decline_review(
        self, out_trade_no: str, *, operator: str, note: str | None, out_refund_no: str
    ) -> ReviewRecord:
        """Decline a held, paid payment (the hold stays: nothing is delivered) and
        keep the number of the refund that returns it; declining again returns
        the stored review (its ``out_refund_no``, to resend the same refund)."""
        who = _one_line(operator, "operator", 128, required=True)
        why = _one_line(note, "note", 512, required=False)
        assert who is not None

        def fn(conn: Connection) -> ReviewRecord:
            review, changed = self._decide(conn, out_trade_no, ReviewStatus.DECLINED, who, why)
            if changed or review.out_refund_no is None:
                conn.execute(
                    risk_reviews.update()
                    .where(risk_reviews.c.out_trade_no == out_trade_no)
                    .values(out_refund_no=review.out_refund_no or out_refund_no)
                )
                review = self._review(conn, out_trade_no)
            return review

        return self.run(fn)
