"""Ledger entries posted inside the exactly-once transition transaction, on every database."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
import sqlalchemy as sa
from ledgerkit import balances, check_invariants, count, paid, pay
from storekit import ToyBank, notification

from payhub import ErrorCode, LedgerError, Money, RefundRequest, StoreError
from payhub.ledger import PLATFORM, Account, AccountKind, EntryCause, EntryDraft, credit, debit
from payhub.store import InboxOutcome, PaymentState, Store
from payhub.store._schema import chain_head, ledger_accounts, ledger_entries, ledger_lines

SPAWN = multiprocessing.get_context("spawn")
K = AccountKind

FEES = {
    "channel_fees": {"rules": {"toy-a": {"type": "percentage", "rate": "0.006"}}},
    "seller_fees": {"default": {"type": "percentage", "rate": "0.01"}},
}


def test_a_payment_posts_one_balanced_entry_and_a_replay_posts_nothing(hub, store, bank) -> None:
    outcome = paid(hub, bank, "L1", 1000, seller="alice")
    assert outcome.applied.outcome is InboxOutcome.APPLIED
    assert store.payment("L1").seller == "alice"
    assert balances(store) == {("toy-a", "clearing"): 1000, ("alice", "pending"): 1000}
    [entry] = store.ledger.entries(reference="L1")
    assert entry.cause is EntryCause.PAYMENT
    assert entry.plan == "D+1"
    assert entry.available_on is not None
    assert entry.available_on > store.payment("L1").paid_at
    headers, body = notification("L1", trade_id="toy-a-T-L1")
    for _ in range(3):
        again = hub.handle_notification("toy-a", headers, body)
        assert again.applied.outcome is InboxOutcome.DUPLICATE
    assert count(store, ledger_entries) == 1
    assert count(store, ledger_lines) == 2
    check_invariants(store)


def test_the_single_shop_needs_no_seller(hub, store, bank) -> None:
    paid(hub, bank, "L2", 700)
    assert balances(store) == {("toy-a", "clearing"): 700, ("shop", "pending"): 700}
    assert store.ledger.balance(Account("shop", K.PENDING)) == Money(700)


def test_fees_from_configuration(hub, store: Store, bank) -> None:
    store.configure_ledger(FEES)
    paid(hub, bank, "F1", 10_000, seller="alice")
    assert balances(store) == {
        ("toy-a", "clearing"): 9940,
        ("toy-a", "channel_fees"): 60,
        ("alice", "pending"): 9900,
        ("platform", "revenue"): 100,
    }
    check_invariants(store)


def test_partial_then_full_refund_returns_fees_proportionally(hub, store: Store, bank) -> None:
    store.configure_ledger(FEES)
    paid(hub, bank, "R1", 10_000, seller="alice")
    hub.refund(None, RefundRequest(out_trade_no="R1", out_refund_no="R1-a", amount=Money(2500)))
    assert balances(store) == {
        ("toy-a", "clearing"): 9940 - 2485,
        ("toy-a", "channel_fees"): 60 - 15,
        ("alice", "pending"): 9900 - 2475,
        ("platform", "revenue"): 100 - 25,
    }
    [refund] = store.ledger.entries(cause=EntryCause.REFUND)
    [payment] = store.ledger.entries(cause=EntryCause.PAYMENT)
    assert refund.available_on == payment.available_on  # nets in the same batch
    hub.refund(None, RefundRequest(out_trade_no="R1", out_refund_no="R1-b", amount=Money(7500)))
    assert store.payment("R1").status is PaymentState.REFUNDED
    assert balances(store) == {}
    check_invariants(store)


def test_refund_fee_policy_none_makes_the_seller_bear_the_fee(hub, store: Store, bank) -> None:
    store.configure_ledger(
        {**FEES, "seller_refund_fee_policy": "none", "refund_fee_policy": "none"}
    )
    paid(hub, bank, "R2", 10_000, seller="bob")
    paid(hub, bank, "R3", 10_000, seller="bob")
    hub.refund(None, RefundRequest(out_trade_no="R2", out_refund_no="R2-a", amount=Money(10_000)))
    got = balances(store)
    # bob pays the whole refund: R2's pending share (9900), and owes the fee (100);
    # R3's pending money is another cycle's, untouched
    assert got[("bob", "pending")] == 9900
    assert got[("bob", "receivable")] == 100
    assert got[("platform", "revenue")] == 200
    assert got[("toy-a", "channel_fees")] == 120
    check_invariants(store)


def test_a_duplicate_payment_goes_to_suspense_until_refunded(hub, store: Store, bank) -> None:
    bank.fail_pay["toy-a"] = "timeout"
    pay(hub, "D1", 1000, seller="alice")
    del bank.fail_pay["toy-a"]
    assert hub.handle_notification("toy-b", *bank.buyer_pays("toy-b", "D1")).ack.ok
    assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "D1")).ack.ok
    assert balances(store) == {
        ("toy-b", "clearing"): 1000,
        ("alice", "pending"): 1000,
        ("toy-a", "clearing"): 1000,
        (PLATFORM, "suspense"): 1000,
    }
    [anomaly] = hub.anomalies("D1")
    hub.refund_duplicate(anomaly.id, out_refund_no="D1-R")
    assert balances(store) == {("toy-b", "clearing"): 1000, ("alice", "pending"): 1000}
    check_invariants(store)


def test_the_query_path_posts_too(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "Q1", 500, seller="dave")
    bank.buyer_pays("toy-a", "Q1")  # the notification is lost
    hub.sync_pending(older_than=timedelta(0))
    assert store.payment("Q1").status is PaymentState.PAID
    assert balances(store) == {("toy-a", "clearing"): 500, ("dave", "pending"): 500}
    hub.handle_notification("toy-a", *notification("Q1", amount=500, trade_id="toy-a-T-Q1"))
    assert count(store, ledger_entries) == 1


def test_a_failure_after_posting_rolls_everything_back(store: Store, hub, bank) -> None:
    pay(hub, "X1", 1000, seller="alice")
    headers, body = bank.buyer_pays("toy-a", "X1")
    parsed = hub.parse_notification("toy-a", headers, body)

    def boom(name: str, conn: object) -> None:
        if name == "after_transition":
            raise StoreError("injected")

    with pytest.raises(StoreError):
        store.apply_notification(parsed, checkpoint=boom)
    assert store.payment("X1").status is PaymentState.PENDING
    assert count(store, ledger_entries) == count(store, ledger_lines) == 0
    assert count(store, ledger_accounts) == 0
    assert store.apply_notification(parsed).outcome is InboxOutcome.APPLIED
    assert balances(store) == {("toy-a", "clearing"): 1000, ("alice", "pending"): 1000}


def test_a_posting_failure_leaves_the_payment_pending(store: Store, hub, bank) -> None:
    """A payment is never succeeded without its entries: a poster that fails fails it."""
    pay(hub, "X2", 1000)
    headers, body = bank.buyer_pays("toy-a", "X2")

    def failing(conn: object, movement: object) -> None:
        raise LedgerError("ledger down", code=ErrorCode.LEDGER_INSUFFICIENT_FUNDS)

    store._poster = failing
    outcome = hub.handle_notification("toy-a", headers, body)
    assert not outcome.ack.ok
    assert store.payment("X2").status is PaymentState.PENDING
    assert store.inbox("X2") == []


def test_an_account_that_may_not_go_negative_refuses_and_nothing_is_written(store) -> None:
    draft = EntryDraft(
        "manual-1",
        EntryCause.ADJUSTMENT,
        "test",
        [
            debit(Account("alice", K.AVAILABLE), Money(1)),
            credit(Account(PLATFORM, K.REVENUE), Money(1)),
        ],
    )
    with pytest.raises(LedgerError) as caught:
        store.ledger.post(draft)
    assert caught.value.code is ErrorCode.LEDGER_INSUFFICIENT_FUNDS
    assert count(store, ledger_entries) == count(store, ledger_accounts) == 0


def test_idempotency_keys(store) -> None:
    lines = [
        debit(Account("x", K.CLEARING), Money(5)),
        credit(Account("alice", K.AVAILABLE), Money(5)),
    ]
    first = store.ledger.post(EntryDraft("k1", EntryCause.ADJUSTMENT, "t", lines))
    again = store.ledger.post(EntryDraft("k1", EntryCause.ADJUSTMENT, "t", lines))
    assert (first.created, again.created) == (True, False)
    assert again.entry_id == first.entry_id
    other = [
        debit(Account("x", K.CLEARING), Money(6)),
        credit(Account("alice", K.AVAILABLE), Money(6)),
    ]
    with pytest.raises(LedgerError) as caught:
        store.ledger.post(EntryDraft("k1", EntryCause.ADJUSTMENT, "t", other))
    assert caught.value.code is ErrorCode.LEDGER_IDEMPOTENCY_CONFLICT
    assert store.ledger.balance(Account("alice", K.AVAILABLE)) == Money(5)
    check_invariants(store)


def test_a_store_without_a_chain_head_row_starts_the_chain_and_posts(store) -> None:
    # The migration writes the head; an emptied store (a test, a restore of
    # the data without it) has none: the first posting writes the genesis head
    # and links to it, on PostgreSQL too (where the posting is one statement
    # that finds no head and writes nothing, then the usual path runs).
    with store.engine.begin() as conn:
        conn.execute(chain_head.delete())
    lines = [
        debit(Account("x", K.CLEARING), Money(5)),
        credit(Account("alice", K.AVAILABLE), Money(5)),
    ]
    first = store.ledger.post(EntryDraft("h1", EntryCause.ADJUSTMENT, "t", lines))
    second = store.ledger.post(EntryDraft("h2", EntryCause.ADJUSTMENT, "t", lines))
    assert (first.created, second.created) == (True, True)
    assert store.ledger.balance(Account("alice", K.AVAILABLE)) == Money(10)
    report = store.verify_chain()
    assert report.ok, report.broken
    assert (report.rows, report.head.seq) == (2, 2)
    check_invariants(store)


def test_an_unbalanced_entry_is_refused_before_any_sql() -> None:
    with pytest.raises(LedgerError) as caught:
        EntryDraft(
            "k",
            EntryCause.ADJUSTMENT,
            "t",
            [
                debit(Account("x", K.CLEARING), Money(5)),
                credit(Account("a", K.AVAILABLE), Money(4)),
            ],
        )
    assert caught.value.code is ErrorCode.LEDGER_UNBALANCED
    with pytest.raises(LedgerError):  # per currency, not in total
        EntryDraft(
            "k",
            EntryCause.ADJUSTMENT,
            "t",
            [
                debit(Account("x", K.CLEARING, "CNY"), Money(5, "CNY")),
                credit(Account("a", K.AVAILABLE, "USD"), Money(5, "USD")),
            ],
        )


def test_balance_as_of_a_time(hub, store: Store, bank) -> None:
    paid(hub, bank, "T1", 300, seller="eve")
    between = store.now()
    paid(hub, bank, "T2", 200, seller="eve")
    pending = Account("eve", K.PENDING)
    assert store.ledger.balance(pending) == Money(500)
    assert store.ledger.balance(pending, as_of=between) == Money(300)
    assert store.ledger.balance(pending, as_of=between - timedelta(days=1)) == Money(0)


def test_entries_and_lines_are_immutable_on_postgresql(database, hub, store, bank) -> None:
    if database.backend != "postgres":
        pytest.skip("the immutability trigger is PostgreSQL's; elsewhere payhub never issues them")
    paid(hub, bank, "I1", 100)
    for statement in (
        ledger_entries.update().values(reference="forged"),
        ledger_entries.delete(),
        ledger_lines.update().values(amount_minor=1),
        ledger_lines.delete(),
    ):
        with (
            pytest.raises(sa.exc.DBAPIError, match="immutable"),
            store.engine.begin() as conn,
        ):
            conn.execute(statement)
    check_invariants(store)


def _hot_worker(url: str, prefix: str, n: int, barrier: object) -> None:
    from storekit import ToyBank, ToyChannel

    from payhub import PayHub
    from payhub.store import Store

    bank = ToyBank()
    hub = PayHub(channels=[ToyChannel("toy-a")], store=Store(url), http_client=bank.client())
    try:
        barrier.wait(timeout=120)  # type: ignore[attr-defined]
        for i in range(n):
            paid(hub, bank, f"{prefix}-{i}", 100 + i, seller="hot")
    finally:
        hub.close()
        hub.store.close()


def test_eight_processes_posting_to_one_hot_seller_lose_no_update(store: Store, store_url) -> None:
    n = 10
    barrier = SPAWN.Barrier(8)
    workers = [
        SPAWN.Process(target=_hot_worker, args=(store_url, f"H{w}", n, barrier)) for w in range(8)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    expected = 8 * sum(100 + i for i in range(n))
    assert store.ledger.balance(Account("hot", K.PENDING)) == Money(expected)
    assert count(store, ledger_entries) == 8 * n
    check_invariants(store)
    hot = next(b for b in store.ledger.balances("hot"))
    assert hot.version == 8 * n
