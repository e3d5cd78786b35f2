"""The one transition path: applying what a channel says about a trade, exactly once.

A notification, a query answer (``sync_pending``, a checked browser return) and
a refund answer all become a :class:`Fact` and go through :class:`Applier`,
inside one database transaction the caller opened:

1. (notifications only) insert into the inbox, unique per (channel, event_key);
   a duplicate changes nothing;
2. lock the payment row (``SELECT … FOR UPDATE``); an unknown ``out_trade_no``
   is rejected and the whole transaction rolled back;
3. check amount and currency, and that the transition is legal;
4. apply it, write an audit row and an outbox event with a stable id.

Anything that is not a legal credit (a duplicate or late payment, an amount
mismatch, a refund that cannot be applied) is recorded as an anomaly for refund
or review and raises an alert event; it is never credited.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from payhub import lifecycle
from payhub.errors import ErrorCode, NotificationRejected
from payhub.events import EventType, stable_event_id
from payhub.lifecycle import (
    ANOMALY_EVENTS,
    PAID_TIME_SKEW,
    AnomalyKind,
    Decision,
    Effect,
    InboxOutcome,
    PaymentState,
    RefundRow,
    RefundState,
    Situation,
    TransitionCause,
    decide,
)
from payhub.models import (
    Notification,
    NotificationKind,
    PaymentQueryResult,
    PaymentStatus,
    PayMethod,
)
from payhub.money import Money
from payhub.store._audit import write_audit
from payhub.store._crypt import FieldKeys, opened_payload
from payhub.store._engine import insert_ignore
from payhub.store._inbox import (
    deferred_notifications,
    inbox_key,
    inbox_row,
    insert_inbox,
    payment_named,
    set_inbox_outcome,
)
from payhub.store._movements import Movement, MovementKind, Poster
from payhub.store._records import ApplyResult, PaymentRecord
from payhub.store._schema import (
    anomalies,
    attempts,
    events,
    notifications,
    payments,
    refunds,
)

__all__ = [
    "PAID_TIME_SKEW",
    "Applier",
    "Checkpoint",
    "Fact",
    "Transition",
    "TransitionHook",
    "inbox_key",
    "payment_record",
]

#: Called at step boundaries with the open transaction (tests inject crashes here).
Checkpoint = Callable[[str, Connection | None], None]

_PAID_STATUSES = frozenset({PaymentStatus.PAID, PaymentStatus.FINISHED, PaymentStatus.REFUNDED})
_PAY_KINDS = frozenset({NotificationKind.PAYMENT, NotificationKind.FINISHED})
_REFUND_KINDS = frozenset({NotificationKind.REFUND, NotificationKind.REFUND_FAILED})
#: anomalies whose money arrived but is not credited: the ledger's suspense
_UNATTRIBUTED = frozenset(
    {AnomalyKind.DUPLICATE_PAYMENT, AnomalyKind.LATE_PAYMENT, AnomalyKind.AMOUNT_MISMATCH}
)


def _pay_if_pending_statement(check_paid_time: bool) -> sa.Update:
    """``_pay_if_pending``'s UPDATE, built once; the values come as parameters."""
    where = [
        payments.c.out_trade_no == sa.bindparam("p_out_trade_no"),
        payments.c.status == PaymentState.PENDING.value,
        payments.c.amount_minor == sa.bindparam("p_amount_minor"),
        payments.c.currency == sa.bindparam("p_currency"),
    ]
    if check_paid_time:  # paid no earlier than created, give or take the skew
        where.append(payments.c.created_at <= sa.bindparam("p_created_by"))
    return (
        payments.update()
        .where(*where)
        .values(
            status=sa.bindparam("p_status"),
            channel=sa.bindparam("p_channel"),
            channel_trade_id=sa.bindparam("p_channel_trade_id"),
            paid_at=sa.bindparam("p_paid_at"),
            updated_at=sa.bindparam("p_now"),
            version=payments.c.version + 1,
        )
        .returning(*payments.c)
    )


#: by whether the fact gives a paid time to check against the creation time
_PAY_IF_PENDING = (_pay_if_pending_statement(False), _pay_if_pending_statement(True))


def _inbox_then_pay_statement(check_paid_time: bool) -> sa.Select[Any]:
    """The inbox insert and ``_pay_if_pending``'s UPDATE as one PostgreSQL
    statement (data-modifying CTEs): the UPDATE runs only if the insert did,
    i.e. never for a duplicate. One row: ``inbox_new`` (the insert happened)
    and the paid payment's columns (all NULL if the prediction was wrong)."""
    inbox = (
        postgresql.insert(notifications)
        .values({c.name: sa.bindparam(f"n_{c.name}", type_=c.type) for c in _INBOX_COLUMNS})
        .on_conflict_do_nothing()
        .returning(notifications.c.id)
        .cte("inbox")
    )
    paid = (
        _pay_if_pending_statement(check_paid_time)
        .where(sa.exists(sa.select(inbox.c.id)))
        .cte("paid")
    )
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    return sa.select(
        sa.exists(sa.select(inbox.c.id)).label("inbox_new"),
        *(paid.c[c.name] for c in payments.c),
    ).select_from(one.outerjoin(paid, sa.true()))


