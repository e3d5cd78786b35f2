"""A stalled database is a fast, retryable failure (issue 11, point 17).

A stalled database held a request for 45 s: no statement or lock timeout, no
keepalive. PostgreSQL and MariaDB connections now carry a statement timeout,
a lock timeout and keepalives, configurable per store. The lock test holds a
row lock from another connection and releases it after ``HOLD`` seconds: with
no lock timeout (the old code) the store call would simply wait and succeed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from payhub import ConfigurationError, Money, PaymentRequest, StoreError, StoreValueError
from payhub.models import AttemptOutcome
from payhub.store import Store, _migrate

HOLD = 8.0  # how long the other transaction keeps its row lock
MARGIN = 3.0  # generous: the point is "about the timeout", not a tight bound


@pytest.fixture
def server(database) -> str:
    if database.backend == "sqlite":
        pytest.skip("SQLite has one writer and its busy_timeout; these are server settings")
    return database.backend


@pytest.fixture
def quick(server, store_url) -> Iterator[Store]:
    with Store(store_url, statement_timeout=1.0, lock_timeout=0.5) as store:
        yield store


def test_default_settings_are_in_effect(server, store) -> None:
    with store.engine.connect() as conn:
        if server == "postgres":
            show = {
                name: conn.exec_driver_sql(f"SHOW {name}").scalar_one()
                for name in ("statement_timeout", "lock_timeout")
            }
            assert show == {"statement_timeout": "5s", "lock_timeout": "3s"}
            params = conn.connection.dbapi_connection.info.get_parameters()
            assert params["keepalives"] == "1"
            assert int(params["keepalives_idle"]) > 0
            assert int(params["tcp_user_timeout"]) > 0
            assert int(params["connect_timeout"]) == 10
            # The URL's own startup options (the test schema's search_path) are kept.
            assert conn.exec_driver_sql("SHOW search_path").scalar_one().startswith("payhub_t_")
        else:
            row = conn.exec_driver_sql(
                "SELECT @@SESSION.max_statement_time, @@SESSION.innodb_lock_wait_timeout, "
                "@@SESSION.sql_mode"
            ).one()
            assert (float(row[0]), int(row[1])) == (5.0, 3)
            assert "STRICT_TRANS_TABLES" in row[2].split(",")


def test_configured_settings_are_in_effect(server, quick) -> None:
    with quick.engine.connect() as conn:
        if server == "postgres":
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "1s"
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "500ms"
        else:
            row = conn.exec_driver_sql(
                "SELECT @@SESSION.max_statement_time, @@SESSION.innodb_lock_wait_timeout"
            ).one()
            assert (float(row[0]), int(row[1])) == (1.0, 1)  # InnoDB counts whole seconds


def test_a_held_row_lock_is_a_fast_retryable_failure(server, quick) -> None:
    quick.begin_payment(
        PaymentRequest(out_trade_no="LOCKED-1", amount=Money(100), subject="x", method="qr")
    )
    other = sa.create_engine(quick.engine.url)
    try:
        holder = other.connect()
        transaction = holder.begin()
        holder.exec_driver_sql(
            "SELECT id FROM payhub_payments WHERE out_trade_no = 'LOCKED-1' FOR UPDATE"
        ).all()
        release = threading.Timer(HOLD, transaction.rollback)
        release.start()
        started = time.monotonic()
        try:
            with pytest.raises(StoreError) as caught:
                quick.record_attempt("LOCKED-1", "toy-a", AttemptOutcome.SUCCEEDED)
            elapsed = time.monotonic() - started
        finally:
            release.join()
            holder.close()
    finally:
        other.dispose()
    assert not isinstance(caught.value, StoreValueError)
    assert caught.value.retryable is True
    # lock timeout 0.5 s (InnoDB: 1 s), run once (not eight times), far below HOLD
    assert elapsed < 1.0 + MARGIN, elapsed
    assert quick.attempts("LOCKED-1") == []


def test_a_slow_statement_is_a_fast_retryable_failure(server, quick) -> None:
    sleep = "SELECT pg_sleep(4)" if server == "postgres" else "SELECT SLEEP(4)"
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        quick.run(lambda conn: conn.exec_driver_sql(sleep).all())
    elapsed = time.monotonic() - started
    assert caught.value.retryable is True
    assert not isinstance(caught.value, StoreValueError)
    assert elapsed < 1.0 + MARGIN, elapsed


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "5", True, None])
def test_timeouts_must_be_positive_seconds(value) -> None:
    for name in ("statement_timeout", "lock_timeout", "connect_timeout"):
        with pytest.raises(ConfigurationError, match=name):
            Store("postgresql+psycopg://shop@db.invalid/payhub", **{name: value})


def test_timeouts_come_from_the_store_configuration(server, store_url) -> None:
    config = {"url": store_url, "statement_timeout": 2, "lock_timeout": 1.5}
    with Store.from_config(config) as store, store.engine.connect() as conn:
        if server == "postgres":
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "1500ms"
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "2s"
        else:
            row = conn.exec_driver_sql(
                "SELECT @@SESSION.max_statement_time, @@SESSION.innodb_lock_wait_timeout"
            ).one()
            assert (float(row[0]), int(row[1])) == (2.0, 2)



def test_migrations_run_without_the_limits_and_never_leak_that_connection(
    server, store_url, monkeypatch
) -> None:
    """A table rebuild (revision 0005 on MySQL) may take minutes: upgrade lifts the
    limits on its own connection and closes it; the pool keeps the limits."""
    seen: list[tuple[float, float]] = []

    def upgrade(config, revision) -> None:  # alembic's, spied on: what does it run under?
        conn = config.attributes["connection"]
        if server == "postgres":
            row = conn.exec_driver_sql(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
            ).one()
        else:
            row = conn.exec_driver_sql(
                "SELECT @@SESSION.max_statement_time, @@SESSION.innodb_lock_wait_timeout"
            ).one()
        seen.append((float(row[0]), float(row[1])))

    monkeypatch.setattr(_migrate.command, "upgrade", upgrade)
    with Store(store_url, statement_timeout=1.0, lock_timeout=1.0) as store:
        store.upgrade()
        assert seen[0][0] == 0  # no statement limit
        assert seen[0][1] == 0 if server == "postgres" else seen[0][1] > 1
        with store.engine.connect() as conn:
            if server == "postgres":
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "1s"
            else:
                limit = conn.exec_driver_sql("SELECT @@SESSION.max_statement_time").scalar_one()
                assert float(limit) == 1.0
