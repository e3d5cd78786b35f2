"""Migrations, engine settings and configuration of the store."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from payhub import ConfigurationError
from payhub.store import Store
from payhub.store._schema import VERSION_TABLE, metadata


def test_migrations_create_exactly_the_schema(store: Store) -> None:
    assert store.current_revision() == "0010"
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": False}
        )
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_upgrade_is_idempotent(store: Store) -> None:
    store.upgrade()
    store.upgrade("head")
    assert store.current_revision() == "0010"


def test_fresh_database_has_no_revision(tmp_path) -> None:
    with Store(f"sqlite:///{tmp_path / 'new.db'}") as store:
        assert store.current_revision() is None
        store.upgrade()
        assert store.current_revision() == "0010"
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {t.name for t in metadata.sorted_tables} | {VERSION_TABLE} == tables


def test_engine_settings(database, store: Store) -> None:
    if database.backend == "sqlite":
        sqlite_is_durable_and_takes_the_write_lock_at_begin(store)
    else:
        server_reads_committed(database, store)


def sqlite_is_durable_and_takes_the_write_lock_at_begin(store: Store) -> None:
    with store.engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "busy_timeout": 30000,
        "foreign_keys": 1,
    }
    path = store.engine.url.database
    with store.engine.begin():
        # Nothing written yet, but the write lock is held: another writer must wait.
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.execute("SELECT count(*) FROM payhub_payments")  # readers are not blocked
        finally:
            other.close()


def server_reads_committed(database, store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.get_isolation_level() == "READ COMMITTED"
        if database.backend == "mysql":
            rows = conn.execute(
                sa.text(
                    "SELECT table_name, engine, table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name LIKE :prefix"
                ),
                {"prefix": "payhub%"},
            ).all()
            tables = {r[0]: (r[1], r[2]) for r in rows if r[0] != VERSION_TABLE}
            assert len(tables) == 18  # 0008: risk (2); 0009: ledger (8); 0010: chain head
            nopad = "utf8mb4_nopad_bin" if conn.dialect.is_mariadb else "utf8mb4_0900_bin"
            assert set(tables.values()) == {("InnoDB", nopad)}


def test_datetimes_come_back_aware_utc(hub, store: Store) -> None:
    from payhub import Money, PaymentRequest

    hub.pay(PaymentRequest(out_trade_no="T1", amount=Money(1), subject="x", method="qr"))
    record = store.payment("T1")
    assert record.created_at.tzinfo is not None
    assert record.created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("oracle://x/y", "unsupported"),
        ("not a url", "malformed"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Store(url)


def test_password_never_shown() -> None:
    with Store("postgresql+psycopg://shop:hunter2@db.invalid/payhub") as store:
        assert "hunter2" not in repr(store)
        assert "hunter2" not in store.url


def test_from_config_reads_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SHOP_DB", f"sqlite:///{tmp_path / 'env.db'}")
    with Store.from_config({"url": {"$env": "SHOP_DB"}}) as store:
        assert store.dialect == "sqlite"
    with pytest.raises(ConfigurationError):
        Store.from_config({})
