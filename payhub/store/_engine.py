"""Engines for the three supported databases, and what differs between them.

* SQLite (a file; the embedded default): WAL journal, ``synchronous=FULL`` so a
  commit survives a power cut, a busy timeout, and ``BEGIN IMMEDIATE`` for
  write transactions, so two writers queue at BEGIN instead of deadlocking
  on a lock upgrade later.
* PostgreSQL (psycopg 3): READ COMMITTED, ``SELECT … FOR UPDATE``, a
  statement and a lock timeout in the connection's startup options, TCP
  keepalives and a TCP user timeout, so a stalled server is a fast failure.
* MySQL / MariaDB (PyMySQL): InnoDB, utf8mb4, READ COMMITTED, ``FOR UPDATE``;
  every connection strict (``STRICT_TRANS_TABLES``: a value that does not fit
  is an error, never a warning and a clamped or cut value), with a lock wait
  timeout, a statement time limit (MariaDB ``max_statement_time``; MySQL's
  ``max_execution_time`` covers SELECTs only) and client read/write timeouts.

No statement here downgrades an error to a warning: MySQL's ``INSERT IGNORE``
would store 2**63 as 9223372036854775807, so insert-or-skip is a plain INSERT
whose duplicate-key error is caught (MySQL rolls back only that statement).
"""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from payhub.errors import ConfigurationError

__all__ = [
    "Timeouts",
    "create_store_engine",
    "insert_ignore",
    "is_transient",
    "is_value_error",
    "safe_url",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: PostgreSQL SQLSTATEs after which the whole transaction may simply be run again
#: at once: serialization failure, deadlock. (A lock or statement timeout is not:
#: it already waited its time; it raises a retryable StoreError instead.)
_PG_TRANSIENT = {"40001", "40P01"}
#: MySQL: deadlock found.
_MYSQL_TRANSIENT = {1213}
#: MySQL errors about a value: out of range (1264, 1690), data truncated (1265,
#: 1292), incorrect string (1366, 1367), too long (1406), datetime overflow
#: (1441), invalid JSON (3140), CHECK constraint (3819 MySQL, 4025 MariaDB).
_MYSQL_VALUE = {1264, 1265, 1292, 1366, 1367, 1406, 1441, 1690, 3140, 3819, 4025}
_MYSQL_DUPLICATE_KEY = 1062
#: TCP keepalive on PostgreSQL connections: first probe after 10 s idle, then
#: every 3 s, dead after 3 unanswered (about 19 s for a server that vanished).
_PG_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
}
#: Sent data unacknowledged this long (ms) drops a PostgreSQL connection.
_PG_TCP_USER_TIMEOUT_MS = 20_000
#: MySQL client read/write timeouts: the statement limit plus this margin, so the
#: server's own limit speaks first and the client's only catches a vanished server.
_CLIENT_MARGIN_S = 5.0


