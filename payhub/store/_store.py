"""The payment store: payments with every attempt, inbox, refunds, outbox, audit.

Every write is one short transaction, retried whole on a deadlock or
serialization failure. No transaction is held across a network call to a
channel. Any database failure surfaces as :class:`~payhub.errors.StoreError`
after the transaction was rolled back: nothing is ever partially written.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from payhub.config import resolve_secret
from payhub.errors import (
    ConfigurationError,
    ErrorCode,
    InvalidRequestError,
    PayhubError,
    PaymentStateError,
    StoreError,
    StoreValueError,
)
from payhub.events import Event
from payhub.models import (
    AttemptOutcome,
    Notification,
    NotificationKind,
    PaymentAttempt,
    PaymentQueryResult,
    PaymentRequest,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from payhub.money import Money
from payhub.store._apply import (
    Applier,
    Checkpoint,
    Fact,
    TransitionHook,
    _no_checkpoint,
    payment_record,
)
from payhub.store._engine import (
    Timeouts,
    create_store_engine,
    insert_ignore,
    is_transient,
    is_value_error,
    parse_url,
    safe_url,
)
from payhub.store._records import (
    AnomalyKind,
    AnomalyRecord,
    ApplyResult,
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
from payhub.store._schema import (
    anomalies,
    attempts,
    audit,
    events,
    notifications,
    payments,
    refunds,
)
from payhub.store._values import (
    check_attempt,
    check_fact,
    check_notification,
    check_payment_request,
    check_query_result,
    check_refund_request,
    check_refund_result,
)

__all__ = ["DEFAULT_EVENT_LEASE", "Store"]

T = TypeVar("T")
logger = logging.getLogger("payhub.store")

#: How long a dispatcher holds an event before another may deliver it again.
DEFAULT_EVENT_LEASE = timedelta(minutes=5)
_RETRIES = 8
_FAILED_REFUND_CODES = frozenset({RefundStatus.FAILED, RefundStatus.CLOSED})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """The payment store on one database.

    >>> store = Store("sqlite:///payhub.db")  # doctest: +SKIP
    >>> store.upgrade()  # create or migrate the tables  # doctest: +SKIP
    >>> hub = PayHub(channels=[...], store=store)  # doctest: +SKIP

    ``url`` is an SQLAlchemy URL: ``sqlite:///path.db``,
    ``postgresql+psycopg://user:pw@host/db``, ``mysql+pymysql://user:pw@host/db``.
    ``engine_options`` go to :func:`sqlalchemy.create_engine` (pool size…).
    ``statement_timeout``, ``lock_timeout`` and ``connect_timeout`` (seconds;
    5, 3 and 10 by default) bound how long PostgreSQL and MySQL/MariaDB
    operations may wait; each ends in a retryable :class:`StoreError`
    (``docs/store.md``, "Timeouts").
    """

    def __init__(
        self,
        url: str | URL,
        *,
        clock: Callable[[], datetime] = _utcnow,
        external_refunds: bool = False,
        statement_timeout: float = Timeouts.statement,
        lock_timeout: float = Timeouts.lock,
        connect_timeout: float = Timeouts.connect,
        **engine_options: Any,
    ) -> None:
        """``external_refunds``: apply refund notifications for refunds payhub did
        not ask for (made in the channel's merchant console). By default they
        are held for review (an ``orphan_refund`` anomaly and a
        ``refund.review`` event) and change no payment."""
        self._url = parse_url(url)
        timeouts = Timeouts(statement_timeout, lock_timeout, connect_timeout)
        self._engine = create_store_engine(self._url, timeouts=timeouts, **engine_options)
        self._clock = clock
        self._hooks: list[TransitionHook] = []
        self._external_refunds = external_refunds

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build from ``{"url": ..., **engine_options}`` (``url`` may be ``{"$env": NAME}``)."""
        if not isinstance(config, Mapping) or "url" not in config:
            raise ConfigurationError("store: configuration needs a 'url'")
        url = resolve_secret(config["url"], "store.url").get_text()
        return cls(url, **{k: v for k, v in config.items() if k != "url"})

    def __repr__(self) -> str:
        return f"<Store {self.url}>"

    def _applier(self, conn: Connection, checkpoint: Checkpoint | None = None) -> Applier:
        return Applier(
            conn,
            self.now(),
            self._hooks,
            checkpoint or _no_checkpoint,
            external_refunds=self._external_refunds,
        )

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return safe_url(self._url)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def now(self) -> datetime:
        return self._clock()

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_transition_hook(self, hook: TransitionHook) -> None:
        """Run ``hook(conn, transition)`` inside the transaction of every state change
        (ledger postings belong there: they commit or roll back with it)."""
        self._hooks.append(hook)

    # -- schema -------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Create or migrate the tables to ``revision`` (Alembic, packaged in payhub)."""
        from payhub.store._migrate import upgrade  # noqa: PLC0415 - alembic only when migrating

        self._guard(lambda: upgrade(self._engine, revision))

    def current_revision(self) -> str | None:
        from payhub.store._migrate import current_revision  # noqa: PLC0415

        return self._guard(lambda: current_revision(self._engine))

    # -- transactions -------------------------------------------------------

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.url}: {_describe(exc)}") from exc

    def run(self, fn: Callable[[Connection], T], *, readonly: bool = False) -> T:
        """Run ``fn(conn)`` in one transaction; commit if it returns, else roll back.

        Deadlocks and serialization failures run it again (up to 8 times); a
        lock or statement timeout, a lost or unreachable database raise a
        retryable :class:`StoreError`; a value the database refuses (out of
        range, too long, NUL in text) a :class:`StoreValueError`, which is not
        retryable. A :class:`PayhubError` raised by ``fn`` rolls back and
        propagates.
        """
        reconnected = False
        for attempt in range(_RETRIES):
            try:
                with self._engine.connect() as conn:
                    if readonly:
                        conn = conn.execution_options(payhub_readonly=True)  # noqa: PLW2901
                    with conn.begin():
                        return fn(conn)
            except DBAPIError as exc:
                if exc.connection_invalidated and not reconnected:
                    # A pooled connection the server dropped (restart, idle
                    # timeout): nothing of this transaction was applied, and the
                    # pool now holds fresh connections. Once; a server that is
                    # really down fails again at connect.
                    reconnected = True
                    logger.info("store: connection lost, reconnecting: %s", _describe(exc))
                    continue
                if is_value_error(exc):
                    raise StoreValueError(f"store {self.url}: {_describe(exc)}") from exc
                if attempt + 1 < _RETRIES and is_transient(exc):
                    logger.info("store: transient failure, retrying: %s", _describe(exc))
                    time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
                    continue
                raise StoreError(f"store {self.url}: {_describe(exc)}") from exc
            except SQLAlchemyError as exc:
                raise StoreError(f"store {self.url}: {_describe(exc)}") from exc
            except (OverflowError, UnicodeError) as exc:
                # Raised by a driver while binding (sqlite3: int beyond 64 bits).
                raise StoreValueError(
                    f"store {self.url}: {type(exc).__name__}: a value the database cannot hold"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self.run(fn, readonly=True)

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
                },
            )
            row = _lock_payment(conn, request.out_trade_no)
            assert row is not None
            record = payment_record(row)
            if inserted:
                conn.execute(
                    audit.insert().values(
                        payment_id=row["id"],
                        from_status=None,
                        to_status=PaymentState.PENDING.value,
                        cause=TransitionCause.PAY.value,
                        source=f"pay:{request.out_trade_no}",
                        at=now,
                    )
                )
                return record
            if record.amount != request.amount:
                raise InvalidRequestError(
                    f"out_trade_no {request.out_trade_no!r} was used for {record.amount}, "
                    f"not {request.amount}",
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
                        refunds.c.status.in_(
                            [RefundState.PENDING.value, RefundState.SUCCEEDED.value]
                        ),
                    )
                ).scalar_one()
            )
            if reserved + request.amount.minor > payment.amount.minor:
                left = Money(payment.amount.minor - reserved, payment.amount.currency)
                raise PaymentStateError(
                    f"refund of {request.amount} exceeds what may still be refunded ({left})",
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
        """Apply the channel's answer to a refund: succeeded, failed, or still pending."""
        check_refund_result(result)
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
            )
            return self.run(lambda conn: self._applier(conn).fact(fact))
        if result.status in _FAILED_REFUND_CODES:
            return self.fail_refund(refund.out_refund_no, f"channel says {result.status.value}")
        return ApplyResult(
            outcome=InboxOutcome.IGNORED,
            out_trade_no=refund.out_trade_no,
            reason=f"refund {result.status.value}",
        )

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
                    raw_body=bytes(r["raw_body"]),
                )
                for r in conn.execute(stmt).mappings()
            ]

        return self._read(fn)

    def anomalies(self, out_trade_no: str | None = None) -> list[AnomalyRecord]:
        stmt = sa.select(anomalies).order_by(anomalies.c.id)
        if out_trade_no is not None:
            stmt = stmt.where(anomalies.c.out_trade_no == out_trade_no)

        def fn(conn: Connection) -> list[AnomalyRecord]:
            return [
                AnomalyRecord(
                    kind=AnomalyKind(r["kind"]),
                    out_trade_no=r["out_trade_no"],
                    channel=r["channel"],
                    channel_trade_id=r["channel_trade_id"],
                    amount=None
                    if r["amount_minor"] is None
                    else Money(int(r["amount_minor"]), r["currency"]),
                    source=r["source"],
                    detail=dict(r["detail"]),
                    status=r["status"],
                    created_at=r["created_at"],
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


def _describe(exc: SQLAlchemyError) -> str:
    """A one-line reason that never includes bound parameters (they may be card data)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0][:200]}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _lock_payment(conn: Connection, out_trade_no: str) -> Any:
    return (
        conn.execute(
            sa.select(payments).where(payments.c.out_trade_no == out_trade_no).with_for_update()
        )
        .mappings()
        .first()
    )


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
