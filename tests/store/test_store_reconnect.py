"""A pooled connection the server dropped is replaced, not surfaced as an error.

The store sends no ping at checkout (a round trip per transaction); instead a
transaction that meets a dead connection runs once more on a fresh one.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from payhub import Money, PaymentRequest
from payhub.store import Store


def _server_side_id(store: Store) -> int:
    query = "SELECT pg_backend_pid()" if store.dialect == "postgresql" else "SELECT CONNECTION_ID()"
    return int(store.run(lambda conn: conn.exec_driver_sql(query).scalar_one()))


@pytest.mark.parametrize(
    "database",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
    indirect=True,  # a SQLite file has no server connection to lose
)
def test_a_connection_killed_by_the_server_is_replaced(store: Store, store_url: str) -> None:
    store.begin_payment(
        PaymentRequest(out_trade_no="RC1", amount=Money(100), subject="card", method="qr")
    )
    victim = _server_side_id(store)
    admin = sa.create_engine(store_url)
    try:
        with admin.connect() as conn:
            if store.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_terminate_backend({victim})")
            else:
                conn.exec_driver_sql(f"KILL {victim}")
    finally:
        admin.dispose()
    # The pooled connection is dead; the next transaction must still work.
    record = store.payment("RC1")
    assert record is not None
    assert record.amount == Money(100)
    assert _server_side_id(store) != victim
