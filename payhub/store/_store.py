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
    ProtocolError,
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
    PAID_TIME_SKEW,
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
    AnomalyStatus,
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
#: anomalies whose money came in through a trade of its own: refundable there
_REFUNDABLE_ANOMALIES = frozenset({AnomalyKind.DUPLICATE_PAYMENT, AnomalyKind.LATE_PAYMENT})
#: resolved_by of an anomaly that a refund of the duplicate settled
RESOLVED_BY_REFUND = "payhub"


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
        paid_time_skew: timedelta = PAID_TIME_SKEW,
        **engine_options: Any,
    ) -> None:
        """``external_refunds``: apply refund notifications for refunds payhub did
        not ask for (made in the channel's merchant console). By default they
        are held for review (an ``orphan_refund`` anomaly and a
        ``refund.review`` event carrying the refund's amount) and change no
        payment.

        ``paid_time_skew``: a channel's paid time earlier than the payment's
        creation, or later than now, by more than this is flagged (a
        ``paid_time`` anomaly and a ``payment.time_anomaly`` event); the payment
        is still credited. Default 10 minutes (config: seconds).
        """
        if not isinstance(paid_time_skew, timedelta):
            if isinstance(paid_time_skew, bool) or not isinstance(paid_time_skew, int | float):
                raise ConfigurationError("store: paid_time_skew must be a number of seconds")
            paid_time_skew = timedelta(seconds=paid_time_skew)
        if paid_time_skew < timedelta(0):
            raise ConfigurationError("store: paid_time_skew must not be negative")
        self._url = parse_url(url)
        timeouts = Timeouts(statement_timeout, lock_timeout, connect_timeout)
        self._engine = create_store_engine(self._url, timeouts=timeouts, **engine_options)
        self._clock = clock
        self._hooks: list[TransitionHook] = []
        self._external_refunds = external_refunds
        self._paid_time_skew = paid_time_skew

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
            paid_time_skew=self._paid_time_skew,
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

    def anomalies(
        self,
        out_trade_no: str | None = None,
        *,
        status: AnomalyStatus | str | None = None,
        kind: AnomalyKind | str | None = None,
        limit: int | None = None,
    ) -> list[AnomalyRecord]:
        """Recorded anomalies, oldest first; only of one payment, status or kind if given."""
        stmt = sa.select(anomalies).order_by(anomalies.c.id).limit(limit)
        if out_trade_no is not None:
            stmt = stmt.where(anomalies.c.out_trade_no == out_trade_no)
        if status is not None:
            stmt = stmt.where(anomalies.c.status == _enum_value(AnomalyStatus, status, "status"))
        if kind is not None:
            stmt = stmt.where(anomalies.c.kind == _enum_value(AnomalyKind, kind, "kind"))
        return self._read(
            lambda conn: [_anomaly_record(r) for r in conn.execute(stmt).mappings()]
        )

    def anomaly(self, anomaly_id: int) -> AnomalyRecord:
        """One anomaly; :class:`InvalidRequestError` if there is none of that id."""
        return self._read(lambda conn: _anomaly_record(_anomaly_row(conn, anomaly_id)))

    def resolve_anomaly(self, anomaly_id: int, *, operator: str, reason: str) -> AnomalyRecord:
        """Close an open anomaly by hand (reviewed, refunded outside payhub…).

        ``operator`` (who) and ``reason`` (why) are required and kept with it,
        and an ``anomaly.resolved`` event carries both. Refused while a refund
        of it (``hub.refund_duplicate``) is pending: its outcome decides.
        """
        operator = _required_text(operator, "operator", 128)
        reason = _required_text(reason, "reason", 512)

        def fn(conn: Connection) -> AnomalyRecord:
            row = _anomaly_row(conn, anomaly_id)
            _lock_payment(conn, str(row["out_trade_no"]))
            row = _anomaly_row(conn, anomaly_id, lock=True)
            if row["status"] != AnomalyStatus.OPEN.value:
                raise PaymentStateError(
                    f"anomaly {anomaly_id} is already resolved", code=ErrorCode.PAYMENT_STATE
                )
            pending = conn.execute(
                sa.select(refunds.c.out_refund_no).where(
                    refunds.c.anomaly_id == anomaly_id,
                    refunds.c.status == RefundState.PENDING.value,
                )
            ).first()
            if pending is not None:
                raise PaymentStateError(
                    f"anomaly {anomaly_id}: refund {pending[0]!r} of it is pending; "
                    "settle it first (payhub sync)",
                    code=ErrorCode.PAYMENT_STATE,
                )
            self._applier(conn).resolve_anomaly(row, operator, reason)
            logger.info("anomaly %s resolved by %s", anomaly_id, operator)
            return _anomaly_record(_anomaly_row(conn, anomaly_id))

        return self.run(fn)

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


def _enum_value(
    enum_type: type[AnomalyStatus] | type[AnomalyKind], value: str, what: str
) -> str:
    try:
        return str(enum_type(value).value)
    except ValueError:
        known = ", ".join(member.value for member in enum_type)
        raise InvalidRequestError(f"unknown anomaly {what} {value!r} (known: {known})") from None


def _required_text(value: object, what: str, size: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"resolving an anomaly needs a non-empty {what}")
    value = value.strip()
    if len(value) > size or any(ord(ch) < 32 for ch in value):
        raise InvalidRequestError(
            f"the {what} must be one line of at most {size} characters"
        )
    return value


def _anomaly_row(conn: Connection, anomaly_id: int, *, lock: bool = False) -> Any:
    if isinstance(anomaly_id, bool) or not isinstance(anomaly_id, int):
        raise InvalidRequestError(f"an anomaly id is a number, not {anomaly_id!r}")
    stmt = sa.select(anomalies).where(anomalies.c.id == anomaly_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise InvalidRequestError(f"no anomaly {anomaly_id}")
    return row


def _anomaly_record(r: Any) -> AnomalyRecord:
    return AnomalyRecord(
        id=int(r["id"]),
        kind=AnomalyKind(r["kind"]),
        out_trade_no=r["out_trade_no"],
        channel=r["channel"],
        channel_trade_id=r["channel_trade_id"],
        amount=None if r["amount_minor"] is None else Money(int(r["amount_minor"]), r["currency"]),
        source=r["source"],
        detail=dict(r["detail"]),
        status=r["status"],
        created_at=r["created_at"],
        resolved_at=r["resolved_at"],
        resolved_by=r["resolved_by"],
        resolution=r["resolution"],
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