#: the inbox row's columns (:func:`inbox_row`'s keys)
_INBOX_COLUMNS = tuple(c for c in notifications.c if c.name not in ("id", "processed_at"))
_INBOX_THEN_PAY = (_inbox_then_pay_statement(False), _inbox_then_pay_statement(True))


def _no_checkpoint(name: str, conn: Connection | None) -> None:
    return None


def _clip(text: str | None, size: int) -> str | None:
    return None if text is None else text[:size]


@dataclass(frozen=True)
class Fact:
    """What a channel says about one trade: from a notification or a query."""

    channel: str
    kind: NotificationKind
    out_trade_no: str
    channel_trade_id: str | None
    #: the trade's total; None when the answer does not say (never credited then)
    amount: Money | None
    cause: TransitionCause
    #: the inbox key (``notification:<channel>:<event_key>``), the query, the refund
    source: str
    refund_amount: Money | None = None
    #: a channel's running total of refunds (Alipay), when it gives no per-refund amount
    refunded_total: Money | None = None
    out_refund_no: str | None = None
    occurred_at: datetime | None = None
    channel_refund_id: str | None = None
    #: the channel's signed data proves it was paid after the payment deadline
    after_deadline: bool = False

    @classmethod
    def of_notification(cls, notification: Notification) -> Fact:
        return cls(
            channel=notification.channel,
            kind=notification.kind,
            out_trade_no=notification.out_trade_no,
            channel_trade_id=notification.channel_trade_id,
            amount=notification.amount,
            cause=TransitionCause.NOTIFICATION,
            source=f"notification:{notification.channel}:{inbox_key(notification.event_key)}",
            refund_amount=notification.refund_amount,
            refunded_total=notification.refunded_total,
            out_refund_no=notification.out_refund_no,
            occurred_at=notification.occurred_at,
            after_deadline=notification.after_deadline,
        )

    @classmethod
    def of_query(
        cls, channel: str, result: PaymentQueryResult, cause: TransitionCause
    ) -> Fact | None:
        """A query answer as a fact; None if it proves nothing (still pending, failed)."""
        if result.status in _PAID_STATUSES:
            kind = NotificationKind.PAYMENT
        elif result.status is PaymentStatus.CLOSED:
            kind = NotificationKind.CLOSED
        else:
            return None
        return cls(
            channel=channel,
            kind=kind,
            out_trade_no=result.out_trade_no,
            channel_trade_id=result.channel_trade_id,
            amount=result.amount,
            cause=cause,
            source=f"{cause.value}:{channel}:{result.channel_trade_id or '-'}",
            occurred_at=result.paid_at,
        )


@dataclass(frozen=True)
class Transition:
    """A state change, handed to transition hooks inside the transaction (ledger)."""

    out_trade_no: str
    payment_id: int
    from_state: PaymentState | None
    to_state: PaymentState
    cause: TransitionCause
    source: str
    amount: Money
    channel: str | None
    refund_amount: Money | None
    at: datetime


TransitionHook = Callable[[Connection, Transition], None]


@dataclass
class _Payment:
    """The locked payment row, kept current as the transaction changes it."""

    row: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def status(self) -> PaymentState:
        return PaymentState(self.row["status"])

    @property
    def amount(self) -> Money:
        return Money(int(self.row["amount_minor"]), str(self.row["currency"]))

    @property
    def refunded(self) -> Money:
        return Money(int(self.row["refunded_minor"]), str(self.row["currency"]))

    @property
    def channel(self) -> str | None:
        value = self.row["channel"]
        return None if value is None else str(value)

    def same_trade(self, fact: Fact) -> bool:
        """The fact is about the trade this payment was taken with."""
        if fact.channel != self.channel:
            return False
        mine = self.row["channel_trade_id"]
        return mine is None or fact.channel_trade_id is None or mine == fact.channel_trade_id


def payment_record(row: Any) -> PaymentRecord:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    currency = str(mapping["currency"])
    # Values straight from our own columns: no validation needed.
    return PaymentRecord.model_construct(
        out_trade_no=mapping["out_trade_no"],
        amount=Money(int(mapping["amount_minor"]), currency),
        subject=mapping["subject"],
        method=PayMethod(mapping["method"]),
        status=PaymentState(mapping["status"]),
        channel=mapping["channel"],
        channel_trade_id=mapping["channel_trade_id"],
        channel_context=json.loads(mapping["channel_context"] or "{}"),
        paid_at=mapping["paid_at"],
        refunded=Money(int(mapping["refunded_minor"]), currency),
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
        version=int(mapping["version"]),
        seller=mapping.get("seller"),
    )


