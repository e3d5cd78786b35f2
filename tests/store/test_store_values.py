"""Values the store cannot hold are typed, non-retryable refusals on every database.

Issue 11, points 7-10: a WeChat ``total`` of 2**63 raised ``OverflowError`` out
of the hub on SQLite; MariaDB's ``INSERT IGNORE`` clamped 2**63 to 2**63-1 and
its PAD SPACE collation matched ``"P-ORDER-1 "`` to ``"P-ORDER-1"``; a NUL or a
100,000-character identifier got a *retryable* StoreError on PostgreSQL, so
the channel resent it forever. Every test here runs on SQLite, PostgreSQL and
MariaDB over real connections.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from storekit import notification

from payhub import (
    AmountError,
    ErrorCode,
    InvalidRequestError,
    Money,
    Notification,
    NotificationKind,
    PaymentRequest,
    PaymentStatus,
    RefundRequest,
    StoreError,
    StoreValueError,
)
from payhub.models import AttemptOutcome
from payhub.store import Store
from payhub.store._engine import insert_ignore
from payhub.store._schema import metadata, payments
from payhub.store._types import ExactString

BIG = 2**63  # one more than a BIGINT holds


def _pay(out_trade_no: str = "P-ORDER-1", minor: int = 1000) -> PaymentRequest:
    return PaymentRequest(out_trade_no=out_trade_no, amount=Money(minor), subject="x", method="qr")


def _unchecked_pay(out_trade_no: str, minor: int = 1000) -> PaymentRequest:
    """A request that skipped validation (model_construct), as a careless caller may pass."""
    return PaymentRequest.model_construct(
        out_trade_no=out_trade_no, amount=Money(minor), subject="x", method="qr"
    )


def _payment_row(out_trade_no: str, minor: int = 1000) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "out_trade_no": out_trade_no,
        "amount_minor": minor,
        "currency": "CNY",
        "subject": "x",
        "method": "qr",
        "status": "pending",
        "refunded_minor": 0,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _paid(out_trade_no: str = "P-ORDER-1", **changes: Any) -> Notification:
    values: dict[str, Any] = {
        "channel": "toy-a",
        "kind": NotificationKind.PAYMENT,
        "out_trade_no": out_trade_no,
        "channel_trade_id": "T-1",
        "amount": Money(1000),
        "status": PaymentStatus.PAID,
        "event_key": "evt-1",
        "raw": {},
    }
    values.update(changes)
    return Notification(**values)


def _refused(exc: StoreError) -> None:
    assert isinstance(exc, StoreValueError)
    assert exc.code is ErrorCode.STORE_VALUE_REFUSED
    assert exc.retryable is False


def _count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- point 7: a value the database refuses is a typed, non-retryable error ---------


def test_a_notification_for_2_63_is_refused_not_raised_and_not_retryable(hub, store) -> None:
    hub.pay(_pay("T1"))
    outcome = hub.handle_notification("toy-a", *notification("T1", amount=BIG))
    assert not outcome.ack.ok
    _refused(outcome.error)
    assert store.payment("T1").status == "pending"
    assert store.inbox() == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("amount_minor", BIG),  # SQLite: OverflowError; PostgreSQL 22003; MariaDB 1264
        ("amount_minor", -BIG - 1),
    ],
)
def test_the_database_refusing_a_number_is_a_store_value_error(store, column, value) -> None:
    """Past the store's own checks (here: straight to the insert), the database's or
    driver's refusal is translated, never raised raw nor retryable."""
    row = _payment_row("RAW-1") | {column: value}
    with pytest.raises(StoreValueError) as caught:
        store.run(lambda conn: insert_ignore(conn, payments, row))
    _refused(caught.value)
    assert _count(store, payments) == 0


