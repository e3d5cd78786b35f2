"""Reports: CSV throughput against a raw csv.writer, XLSX peak memory, encryption cost.

    python benchmarks/bench_reports.py [--rows 1000000] [--backend sqlite|postgres|both]

Seeds N payments (one day each second apart) into a fresh SQLite file and/or a
fresh PostgreSQL schema (``PAYHUB_TEST_POSTGRES_URL``), then, in the same run:

* CSV throughput: ``Reports.run("payments", format="csv")`` (count, formatting
  of amounts/times/ids, escaping, BOM, temp file + fsync + rename, SHA-256)
  against a raw ``csv.writer`` writing the same SELECT from the same
  server-side cursor, alternating, median of the per-round ratios
  baseline ÷ candidate (target ≥ 0.7);
* XLSX peak memory: one export in a fresh process, its peak RSS (target ≤ 150 MB);
* encryption cost: encrypted ÷ plain time, for XLSX (OOXML agile) and CSV (AES-256 zip).

(The ledger's balance detail is not on this branch yet: payments stand in for it.)
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
from payhub.store import Store
from payhub.store._schema import payments

START = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "bench-password"


def seed(store: Store, rows: int) -> None:
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
    return ReportFilters(start=START, end=START + timedelta(seconds=rows + 1))


def raw_csv(store: Store, rows: int, target: Path) -> float:
    began = time.perf_counter()
    with (
        store.engine.connect() as conn,
        conn.begin(),
        target.open("w", encoding="utf-8", newline="") as handle,
    ):
        csv.writer(handle).writerows(stream_select(conn, _payments_select(filters(rows)), 2_000))
    return time.perf_counter() - began


def payhub_run(store: Store, rows: int, out: Path, fmt: str, password: str | None) -> float:
    reports = Reports(store, output_dir=out, max_range=timedelta(days=400))
    began = time.perf_counter()
    run = reports.run("payments", filters(rows), format=fmt, password=password, parts=True)
    elapsed = time.perf_counter() - began
    assert run.rows == rows, run
    Path(run.path).unlink()
    return elapsed


def _xlsx_child(url: str, rows: int, out: str) -> None:
    with Store(url) as store:
        payhub_run(store, rows, Path(out), "xlsx", None)


def xlsx_peak_mb(url: str, rows: int, out: Path) -> float:
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_xlsx_child, args=(url, rows, str(out)))
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
        lines.append(f"{name}: seeded {rows:,} payments in {time.perf_counter() - began:.1f} s")
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
    args = parser.parse_args()
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
