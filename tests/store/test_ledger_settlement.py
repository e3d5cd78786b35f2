"""Settlement plans and batches, holds and withdrawals, on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from ledgerkit import balances, check_invariants, count, paid

from payhub import ErrorCode, LedgerError, Money, RefundRequest
from payhub.ledger import Account, AccountKind, EntryCause, HoldStatus, WithdrawalStatus
from payhub.store import Store
from payhub.store._schema import ledger_batch_members, ledger_batches, ledger_entries
from payhub.tz import SHANGHAI

K = AccountKind


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(store: Store) -> Clock:
    # Wednesday 2026-03-11 10:00 Asia/Shanghai
    clock = Clock(datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI).astimezone(UTC))
    store._clock = clock
    return clock


def test_t_plus_1_batch_after_a_fast_forwarded_clock(hub, store: Store, bank, clock) -> None:
    store.configure_ledger({"default_plan": "T+1"})
    paid(hub, bank, "S1", 1000, seller="alice")
    paid(hub, bank, "S2", 500, seller="alice")
    paid(hub, bank, "S3", 300, seller="bob")
    [payment] = store.ledger.entries(reference="S1")
    # Thursday 00:00 Shanghai: the next working day
    assert payment.available_on == datetime(2026, 3, 12, tzinfo=SHANGHAI)
    assert store.ledger.settle().batches == 0  # nothing due yet
    clock.now += timedelta(days=1)
    report = store.ledger.settle()
    assert (report.batches, report.entries, report.amounts) == (2, 3, {"CNY": Money(1800)})
    assert balances(store) == {
        ("toy-a", "clearing"): 1800,
        ("alice", "available"): 1500,
        ("bob", "available"): 300,
    }
    alice = next(b for b in store.ledger.batches() if b.party == "alice")
    detail = store.ledger.batch(alice.id)
    assert detail.amount == Money(1500)
    assert len(detail.members) == 2
    # re-running creates nothing
    assert store.ledger.settle().batches == 0
    assert count(store, ledger_batches) == 2
    check_invariants(store)


def test_plans_daily_cutoff_instant_and_changes_apply_to_new_payments(
    hub, store: Store, bank, clock
) -> None:
    store.configure_ledger(
        {"plans": {"bob": "daily@23:00", "ivy": "instant"}, "instant_fee_rate": "0.002"}
    )
    paid(hub, bank, "P1", 1000, seller="bob")
    [entry] = store.ledger.entries(reference="P1")
    assert entry.available_on == datetime(2026, 3, 11, 23, 0, tzinfo=SHANGHAI)
    paid(hub, bank, "P2", 10_000, seller="ivy")  # 秒到: available at once, less 0.2 %
    assert balances(store)[("ivy", "available")] == 9980
    assert balances(store)[("platform", "revenue")] == 20
    store.ledger.set_plan("bob", "D+3")
    paid(hub, bank, "P3", 1000, seller="bob")
    [later] = store.ledger.entries(reference="P3")
    assert later.plan == "D+3"
    assert store.ledger.entries(reference="P1")[0].plan == "daily@23:00"
    groups = store.ledger.pending_by_available_on("bob")
    assert [(g.available_on, g.amount) for g in groups] == [
        (datetime(2026, 3, 11, 23, 0, tzinfo=SHANGHAI), Money(1000)),
        (datetime(2026, 3, 14, tzinfo=SHANGHAI), Money(1000)),
    ]
    clock.now = datetime(2026, 3, 11, 23, 0, tzinfo=SHANGHAI)
    assert store.ledger.settle().batches == 1
    assert balances(store)[("bob", "available")] == 1000
    check_invariants(store)


def test_a_refund_of_a_pending_payment_nets_in_its_batch(hub, store: Store, bank, clock) -> None:
    paid(hub, bank, "N1", 1000, seller="alice")
    hub.refund(None, RefundRequest(out_trade_no="N1", out_refund_no="N1-r", amount=Money(400)))
    clock.now += timedelta(days=3)
    report = store.ledger.settle()
    assert (report.batches, report.entries, report.amounts) == (1, 2, {"CNY": Money(600)})
    assert balances(store)[("alice", "available")] == 600
    check_invariants(store)


def test_a_refund_after_settlement_never_takes_a_seller_negative(hub, store, bank, clock) -> None:
    paid(hub, bank, "R4", 1000, seller="carol")
    clock.now += timedelta(days=3)
    assert store.ledger.settle().batches == 1
    assert balances(store)[("carol", "available")] == 1000
    store.ledger.withdraw("carol", Money(800))
    hub.refund(None, RefundRequest(out_trade_no="R4", out_refund_no="R4-a", amount=Money(1000)))
    got = balances(store)
    assert ("carol", "available") not in got
    assert got[("carol", "receivable")] == 800  # what carol owes the platform
    check_invariants(store)


def test_a_crash_mid_run_leaves_whole_batches_and_a_rerun_finishes(
    hub, store: Store, bank, clock, monkeypatch
) -> None:
    from payhub.ledger import _settle

    for i, seller in enumerate(["a", "b", "c"]):
        paid(hub, bank, f"C{i}", 100 * (i + 1), seller=seller)
    clock.now += timedelta(days=3)
    real = _settle.settle_group
    calls = []

    def crashing(conn, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["party"])
        batch = real(conn, **kwargs)
        if len(calls) == 2:
            raise RuntimeError("killed mid-batch")
        return batch

    monkeypatch.setattr(_settle, "settle_group", crashing)
    with pytest.raises(RuntimeError):
        store.ledger.settle()
    monkeypatch.setattr(_settle, "settle_group", real)
    assert count(store, ledger_batches) == 1  # the first; the second rolled back whole
    assert count(store, ledger_batch_members) == 1
    report = store.ledger.settle()
    assert report.batches == 2
    with store.engine.connect() as conn:
        due = conn.execute(
            sa.select(sa.func.count())
            .select_from(ledger_entries)
            .where(ledger_entries.c.cause == EntryCause.PAYMENT.value)
        ).scalar_one()
    assert count(store, ledger_batch_members) == due == 3
    check_invariants(store)


def test_holds_freeze_release_capture_and_expire(hub, store: Store, bank, clock) -> None:
    store.configure_ledger({"plans": {"h": "instant"}})
    paid(hub, bank, "H1", 1000, seller="h")
    first = store.ledger.hold("h", Money(300), reason="dispute")
    assert balances(store)[("h", "frozen")] == 300
    assert balances(store)[("h", "available")] == 700
    with pytest.raises(LedgerError) as caught:
        store.ledger.hold("h", Money(701))
    assert caught.value.code is ErrorCode.LEDGER_INSUFFICIENT_FUNDS
    assert len(store.ledger.holds()) == 1  # nothing written
    assert store.ledger.release(first.id).status is HoldStatus.RELEASED
    with pytest.raises(LedgerError) as caught:
        store.ledger.release(first.id)
    assert caught.value.code is ErrorCode.LEDGER_STATE
    second = store.ledger.hold("h", Money(200), key="review-1")
    assert store.ledger.hold("h", Money(200), key="review-1").id == second.id  # idempotent
    store.ledger.capture(second.id)
    assert balances(store)[("platform", "captured")] == 200
    third = store.ledger.hold("h", Money(100), expires_at=clock.now + timedelta(hours=1))
    assert store.ledger.expire_holds() == []
    clock.now += timedelta(hours=2)
    [expired] = store.ledger.expire_holds()
    assert (expired.id, expired.status) == (third.id, HoldStatus.EXPIRED)
    assert balances(store)[("h", "available")] == 800
    with pytest.raises(LedgerError) as caught:
        store.ledger.release(999_999)
    assert caught.value.code is ErrorCode.LEDGER_NOT_FOUND
    check_invariants(store)


def test_withdrawals_minimum_fee_paid_and_failed(hub, store: Store, bank, clock) -> None:
    store.configure_ledger(
        {
            "plans": {"w": "instant"},
            "withdrawal": {"minimum": 100, "fee": {"type": "fixed", "amount": 10}},
        }
    )
    paid(hub, bank, "W1", 1000, seller="w")
    with pytest.raises(LedgerError) as caught:
        store.ledger.withdraw("w", Money(99))
    assert caught.value.code is ErrorCode.WITHDRAWAL_BELOW_MINIMUM
    with pytest.raises(LedgerError) as caught:
        store.ledger.withdraw("w", Money(1001))
    assert caught.value.code is ErrorCode.LEDGER_INSUFFICIENT_FUNDS
    first = store.ledger.withdraw("w", Money(500))
    assert first.fee == Money(10)
    assert balances(store)[("w", "withdrawing")] == 490
    assert store.ledger.mark_withdrawal_paid(first.id, "bank ref 1").status is WithdrawalStatus.PAID
    assert balances(store)[("platform", "paid_out")] == 490
    second = store.ledger.withdraw("w", Money(500))
    store.ledger.mark_withdrawal_failed(second.id, "account closed")
    got = balances(store)
    assert got[("w", "available")] == 500
    assert got[("platform", "revenue")] == 10  # the first's fee; the failed one's returned
    with pytest.raises(LedgerError) as caught:
        store.ledger.mark_withdrawal_paid(second.id)
    assert caught.value.code is ErrorCode.LEDGER_STATE
    check_invariants(store)


def test_bad_input_is_a_typed_error(store: Store) -> None:
    with pytest.raises(LedgerError):
        store.ledger.hold("x", Money(-1))
    with pytest.raises(LedgerError):
        store.ledger.hold(" x", Money(1))
    with pytest.raises(LedgerError):
        store.ledger.settle(at=datetime(2026, 1, 1))  # naive
    with pytest.raises(LedgerError):
        store.ledger.entries(limit=0)
    with pytest.raises(LedgerError):
        store.ledger.balance("x:available:CNY")  # type: ignore[arg-type]
    assert store.ledger.balance(Account("nobody", K.AVAILABLE)) == Money(0)
