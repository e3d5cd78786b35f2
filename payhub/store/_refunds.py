"""Refunds: reserving one under the payment's lock before the channel is asked,
and applying the channel's answer (refunds of duplicate payments too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from payhub.errors import (
    ErrorCode,
    InvalidRequestError,
    PaymentStateError,
    ProtocolError,
)
from payhub.models import (
    NotificationKind,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from payhub.money import Money
from payhub.store._anomalies import _anomaly_record, _anomaly_row
from payhub.store._apply import (
    Fact,
    payment_record,
)
from payhub.store._base import StoreBase, _lock_payment
from payhub.store._records import (
    AnomalyKind,
    AnomalyStatus,
    ApplyResult,
    InboxOutcome,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    TransitionCause,
)
from payhub.store._schema import (
    anomalies,
    payments,
    refunds,
)
from payhub.store._splits import split_taken
from payhub.store._values import (
    check_refund_request,
    check_refund_result,
)

_FAILED_REFUND_CODES = frozenset({RefundStatus.FAILED, RefundStatus.CLOSED})
_REFUNDABLE_ANOMALIES = frozenset({AnomalyKind.DUPLICATE_PAYMENT, AnomalyKind.LATE_PAYMENT})


class RefundsJob(StoreBase):
    """Refunds: reserve, apply the answer, fail (part of :class:`~payhub.store.Store`)."""

    # -- refunds ------------------------------------------------------------

    def reserve_refund(
        self, channel: str | None, request: RefundRequest
    ) -> tuple[RefundRecord, bool]:
        """Reserve the refund's amount under the payment's lock, before the channel is asked.

        Returns the refund and whether it existed already (same number and
        amount: the caller returns it or retries the channel). Never lets
        pending and succeeded refunds together exceed the amount paid.
        """
        check_refund_request(channel, request)

        def fn(conn: Connection) -> tuple[RefundRecord, bool]:
            row = _lock_payment(conn, request.out_trade_no)
            if row is None:
                raise PaymentStateError(
                    f"no stored payment {request.out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
                )
            payment = payment_record(row)
            existing = (
                conn.execute(
                    sa.select(refunds).where(refunds.c.out_refund_no == request.out_refund_no)
                )
                .mappings()
                .first()
            )
            if existing is not None:
                same = (
                    existing["payment_id"] == row["id"]
                    and existing["anomaly_id"] is None
                    and existing["amount_minor"] == request.amount.minor
                    and existing["currency"] == request.amount.currency
                )
                if not same:
                    raise InvalidRequestError(
                        f"out_refund_no {request.out_refund_no!r} was used for another refund"
                    )
                return _refund_record(existing, payment.out_trade_no), True
            _require_refundable(payment, channel, request.amount)
            reserved = int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount_minor), 0)).where(
                        refunds.c.payment_id == row["id"],
                        refunds.c.anomaly_id.is_(None),
                        refunds.c.status.in_(
                            [RefundState.PENDING.value, RefundState.SUCCEEDED.value]
                        ),
                    )
                ).scalar_one()
            )
            # money split away (分账) has left the seller: it is returned from the
            # receivers first (WeChat 回退, Alipay refund_royalty), never refunded twice
            split_away = split_taken(conn, payment.out_trade_no)
            if reserved + split_away + request.amount.minor > payment.amount.minor:
                left = Money(payment.amount.minor - reserved - split_away, payment.amount.currency)
                held = (
                    f"; {Money(split_away, payment.amount.currency)} was split away"
                    if split_away
                    else ""
                )
                raise PaymentStateError(
                    f"refund of {request.amount} exceeds what may still be refunded ({left}{held})",
                    code=ErrorCode.REFUND_EXCEEDS_PAID,
                )
            now = self.now()
            values = {
                "out_refund_no": request.out_refund_no,
                "payment_id": row["id"],
                "channel": payment.channel,
                "amount_minor": request.amount.minor,
                "currency": request.amount.currency,
                "status": RefundState.PENDING.value,
                "reason": request.reason,
                "origin": "hub",
                "channel_context": (
                    json.dumps(dict(request.refund_context), sort_keys=True)
                    if request.refund_context
                    else None
                ),
                "created_at": now,
                "updated_at": now,
            }
            try:
                with conn.begin_nested():
                    conn.execute(refunds.insert().values(values))
            except IntegrityError:
                # Same number on another payment, inserted meanwhile.
                raise InvalidRequestError(
                    f"out_refund_no {request.out_refund_no!r} was used for another refund"
                ) from None
            created = (
                conn.execute(
                    sa.select(refunds).where(refunds.c.out_refund_no == request.out_refund_no)
                )
                .mappings()
                .one()
            )
            return _refund_record(created, payment.out_trade_no), False

        return self.run(fn)

    def apply_refund_result(self, refund: RefundRecord, result: RefundResult) -> ApplyResult:
        """Apply the channel's answer to a refund: succeeded, failed, or still pending.

        An answer about another trade or refund than ``refund``'s (another
        ``out_trade_no`` or ``out_refund_no``, or a channel trade id that is not
        the refunded trade's) raises :class:`ProtocolError` (not retryable) and
        changes nothing: the refund stays pending and reserved, for
        ``sync_refund``/``sync_pending`` or a person to settle.
        """
        check_refund_result(result)
        self.run(lambda conn: _check_refund_answer(conn, refund, result), readonly=True)
        if refund.anomaly_id is not None:
            return self._apply_duplicate_refund_result(refund, result)
        if result.status is RefundStatus.SUCCEEDED:
            fact = Fact(
                channel=refund.channel,
                kind=NotificationKind.REFUND,
                out_trade_no=refund.out_trade_no,
                channel_trade_id=result.channel_trade_id,
                amount=None,
                cause=TransitionCause.REFUND,
                source=f"refund:{refund.out_refund_no}",
                refund_amount=refund.amount,
                out_refund_no=refund.out_refund_no,
                channel_refund_id=result.channel_refund_id,
                occurred_at=result.succeeded_at,
            )
            return self.run(lambda conn: self._applier(conn).fact(fact))
        if result.status in _FAILED_REFUND_CODES:
            return self.fail_refund(refund.out_refund_no, f"channel says {result.status.value}")
        return ApplyResult(
            outcome=InboxOutcome.IGNORED,
            out_trade_no=refund.out_trade_no,
            reason=f"refund {result.status.value}",
        )

    def reserve_duplicate_refund(
        self,
        anomaly_id: int,
        out_refund_no: str,
        amount: Money | None = None,
        *,
        reason: str | None = None,
        refund_context: Mapping[str, str] | None = None,
    ) -> tuple[RefundRecord, bool]:
        """Reserve a refund of the duplicate or late payment an anomaly records.

        The refund goes to the channel that took the duplicate (the anomaly's
        ``channel``), for ``amount`` (default: all of the duplicate not yet
        refunded or reserved), and never counts against what may be refunded of
        the payment itself. Idempotent on ``out_refund_no`` as
        :meth:`reserve_refund`: returns the refund and whether it existed.
        """

        def fn(conn: Connection) -> tuple[RefundRecord, bool]:
            anomaly = _anomaly_row(conn, anomaly_id)
            payment_row = _lock_payment(conn, str(anomaly["out_trade_no"]))
            anomaly = _anomaly_row(conn, anomaly_id, lock=True)
            record = _anomaly_record(anomaly)
            if payment_row is None or record.amount is None:
                raise InvalidRequestError(
                    f"anomaly {anomaly_id} names no stored payment or amount to refund"
                )
            whole = record.amount
            asked = whole if amount is None else amount
            existing = (
                conn.execute(sa.select(refunds).where(refunds.c.out_refund_no == out_refund_no))
                .mappings()
                .first()
            )
            if existing is not None:
                same_amount = amount is None or (
                    existing["amount_minor"],
                    existing["currency"],
                ) == (amount.minor, amount.currency)
                if existing["anomaly_id"] != anomaly_id or not same_amount:
                    raise InvalidRequestError(
                        f"out_refund_no {out_refund_no!r} was used for another refund"
                    )
                return _refund_record(existing, record.out_trade_no), True
            if record.kind not in _REFUNDABLE_ANOMALIES:
                raise InvalidRequestError(
                    f"anomaly {anomaly_id} is a {record.kind.value}: no trade of its own to "
                    "refund (refund the payment with hub.refund, or resolve the anomaly)"
                )
            if record.status != AnomalyStatus.OPEN:
                raise PaymentStateError(
                    f"anomaly {anomaly_id} is already resolved ({record.resolution})",
                    code=ErrorCode.PAYMENT_STATE,
                )
            if asked.currency != whole.currency:
                raise InvalidRequestError(
                    f"refund in {asked.currency} of a duplicate in {whole.currency}",
                    code=ErrorCode.CURRENCY_MISMATCH,
                )
            reserved = int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount_minor), 0)).where(
                        refunds.c.anomaly_id == anomaly_id,
                        refunds.c.status.in_(
                            [RefundState.PENDING.value, RefundState.SUCCEEDED.value]
                        ),
                    )
                ).scalar_one()
            )
            left = whole.minor - reserved
            if amount is None:
                asked = Money(left, whole.currency)
            if asked.minor <= 0 or asked.minor > left:
                raise PaymentStateError(
                    f"refund of {asked} exceeds what is left of the duplicate "
                    f"({Money(max(left, 0), whole.currency)})",
                    code=ErrorCode.REFUND_EXCEEDS_PAID,
                )
            now = self.now()
            try:
                with conn.begin_nested():
                    conn.execute(
                        refunds.insert().values(
                            out_refund_no=out_refund_no,
                            payment_id=payment_row["id"],
                            channel=record.channel,
                            amount_minor=asked.minor,
                            currency=asked.currency,
                            status=RefundState.PENDING.value,
                            reason=reason,
                            origin="hub",
                            channel_context=(
                                json.dumps(dict(refund_context), sort_keys=True)
                                if refund_context
                                else None
                            ),
                            anomaly_id=anomaly_id,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                raise InvalidRequestError(
                    f"out_refund_no {out_refund_no!r} was used for another refund"
                ) from None
            created = (
                conn.execute(sa.select(refunds).where(refunds.c.out_refund_no == out_refund_no))
                .mappings()
                .one()
            )
            return _refund_record(created, record.out_trade_no), False

        return self.run(fn)

    def _apply_duplicate_refund_result(
        self, refund: RefundRecord, result: RefundResult
    ) -> ApplyResult:
        """The channel's answer to a refund of a duplicate payment."""
        if result.status in _FAILED_REFUND_CODES:
            return self.fail_refund(refund.out_refund_no, f"channel says {result.status.value}")
        if result.status is not RefundStatus.SUCCEEDED:
            return ApplyResult(
                outcome=InboxOutcome.IGNORED,
                out_trade_no=refund.out_trade_no,
                reason=f"refund {result.status.value}",
            )

        def fn(conn: Connection) -> ApplyResult:
            _lock_payment(conn, refund.out_trade_no)
            row = (
                conn.execute(
                    sa.select(refunds).where(refunds.c.out_refund_no == refund.out_refund_no)
                )
                .mappings()
                .one()
            )
            if row["status"] != RefundState.PENDING.value:
                return ApplyResult(
                    outcome=InboxOutcome.DUPLICATE,
                    out_trade_no=refund.out_trade_no,
                    reason=f"refund already {row['status']}",
                )
            anomaly = _anomaly_row(conn, int(row["anomaly_id"]), lock=True)
            applier = self._applier(conn)
            applier.complete_duplicate_refund(row, anomaly, result.channel_refund_id)
            return ApplyResult(
                outcome=InboxOutcome.APPLIED,
                out_trade_no=refund.out_trade_no,
                event_ids=tuple(applier.event_ids),
            )

        return self.run(fn)

    def fail_refund(self, out_refund_no: str, why: str) -> ApplyResult:
        """A pending refund failed at the channel: release its reservation."""

        def fn(conn: Connection) -> ApplyResult:
            row = (
                conn.execute(sa.select(refunds).where(refunds.c.out_refund_no == out_refund_no))
                .mappings()
                .first()
            )
            if row is None:
                raise PaymentStateError(
                    f"no stored refund {out_refund_no!r}", code=ErrorCode.UNKNOWN_REFUND
                )
            payment_row = (
                conn.execute(
                    sa.select(payments).where(payments.c.id == row["payment_id"]).with_for_update()
                )
                .mappings()
                .one()
            )
            row = conn.execute(sa.select(refunds).where(refunds.c.id == row["id"])).mappings().one()
            out_trade_no = str(payment_row["out_trade_no"])
            if row["status"] != RefundState.PENDING.value:
                return ApplyResult(
                    outcome=InboxOutcome.DUPLICATE, out_trade_no=out_trade_no, reason=row["status"]
                )
            applier = self._applier(conn)
            applier.mark_refund_failed(row, out_trade_no, f"refund:{out_refund_no}")
            return ApplyResult(
                outcome=InboxOutcome.APPLIED,
                out_trade_no=out_trade_no,
                event_ids=tuple(applier.event_ids),
                reason=why,
            )

        return self.run(fn)