def test_the_server_refusing_text_is_a_store_value_error(database, store) -> None:
    if database.backend == "sqlite":
        pytest.skip("SQLite stores text of any length, NUL included: the store's checks decide")
    too_long = _payment_row("X" * 65)
    with pytest.raises(StoreValueError) as caught:
        store.run(lambda conn: insert_ignore(conn, payments, too_long))
    _refused(caught.value)
    if database.backend == "postgres":
        nul = _payment_row("A\x00B")
        with pytest.raises(StoreValueError):
            store.run(lambda conn: insert_ignore(conn, payments, nul))
        with pytest.raises(StoreValueError):
            store.payment("A\x00B")  # a lookup too: psycopg refuses NUL in text
    assert _count(store, payments) == 0


def test_lone_surrogates_are_refused_not_raised(store) -> None:
    """JSON may escape a lone surrogate (``"\\ud800"``); no driver can encode it."""
    store.begin_payment(_pay())
    with pytest.raises(StoreValueError):
        store.apply_notification(_paid(channel_trade_id="T-\ud800"))
    with pytest.raises(StoreValueError):
        store.run(lambda conn: insert_ignore(conn, payments, _payment_row("S-\udc00")))
    assert store.payment("P-ORDER-1").status == "pending"


# -- point 8: no statement downgrades a data error; out of range is refused everywhere


def test_begin_payment_refuses_2_63_on_every_database(store) -> None:
    with pytest.raises(AmountError) as caught:
        store.begin_payment(_pay("BIG-1", BIG))
    assert caught.value.retryable is False
    assert store.payment("BIG-1") is None
    assert _count(store, payments) == 0


def test_insert_or_skip_skips_only_a_duplicate_key_and_the_transaction_goes_on(store) -> None:
    def fn(conn: Connection) -> tuple[bool, bool, bool]:
        first = insert_ignore(conn, payments, _payment_row("DUP-1"))
        again = insert_ignore(conn, payments, _payment_row("DUP-1", 5))
        other = insert_ignore(conn, payments, _payment_row("DUP-2"))
        return first, again, other

    assert store.run(fn) == (True, False, True)
    assert store.payment("DUP-1").amount == Money(1000)
    assert store.payment("DUP-2") is not None
    with pytest.raises(StoreValueError):  # a bad value is never "skipped"
        store.run(lambda conn: insert_ignore(conn, payments, _payment_row("DUP-1", BIG)))


def test_mysql_connections_are_strict_even_on_a_lenient_server(database, store_url) -> None:
    if database.backend != "mysql":
        pytest.skip("MySQL/MariaDB only")
    lenient = {"init_command": "SET SESSION sql_mode = ''"}  # as a server configured so
    with Store(store_url, connect_args=lenient) as store:
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one()
        assert "STRICT_TRANS_TABLES" in mode.split(",")
        with pytest.raises(StoreValueError):
            store.run(lambda conn: conn.execute(payments.insert().values(_payment_row("L", BIG))))
        with pytest.raises(AmountError):
            store.begin_payment(_pay("L", BIG))
        assert _count(store, payments) == 0


# -- point 9: identifiers compare byte for byte; numbers are checked at creation ---


def test_a_lookup_with_a_trailing_space_does_not_find_the_order(store) -> None:
    store.begin_payment(_pay("P-ORDER-1"))
    assert store.payment("P-ORDER-1 ") is None
    assert store.payment("p-order-1") is None
    assert store.payment("P-ORDER-1").out_trade_no == "P-ORDER-1"
    # And the unique key agrees: "P-ORDER-1 " is another row, not a duplicate.
    inserted = store.run(lambda conn: insert_ignore(conn, payments, _payment_row("P-ORDER-1 ")))
    assert inserted is True
    assert store.payment("P-ORDER-1 ").out_trade_no == "P-ORDER-1 "
    assert store.payment("P-ORDER-1").out_trade_no == "P-ORDER-1"


def test_a_signed_notification_for_the_number_with_a_space_credits_nothing(hub, store) -> None:
    hub.pay(_pay("P-ORDER-1"))
    outcome = hub.handle_notification("toy-a", *notification("P-ORDER-1 "))
    assert not outcome.ack.ok
    assert store.payment("P-ORDER-1").status == "pending"
    assert store.events(out_trade_no="P-ORDER-1") == []


