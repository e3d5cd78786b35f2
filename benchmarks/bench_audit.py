"""The audit chain: verifying a million rows, and what chaining costs a notification.

Run: ``.venv/bin/python benchmarks/bench_audit.py`` (from the repository root;
``PAYHUB_TEST_POSTGRES_URL`` adds PostgreSQL; ``--rows N``, default 1,000,000).

1. Verification (``Store.verify_chain``, what ``payhub audit verify`` runs) of
   N chained risk-audit rows, on SQLite and PostgreSQL, in a fresh process:
   rows per second, and the process's peak resident memory before and after
   the walk (it reads pages of 2,000 rows, so the peak does not grow with N:
   the same walk over N/10 rows is printed beside it). The rows are generated
   with their real links (payhub's canonical form) and inserted in batches.
2. The chain's cost on the notification transaction (SQLite): the same
   signed Alipay notification applied by one hub whose audit row and ledger
   entry are chained (the head locked, read and advanced), and by another
   whose rows get a placeholder link with no head involved, interleaved in
   the same run (``_harness.compare``); target: at most 1.3x (measured 1.2:
   two chained rows per notification, each one more SELECT and UPDATE).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Ratio, compare, report
from bench_store import bench_channel, create_payments, make_body

import payhub.ledger._writer as ledger_writer
import payhub.store._audit as audit_writer
from payhub import PayHub
from payhub.store import Store
from payhub.store._chain import GENESIS, ChainLink, canonical
from payhub.store._schema import CHAINED, chain_head, risk_audit

BATCH = 20_000
_FIELDS = CHAINED[risk_audit.name]


def fill(url: str, rows: int) -> None:
    """``rows`` chained risk-audit rows with their real links, and the head."""
    store = Store(url)
    store.upgrade()
    previous = GENESIS
    at = datetime(2026, 12, 1, tzinfo=UTC)
    detail = {"action": "block", "rule": "bad-net", "reason": "IP is in a listed network"}
    with store.engine.begin() as conn:
        for start in range(0, rows, BATCH):
            batch = []
            for seq in range(start + 1, min(rows, start + BATCH) + 1):
                values = {
                    "out_trade_no": f"B{seq:09d}", "action": "block", "rule": "bad-net",
                    "actor": "payhub", "detail": detail, "at": at,
                }
                previous = hashlib.sha256(
                    previous + canonical(risk_audit.name, seq, [values[f] for f in _FIELDS])
                ).digest()
                batch.append({**values, "chain_seq": seq, "chain_hash": previous.hex()})
            conn.execute(risk_audit.insert(), batch)
        conn.execute(chain_head.delete())
        conn.execute(chain_head.insert().values(id=1, seq=rows, hash=previous.hex()))
    store.close()


_CHILD = """
import resource, sys, time
from payhub.store import Store
store = Store(sys.argv[1])
store.chain_head()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
report = store.verify_chain()
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert report.ok, report.broken
print(report.rows, elapsed, before, after)
"""


def verify_in_child(url: str) -> tuple[int, float, float, float]:
    """(rows, seconds, peak MiB before the walk, peak MiB after) of a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url], check=False, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:2])},
    )
    if done.returncode:
        raise SystemExit(f"verification failed: {done.stderr.strip().splitlines()[-1]}")
    out = done.stdout.split()
    return int(out[0]), float(out[1]), int(out[2]) / 1024, int(out[3]) / 1024


def bench_verify(backend: str, url: str, rows: int) -> None:
    for n in (rows // 10, rows):
        start = time.perf_counter()
        fill(url, n)
        made = time.perf_counter() - start
        count, seconds, before, after = verify_in_child(url)
        print(
            f"{backend} verify {count:,} rows: {count / seconds:,.0f} rows/s ({seconds:.1f} s);"
            f" peak RSS {before:.0f} MiB before the walk, {after:.0f} MiB after"
            f" (rows generated in {made:.0f} s)"
        )
        reset(url)


def reset(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(risk_audit.delete())
        conn.execute(chain_head.delete())
    engine.dispose()


# -- 2. the chain's cost on a notification --------------------------------------------


def bench_notification() -> Ratio:
    workdir = Path(tempfile.mkdtemp(prefix="payhub-bench-audit-"))
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    total = 3 + 15 * 20 + 10
    chained_store = Store(f"sqlite:///{workdir / 'chained.db'}")
    plain_store = Store(f"sqlite:///{workdir / 'plain.db'}")
    for s in (chained_store, plain_store):
        s.upgrade()
    plain_engine = plain_store.engine
    counter = itertools.count(1)
    real_insert, real_next, real_advance = (
        audit_writer.chain_insert, ledger_writer.next_link, ledger_writer.advance,
    )

    # The placeholder: same insert, a unique sequence number, no head, no hash.
    def chain_insert(conn: Any, table: sa.Table, values: Any) -> int:
        if conn.engine is not plain_engine:
            return real_insert(conn, table, values)
        seq = next(counter)
        conn.execute(table.insert(), {**values, "chain_seq": seq, "chain_hash": "0" * 64})
        return seq

    def next_link(conn: Any, table: sa.Table, values: Any) -> ChainLink:
        if conn.engine is not plain_engine:
            return real_next(conn, table, values)
        return ChainLink(next(counter), "0" * 64)

    def advance(conn: Any, new: ChainLink) -> None:
        if conn.engine is not plain_engine:
            real_advance(conn, new)

    audit_writer.chain_insert = chain_insert  # type: ignore[assignment]
    ledger_writer.next_link = next_link  # type: ignore[assignment]
    ledger_writer.advance = advance  # type: ignore[assignment]
    hubs, bodies = [], []
    for prefix, s in (("C", chained_store), ("P", plain_store)):
        numbers = create_payments(s, prefix, total)
        hubs.append(PayHub(channels=[bench_channel(public_pem)], store=s))
        bodies.append(iter([make_body(private, n) for n in numbers]))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def run(i: int) -> None:
        outcome = hubs[i].handle_notification("alipay", headers, next(bodies[i]))
        assert outcome.applied is not None
        assert outcome.applied.transition is not None

    try:
        return compare(
            "SQLite notification, chained vs unchained audit and ledger rows",
            lambda: run(0), lambda: run(1), target=1.3, batch=20, rounds=15,
        )
    finally:
        assert chained_store.verify_chain().ok
        for hub in hubs:
            hub.close()
        chained_store.close()
        plain_store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    results = [bench_notification()]
    with tempfile.TemporaryDirectory(prefix="payhub-bench-audit-") as tmp:
        bench_verify("SQLite", f"sqlite:///{Path(tmp) / 'verify.db'}", args.rows)
    server = os.environ.get("PAYHUB_TEST_POSTGRES_URL")
    if server:
        schema = f"payhub_bench_audit_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(server)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            bench_verify("PostgreSQL", url.render_as_string(hide_password=False), args.rows)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    sys.exit(report(results))


if __name__ == "__main__":
    main()
