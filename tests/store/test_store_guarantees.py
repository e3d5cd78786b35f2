"""The guarantees of issue 6, each on SQLite, PostgreSQL and MariaDB/MySQL.

* 50 identical notifications delivered concurrently from several processes:
  exactly one transition, one ``payment.succeeded`` event, every delivery
  acknowledged as success.
* The process killed at each step boundary: after the channel resends, exactly
  one transition and every event delivered at least once, with the same id.
* The database unavailable during a notification: a failure ack, nothing
  partially written.

(The notification / return / sync race is in ``test_sync.py``; the refund race
in ``test_refunds.py``.)
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from storekit import CRASH_EXIT, EventLog, crash_worker, deliver_worker, make_hub, notification

from payhub import Money, PaymentRequest, PayMethod, StoreError
from payhub.store import InboxOutcome, PaymentState, Store
from payhub.store._schema import events, notifications

SPAWN = multiprocessing.get_context("spawn")
PROCESSES = 4
DELIVERIES = 50
CRASH_POINTS = [
    "after_verify",
    "after_inbox_insert",
    "after_transition",
    "before_event_dispatch",
    "before_ack",
]
COMMITTED = {"before_event_dispatch", "before_ack"}


def new_payment(store: Store, out_trade_no: str) -> None:
    store.begin_payment(
        PaymentRequest(
            out_trade_no=out_trade_no, amount=Money(1000), subject="card", method=PayMethod.QR
        )
    )


def paid_transitions(store: Store, out_trade_no: str) -> int:
    return sum(1 for a in store.audit(out_trade_no) if a.to_status is PaymentState.PAID)


def test_50_identical_notifications_from_several_processes(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    new_payment(store, "G1")
    headers, body = notification("G1")
    log = str(tmp_path / "events.log")
    barrier = SPAWN.Barrier(PROCESSES)
    results = SPAWN.Queue()
    shares = [DELIVERIES // PROCESSES + (i < DELIVERIES % PROCESSES) for i in range(PROCESSES)]
    workers = [
        SPAWN.Process(
            target=deliver_worker, args=(store_url, headers, body, n, barrier, results, log)
        )
        for n in shares
    ]
    for worker in workers:
        worker.start()
    outcomes = [item for _ in workers for item in results.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len(outcomes) == DELIVERIES
    assert all(ok for ok, _ in outcomes), outcomes
    kinds = sorted(kind for _, kind in outcomes)
    assert kinds == ["applied"] + ["duplicate"] * (DELIVERIES - 1)
    assert paid_transitions(store, "G1") == 1
    [event] = store.events(out_trade_no="G1")
    assert event.type == "payment.succeeded"
    delivered = EventLog.read(log)
    assert {entry[0] for entry in delivered} == {event.id}
    assert store.events(pending=True) == []
    assert len(store.inbox("G1")) == 1


def test_crash_at_each_step_then_resend(store: Store, store_url: str, tmp_path: Path) -> None:
    log = str(tmp_path / "events.log")
    sent = {}
    workers = []
    for point in CRASH_POINTS:
        out_trade_no = f"G2-{point}"
        new_payment(store, out_trade_no)
        sent[point] = notification(out_trade_no)
        worker = SPAWN.Process(target=crash_worker, args=(store_url, point, *sent[point], log))
        worker.start()
        workers.append(worker)
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == CRASH_EXIT
    # What the crash left: nothing before the commit, everything after it.
    for point in CRASH_POINTS:
        record = store.payment(f"G2-{point}")
        expected = PaymentState.PAID if point in COMMITTED else PaymentState.PENDING
        assert record.status is expected, point
        assert len(store.inbox(f"G2-{point}")) == (1 if point in COMMITTED else 0), point
    # The channel resends each notification.
    with make_hub(store_url, log) as hub:
        for point in CRASH_POINTS:
            outcome = hub.handle_notification("toy-a", *sent[point])
            assert outcome.ack.ok, (point, outcome.error)
            expected = InboxOutcome.DUPLICATE if point in COMMITTED else InboxOutcome.APPLIED
            assert outcome.applied.outcome is expected, point
        delivered = EventLog.read(log)
        for point in CRASH_POINTS:
            out_trade_no = f"G2-{point}"
            assert paid_transitions(store, out_trade_no) == 1, point
            [event] = store.events(out_trade_no=out_trade_no)
            assert event.type == "payment.succeeded"
            ids = [entry[0] for entry in delivered if entry[2] == out_trade_no]
            assert ids, f"{point}: event never delivered"
            assert set(ids) == {event.id}, point
        assert store.events(pending=True) == []
        assert hub.dispatch_events() == 0


def unreachable_url(database, tmp_path: Path) -> str:
    if database.backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'payhub.db'}"
    url = sa.engine.make_url(database.url)
    return url.set(port=1).render_as_string(hide_password=False)


def test_database_unreachable_gives_a_failure_ack(
    database, store: Store, store_url: str, tmp_path: Path
) -> None:
    new_payment(store, "G3")
    headers, body = notification("G3")
    with make_hub(unreachable_url(database, tmp_path)) as down:
        outcome = down.handle_notification("toy-a", headers, body)
    assert not outcome.ack.ok
    assert outcome.ack.body == b"fail"
    assert isinstance(outcome.error, StoreError)
    assert outcome.error.retryable
    with make_hub(store_url) as hub:
        assert hub.handle_notification("toy-a", headers, body).ack.ok
    assert paid_transitions(store, "G3") == 1


def test_connection_lost_mid_transaction_writes_nothing(store: Store, store_url: str) -> None:
    from payhub import PayHub

    class Dropping(PayHub):
        def _checkpoint(self, name, conn=None) -> None:
            if name == "after_transition" and conn is not None:
                # The database goes away under the open transaction.
                conn.connection.dbapi_connection.close()

    new_payment(store, "G4")
    headers, body = notification("G4")
    with make_hub(store_url, hub_class=Dropping) as hub:
        outcome = hub.handle_notification("toy-a", headers, body)
    assert not outcome.ack.ok
    assert isinstance(outcome.error, StoreError)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
    assert store.payment("G4").status is PaymentState.PENDING
    assert paid_transitions(store, "G4") == 0
    with make_hub(store_url) as hub:
        assert hub.handle_notification("toy-a", headers, body).ack.ok
    assert paid_transitions(store, "G4") == 1


@pytest.mark.parametrize("point", ["after_inbox_insert", "after_transition"])
def test_an_error_inside_the_transaction_writes_nothing(store: Store, store_url, point) -> None:
    from payhub import PayHub

    class Failing(PayHub):
        def _checkpoint(self, name, conn=None) -> None:
            if name == point:
                raise StoreError("disk full")

    new_payment(store, "G5")
    with make_hub(store_url, hub_class=Failing) as hub:
        outcome = hub.handle_notification("toy-a", *notification("G5"))
    assert not outcome.ack.ok
    assert store.inbox("G5") == []
    assert store.events() == []
    assert store.payment("G5").status is PaymentState.PENDING
