"""Reconciliation of a big day: N bill rows against N stored payments.

Targets (issue 15), on SQLite and PostgreSQL:

- peak memory of a whole run (the process's max RSS, interpreter included)
  at most 300 MB;
- time at most 2x a raw baseline that streams the same gzip file and looks up
  the same rows in batches of the same size (no classification, no writes,
  no missing-at-channel scan: what any reconciliation must at least do).

Each side runs in its own fresh process (so max RSS is that side's alone),
alternately, ``--rounds`` times; the ratio is the median of the per-round
ratios. The bill is a WeChat ``ALL`` trade bill as the channel serves it
(gzip, backticks, summary row); ten rows carry a wrong amount so that the run
records differences too.

    python benchmarks/bench_recon.py --rows 1000000 --backend sqlite
    python benchmarks/bench_recon.py --rows 1000000 --backend postgres \
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2024, 3, 1)
BATCH = 5000
CHANNEL = "wechat"
HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
WRONG = 10  # rows billed one fen over


def amount_of(n: int) -> int:
    return 100 + n % 9900


def write_bill(path: Path, rows: int) -> None:
    total = 0
    fees = 0
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=6) as out:
        out.write("\ufeff" + HEADER + "\r\n")
        for n in range(rows):
            minor = amount_of(n) + (1 if n < WRONG else 0)
            fee = minor * 6 // 1000  # fee in fen
            total += minor
            fees += fee
            at = datetime(2024, 3, 1, 1, 0) + timedelta(seconds=n * 79_000 // max(rows, 1))
            yuan = f"{minor // 100}.{minor % 100:02d}"
            out.write(
                f"`{at:%Y-%m-%d %H:%M:%S},`wxd678efh567hg6787,`1900000001,`0,`,"
                f"`42000000{n:020d},`BENCH{n:012d},`oUser{n % 1000},`NATIVE,`SUCCESS,`OTHERS,"
                f"`CNY,`{yuan},`0.00,`0,`0,`0.00,`0.00,`,`,`gift card,`,"
                f"`{fee // 100}.{fee % 100:02d}000,`0.60%,`{yuan},`0.00,`\r\n"
            )
        out.write(
            "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
        )
        t = f"{total // 100}.{total % 100:02d}"
        out.write(f"`{rows},`{t},`0.00,`0.00,`{fees // 100}.{fees % 100:02d}000,`{t},`0.00\r\n")


def fill_store(url: str, rows: int) -> None:
    import sqlalchemy as sa  # noqa: PLC0415

    from payhub.store import Store  # noqa: PLC0415
    from payhub.store._schema import payments  # noqa: PLC0415

    with Store(url) as store:
        store.upgrade()
        # 01:00 Asia/Shanghai on the day = 17:00 UTC the day before
        base = datetime(2024, 2, 29, 17, 0, tzinfo=UTC)
        with store.engine.begin() as conn:
            conn.execute(sa.delete(payments))
        chunk = 20_000
        for start in range(0, rows, chunk):
            values = [
                {
                    "out_trade_no": f"BENCH{n:012d}",
                    "amount_minor": amount_of(n),
                    "currency": "CNY",
                    "subject": "gift card",
                    "method": "qr",
                    "status": "paid",
                    "channel": CHANNEL,
                    "channel_trade_id": f"42000000{n:020d}",
                    "paid_at": base + timedelta(seconds=n * 79_000 // max(rows, 1)),
                    "created_at": base,
                    "updated_at": base,
                }
                for n in range(start, min(rows, start + chunk))
            ]
            with store.engine.begin() as conn:
                conn.execute(payments.insert(), values)


def candidate(url: str, bill: Path) -> dict[str, object]:
    from payhub.channels import BillStream  # noqa: PLC0415
    from payhub.channels.wechat._bill import iter_trade_bill  # noqa: PLC0415
    from payhub.recon import Reconciler, ReconConfig  # noqa: PLC0415
    from payhub.store import Store  # noqa: PLC0415

    with Store(url) as store:
        # The payments are inserted raw, without ledger entries: the ledger check
        # (one more look-up per batch) is off here; see docs/reconciliation.md.
        config = ReconConfig(
            auto_repair=False, batch_size=BATCH, sla_days=0, check_ledger=False
        )
        reconciler = Reconciler(None, config, store=store, clock=lambda: datetime.now(UTC))
        started = time.perf_counter()
        with BillStream.from_path(bill, iter_trade_bill, channel=CHANNEL, bill_date=DAY) as s:
            result = reconciler.run_bill(s)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": result.rows, "counts": result.counts}


def baseline(url: str, bill: Path) -> dict[str, object]:
    """Stream the same file, split each row, look the rows up in batches: nothing more."""
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(url)
    query = sa.text(
        "SELECT id, out_trade_no, amount_minor, currency, status, channel, channel_trade_id "
        "FROM payhub_payments WHERE out_trade_no IN :keys"
    ).bindparams(sa.bindparam("keys", expanding=True))
    found = rows = 0
    started = time.perf_counter()
    with engine.connect() as conn, gzip.open(bill, "rt", encoding="utf-8", newline="") as text:
        keys: list[str] = []
        for line in text:
            if not line.startswith("`"):
                continue
            fields = line[1:].rstrip("\r\n").split(",`")
            if len(fields) < 7:
                continue
            keys.append(fields[6])
            rows += 1
            if len(keys) >= BATCH:
                found += len(conn.execute(query, {"keys": keys}).all())
                keys = []
        if keys:
            found += len(conn.execute(query, {"keys": keys}).all())
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "rows": rows, "found": found}


def child(args: argparse.Namespace) -> None:
    fn = candidate if args.child == "candidate" else baseline
    out = fn(args.url, Path(args.bill))
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def spawn(kind: str, url: str, bill: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--bill", str(bill)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(backend: str, url: str, rows: int, rounds: int, bill: Path) -> bool:
    started = time.perf_counter()
    fill_store(url, rows)
    print(f"{backend}: {rows:,} payments stored in {time.perf_counter() - started:.1f} s")
    ratios, peaks, times = [], [], []
    for n in range(rounds):
        order = ("candidate", "baseline") if n % 2 == 0 else ("baseline", "candidate")
        got = {kind: spawn(kind, url, bill) for kind in order}
        cand, base = got["candidate"], got["baseline"]
        ratio = float(cand["seconds"]) / float(base["seconds"])  # type: ignore[arg-type]
        ratios.append(ratio)
        peaks.append(float(cand["max_rss_mb"]))  # type: ignore[arg-type]
        times.append((cand["seconds"], base["seconds"]))
        print(
            f"  round {n + 1}: payhub {cand['seconds']:.2f} s "
            f"(max RSS {cand['max_rss_mb']:.0f} MB, "
            f"counts {cand['counts']}), raw {base['seconds']:.2f} s "
            f"(max RSS {base['max_rss_mb']:.0f} MB): ratio {ratio:.2f}"
        )
    ratio, peak = statistics.median(ratios), max(peaks)
    ok = ratio <= 2.0 and peak <= 300
    print(
        f"{backend}, {rows:,} rows: time ratio {ratio:.2f} (target <= 2.0), "
        f"peak memory {peak:.0f} MB (target <= 300) {'ok' if ok else 'MISSED'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("PAYHUB_TEST_POSTGRES_URL", ""), help="PostgreSQL URL"
    )
    parser.add_argument("--child", choices=("candidate", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--bill", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-recon-") as tmp:
        bill = Path(tmp) / "bill.csv.gz"
        started = time.perf_counter()
        write_bill(bill, args.rows)
        print(
            f"bill: {args.rows:,} rows, {bill.stat().st_size / 1e6:.1f} MB gzip, "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        if args.backend in ("sqlite", "both"):
            sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            ok &= measure("sqlite", sqlite_url, args.rows, args.rounds, bill)
        if args.backend in ("postgres", "both"):
            if not args.pg_url:
                sys.exit("give --pg-url or PAYHUB_TEST_POSTGRES_URL")
            ok &= measure_postgres(args, bill)
    sys.exit(0 if ok else 1)


def measure_postgres(args: argparse.Namespace, bill: Path) -> bool:
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    name = f"bench_recon_{uuid.uuid4().hex[:8]}"
    server = make_url(args.pg_url)
    admin = sa.create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        url = server.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
        return measure("postgres", url, args.rows, args.rounds, bill)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    main()