def _money_json(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else {"minor": money.minor, "currency": money.currency}


@dataclass(frozen=True)
class _Prediction:
    """A credit predicted for a fact (:meth:`Applier._predict_credit`): the
    lifecycle's decision and the conditional UPDATE's parameters."""

    decision: Decision
    params: dict[str, Any]
    #: the fact gives a paid time, checked against the payment's creation
    checks_paid_time: bool


@dataclass
class Applier:
    """Applies facts inside one open transaction ``conn``."""

    conn: Connection
    now: datetime
    hooks: Sequence[TransitionHook] = ()
    checkpoint: Checkpoint = _no_checkpoint
    #: apply refunds payhub did not ask for (made in the channel's merchant
    #: console); otherwise they are held for review and change nothing
    external_refunds: bool = False
    #: see :data:`PAID_TIME_SKEW`
    paid_time_skew: timedelta = PAID_TIME_SKEW
    #: posts the ledger entries of money that moved, in this transaction (None: no ledger)
    poster: Poster | None = None
    #: field encryption of the inbox's buyer data (None: stored in clear)
    field_keys: FieldKeys | None = None
    event_ids: list[str] = field(default_factory=list)

    # -- entry points -------------------------------------------------------

    def notification(self, notification: Notification) -> ApplyResult:
        """Inbox, then the fact; a duplicate delivery changes nothing."""
        key = inbox_key(notification.event_key)
        fact = Fact.of_notification(notification)
        prediction = self._predict_credit(fact)
        paid: Any = None
        if prediction is not None and self.conn.dialect.name == "postgresql":
            # inbox and conditional UPDATE in one round trip
            values = inbox_row(notification, self.now, self.field_keys)
            inbox = {f"n_{k}": v for k, v in values.items()}
            stmt = _INBOX_THEN_PAY[prediction.checks_paid_time]
            row = self.conn.execute(stmt, {**inbox, **prediction.params}).mappings().one()
            inserted = bool(row["inbox_new"])
            if inserted and row["id"] is not None:
                paid = {c.name: row[c.name] for c in payments.c}
            else:
                prediction = None  # wrong (or a duplicate): not asked again
        else:
            inserted = insert_inbox(self.conn, notification, self.now, self.field_keys)
        if not inserted:
            # The payment it was applied to, so that the hub re-dispatches that
            # payment's events (a resend after a crash must deliver them).
            return ApplyResult(
                outcome=InboxOutcome.DUPLICATE,
                out_trade_no=payment_named(self.conn, notification),
                reason="this event was received before",
            )
        self.checkpoint("after_inbox_insert", self.conn)
        if paid is not None:
            assert prediction is not None
            result = self._credited(_Payment(paid), fact, prediction.decision)
        else:
            result = self._fact(fact, prediction)
        if result.outcome is InboxOutcome.DEFERRED:
            # read again when its payment is paid (_apply_deferred)
            parsed = notification.model_dump(mode="json", exclude={"raw_body"})
            set_inbox_outcome(
                self.conn, notification.channel, key, result.outcome, self.now, payload=parsed,
                keys=self.field_keys,
            )
        elif result.outcome is not InboxOutcome.APPLIED:
            set_inbox_outcome(self.conn, notification.channel, key, result.outcome, self.now)
        return result

    def fact(self, fact: Fact) -> ApplyResult:
        return self._fact(fact, self._predict_credit(fact))

    def _fact(self, fact: Fact, prediction: _Prediction | None) -> ApplyResult:
        """Apply ``fact``: by ``prediction``'s UPDATE if that one holds, else the usual way."""
        if prediction is not None:
            paid = self._pay_if_pending(fact, prediction)
            if paid is not None:
                return paid
        payment = self._lock(fact.out_trade_no)
        if payment is None and fact.kind in _REFUND_KINDS and fact.channel_trade_id:
            # Some channels (UnionPay) name a refund by its own order number and
            # the payment only by the channel's trade id (origQryId).
            payment = self._lock_by_trade(fact.channel, fact.channel_trade_id)
            if payment is not None:
                fact = replace(fact, out_trade_no=str(payment.row["out_trade_no"]))
        if payment is None:
            raise NotificationRejected(
                f"{fact.channel}: no stored payment {fact.out_trade_no!r}",
                code=ErrorCode.UNKNOWN_PAYMENT,
            )
        return self._apply(payment, fact)

    def _predict_credit(self, fact: Fact) -> _Prediction | None:
        """The common case predicted: a pending payment paid as stored.

        The store predicts the situation (pending, the stored amount, a
        plausible paid time, not late) and asks the lifecycle; a credit is
        then carried out as one conditional UPDATE whose WHERE clause checks
        the prediction (and locks the row): :meth:`_pay_if_pending`, or on
        PostgreSQL together with a notification's inbox insert. No row: the
        prediction was wrong, and the usual path locks, looks up, decides.
        Needs UPDATE … RETURNING (PostgreSQL, SQLite); MySQL and MariaDB take
        the usual path. None: nothing to predict.
        """
        amount, paid = fact.amount, fact.occurred_at
        if (
            fact.kind not in _PAY_KINDS
            or amount is None
            or fact.after_deadline
            or not self.conn.dialect.update_returning
            or (paid is not None and paid > self.now + self.paid_time_skew)
        ):
            return None
        predicted = Situation(
            state=PaymentState.PENDING,
            kind=fact.kind,
            cause=fact.cause,
            stored=amount,
            reported=amount,
        )
        decision = decide(predicted)
        if decision.effect is not Effect.CREDIT or decision.anomaly is not None:
            return None  # pragma: no cover - the table says so today
        target = decision.target
        assert target is not None
        params = {
            "p_out_trade_no": fact.out_trade_no,
            "p_amount_minor": amount.minor,
            "p_currency": amount.currency,
            "p_status": target.value,
            "p_channel": fact.channel,
            "p_channel_trade_id": fact.channel_trade_id,
            "p_paid_at": paid or self.now,
            "p_now": self.now,
        }
        if paid is not None:
            params["p_created_by"] = paid + self.paid_time_skew
        return _Prediction(decision, params, paid is not None)

    def _pay_if_pending(self, fact: Fact, prediction: _Prediction) -> ApplyResult | None:
        """The predicted credit as one conditional UPDATE; None if the prediction was wrong."""
        stmt = _PAY_IF_PENDING[prediction.checks_paid_time]
        row = self.conn.execute(stmt, prediction.params).mappings().first()
        if row is None:
            return None
        return self._credited(_Payment(dict(row)), fact, prediction.decision)

    def _credited(self, payment: _Payment, fact: Fact, decision: Decision) -> ApplyResult:
        """After the predicted credit's UPDATE: the entry, audit, event, deferred refunds."""
        self._post_credit(payment, fact)
        self._recorded(payment, PaymentState.PENDING, fact, decision.event)
        self._apply_deferred(payment)
        return self._result(payment, fact, decision, PaymentState.PENDING)

    def _result(
        self, payment: _Payment, fact: Fact, decision: Decision, before: PaymentState
    ) -> ApplyResult:
        after = payment.status
        return ApplyResult.model_construct(
            outcome=decision.outcome,
            out_trade_no=fact.out_trade_no,
            transition=(before, after) if after is not before else None,
            payment=payment_record(payment.row),
            event_ids=tuple(self.event_ids),
            reason=decision.reason,
        )

    # -- gather, decide, carry out ------------------------------------------

    def _apply(self, payment: _Payment, fact: Fact) -> ApplyResult:
        before = payment.status
        situation, extra = self._situation(payment, fact)
        decision = decide(situation)
        self._carry_out(payment, fact, decision, extra)
        return self._result(payment, fact, decision, before)

    def _situation(self, payment: _Payment, fact: Fact) -> tuple[Situation, Any]:
        """Look up what the lifecycle needs to decide this fact (and only that).

        Returns the situation and, for a refund, the stored refund row."""
        state = payment.status
        base = Situation(
            state=state,
            kind=fact.kind,
            cause=fact.cause,
            stored=payment.amount,
            reported=fact.amount,
            same_trade=payment.same_trade(fact),
        )
        if fact.kind in _PAY_KINDS:
            if state is not PaymentState.PENDING:
                return base, None
            problem = lifecycle.paid_time_problem(
                fact.occurred_at, payment.row["created_at"], self.now, self.paid_time_skew
            )
            late = fact.after_deadline
            return replace(base, after_deadline=late, paid_time_problem=problem), None
        if fact.kind is NotificationKind.CLOSED:
            if state is not PaymentState.PENDING:
                return base, None
            other = payment.channel is not None and payment.channel != fact.channel
            live = payment.channel is None and bool(self._live_channels(payment) - {fact.channel})
            return replace(base, other_channel=other, other_live_channels=live), None
        if fact.kind not in _REFUND_KINDS or state is PaymentState.PENDING:
            return base, None
        credited = state.is_paid and base.same_trade
        if not credited:
            duplicates = (
                self._duplicates_of(payment, fact)
                if fact.kind is NotificationKind.REFUND and fact.channel_trade_id is not None
                else []
            )
            return replace(base, refunds_duplicate=bool(duplicates)), duplicates
        identified = fact.out_refund_no is not None and (
            fact.refund_amount is not None or fact.refunded_total is not None
        )
        if not identified:
            return replace(base, refund_identified=False), None
        assert fact.out_refund_no is not None
        row = self._refund_row(fact.out_refund_no)
        if row is None:
            found = RefundRow.NONE
        elif row["payment_id"] != payment.id:
            found = RefundRow.OTHER_PAYMENT
        else:
            found = RefundRow(row["status"])
        asked = None if row is None else Money(int(row["amount_minor"]), str(row["currency"]))
        amount = lifecycle.refund_amount_of(
            payment.amount, payment.refunded, fact.refund_amount, fact.refunded_total, asked
        )
        situation = replace(
            base,
            refund_row=found,
            external_refunds=self.external_refunds,
            refund_amount=amount,
            refund_differs=asked is not None and amount is not None and asked != amount,
            refunded=payment.refunded,
        )
        return situation, row

    def _carry_out(self, payment: _Payment, fact: Fact, decision: Decision, row: Any) -> None:
        effect = decision.effect
        if decision.outcome is InboxOutcome.DEFERRED and not payment.row.get("deferred_refunds"):
            self.conn.execute(
                payments.update().where(payments.c.id == payment.id).values(deferred_refunds=True)
            )
            payment.row["deferred_refunds"] = True
        if effect is Effect.RESOLVE_DUPLICATE:
            self._resolve_duplicate(fact, row)
        elif effect is Effect.FAIL_REFUND:
            self.mark_refund_failed(row, str(payment.row["out_trade_no"]), fact.source)
        elif decision.target is not None:
            self._carry_out_transition(payment, fact, decision, row)
        if decision.anomaly is not None:
            explained = (AnomalyKind.PAID_TIME, AnomalyKind.ORPHAN_REFUND)
            why = decision.reason if decision.anomaly in explained or fact.after_deadline else None
            self._anomaly(payment, fact, decision.anomaly, why=why)
        if effect is Effect.CREDIT:
            self._apply_deferred(payment)

    def _carry_out_transition(
        self, payment: _Payment, fact: Fact, decision: Decision, row: Any
    ) -> None:
        target = decision.target
        assert target is not None
        if decision.effect is Effect.CREDIT:
            odd_time = decision.anomaly is AnomalyKind.PAID_TIME
            values: dict[str, Any] = {
                "channel": fact.channel,
                "channel_trade_id": fact.channel_trade_id,
                # An implausible time is kept in the anomaly, not as paid_at
                # (settlement dates count from it): the time we learnt it.
                "paid_at": self.now if odd_time else (fact.occurred_at or self.now),
            }
            payment.row.update(values)
            self._post_credit(payment, fact)
            self._transition(payment, target, fact, values, decision.event)
        elif decision.effect is Effect.HOLD:
            values = {"channel": fact.channel, "channel_trade_id": fact.channel_trade_id}
            self._transition(payment, target, fact, values, decision.event)
        elif decision.effect is Effect.REFUND:
            self._refund_succeeded(payment, fact, decision, row)
        else:
            self._transition(payment, target, fact, {}, decision.event)

    def _refund_succeeded(
        self, payment: _Payment, fact: Fact, decision: Decision, row: Any
    ) -> None:
        assert fact.out_refund_no is not None
        assert decision.target is not None
        asked = None if row is None else Money(int(row["amount_minor"]), str(row["currency"]))
        amount = lifecycle.refund_amount_of(
            payment.amount, payment.refunded, fact.refund_amount, fact.refunded_total, asked
        )
        assert amount is not None
        values = {
            "status": RefundState.SUCCEEDED.value,
            "updated_at": self.now,
            "channel_refund_id": fact.channel_refund_id,
            "succeeded_at": self._refund_time(fact.occurred_at),
        }
        if row is None:
            self.conn.execute(
                refunds.insert().values(
                    out_refund_no=fact.out_refund_no,
                    payment_id=payment.id,
                    channel=fact.channel,
                    amount_minor=amount.minor,
                    currency=amount.currency,
                    origin="notification",
                    created_at=self.now,
                    **values,
                )
            )
        else:
            if values["channel_refund_id"] is None:
                del values["channel_refund_id"]
            self.conn.execute(refunds.update().where(refunds.c.id == row["id"]).values(**values))
        refunded = payment.refunded + amount
        self._post(
            MovementKind.REFUNDED, fact.out_refund_no, payment, fact.channel, amount, at=self.now
        )
        self._transition(
            payment,
            decision.target,
            fact,
            {"refunded_minor": refunded.minor},
            decision.event,
            event_source=("refund", fact.out_refund_no),
            extra={
                "out_refund_no": fact.out_refund_no,
                "refund_amount": _money_json(amount),
                "refunded": _money_json(refunded),
            },
        )

    def _refund_time(self, said: datetime | None) -> datetime:
        """When a refund succeeded, for the day its bill lists it on: the
        channel's time, unless it says none or one in the future beyond the
        clock skew (then the time payhub learnt it)."""
        if said is None or said > self.now + self.paid_time_skew:
            return self.now
        return said

    def mark_refund_failed(self, row: Any, out_trade_no: str, source: str) -> None:
        """A pending refund failed: release its reservation, tell the shop."""
        self.conn.execute(
            refunds.update()
            .where(refunds.c.id == row["id"])
            .values(status=RefundState.FAILED.value, updated_at=self.now)
        )
        self._event(
            EventType.REFUND_FAILED,
            stable_event_id("refund", row["out_refund_no"], EventType.REFUND_FAILED.value),
            out_trade_no,
            {
                "out_trade_no": out_trade_no,
                "out_refund_no": row["out_refund_no"],
                "channel": row["channel"],
                "refund_amount": {"minor": row["amount_minor"], "currency": row["currency"]},
                "source": source,
            },
        )

    # -- anomalies ----------------------------------------------------------

    def _anomaly(
        self,
        payment: _Payment,
        fact: Fact,
        kind: AnomalyKind,
        *,
        why: str | None = None,
    ) -> None:
        """Record it once (per kind, channel and trade) and raise an alert event."""
        event_type = ANOMALY_EVENTS[kind]
        trade = fact.channel_trade_id or fact.source
        if kind is AnomalyKind.ORPHAN_REFUND:
            trade = f"{trade}:{fact.out_refund_no or fact.source}"
        key = inbox_key(f"{kind.value}:{fact.channel}:{trade}")
        orphan = kind is AnomalyKind.ORPHAN_REFUND
        money = self._orphan_amount(payment, fact) if orphan else fact.amount
        detail = {
            "stored_amount": _money_json(payment.amount),
            "reported_amount": _money_json(fact.amount),
            "refund_amount": _money_json(money if orphan else fact.refund_amount),
            "refunded_total": _money_json(fact.refunded_total),
            "paid_at": None if fact.occurred_at is None else fact.occurred_at.isoformat(),
            "out_refund_no": fact.out_refund_no,
            "stored_status": payment.status.value,
            "stored_channel": payment.channel,
            "cause": fact.cause.value,
            "why": why,
        }
        inserted = insert_ignore(
            self.conn,
            anomalies,
            {
                "key": key,
                "kind": kind.value,
                "out_trade_no": fact.out_trade_no,
                "payment_id": payment.id,
                "channel": fact.channel,
                "channel_trade_id": fact.channel_trade_id,
                "amount_minor": None if money is None else money.minor,
                "currency": None if money is None else money.currency,
                "source": fact.source,
                "detail": detail,
                "status": "open",
                "created_at": self.now,
            },
        )
        if inserted:
            if kind in _UNATTRIBUTED and fact.amount is not None:
                self._post(
                    MovementKind.UNATTRIBUTED, key, payment, fact.channel, fact.amount, at=self.now
                )
            self._event(
                event_type,
                stable_event_id("anomaly", key),
                fact.out_trade_no,
                {
                    "out_trade_no": fact.out_trade_no,
                    "anomaly": kind.value,
                    "channel": fact.channel,
                    "channel_trade_id": fact.channel_trade_id,
                    "amount": _money_json(money),
                    "cause": fact.cause.value,
                    "source": fact.source,
                    **detail,
                },
            )

    def _orphan_amount(self, payment: _Payment, fact: Fact) -> Money | None:
        """A refund's own amount: as the channel says it, else what its running total
        (Alipay's ``refund_fee``) adds to what is already recorded: the refunds
        applied, or a larger total an earlier held refund reported. None if unknown."""
        if fact.refund_amount is not None:
            return fact.refund_amount
        total = fact.refunded_total
        if total is None or total.currency != payment.amount.currency:
            return None
        seen = payment.refunded.minor
        earlier = self.conn.execute(
            sa.select(anomalies.c.detail).where(
                anomalies.c.payment_id == payment.id,
                anomalies.c.kind == AnomalyKind.ORPHAN_REFUND.value,
                anomalies.c.channel == fact.channel,
            )
        )
        for (detail,) in earlier:
            reported = (detail or {}).get("refunded_total")
            if isinstance(reported, dict) and reported.get("currency") == total.currency:
                seen = max(seen, int(reported.get("minor") or 0))
        added = total.minor - seen
        return Money(added, total.currency) if added > 0 else None

    def _duplicates_of(self, payment: _Payment, fact: Fact) -> list[Any]:
        """The recorded duplicate/late payments of the trade a refund names (locked)."""
        kinds = (AnomalyKind.DUPLICATE_PAYMENT.value, AnomalyKind.LATE_PAYMENT.value)
        return list(
            self.conn.execute(
                sa.select(anomalies)
                .where(
                    anomalies.c.payment_id == payment.id,
                    anomalies.c.kind.in_(kinds),
                    anomalies.c.channel == fact.channel,
                    anomalies.c.channel_trade_id == fact.channel_trade_id,
                )
                .with_for_update()
            )
            .mappings()
            .all()
        )

    def _resolve_duplicate(self, fact: Fact, rows: list[Any]) -> None:
        """A refund of a recorded duplicate/late payment closes that anomaly (and
        completes the ``hub.refund_duplicate`` refund it names, if any)."""
        for row in rows:
            refund = self._refund_row(fact.out_refund_no) if fact.out_refund_no else None
            if (
                refund is not None
                and refund["anomaly_id"] == row["id"]
                and refund["status"] == RefundState.PENDING.value
            ):
                self.complete_duplicate_refund(refund, row, fact.channel_refund_id)
            elif row["status"] == "open":
                whole = row["amount_minor"]
                amount = fact.refund_amount or (
                    None if whole is None else Money(int(whole), str(row["currency"]))
                )
                if amount is not None and self.poster is not None:
                    self.poster(
                        self.conn,
                        Movement(
                            kind=MovementKind.UNATTRIBUTED_REFUNDED,
                            key=f"anomaly-{row['id']}:{fact.out_refund_no or fact.source}",
                            out_trade_no=str(row["out_trade_no"]),
                            seller=None,
                            channel=str(row["channel"]),
                            amount=amount,
                            at=self.now,
                            now=self.now,
                        ),
                    )
                self.resolve_anomaly(
                    row, "payhub", f"the channel reports a refund of this trade ({fact.source})"
                )

    def complete_duplicate_refund(
        self, refund: Any, anomaly: Any, channel_refund_id: str | None
    ) -> None:
        """A refund of a duplicate or late payment succeeded: the payment itself is
        unchanged; the anomaly is resolved once its whole amount is refunded."""
        values: dict[str, Any] = {
            "status": RefundState.SUCCEEDED.value,
            "updated_at": self.now,
            "succeeded_at": self.now,
        }
        if channel_refund_id is not None:
            values["channel_refund_id"] = channel_refund_id
        self.conn.execute(refunds.update().where(refunds.c.id == refund["id"]).values(**values))
        amount = Money(int(refund["amount_minor"]), str(refund["currency"]))
        if self.poster is not None:
            self.poster(
                self.conn,
                Movement(
                    kind=MovementKind.UNATTRIBUTED_REFUNDED,
                    key=str(refund["out_refund_no"]),
                    out_trade_no=str(anomaly["out_trade_no"]),
                    seller=None,
                    channel=str(anomaly["channel"]),
                    amount=amount,
                    at=self.now,
                    now=self.now,
                ),
            )
        self._event(
            EventType.DUPLICATE_REFUNDED,
            stable_event_id("refund", refund["out_refund_no"], EventType.DUPLICATE_REFUNDED.value),
            str(anomaly["out_trade_no"]),
            {
                "out_trade_no": anomaly["out_trade_no"],
                "out_refund_no": refund["out_refund_no"],
                "anomaly_id": int(anomaly["id"]),
                "anomaly": anomaly["kind"],
                "channel": anomaly["channel"],
                "channel_trade_id": anomaly["channel_trade_id"],
                "refund_amount": _money_json(amount),
            },
        )
        refunded = int(
            self.conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount_minor), 0)).where(
                    refunds.c.anomaly_id == anomaly["id"],
                    refunds.c.status == RefundState.SUCCEEDED.value,
                )
            ).scalar_one()
        )
        whole = anomaly["amount_minor"]
        if anomaly["status"] == "open" and (whole is None or refunded >= int(whole)):
            self.resolve_anomaly(
                anomaly,
                "payhub",
                f"refunded on {anomaly['channel']} as {refund['out_refund_no']}",
            )

    def resolve_anomaly(self, row: Any, by: str, why: str) -> None:
        """Close an open anomaly saying by whom and why; an ``anomaly.resolved`` event."""
        self.conn.execute(
            anomalies.update()
            .where(anomalies.c.id == row["id"])
            .values(status="resolved", resolved_at=self.now, resolved_by=by, resolution=why)
        )
        self._event(
            EventType.ANOMALY_RESOLVED,
            stable_event_id("anomaly", str(row["key"]), EventType.ANOMALY_RESOLVED.value),
            str(row["out_trade_no"]),
            {
                "anomaly_id": int(row["id"]),
                "anomaly": row["kind"],
                "out_trade_no": row["out_trade_no"],
                "channel": row["channel"],
                "channel_trade_id": row["channel_trade_id"],
                "resolved_by": by,
                "resolution": why,
            },
        )

    # -- primitives ---------------------------------------------------------

    def _lock(self, out_trade_no: str) -> _Payment | None:
        row = (
            self.conn.execute(
                sa.select(payments).where(payments.c.out_trade_no == out_trade_no).with_for_update()
            )
            .mappings()
            .first()
        )
        return None if row is None else _Payment(dict(row))

    def _lock_by_trade(self, channel: str, channel_trade_id: str) -> _Payment | None:
        rows = (
            self.conn.execute(
                sa.select(payments)
                .where(
                    payments.c.channel == channel,
                    payments.c.channel_trade_id == channel_trade_id,
                )
                .with_for_update()
            )
            .mappings()
            .all()
        )
        return _Payment(dict(rows[0])) if len(rows) == 1 else None

    def _refund_row(self, out_refund_no: str) -> Any:
        return (
            self.conn.execute(sa.select(refunds).where(refunds.c.out_refund_no == out_refund_no))
            .mappings()
            .first()
        )

    def _live_channels(self, payment: _Payment) -> set[str]:
        """Channels at which a trade for this payment may exist."""
        rows = self.conn.execute(
            sa.select(attempts.c.channel)
            .where(
                attempts.c.payment_id == payment.id,
                sa.or_(attempts.c.may_exist, attempts.c.outcome == "succeeded"),
            )
            .distinct()
        )
        return {str(r[0]) for r in rows}

    def _transition(
        self,
        payment: _Payment,
        target: PaymentState,
        fact: Fact,
        values: dict[str, Any],
        event_type: EventType | None,
        *,
        event_source: tuple[str, ...] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        before = payment.status
        version = int(payment.row["version"]) + 1
        changes = {**values, "status": target.value, "updated_at": self.now, "version": version}
        self.conn.execute(payments.update().where(payments.c.id == payment.id).values(**changes))
        payment.row.update(changes)
        self._recorded(payment, before, fact, event_type, event_source=event_source, extra=extra)

    def _recorded(
        self,
        payment: _Payment,
        before: PaymentState,
        fact: Fact,
        event_type: EventType | None,
        *,
        event_source: tuple[str, ...] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """After a state change: the audit row, the transition hooks, the event."""
        target = payment.status
        version = int(payment.row["version"])
        write_audit(
            self.conn,
            payment.id,
            before=before,
            after=target,
            cause=fact.cause,
            source=fact.source,
            at=self.now,
        )
        transition = Transition(
            out_trade_no=fact.out_trade_no,
            payment_id=payment.id,
            from_state=before,
            to_state=target,
            cause=fact.cause,
            source=fact.source,
            amount=payment.amount,
            channel=payment.channel,
            refund_amount=fact.refund_amount,
            at=self.now,
        )
        for hook in self.hooks:
            hook(self.conn, transition)
        self.checkpoint("after_transition", self.conn)
        if event_type is None:
            return
        if payment.row.get("risk_hold"):  # a risk rule holds it: no delivery yet
            event_type = lifecycle.HELD_EVENTS.get(event_type, event_type)
        source = event_source or (fact.out_trade_no, str(version))
        self._event(
            event_type,
            stable_event_id(*source, event_type.value),
            fact.out_trade_no,
            {
                "out_trade_no": fact.out_trade_no,
                "channel": payment.channel,
                "channel_trade_id": payment.row["channel_trade_id"],
                "amount": _money_json(payment.amount),
                "status": target.value,
                "previous_status": before.value,
                "cause": fact.cause.value,
                "source": fact.source,
                **(extra or {}),
            },
        )

    def _event(
        self,
        event_type: EventType,
        event_id: str,
        out_trade_no: str | None,
        payload: dict[str, Any],
    ) -> None:
        inserted = insert_ignore(
            self.conn,
            events,
            {
                "id": event_id,
                "type": event_type.value,
                "out_trade_no": out_trade_no,
                "payload": payload,
                "created_at": self.now,
                "attempts": 0,
            },
        )
        if inserted:
            self.event_ids.append(event_id)

    # -- the ledger ---------------------------------------------------------

    def _post_credit(self, payment: _Payment, fact: Fact) -> None:
        """The payment is credited: its entry, in this transaction (never one without
        the other)."""
        paid_at = payment.row.get("paid_at") or self.now
        self._post(
            MovementKind.PAID, fact.out_trade_no, payment, fact.channel, payment.amount, at=paid_at
        )

    def _post(
        self,
        kind: MovementKind,
        key: str,
        payment: _Payment,
        channel: str,
        amount: Money,
        *,
        at: datetime,
    ) -> None:
        if self.poster is None:
            return
        self.poster(
            self.conn,
            Movement(
                kind=kind,
                key=key,
                out_trade_no=str(payment.row["out_trade_no"]),
                seller=payment.row.get("seller"),
                channel=channel,
                amount=amount,
                at=at,
                now=self.now,
            ),
        )

    def _apply_deferred(self, payment: _Payment) -> None:
        """Refund notifications that came before the payment: apply them now, in order.

        Looked for only if the payment is flagged as having some."""
        if not payment.row.get("deferred_refunds"):
            return
        self.conn.execute(
            payments.update().where(payments.c.id == payment.id).values(deferred_refunds=False)
        )
        payment.row["deferred_refunds"] = False
        for row in deferred_notifications(self.conn, str(payment.row["out_trade_no"])):
            parsed = opened_payload(self.field_keys, row)
            deferred = Notification.model_validate({**parsed, "raw_body": b""})
            fact = Fact.of_notification(deferred)
            situation, found = self._situation(payment, fact)
            decision = decide(situation)
            self._carry_out(payment, fact, decision, found)
            set_inbox_outcome(
                self.conn, row["channel"], row["event_key"], decision.outcome, self.now
            )
