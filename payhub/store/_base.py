"""What every part of the store shares: the engine, the clock, and one transaction runner.

Every write is one short transaction, retried whole on a deadlock or
serialization failure. No transaction is held across a network call to a
channel. Any database failure surfaces as :class:`~payhub.errors.StoreError`
after the transaction was rolled back: nothing is ever partially written.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from payhub.config import resolve_secret
from payhub.errors import (
    ConfigurationError,
    StoreError,
    StoreValueError,
)
from payhub.store._apply import (
    PAID_TIME_SKEW,
    Applier,
    Checkpoint,
    TransitionHook,
    _no_checkpoint,
)
from payhub.store._crypt import FieldKeys
from payhub.store._engine import (
    Timeouts,
    create_store_engine,
    is_transient,
    is_value_error,
    parse_url,
    safe_url,
)
from payhub.store._movements import Poster
from payhub.store._schema import (
    payments,
)

if TYPE_CHECKING:
    from payhub.ledger import Ledger, LedgerConfig

__all__ = ["StoreBase"]

T = TypeVar("T")
logger = logging.getLogger("payhub.store")

_RETRIES = 8


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """The store's engine and settings, and :meth:`run` (see :class:`~payhub.store.Store`)."""

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
        encryption: FieldKeys | Mapping[str, Any] | None = None,
        ledger: LedgerConfig | Mapping[str, Any] | bool | None = True,
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

        ``encryption``: keys for the inbox's buyer data (:class:`FieldKeys` or
        its configuration); without, it is stored in clear (docs/security.md).
        ``ledger``: the ledger's configuration (a :class:`~payhub.ledger.LedgerConfig`
        or the mapping of the hub configuration's ``"ledger"`` section); True or
        None: the defaults (zero fees, ``D+1``). Every credit, refund and
        duplicate payment then posts its entries in the transition's own
        transaction. False: no ledger at all (nothing is posted).
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
        if encryption is not None and not isinstance(encryption, FieldKeys):
            encryption = FieldKeys.from_config(encryption)
        self._field_keys: FieldKeys | None = encryption
        self._poster: Poster | None = None
        self._ledger: Ledger | None = None
        if ledger is not False:
            self.configure_ledger(None if ledger is True else ledger)

    def configure_ledger(self, config: LedgerConfig | Mapping[str, Any] | None) -> None:
        """Post with this ledger configuration from now on (see ``docs/ledger.md``)."""
        # The ledger sits beside the store and imports it: imported here, not at
        # module level, so the two packages form no import cycle.
        from payhub.ledger import Ledger, LedgerConfig, LedgerPoster  # noqa: PLC0415

        if not isinstance(config, LedgerConfig):
            config = LedgerConfig.from_config(config)
        self._ledger = Ledger(self, config)
        self._poster = LedgerPoster(config)

    @property
    def ledger(self) -> Ledger:
        """The store's ledger (:class:`~payhub.ledger.Ledger`)."""
        if self._ledger is None:
            raise ConfigurationError("this store was built with ledger=False")
        return self._ledger

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
            field_keys=self._field_keys,
            poster=self._poster,
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

    def guard(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (work on a connection of :attr:`engine` held by the caller,
        e.g. a long read) with the store's errors: any database failure becomes
        a :class:`StoreError` that never shows bound parameters."""
        return self._guard(fn)

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