@pytest.mark.parametrize(
    "number",
    ["P-ORDER-1 ", " P-ORDER-1", "P-ORDER\t1", "P-ORDER-1\n", "P\x00", "P\x7f", "", "A" * 65],
)
def test_order_numbers_with_whitespace_or_control_characters_are_refused(store, number) -> None:
    with pytest.raises(InvalidRequestError, match="out_trade_no"):
        store.begin_payment(_unchecked_pay(number))
    store.begin_payment(_pay("PAID-1"))
    refund = RefundRequest.model_construct(
        out_trade_no="PAID-1", out_refund_no=number, amount=Money(100)
    )
    with pytest.raises(InvalidRequestError, match="out_refund_no"):
        store.reserve_refund(None, refund)
    assert _count(store, payments) == 1
    assert store.refunds("PAID-1") == []


def test_migration_and_schema_agree_on_every_text_column_collation(database, store) -> None:
    if database.backend != "mysql":
        pytest.skip("collations are MySQL/MariaDB's")
    dialect = store.engine.dialect
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND data_type = 'varchar' "
                "AND table_name LIKE 'payhub!_%' ESCAPE '!' AND table_name <> :version"
            ),
            {"version": "payhub_alembic_version"},
        ).all()
    found = {(r[0], r[1]): r[2] for r in rows}
    expected = {
        (table.name, column.name): column.type.dialect_impl(dialect).collation
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, ExactString)
    }
    assert found == expected
    assert set(found.values()) == {
        "utf8mb4_nopad_bin" if dialect.is_mariadb else "utf8mb4_0900_bin"
    }


# -- point 10: identifiers a column cannot hold are refused before any SQL ---------


@pytest.mark.parametrize(
    "changes",
    [
        {"out_trade_no": "P-ORDER-1\x00"},
        {"out_trade_no": "P" * 100_000},
        {"channel_trade_id": "T\x00"},
        {"channel_trade_id": "T" * 100_000},
        {"event_key": "evt\x00"},
        {"kind": NotificationKind.REFUND, "out_refund_no": "R" * 100_000},
        {"kind": NotificationKind.REFUND, "out_refund_no": "R\x001"},
        {"refund_amount": Money(BIG), "kind": NotificationKind.REFUND, "out_refund_no": "R1"},
    ],
)
def test_unstorable_notification_identifiers_are_refused_not_retryable(store, changes) -> None:
    store.begin_payment(_pay())
    with pytest.raises(StoreValueError) as caught:
        store.apply_notification(_paid(**changes))
    _refused(caught.value)
    assert store.inbox() == []
    assert store.payment("P-ORDER-1").status == "pending"


def test_the_refusal_comes_before_any_sql() -> None:
    """The store is not even reachable: the identifier is refused all the same."""
    with Store("postgresql+psycopg://payhub@127.0.0.1:1/nowhere", connect_timeout=1) as store:
        with pytest.raises(StoreValueError):
            store.apply_notification(_paid(out_trade_no="A" * 100_000))
        with pytest.raises(StoreValueError):
            store.record_attempt("A\x00", "toy-a", AttemptOutcome.SUCCEEDED)
        with pytest.raises(AmountError):
            store.begin_payment(_pay("A", BIG))
        with pytest.raises(StoreError) as unreachable:  # only a storable one gets that far
            store.apply_notification(_paid())
        assert not isinstance(unreachable.value, StoreValueError)
        assert unreachable.value.retryable is True


def test_through_the_hub_a_nul_identifier_is_a_failure_ack_with_a_final_code(hub, store) -> None:
    hub.pay(_pay("T1"))
    outcome = hub.handle_notification("toy-a", *notification("T1", trade_id="T\x00"))
    assert not outcome.ack.ok
    _refused(outcome.error)
    assert store.inbox() == []
