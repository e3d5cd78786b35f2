"""How many statements a notification costs: the work the exactly-once path does.

Counted with SQLAlchemy's ``before_cursor_execute`` event on the store's
engine (every statement is one round trip; BEGIN and COMMIT come on top, one
each, on every side of ``benchmarks/bench_e2e_flask.py``). A duplicate is the
inbox insert alone on every database; on PostgreSQL a first delivery of a
pending payment paid as stored is four: inbox insert and conditional UPDATE
together, the ledger entry with its chain link (the head locked in the same
statement), the audit row with its chain link, the outbox event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event
from storekit import ToyBank, notification

from payhub import Money, PaymentRequest, PayMethod
from payhub.store import InboxOutcome, PaymentState, Store

#: first delivery of a pending payment paid as stored, by database
FIRST = {"postgresql": 4}


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def pay(hub, out_trade_no: str) -> None:  # type: ignore[no-untyped-def]
    hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no, amount=Money(1000), subject="gift card", method=PayMethod.QR
        )
    )


def test_statements_per_first_delivery_and_per_duplicate(
    hub, store: Store, bank: ToyBank
) -> None:
    # warm: the ledger reads its settlement plans once per process
    pay(hub, "RT0")
    hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "RT0"))
    pay(hub, "RT1")
    headers, body = bank.buyer_pays("toy-a", "RT1")
    with statements(store) as first:
        outcome = hub.handle_notification("toy-a", headers, body)
    assert outcome.applied is not None
    assert outcome.applied.transition == (PaymentState.PENDING, PaymentState.PAID)
    with statements(store) as duplicate:
        again = hub.handle_notification("toy-a", headers, body)
    assert again.applied is not None
    assert again.applied.outcome is InboxOutcome.DUPLICATE

    assert len(duplicate) == 1, duplicate
    assert "payhub_notifications" in duplicate[0]
    dialect = store.engine.dialect.name
    if dialect in FIRST:
        assert len(first) == FIRST[dialect], "\n".join(first)
    # whatever the count, the work is all there, once
    record = store.payment("RT1")
    assert record is not None
    assert record.status is PaymentState.PAID
    assert [e.type for e in store.events(out_trade_no="RT1")] == ["payment.succeeded"]
    assert len(store.inbox("RT1")) == 1
    with store.engine.connect() as conn:
        entries = conn.execute(
            sa.text("SELECT count(*) FROM payhub_ledger_entries WHERE reference = 'RT1'")
        ).scalar_one()
    assert entries == 1
    assert store.verify_chain().ok


def test_a_wrong_prediction_takes_the_usual_path_in_the_same_transaction(
    hub, store: Store
) -> None:
    """Another amount: the combined insert-and-update pays nothing, the inbox row
    stays, and the payment goes to review by the lifecycle's usual path."""
    pay(hub, "RT2")
    headers, body = notification("RT2", amount=999)
    outcome = hub.handle_notification("toy-a", headers, body)
    assert outcome.applied is not None
    assert outcome.applied.transition == (PaymentState.PENDING, PaymentState.REVIEW)
    record = store.payment("RT2")
    assert record is not None
    assert record.status is PaymentState.REVIEW
    [inbox] = store.inbox("RT2")
    assert inbox.outcome is InboxOutcome.REVIEW
    again = hub.handle_notification("toy-a", headers, body)
    assert again.applied is not None
    assert again.applied.outcome is InboxOutcome.DUPLICATE
    assert len(store.inbox("RT2")) == 1
    assert [e.type for e in store.events(out_trade_no="RT2")] == ["payment.amount_mismatch"]
    assert store.verify_chain().ok
