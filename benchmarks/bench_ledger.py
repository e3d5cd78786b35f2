"""What the ledger costs, against the same work without it or in raw SQL.

Run: ``.venv/bin/python benchmarks/bench_ledger.py [--postings N] [--entries N --sellers N]``
(from the repository root; PostgreSQL parts need ``PAYHUB_TEST_POSTGRES_URL``).

a. **Notification transaction with the ledger ÷ without it**, PostgreSQL, same
   run (target <= 1.3): ``store.apply_notification`` of a first delivery (inbox,
   conditional update, audit, event; plus the payment's entry), on two stores
   over one schema, one built with ``ledger=False``. Interleaved batches,
   median of per-round ratios (``_harness.compare``).
b. **Postings per second, 4 worker processes**, PostgreSQL, cold accounts
   (every posting a new seller) and hot (one seller), ÷ a raw psycopg baseline
   making the same inserts and balance upserts in one transaction per posting
   (target >= 0.5). Absolute figures are printed (pgledger's README reports
   >10k transfers/s cold, ~7.5k hot on a laptop; different hardware and work).
c. **settle run** over N due entries for S sellers (default 1,000,000 and
   10,000), SQLite and PostgreSQL: peak RSS of a process that only runs it
   (target <= 200 MB) and time ÷ a set-based raw SQL baseline doing the batches,
   members, entries, lines and balance updates in a handful of statements
   (target <= 2). The due entries are generated set-based straight into the
   tables (``pending_minor`` and matching pending balances; settle reads
   nothing else).

``--repeat N`` runs (c) N times a side, the sides alternating who goes first,
and reports the medians (the machine's load drifts between runs).

Exits 1 if a target is missed.

Last figures (2 shared cores, load average 12-16 from other work; h-settle,
2026-12-07): ``bench_ledger.py --only settle --repeat 3`` (1,000,000 entries,
10,000 sellers): SQLite payhub 28.3 s ÷ raw 16.8 s = 1.68, PostgreSQL 21.1 s ÷
25.8 s = 0.82, peak RSS 94 / 96 MB (main before: 3.1 and 4.7; one settlement
entry per batch was already the design, the chunk's entries now go in one
write with the chain head locked once, and PostgreSQL plans the members with
index probes). ``--only transaction``: 1.243 (rounds q1-q3 0.63-1.44).
``--only postings`` (500 a worker, 3 rounds): cold payhub 88/s ÷ raw 124/s,
hot 87/s ÷ 129/s: 0.71 and 0.68 of raw (every posting queues on the chain head
and a commit's flush; pgledger's >10k/s has neither, on other hardware).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Ratio, compare, report
from _rawchain import raw_link

from payhub import Money, Notification, NotificationKind, PaymentRequest, PaymentStatus
from payhub.ledger import LedgerConfig
from payhub.ledger._rules import payment_entry
from payhub.ledger._writer import write_entry
from payhub.store import Store
from payhub.store._types import UTCDateTime

SPAWN = multiprocessing.get_context("spawn")
WORKERS = 4


# -- PostgreSQL schema per run ----------------------------------------------------


class PgSchema:
    def __init__(self, server: str, tag: str) -> None:
        self.name = f"payhub_bl_{tag}_{os.getpid()}"
        self.admin = sa.create_engine(server)
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')
        self.url = (
            make_url(server)
            .update_query_dict({"options": f"-csearch_path={self.name}"})
            .render_as_string(hide_password=False)
        )

    def dsn(self) -> str:
        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        self.admin.dispose()


# -- (a) the notification transaction ------------------------------------------------


def _notification(out_trade_no: str) -> Notification:
    return Notification(
        channel="alipay",
        kind=NotificationKind.PAYMENT,
        out_trade_no=out_trade_no,
        channel_trade_id=f"T{out_trade_no}",
        amount=Money(1000),
        status=PaymentStatus.PAID,
        event_key=f"n-{out_trade_no}",
        occurred_at=datetime.now(UTC),
        raw={},
        raw_body=b"trade_status=TRADE_SUCCESS",
    )


def bench_transaction(server: str, batch: int, rounds: int) -> Ratio:
    schema = PgSchema(server, "tx")
    try:
        with Store(schema.url) as setup:
            setup.upgrade()
        with_ledger = Store(schema.url)
        without = Store(schema.url, ledger=False)
        total = (batch * rounds + 3) * 2
        numbers = iter(range(total))
        for n in range(total):
            with_ledger.begin_payment(
                PaymentRequest(
                    out_trade_no=f"B{n}",
                    amount=Money(1000),
                    subject="card",
                    method="qr",
                    seller=f"seller{n % 50}",
                )
            )
        queue = [_notification(f"B{n}") for n in range(total)]

        def candidate() -> None:
            with_ledger.apply_notification(queue[next(numbers)])

        def baseline() -> None:
            without.apply_notification(queue[next(numbers)])

        result = compare(
            "PostgreSQL notification transaction, with the ledger / without",
            candidate,
            baseline,
            target=1.3,
            batch=batch,
            rounds=rounds,
        )
        with_ledger.close()
        without.close()
        return result
    finally:
        schema.drop()


# -- (b) postings per second ----------------------------------------------------------

_RAW_ENTRY = (
    "INSERT INTO payhub_ledger_entries (idempotency_key, cause, reference, party, plan,"
    " available_on, currency, pending_minor, digest, created_at, chain_seq, chain_hash)"
    " VALUES (%s, 'payment', %s, %s, 'D+1', %s, 'CNY', %s, %s, %s, %s, %s)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_RAW_ACCOUNTS = (
    "INSERT INTO payhub_ledger_accounts (party, kind, currency, balance_minor, version,"
    " created_at) VALUES (%s, 'clearing', 'CNY', %s, 1, %s), (%s, 'pending', 'CNY', %s, 1, %s)"
    " ON CONFLICT (party, kind, currency) DO UPDATE SET"
    " balance_minor = payhub_ledger_accounts.balance_minor + excluded.balance_minor,"
    " version = payhub_ledger_accounts.version + 1 RETURNING id, balance_minor"
)
_RAW_LINES = (
    "INSERT INTO payhub_ledger_lines (entry_id, account_id, amount_minor, currency, created_at)"
    " VALUES (%s, %s, %s, 'CNY', %s), (%s, %s, %s, 'CNY', %s)"
)


def _payhub_poster(url: str, tag: str, n: int, hot: bool, barrier: Any, out: Any) -> None:
    store = Store(url)
    config = LedgerConfig()
    drafts = [
        payment_entry(
            config,
            out_trade_no=f"{tag}-{i}",
            seller="hot" if hot else f"{tag}-s{i}",
            channel="alipay",
            amount=Money(100 + i),
            paid_at=datetime.now(UTC),
        )
        for i in range(n)
    ]
    barrier.wait(timeout=120)
    start = time.perf_counter()
    for draft in drafts:
        now = datetime.now(UTC)
        store.run(lambda conn, draft=draft, now=now: write_entry(conn, draft, now))
    out.put(time.perf_counter() - start)
    store.close()


def _raw_poster(dsn: str, tag: str, n: int, hot: bool, barrier: Any, out: Any) -> None:
    conn = psycopg.connect(dsn)
    barrier.wait(timeout=120)
    start = time.perf_counter()
    for i in range(n):
        now = datetime.now(UTC).replace(tzinfo=None)
        seller = "hot" if hot else f"{tag}-s{i}"
        amount = 100 + i
        with conn.transaction():
            cur = conn.cursor()
            aware = now.replace(tzinfo=UTC)
            link = raw_link(cur, "%s", "payhub_ledger_entries", (
                f"raw:{tag}-{i}", "payment", f"{tag}-{i}", seller, "D+1", aware, "CNY", amount,
                "0" * 64, aware,
            ))
            cur.execute(
                _RAW_ENTRY,
                (f"raw:{tag}-{i}", f"{tag}-{i}", seller, now, amount, "0" * 64, now, *link),
            )
            entry_id = cur.fetchone()[0]
            cur.execute(_RAW_ACCOUNTS, ("alipay", amount, now, seller, amount, now))
            (clearing, _), (pending, _) = cur.fetchall()
            cur.execute(
                _RAW_LINES, (entry_id, clearing, amount, now, entry_id, pending, -amount, now)
            )
    out.put(time.perf_counter() - start)
    conn.close()


def _posting_round(target: Any, arg: str, tag: str, n: int, hot: bool) -> float:
    barrier, out = SPAWN.Barrier(WORKERS), SPAWN.Queue()
    procs = [
        SPAWN.Process(target=target, args=(arg, f"{tag}w{w}", n, hot, barrier, out))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    times = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    return WORKERS * n / max(times)


def bench_postings(server: str, n: int, rounds: int) -> list[Ratio]:
    schema = PgSchema(server, "post")
    results = []
    try:
        with Store(schema.url) as setup:
            setup.upgrade()
        for hot in (False, True):
            label = "hot (one seller)" if hot else "cold (a seller per posting)"
            rates: dict[str, list[float]] = {"payhub": [], "raw": []}
            for r in range(rounds):
                tag = f"{'h' if hot else 'c'}{r}"
                rates["payhub"].append(
                    _posting_round(_payhub_poster, schema.url, f"p{tag}", n, hot)
                )
                rates["raw"].append(_posting_round(_raw_poster, schema.dsn(), f"r{tag}", n, hot))
            mine, raw = statistics.median(rates["payhub"]), statistics.median(rates["raw"])
            print(
                f"PostgreSQL postings, {WORKERS} workers, {label}: payhub {mine:.0f}/s, "
                f"raw SQL {raw:.0f}/s (pgledger reports >10k/s cold, ~7.5k/s hot)"
            )
            results.append(
                Ratio(
                    f"PostgreSQL postings {label}, wall time per posting",
                    candidate_us=1e6 / mine,
                    baseline_us=1e6 / raw,
                    target=2.0,  # throughput >= 0.5 of raw
                )
            )
    finally:
        schema.drop()
    return results


# -- (c) settle run ---------------------------------------------------------------------


def _generate(url: str, entries: int, sellers: int, due: datetime) -> None:
    """``entries`` due pending entries spread over ``sellers``, and their pending balances."""
    engine = sa.create_engine(url)
    # bound through the store's column type, so the stored text is the store's own
    typed = sa.bindparam("due", type_=UTCDateTime)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            series = "SELECT g AS n FROM generate_series(0, :count - 1) AS g"
        else:
            series = (
                "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s"
                " WHERE n + 1 < :count) SELECT n FROM s"
            )
        conn.execute(
            sa.text(
                "INSERT INTO payhub_ledger_entries (idempotency_key, cause, reference, party,"
                " plan, available_on, currency, pending_minor, digest, created_at, chain_seq,"
                " chain_hash)"
                f" SELECT 'payment:G' || n, 'payment', 'G' || n, 's' || (n % :sellers), 'D+1',"
                f" :due, 'CNY', 100 + (n % 7), 'x', :due, -(n + 1), 'x' FROM ({series}) AS q"
            ).bindparams(typed),
            {"count": entries, "sellers": sellers, "due": due},
        )
        conn.execute(
            sa.text(
                "INSERT INTO payhub_ledger_accounts (party, kind, currency, balance_minor,"
                " version, created_at) SELECT party, 'pending', 'CNY', SUM(pending_minor),"
                " COUNT(*), :due FROM payhub_ledger_entries GROUP BY party"
            ).bindparams(typed),
            {"due": due},
        )
    engine.dispose()


def _settle_worker(url: str, at: datetime, out: Any) -> None:
    logging.disable(logging.WARNING)
    start = time.perf_counter()
    with Store(url) as store:
        report_ = store.ledger.settle(at)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put((elapsed, peak_kib / 1024, report_.batches, report_.entries))


_RAW_SETTLE = [
    # one batch per party and cycle
    "INSERT INTO payhub_ledger_batches (key, party, currency, available_on, amount_minor,"
    " entry_count, entry_id, created_at) SELECT 'raw:' || party || ':' || MIN(id), party,"
    " currency, available_on, SUM(pending_minor), COUNT(*), NULL, :now"
    " FROM payhub_ledger_entries e WHERE available_on <= :at AND pending_minor IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM payhub_ledger_batch_members m WHERE m.entry_id = e.id)"
    " GROUP BY party, currency, available_on",
    "INSERT INTO payhub_ledger_batch_members (entry_id, batch_id) SELECT e.id, b.id"
    " FROM payhub_ledger_entries e JOIN payhub_ledger_batches b ON b.party = e.party"
    " AND b.currency = e.currency AND b.available_on = e.available_on"
    " WHERE b.created_at = :now AND e.pending_minor IS NOT NULL",
    "INSERT INTO payhub_ledger_entries (idempotency_key, cause, reference, party, plan,"
    " available_on, currency, pending_minor, digest, created_at, chain_seq, chain_hash)"
    " SELECT 'settlement:' || key, 'settlement', key, party, NULL, available_on, NULL, NULL,"
    " 'x', :now, -(2000000000 + id), 'x' FROM payhub_ledger_batches WHERE created_at = :now",
    "INSERT INTO payhub_ledger_accounts (party, kind, currency, balance_minor, version,"
    " created_at) SELECT party, 'available', currency, 0, 0, :now FROM payhub_ledger_batches"
    " WHERE created_at = :now",
    "INSERT INTO payhub_ledger_lines (entry_id, account_id, amount_minor, currency, created_at)"
    " SELECT e.id, a.id, b.amount_minor * k.sign, b.currency, :now"
    " FROM payhub_ledger_batches b JOIN payhub_ledger_entries e ON e.reference = b.key"
    " AND e.cause = 'settlement' CROSS JOIN (SELECT 'pending' AS kind, 1 AS sign UNION ALL"
    " SELECT 'available', -1) k JOIN payhub_ledger_accounts a ON a.party = b.party"
    " AND a.kind = k.kind AND a.currency = b.currency WHERE b.created_at = :now",
    "UPDATE payhub_ledger_accounts SET balance_minor = balance_minor + (SELECT"
    " CASE WHEN payhub_ledger_accounts.kind = 'pending' THEN -SUM(b.amount_minor)"
    " ELSE SUM(b.amount_minor) END FROM payhub_ledger_batches b WHERE b.created_at = :now"
    " AND b.party = payhub_ledger_accounts.party AND b.currency = payhub_ledger_accounts.currency),"
    " version = version + 1 WHERE kind IN ('pending', 'available') AND party IN"
    " (SELECT party FROM payhub_ledger_batches WHERE created_at = :now)",
]


def _raw_settle(url: str, at: datetime) -> float:
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    start = time.perf_counter()
    with engine.begin() as conn:
        for statement in _RAW_SETTLE:
            typed = [
                sa.bindparam(name, type_=UTCDateTime)
                for name in ("at", "now")
                if f":{name}" in statement
            ]
            conn.execute(sa.text(statement).bindparams(*typed), {"at": at, "now": now})
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def bench_settle(
    backend: str, server: str | None, entries: int, sellers: int, repeat: int = 1
) -> list[Ratio]:
    """Median of ``repeat`` runs a side (the sides alternate who goes first:
    the machine's load drifts), the highest peak RSS."""
    runs: dict[str, list[float]] = {"payhub": [], "raw": []}
    peaks = []
    for r in range(repeat):
        sides = ("payhub", "raw") if r % 2 == 0 else ("raw", "payhub")
        times, peak = _settle_round(backend, server, entries, sellers, sides)
        for side in sides:
            runs[side].append(times[side])
        peaks.append(peak)
        print(
            f"  round {r + 1}: payhub {times['payhub']:.1f} s, raw {times['raw']:.1f} s",
            flush=True,
        )
    times = {side: statistics.median(values) for side, values in runs.items()}
    peak = max(peaks)
    print(
        f"settle run, {backend}, {entries} entries / {sellers} sellers, median of {repeat}: "
        f"payhub {times['payhub']:.1f} s (peak RSS {peak:.0f} MB), set-based raw SQL "
        f"{times['raw']:.1f} s"
    )
    return [
        Ratio(f"settle run {backend}, time", times["payhub"] * 1e6, times["raw"] * 1e6, 2.0),
        Ratio(f"settle run {backend}, peak RSS MB / 200", peak, 200.0, 1.0),
    ]


def _settle_round(
    backend: str, server: str | None, entries: int, sellers: int, sides: tuple[str, str]
) -> tuple[dict[str, float], float]:
    due = datetime(2026, 3, 1, tzinfo=UTC)
    at = due + timedelta(days=1)
    times: dict[str, float] = {}
    peak = 0.0
    for side in sides:
        schema = None
        tmp = None
        if backend == "sqlite":
            tmp = tempfile.mkdtemp()
            url = f"sqlite:///{tmp}/settle.db"
        else:
            assert server is not None
            schema = PgSchema(server, f"st{side}")
            url = schema.url
        try:
            with Store(url) as setup:
                setup.upgrade()
            _generate(url, entries, sellers, due)
            if side == "payhub":
                out = SPAWN.Queue()
                proc = SPAWN.Process(target=_settle_worker, args=(url, at, out))
                proc.start()
                elapsed, peak, batches, settled = out.get(timeout=7200)
                proc.join()
                assert (batches, settled) == (sellers, entries), (batches, settled)
                times[side] = elapsed
            else:
                times[side] = _raw_settle(url, at)
        finally:
            if schema is not None:
                schema.drop()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return times, peak


def main() -> None:
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=500, help="per worker and round")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--sellers", type=int, default=10_000)
    parser.add_argument("--only", choices=["transaction", "postings", "settle"], default=None)
    parser.add_argument("--repeat", type=int, default=1, help="settle runs a side (median)")
    args = parser.parse_args()
    server = os.environ.get("PAYHUB_TEST_POSTGRES_URL")
    results: list[Ratio] = []
    if args.only in (None, "settle"):
        results += bench_settle("sqlite", None, args.entries, args.sellers, args.repeat)
    if server is None:
        print("PostgreSQL parts skipped: PAYHUB_TEST_POSTGRES_URL is not set")
    else:
        if args.only in (None, "transaction"):
            results.append(bench_transaction(server, batch=20, rounds=20))
        if args.only in (None, "postings"):
            results += bench_postings(server, args.postings, rounds=3)
        if args.only in (None, "settle"):
            results += bench_settle("postgres", server, args.entries, args.sellers, args.repeat)
    sys.exit(report(results))


if __name__ == "__main__":
    main()