def _require_refundable(payment: PaymentRecord, channel: str | None, amount: Money) -> None:
    state = payment.status
    if state is PaymentState.REVIEW:
        raise PaymentStateError(
            f"payment {payment.out_trade_no!r} is held for review",
            code=ErrorCode.PAYMENT_IN_REVIEW,
        )
    if not state.is_paid:
        code = ErrorCode.TRADE_CLOSED if state is PaymentState.CLOSED else ErrorCode.PAYMENT_STATE
        raise PaymentStateError(f"payment {payment.out_trade_no!r} is {state.value}", code=code)
    if channel is not None and channel != payment.channel:
        raise InvalidRequestError(
            f"payment {payment.out_trade_no!r} was taken by {payment.channel!r}, not {channel!r}"
        )
    if amount.currency != payment.amount.currency:
        raise InvalidRequestError(
            f"refund in {amount.currency} of a payment in {payment.amount.currency}",
            code=ErrorCode.CURRENCY_MISMATCH,
        )


def _check_refund_answer(conn: Connection, refund: RefundRecord, result: RefundResult) -> None:
    """Refuse a channel's answer that is about another trade or refund than ``refund``."""
    problem = None
    if result.out_trade_no != refund.out_trade_no:
        problem = f"names payment {result.out_trade_no!r}, not {refund.out_trade_no!r}"
    elif result.out_refund_no != refund.out_refund_no:
        problem = f"names refund {result.out_refund_no!r}, not {refund.out_refund_no!r}"
    elif result.channel_trade_id is not None:
        if refund.anomaly_id is not None:
            expected = conn.execute(
                sa.select(anomalies.c.channel_trade_id).where(anomalies.c.id == refund.anomaly_id)
            ).scalar()
        else:
            expected = conn.execute(
                sa.select(payments.c.channel_trade_id).where(
                    payments.c.out_trade_no == refund.out_trade_no,
                    payments.c.channel == refund.channel,
                )
            ).scalar()
        if expected is not None and expected != result.channel_trade_id:
            problem = f"names trade {result.channel_trade_id!r}, not {expected!r}"
    if problem is not None:
        raise ProtocolError(
            f"{refund.channel}: the answer about refund {refund.out_refund_no!r} {problem}; "
            "nothing applied, the refund stays pending (payhub sync asks again)",
            retryable=False,
        )


def _refund_record(row: Any, out_trade_no: str) -> RefundRecord:
    return RefundRecord(
        out_refund_no=row["out_refund_no"],
        out_trade_no=out_trade_no,
        channel=row["channel"],
        amount=Money(int(row["amount_minor"]), row["currency"]),
        status=RefundState(row["status"]),
        channel_refund_id=row["channel_refund_id"],
        reason=row["reason"],
        origin=row["origin"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        channel_context=json.loads(row["channel_context"] or "{}"),
        anomaly_id=None if row["anomaly_id"] is None else int(row["anomaly_id"]),
    )
