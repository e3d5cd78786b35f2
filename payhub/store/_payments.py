"""Payments: a new payment, its attempts, and the transition path (notifications,
query answers, closes) through :class:`~payhub.store._apply.Applier`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import (
    ErrorCode,
    InvalidRequestError,
    PayhubError,
    PaymentStateError,
)
from payhub.models import (
    AttemptOutcome,
    Notification,
    NotificationKind,
    PaymentAttempt,
    PaymentQueryResult,
    PaymentRequest,
)
from payhub.store._apply import (
    Checkpoint,
    Fact,
    _no_checkpoint,
    payment_record,
)
from payhub.store._audit import write_audit
from payhub.store._base import StoreBase, _lock_payment
from payhub.store._engine import (
    insert_ignore,
)
from payhub.store._records import (
    ApplyResult,
    InboxOutcome,
    PaymentRecord,
    PaymentState,
    TransitionCause,
)
from payhub.store._schema import (
    attempts,
    payments,
)
from payhub.store._values import (
    check_attempt,
    check_fact,
    check_notification,
    check_payment_request,
    check_query_result,
)


class PaymentsJob(StoreBase):
    """Payments, attempts and the transition path (part of :class:`~payhub.store.Store`)."""

    # -- payments -----------------------------------------------------------

    def begin_payment(self, request: PaymentRequest) -> PaymentRecord:
        """Store a new pending payment, or return the pending one of that number.

        Raises :class:`PaymentStateError` if it is already paid, closed or in
        review, and :class:`InvalidRequestError` if the number was used for
        another amount.
        """
        check_payment_request(request)

        def fn(conn: Connection) -> PaymentRecord:
            now = self.now()
            inserted = insert_ignore(
                conn,
                payments,
                {
                    "out_trade_no": request.out_trade_no,
                    "amount_minor": request.amount.minor,
                    "currency": request.amount.currency,
                    "subject": request.subject,
                    "method": request.method.value,
                    "status": PaymentState.PENDING.value,
                    "refunded_minor": 0,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                    "seller": request.seller,
                },
            )
            row = _lock_payment(conn, request.out_trade_no)
            assert row is not None
            record = payment_record(row)
            if inserted:
                write_audit(
                    conn,
                    row["id"],
                    before=None,
                    after=PaymentState.PENDING,
                    cause=TransitionCause.PAY,
                    source=f"pay:{request.out_trade_no}",
                    at=now,
                )
                return record
            if record.amount != request.amount or record.seller != request.seller:
                raise InvalidRequestError(
                    f"out_trade_no {request.out_trade_no!r} was used for {record.amount}"
                    f"{_for(record.seller)}, not {request.amount}{_for(request.seller)}",
                    code=ErrorCode.ORDER_NUMBER_USED,
                )
            _require_pending(record)
            return record

        return self.run(fn)

    def record_attempt(
        self,
        out_trade_no: str,
        channel: str,
        outcome: AttemptOutcome,
        *,
        error: PayhubError | None = None,
        may_exist: bool | None = None,
        channel_trade_id: str | None = None,
        channel_context: Mapping[str, str] | None = None,
    ) -> PaymentAttempt:
        """Record one try of one channel; a success makes that channel the payment's,
        with its ``channel_context`` (what it needs to find the trade again)."""
        check_attempt(out_trade_no, channel, channel_trade_id)

        def fn(conn: Connection) -> PaymentAttempt:
            row = _lock_payment(conn, out_trade_no)
            if row is None:
                raise PaymentStateError(
                    f"no stored payment {out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
                )
            seq = 1 + int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(attempts.c.seq), 0)).where(
                        attempts.c.payment_id == row["id"]
                    )
                ).scalar_one()
            )
            attempt = PaymentAttempt(
                channel=channel,
                seq=seq,
                outcome=outcome,
                code=None if error is None else error.code.name,
                channel_code=getattr(error, "channel_code", None),
                may_exist=outcome is AttemptOutcome.TIMEOUT if may_exist is None else may_exist,
            )
            now = self.now()
            conn.execute(
                attempts.insert().values(
                    payment_id=row["id"],
                    seq=seq,
                    channel=channel,
                    outcome=outcome.value,
                    error_code=attempt.code,
                    channel_code=attempt.channel_code,
                    message=None if error is None else error.message[:255],
                    may_exist=attempt.may_exist,
                    channel_trade_id=channel_trade_id,
                    created_at=now,
                )
            )
            if outcome is AttemptOutcome.SUCCEEDED and row["status"] == PaymentState.PENDING:
                conn.execute(
                    payments.update()
                    .where(payments.c.id == row["id"])
                    .values(
                        channel=channel,
                        channel_trade_id=channel_trade_id,
                        channel_context=json.dumps(dict(channel_context), sort_keys=True)
                        if channel_context
                        else None,
                        updated_at=now,
                        version=row["version"] + 1,
                    )
                )
            return attempt

        return self.run(fn)

    # -- the transition path -----------------------------------------------

    def apply_notification(
        self, notification: Notification, *, checkpoint: Checkpoint = _no_checkpoint
    ) -> ApplyResult:
        """Apply a verified notification exactly once (see :mod:`payhub.store._apply`).

        Raises :class:`~payhub.errors.NotificationRejected` for a payment that
        is not ours (nothing written) and :class:`StoreError` if the database
        fails (nothing written).
        """
        check_notification(notification)
        return self.run(
            lambda conn: self._applier(conn, checkpoint).notification(
                notification
            )
        )

    def apply_query(
        self, channel: str, result: PaymentQueryResult, *, cause: TransitionCause
    ) -> ApplyResult:
        """Apply a channel's answer to a query (sync, a checked return) by the same path."""
        check_query_result(channel, result)
        fact = Fact.of_query(channel, result, cause)
        if fact is None:
            return ApplyResult(
                outcome=InboxOutcome.IGNORED,
                out_trade_no=result.out_trade_no,
                reason=f"the channel says {result.status.value}",
            )
        return self.run(lambda conn: self._applier(conn).fact(fact))

    def close_payment(self, channel: str, out_trade_no: str) -> ApplyResult:
        """Record that the shop closed the trade at ``channel`` (``hub.close_trade``)."""
        check_fact(channel, out_trade_no)
        fact = Fact(
            channel=channel,
            kind=NotificationKind.CLOSED,
            out_trade_no=out_trade_no,
            channel_trade_id=None,
            amount=None,
            cause=TransitionCause.CLOSE,
            source=f"close:{channel}",
        )
        return self.run(lambda conn: self._applier(conn).fact(fact))


def _for(seller: str | None) -> str:
    return "" if seller is None else f" for seller {seller!r}"


def _require_pending(record: PaymentRecord) -> None:
    state = record.status
    if state is PaymentState.PENDING:
        return
    if state.is_paid:
        raise PaymentStateError(
            f"payment {record.out_trade_no!r} is already paid", code=ErrorCode.TRADE_ALREADY_PAID
        )
    if state is PaymentState.CLOSED:
        raise PaymentStateError(
            f"payment {record.out_trade_no!r} is closed", code=ErrorCode.TRADE_CLOSED
        )
    raise PaymentStateError(
        f"payment {record.out_trade_no!r} is held for review", code=ErrorCode.PAYMENT_IN_REVIEW
    )
