"""Reports: CSV throughput against a raw csv.writer, XLSX peak memory, encryption cost.

    python benchmarks/bench_reports.py [--rows 1000000] [--backend sqlite|postgres|both]
                                       [--report balance-detail|payments]

Seeds N rows into a fresh SQLite file and/or a fresh PostgreSQL schema
(``PAYHUB_TEST_POSTGRES_URL``): for ``balance-detail`` (the default) N ledger
entries of one seller, each a debit of the channel's clearing account and a
credit of the seller's pending account, one second apart, and the report is
the seller's balance detail (N lines with their running balance); for
``payments`` N payments. Then, in the same run:

* CSV throughput: ``Reports.run(REPORT, format="csv", parts=True)`` (the
  opening balances and running balance, formatting of amounts/times/ids,
  escaping, BOM, temp file + fsync + rename, SHA-256)
  against a raw ``csv.writer`` writing the same SELECT from the same
  server-side cursor, alternating, median of the per-round ratios
  baseline ÷ candidate (target ≥ 0.7);
* XLSX peak memory: one export in a fresh process, its peak RSS (target ≤ 150 MB);
* encryption cost: encrypted ÷ plain time, for XLSX (OOXML agile) and CSV (AES-256 zip).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payhub.reports import ReportFilters, Reports
from payhub.reports._builtin import _payments_select, stream_select
from payhub.reports._ledger_reports import _balance_lines
from payhub.store import Store
from payhub.store._schema import ledger_accounts, ledger_entries, ledger_lines, payments

START = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "bench-password"
SELLER = "bench-seller"
REPORT = "balance-detail"
SKIP_XLSX = False


def seed_ledger(store: Store, rows: int) -> None:
    """N balanced entries straight into the ledger's tables (ids given: one INSERT a batch)."""
    batch = 20_000
    with store.engine.begin() as conn:
        conn.execute(
            ledger_accounts.insert(),
            [
                {
                    "id": 1,
                    "party": "alipay-main",
                    "kind": "clearing",
                    "currency": "CNY",
                    "balance_minor": 0,
                    "version": 0,
                    "created_at": START,
                },
                {
                    "id": 2,
                    "party": SELLER,
                    "kind": "pending",
                    "currency": "CNY",
                    "balance_minor": 0,
                    "version": 0,
                    "created_at": START,
                },
            ],
        )
        for first in range(0, rows, batch):
            span = range(first, min(rows, first + batch))
            conn.execute(
                ledger_entries.insert(),
                [
                    {
                        "id": n + 1,
                        "idempotency_key": f"payment:B{n:012d}",
                        "cause": "payment",
                        "reference": f"B{n:012d}",
                        "party": SELLER,
                        "currency": "CNY",
                        "pending_minor": 100 + n % 100_000,
                        "digest": "0" * 64,
                        "created_at": START + timedelta(seconds=n),
                    }
                    for n in span
                ],
            )
            conn.execute(
                ledger_lines.insert(),
                [
                    {
                        "id": 2 * n + 1 + side,
                        "entry_id": n + 1,
                        "account_id": 1 + side,
                        "amount_minor": (100 + n % 100_000) * (1 - 2 * side),
                        "currency": "CNY",
                        "created_at": START + timedelta(seconds=n),
                    }
                    for n in span
                    for side in (0, 1)
                ],
            )


def seed(store: Store, rows: int) -> None:
    if REPORT == "balance-detail":
        seed_ledger(store, rows)
        return
    batch = 20_000
    with store.engine.begin() as conn:
        for first in range(0, rows, batch):
            conn.execute(
                payments.insert(),
                [
                    {
                        "out_trade_no": f"B{n:012d}",
                        "amount_minor": 100 + n % 100_000,
                        "refunded_minor": 0,
                        "currency": "CNY",
                        "subject": "=月卡" if n % 97 == 0 else "游戏点卡 100 元",
                        "method": "qr",
                        "status": "paid",
                        "channel": "alipay-main",
                        "channel_trade_id": f"2026010122001{n:012d}",
                        "paid_at": START + timedelta(seconds=n, milliseconds=300),
                        "created_at": START + timedelta(seconds=n),
                        "updated_at": START + timedelta(seconds=n),
                    }
                    for n in range(first, min(rows, first + batch))
                ],
            )


def filters(rows: int) -> ReportFilters:
    seller = SELLER if REPORT == "balance-detail" else None
    return ReportFilters(start=START, end=START + timedelta(seconds=rows + 1), seller=seller)