@dataclass(frozen=True)
class Timeouts:
    """How long a store operation may wait on PostgreSQL or MySQL/MariaDB (seconds).

    ``statement``: one statement's run time (PostgreSQL ``statement_timeout``,
    MariaDB ``max_statement_time``, MySQL ``max_execution_time`` for SELECTs).
    ``lock``: waiting for a row lock another transaction holds (PostgreSQL
    ``lock_timeout``, InnoDB ``innodb_lock_wait_timeout``, whole seconds, at
    least 1). ``connect``: opening a connection. Each ends the operation with a
    retryable :class:`~payhub.errors.StoreError`: a notification gets a
    failure ack at once, and the channel resends later. SQLite waits
    ``busy_timeout`` (30 s) for the write lock, whatever these say.
    """

    statement: float = 5.0
    lock: float = 3.0
    connect: float = 10.0

    def __post_init__(self) -> None:
        for name in ("statement", "lock", "connect"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigurationError(
                    f"store: {name}_timeout must be a positive number of seconds, not {value!r}"
                )


_EXTRA = {
    "postgresql": "payhub-cn[postgres] (psycopg 3)",
    "mysql": "payhub-cn[mysql] (PyMySQL)",
    "mariadb": "payhub-cn[mysql] (PyMySQL)",
}


def parse_url(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigurationError("store: malformed database URL") from None


def safe_url(url: URL) -> str:
    """The URL for messages and reprs: the password is never shown."""
    return url.render_as_string(hide_password=True)


def create_store_engine(
    url: str | URL, *, timeouts: Timeouts | None = None, **options: Any
) -> Engine:
    """An engine configured for the store's guarantees on its database."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    limits = timeouts or Timeouts()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed, options)
        if backend == "postgresql":
            return _postgres_engine(parsed, options, limits)
        if backend in ("mysql", "mariadb"):
            return _mysql_engine(parsed, options, limits)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"store: the driver for {backend} is not installed (pip install "
            f"{_EXTRA.get(backend, backend)}): {exc.name}"
        ) from None
    raise ConfigurationError(
        f"store: unsupported database {backend!r}; use sqlite, postgresql or mysql/mariadb"
    )


def _sqlite_engine(url: URL, options: dict[str, Any]) -> Engine:
    if url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory"):
        raise ConfigurationError(
            "store: SQLite needs a file (sqlite:///path/to/payhub.db); an in-memory "
            "database is lost with the process and cannot be shared"
        )
    connect_args = dict(options.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = sa.create_engine(url, connect_args=connect_args, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, record: Any) -> None:
        # The driver's own transaction handling is off: BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock at BEGIN: lock order is then the order of
        # BEGINs, and no transaction fails later upgrading a read lock.
        readonly = conn.get_execution_options().get("payhub_readonly", False)
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        dbapi_connection.execute("BEGIN DEFERRED" if readonly else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL, options: dict[str, Any], limits: Timeouts) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    connect_args = dict(options.pop("connect_args", {}))
    for key, value in {
        "connect_timeout": max(1, math.ceil(limits.connect)),
        "tcp_user_timeout": _PG_TCP_USER_TIMEOUT_MS,
        **_PG_KEEPALIVE,
    }.items():
        if key not in url.query:
            connect_args.setdefault(key, value)
    # Ours first: a -c the URL or connect_args already give wins (the last one does).
    ours = f"-c statement_timeout={_ms(limits.statement)} -c lock_timeout={_ms(limits.lock)}"
    given = connect_args.get("options", url.query.get("options"))
    if isinstance(given, tuple):
        given = " ".join(given)
    connect_args["options"] = f"{ours} {given}" if given else ours
    _pool_defaults(options)
    options.setdefault("isolation_level", "READ COMMITTED")
    return sa.create_engine(url, connect_args=connect_args, **options)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _mysql_engine(url: URL, options: dict[str, Any], limits: Timeouts) -> Engine:
    if url.drivername in ("mysql", "mariadb"):
        url = url.set(drivername=f"{url.drivername}+pymysql")
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    connect_args = dict(options.pop("connect_args", {}))
    client = limits.statement + _CLIENT_MARGIN_S
    for key, value in {
        "connect_timeout": max(1, math.ceil(limits.connect)),
        "read_timeout": client,
        "write_timeout": client,
    }.items():
        if key not in url.query:
            connect_args.setdefault(key, value)
    _pool_defaults(options)
    options.setdefault("pool_recycle", 3600)
    options.setdefault("isolation_level", "READ COMMITTED")
    engine = sa.create_engine(url, connect_args=connect_args, **options)
    session = _mysql_session_settings(limits)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        server = str(dbapi_connection.get_server_info())
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(session("MariaDB" in server))
        finally:
            cursor.close()

    return engine


def _mysql_session_settings(limits: Timeouts) -> Callable[[bool], str]:
    """The SET run on every new MySQL/MariaDB connection: strict, with time limits."""
    common = (
        "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), "
        "'STRICT_TRANS_TABLES'), "
        f"innodb_lock_wait_timeout = {max(1, math.ceil(limits.lock))}, "
    )

    def statement(mariadb: bool) -> str:
        if mariadb:  # seconds, any statement
            return common + f"max_statement_time = {limits.statement:g}"
        return common + f"max_execution_time = {_ms(limits.statement)}"  # ms, SELECT only

    return statement


def _pool_defaults(options: dict[str, Any]) -> None:
    """No ping at checkout and no ROLLBACK at checkin: two round trips per
    transaction that :meth:`Store.run` makes unnecessary (every transaction
    ends in COMMIT or ROLLBACK, and a connection found dead is replaced and
    the transaction run once more)."""
    options.setdefault("pool_pre_ping", False)
    options.setdefault("pool_reset_on_return", None)


def insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless it would break a unique key; True if it was inserted.

    A duplicate never raises, so the surrounding transaction goes on. If
    another transaction is inserting the same key, this waits for it to end.
    Only a duplicate key is skipped: a value that does not fit raises, on
    every database.
    """
    name = conn.dialect.name
    if name in ("mysql", "mariadb"):
        # Not INSERT IGNORE (it turns every error into a warning: out-of-range
        # values are clamped, long ones cut), and not ON DUPLICATE KEY UPDATE
        # (with the FOUND_ROWS flag SQLAlchemy sets, a duplicate also counts 1).
        try:
            conn.execute(table.insert(), values)
        except IntegrityError as exc:
            if is_duplicate_key(exc):
                return False
            raise
        return True
    stmt = _insert_or_skip(name, table)
    if name == "postgresql":
        return conn.execute(stmt, values).first() is not None
    return conn.execute(stmt, values).rowcount == 1


@functools.cache
def _insert_or_skip(dialect: str, table: sa.Table) -> sa.Insert:
    """One statement per table, built once; the values come as parameters."""
    if dialect == "postgresql":
        # Explicit RETURNING: with the implicit one (for the primary key) psycopg
        # reports no rowcount.
        insert = postgresql.insert(table).on_conflict_do_nothing()
        return insert.returning(sa.literal_column("1"))
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise ConfigurationError(f"store: no insert-or-ignore for {dialect}")  # pragma: no cover


def is_duplicate_key(exc: DBAPIError) -> bool:
    """MySQL's duplicate-key error: it rolls back that statement only, not the transaction."""
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] == _MYSQL_DUPLICATE_KEY


def is_transient(exc: DBAPIError) -> bool:
    """A deadlock or serialization failure (or SQLite busy): run the transaction again."""
    if exc.connection_invalidated:
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_TRANSIENT:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_TRANSIENT:
        return True
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig)
        return "locked" in text or "busy" in text
    return False


def is_value_error(exc: BaseException) -> bool:
    """The database (or its driver) refused a value: sending it again cannot help.

    PostgreSQL's data exceptions (SQLSTATE class 22: out of range, too long,
    invalid text) and psycopg's refusal of NUL in text; MySQL's value errors;
    SQLite's ``OverflowError`` for an int beyond 64 bits; text a driver cannot
    encode (lone surrogates).
    """
    if isinstance(exc, OverflowError | UnicodeError):
        return True
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith("22")
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and not isinstance(orig, sqlite3.Error):
        return args[0] in _MYSQL_VALUE
    return isinstance(exc, sa.exc.DataError)
