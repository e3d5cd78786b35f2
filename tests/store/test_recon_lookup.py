"""Reconciliation's batch look-ups go to the driver directly (plain tuples, one
placeholder per key): what they find, and a database failure on the way
surfacing as the store's error, never as a bare driver error and never with
the merchant's numbers that were bound."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from conftest import Database

from payhub.errors import StoreError
from payhub.recon._db import lookup_payments, lookup_refunds
from payhub.store import Store
from payhub.store._schema import payments

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _pay(store: Store, out_trade_no: str, amount_minor: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            payments.insert(),
            {
                "out_trade_no": out_trade_no,
                "amount_minor": amount_minor,
                "currency": "CNY",
                "subject": "gift card",
                "method": "qr",
                "status": "paid",
                "channel": "alipay",
                "channel_trade_id": f"T-{out_trade_no}",
                "paid_at": NOW,
                "created_at": NOW,
                "updated_at": NOW,
            },
        )


def test_a_batch_finds_exactly_the_stored_numbers_as_plain_tuples(store: Store) -> None:
    _pay(store, "LK-1", 1234)
    _pay(store, "LK-2", 99)
    keys = ["LK-2", "LK-404", "LK-1"]
    found = store.run(lambda conn: lookup_payments(conn, keys))
    assert set(found) == {"LK-1", "LK-2"}
    one = found["LK-1"]
    assert type(one) is tuple  # not a SQLAlchemy row
    assert one[1:] == ("LK-1", 1234, "CNY", "paid", "alipay", "T-LK-1")
    assert found["LK-2"][2] == 99


def test_a_failing_lookup_is_a_store_error_without_the_bound_numbers(
    store: Store, database: Database
) -> None:
    if database.backend == "mysql":
        pytest.skip("MySQL commits DROP TABLE at once: the shared schema would lose the table")

    def broken(conn: sa.Connection) -> object:
        # Gone inside this transaction only on PostgreSQL (rolled back with it);
        # SQLite's file is this test's own copy.
        conn.exec_driver_sql("DROP TABLE payhub_refunds")
        return lookup_refunds(conn, ["SECRET-REFUND-NO-1"])

    with pytest.raises(StoreError) as caught:
        store.run(broken)
    message = str(caught.value)
    assert "payhub_refunds" in message
    assert "SECRET-REFUND-NO-1" not in message
    assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
