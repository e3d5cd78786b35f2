"""Set-based posting (``write_entries``) and settlement chunks, on every database:
the same entries, balances, versions and audit-chain links as posting one by one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from ledgerkit import balances, check_invariants, count

from payhub import ErrorCode, LedgerError, Money
from payhub.errors import StoreError
from payhub.ledger import Account, AccountKind, EntryCause, EntryDraft, credit, debit
from payhub.ledger._writer import write_entries
from payhub.store import Store
from payhub.store._schema import (
    ledger_accounts,
    ledger_batch_members,
    ledger_batches,
    ledger_entries,
    ledger_lines,
)

K = AccountKind
NOW = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)


def _move(key: str, party: str, frm: AccountKind, to: AccountKind, minor: int) -> EntryDraft:
    amount = Money(minor)
    return EntryDraft(
        key,
        EntryCause.ADJUSTMENT,
        key,
        [debit(Account(party, frm), amount), credit(Account(party, to), amount)],
        party=party,
    )


def _pay(key: str, party: str, minor: int, due: datetime) -> EntryDraft:
    """Pending money for ``party`` from the suspense account, due at ``due``."""
    amount = Money(minor)
    return EntryDraft(
        key,
        EntryCause.PAYMENT,
        key,
        [debit(Account("bank", K.SUSPENSE), amount), credit(Account(party, K.PENDING), amount)],
        party=party,
        available_on=due,
    )


def _versions(store: Store) -> dict[tuple[str, str], int]:
    a = ledger_accounts
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(a.c.party, a.c.kind, a.c.version)).all()
    return {(p, k): int(v) for p, k, v in rows}


def test_many_entries_post_as_one_by_one_would(store: Store) -> None:
    drafts = [
        _move("m1", "ann", K.SUSPENSE, K.AVAILABLE, 500),
        _move("m2", "ann", K.AVAILABLE, K.FROZEN, 200),
        _move("m3", "bob", K.SUSPENSE, K.AVAILABLE, 70),
        _move("m4", "ann", K.FROZEN, K.AVAILABLE, 50),
    ]
    posted = store.run(lambda conn: write_entries(conn, drafts, NOW))
    assert [p.created for p in posted] == [True] * 4
    assert len({p.entry_id for p in posted}) == 4
    # each entry's balances are those right after it, in order
    assert posted[0].balances[Account("ann", K.AVAILABLE)] == 500
    assert posted[1].balances[Account("ann", K.AVAILABLE)] == 300
    assert posted[1].balances[Account("ann", K.FROZEN)] == 200
    assert posted[3].balances == {Account("ann", K.FROZEN): 150, Account("ann", K.AVAILABLE): 350}
    got = balances(store)
    assert got[("ann", "available")] == 350
    assert got[("ann", "frozen")] == 150
    assert got[("bob", "available")] == 70
    # an account's version counts its lines, as one posting at a time leaves it
    assert _versions(store)[("ann", "available")] == 3
    check_invariants(store)
    report = store.verify_chain()
    assert report.ok, report.broken
    assert report.rows == 4
    # the same drafts again: replays, nothing written
    again = store.run(lambda conn: write_entries(conn, drafts, NOW + timedelta(hours=1)))
    assert [p.created for p in again] == [False] * 4
    assert [p.entry_id for p in again] == [p.entry_id for p in posted]
    assert count(store, ledger_entries) == 4
    assert count(store, ledger_lines) == 8


def test_a_negative_between_entries_is_refused_and_nothing_is_written(store: Store) -> None:
    store.run(
        lambda conn: write_entries(conn, [_move("n0", "cat", K.SUSPENSE, K.AVAILABLE, 100)], NOW)
    )
    before = (count(store, ledger_entries), count(store, ledger_lines), balances(store))
    head = store.verify_chain().head
    # available would be -50 after the first and +950 after the second: refused
    # as posting them one by one would refuse the first
    drafts = [
        _move("n1", "cat", K.AVAILABLE, K.FROZEN, 150),
        _move("n2", "cat", K.SUSPENSE, K.AVAILABLE, 1000),
    ]
    with pytest.raises(LedgerError) as caught:
        store.run(lambda conn: write_entries(conn, drafts, NOW))
    assert caught.value.code is ErrorCode.LEDGER_INSUFFICIENT_FUNDS
    assert (count(store, ledger_entries), count(store, ledger_lines), balances(store)) == before
    assert store.verify_chain().head == head
    check_invariants(store)


def test_a_replay_with_other_content_or_a_key_twice_is_refused(store: Store) -> None:
    store.run(
        lambda conn: write_entries(conn, [_move("r1", "dan", K.SUSPENSE, K.AVAILABLE, 10)], NOW)
    )
    other = [
        _move("r2", "dan", K.SUSPENSE, K.AVAILABLE, 5),
        _move("r1", "dan", K.SUSPENSE, K.AVAILABLE, 11),
    ]
    with pytest.raises(LedgerError) as caught:
        store.run(lambda conn: write_entries(conn, other, NOW))
    assert caught.value.code is ErrorCode.LEDGER_IDEMPOTENCY_CONFLICT
    twice = [_move("r3", "dan", K.SUSPENSE, K.AVAILABLE, 5)] * 2
    with pytest.raises(LedgerError) as caught:
        store.run(lambda conn: write_entries(conn, twice, NOW))
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert count(store, ledger_entries) == 1
    assert store.verify_chain().ok


def test_one_chunk_settles_several_cycles_of_a_seller_and_nets_to_zero(store: Store) -> None:
    """Three cycles of one seller and one of another in one chunk: a batch each,
    a zero batch (a refund netted it out) posts no entry; balances, versions and
    the chain are what they would be batch by batch; a re-run makes nothing."""
    day = datetime(2026, 3, 10, tzinfo=UTC)
    drafts = [
        _pay("p1", "eve", 300, day),
        _pay("p2", "eve", 200, day),
        _pay("p3", "eve", 400, day + timedelta(days=1)),
        _pay("p4", "eve", 100, day + timedelta(days=2)),
        _pay("p5", "fay", 900, day),
        _pay("p6", "eve", 999, day + timedelta(days=9)),  # not due
    ]
    refund = EntryDraft(
        "p4-refund",
        EntryCause.REFUND,
        "p4",
        [
            debit(Account("eve", K.PENDING), Money(100)),
            credit(Account("bank", K.SUSPENSE), Money(100)),
        ],
        party="eve",
        available_on=day + timedelta(days=2),
    )
    store.run(lambda conn: write_entries(conn, [*drafts, refund], NOW))
    report = store.ledger.settle(day + timedelta(days=3), per_transaction=100)
    assert report.batches == 4
    assert report.entries == 6
    assert report.amounts == {"CNY": Money(1800)}
    got = balances(store)
    assert got[("eve", "available")] == 900
    assert got[("eve", "pending")] == 999
    assert got[("fay", "available")] == 900
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ledger_batches.c.amount_minor, ledger_batches.c.entry_count,
                      ledger_batches.c.entry_id)
            .order_by(ledger_batches.c.party, ledger_batches.c.available_on)
        ).all()
        settlements = conn.execute(
            sa.select(sa.func.count())
            .select_from(ledger_entries)
            .where(ledger_entries.c.cause == EntryCause.SETTLEMENT.value)
        ).scalar_one()
    assert [(int(a), int(n)) for a, n, _ in rows] == [(500, 2), (400, 1), (0, 2), (900, 1)]
    assert rows[2][2] is None  # nothing moved, no entry
    assert all(e is not None for _, _, e in (rows[0], rows[1], rows[3]))
    assert settlements == 3
    assert count(store, ledger_batch_members) == 6
    # two settlement entries reached eve's available account (the zero batch has none)
    assert _versions(store)[("eve", "available")] == 2
    check_invariants(store)
    assert store.verify_chain().ok
    again = store.ledger.settle(day + timedelta(days=3))
    assert again.batches == 0
    assert count(store, ledger_batches) == 4


def test_a_late_entry_of_a_settled_cycle_lands_in_a_second_batch_alone(store: Store) -> None:
    """A cycle already batched gets a new due entry (posted late): the next run
    makes a second batch of that cycle holding only the new entry."""
    day = datetime(2026, 3, 10, tzinfo=UTC)
    first = [_pay("q1", "gus", 300, day), _pay("q2", "hal", 50, day)]
    store.run(lambda conn: write_entries(conn, first, NOW))
    assert store.ledger.settle(day + timedelta(days=1)).entries == 2
    late = [_pay("q3", "gus", 700, day), _pay("q4", "ivy", 20, day)]
    store.run(lambda conn: write_entries(conn, late, NOW))
    report = store.ledger.settle(day + timedelta(days=1))
    assert (report.batches, report.entries) == (2, 2)
    assert report.amounts == {"CNY": Money(720)}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ledger_entries.c.reference, ledger_batch_members.c.batch_id)
            .select_from(
                ledger_batch_members.join(
                    ledger_entries, ledger_entries.c.id == ledger_batch_members.c.entry_id
                )
            )
            .order_by(ledger_entries.c.reference)
        ).all()
    batch_of = {ref: int(b) for ref, b in rows}
    assert set(batch_of) == {"q1", "q2", "q3", "q4"}
    assert batch_of["q1"] != batch_of["q3"]
    assert balances(store)[("gus", "available")] == 1000
    check_invariants(store)
    assert store.verify_chain().ok


DAY = datetime(2026, 3, 10, tzinfo=UTC)


def _again(step: Callable[[], object]) -> None:
    """``step``, repeated after a StoreError (a lock wait past the store's
    lock_timeout on a loaded machine), as a channel re-delivers an unanswered
    notification and cron re-runs settlement: both are idempotent, so a repeat
    posts nothing twice, which is what the test then checks."""
    for attempt in range(10):
        try:
            step()
            return
        except StoreError:
            if attempt == 9:
                raise


def _poster(url: str, prefix: str, n: int, barrier: object) -> None:
    from payhub.ledger._writer import write_entry

    store = Store(url)
    try:
        barrier.wait(timeout=120)  # type: ignore[attr-defined]
        for i in range(n):
            draft = _pay(f"{prefix}-{i}", f"s{i % 3}", 100 + i, DAY)
            _again(lambda d=draft: store.run(lambda conn: write_entry(conn, d, datetime.now(UTC))))
    finally:
        store.close()


def _settler(url: str, n: int, barrier: object) -> None:
    store = Store(url)
    try:
        barrier.wait(timeout=120)  # type: ignore[attr-defined]
        for _ in range(n):
            _again(lambda: store.ledger.settle(DAY + timedelta(days=1), per_transaction=2))
    finally:
        store.close()


def test_settle_runs_racing_postings_to_their_cycles_batch_each_entry_once(
    store: Store, store_url: str
) -> None:
    """Three processes post due entries to three sellers' one cycle while two
    run settlement over and over: every entry lands in exactly one batch, each
    batch's amount and count are its members', no money is lost or made."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    n = 15
    barrier = spawn.Barrier(5)
    procs = [
        spawn.Process(target=_poster, args=(store_url, f"P{w}", n, barrier)) for w in range(3)
    ] + [spawn.Process(target=_settler, args=(store_url, 8, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    for p in procs:  # all joined first: a survivor would hold locks into the next test
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    store.ledger.settle(DAY + timedelta(days=1))
    e, m, b = ledger_entries, ledger_batch_members, ledger_batches
    with store.engine.connect() as conn:
        payments = conn.execute(
            sa.select(sa.func.count()).select_from(e).where(e.c.cause == "payment")
        ).scalar_one()
        per_batch = conn.execute(
            sa.select(b.c.id, b.c.amount_minor, b.c.entry_count, b.c.party)
        ).all()
        members = {
            int(i): (int(s), int(c), p)
            for i, s, c, p in conn.execute(
                sa.select(m.c.batch_id, sa.func.sum(e.c.pending_minor), sa.func.count(), e.c.party)
                .select_from(m.join(e, e.c.id == m.c.entry_id))
                .group_by(m.c.batch_id, e.c.party)
            )
        }
    assert payments == 3 * n
    assert count(store, ledger_batch_members) == payments
    for batch_id, amount, entry_count, party in per_batch:
        assert members[int(batch_id)] == (int(amount), int(entry_count), party)
    got = balances(store)
    for s in range(3):
        posted = sum(100 + i for i in range(n) if i % 3 == s) * 3
        assert got[(f"s{s}", "available")] == posted
        assert (f"s{s}", "pending") not in got
    check_invariants(store)
    assert store.verify_chain().ok