def raw_select(rows: int) -> sa.Select:  # type: ignore[type-arg]
    if REPORT == "balance-detail":
        return _balance_lines(filters(rows))
    return _payments_select(filters(rows))


def raw_csv(store: Store, rows: int, target: Path) -> float:
    began = time.perf_counter()
    with (
        store.engine.connect() as conn,
        conn.begin(),
        target.open("w", encoding="utf-8", newline="") as handle,
    ):
        csv.writer(handle).writerows(stream_select(conn, raw_select(rows), 2_000))
    return time.perf_counter() - began


def payhub_run(store: Store, rows: int, out: Path, fmt: str, password: str | None) -> float:
    reports = Reports(store, output_dir=out, max_range=timedelta(days=400))
    began = time.perf_counter()
    run = reports.run(REPORT, filters(rows), format=fmt, password=password, parts=True)
    elapsed = time.perf_counter() - began
    assert run.rows == rows, run
    Path(run.path).unlink()
    return elapsed


def _xlsx_child(url: str, rows: int, out: str, report: str) -> None:
    global REPORT  # noqa: PLW0603 - the spawned child's own module
    REPORT = report
    with Store(url) as store:
        payhub_run(store, rows, Path(out), "xlsx", None)


def xlsx_peak_mb(url: str, rows: int, out: Path) -> float:
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_xlsx_child, args=(url, rows, str(out), REPORT))
    child.start()
    child.join()
    assert child.exitcode == 0
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def bench(name: str, url: str, rows: int, rounds: int) -> list[str]:
    lines = []
    out = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    with Store(url) as store:
        store.upgrade()
        began = time.perf_counter()
        seed(store, rows)
        lines.append(
            f"{name}: seeded {rows:,} {REPORT} rows in {time.perf_counter() - began:.1f} s"
        )
        ratios, raw_times, our_times = [], [], []
        for _ in range(rounds):
            raw = raw_csv(store, rows, out / "raw.csv")
            ours = payhub_run(store, rows, out, "csv", None)
            raw_times.append(raw)
            our_times.append(ours)
            ratios.append(raw / ours)
        lines.append(
            f"{name}: CSV throughput payhub ÷ raw csv.writer = {statistics.median(ratios):.2f} "
            f"(target ≥ 0.70; rounds {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"raw {statistics.median(raw_times):.1f} s, "
            f"payhub {statistics.median(our_times):.1f} s "
            f"= {rows / statistics.median(our_times):,.0f} rows/s)"
        )
        if SKIP_XLSX:
            shutil.rmtree(out, ignore_errors=True)
            return lines
        plain_xlsx = payhub_run(store, rows, out, "xlsx", None)
        sealed_xlsx = payhub_run(store, rows, out, "xlsx", PASSWORD)
        plain_csv = statistics.median(our_times)
        sealed_csv = payhub_run(store, rows, out, "csv", PASSWORD)
        lines.append(
            f"{name}: encryption cost XLSX {sealed_xlsx / plain_xlsx:.2f}× "
            f"({plain_xlsx:.1f} s → {sealed_xlsx:.1f} s), CSV→AES-256 zip "
            f"{sealed_csv / plain_csv:.2f}× ({plain_csv:.1f} s → {sealed_csv:.1f} s)"
        )
    peak = xlsx_peak_mb(url, rows, out)
    lines.append(
        f"{name}: XLSX export peak RSS of the exporting process {peak:.0f} MB (target ≤ 150)"
    )
    shutil.rmtree(out, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--report", choices=["balance-detail", "payments"], default="balance-detail"
    )
    parser.add_argument("--skip-xlsx", action="store_true", help="CSV throughput only.")
    args = parser.parse_args()
    global REPORT, SKIP_XLSX
    REPORT, SKIP_XLSX = args.report, args.skip_xlsx
    lines: list[str] = []
    if args.backend in ("sqlite", "both"):
        folder = Path(tempfile.mkdtemp(prefix="bench-reports-db-"))
        lines += bench("SQLite", f"sqlite:///{folder / 'bench.db'}", args.rows, args.rounds)
        shutil.rmtree(folder, ignore_errors=True)
    if args.backend in ("postgres", "both"):
        server = os.environ.get("PAYHUB_TEST_POSTGRES_URL")
        if not server:
            lines.append("PostgreSQL: skipped, PAYHUB_TEST_POSTGRES_URL is not set")
        else:
            schema = f"bench_reports_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(server)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            try:
                url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
                lines += bench(
                    "PostgreSQL", url.render_as_string(hide_password=False), args.rows, args.rounds
                )
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                admin.dispose()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
