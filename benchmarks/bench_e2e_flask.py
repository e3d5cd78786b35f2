"""End to end, the number users feel: flask-payhub's notification endpoint under gunicorn.

Run: ``.venv/bin/python benchmarks/bench_e2e_flask.py [ROUNDS]`` from the
repository root with ``PAYHUB_TEST_POSTGRES_URL`` set and gunicorn installed
(the ``bench`` extra).

Three gunicorn servers (2 sync workers each) run side by side on loopback
ports against one PostgreSQL schema migrated by payhub:

* **payhub**: a Flask app with flask-payhub (``e2e_apps.create_payhub_app``),
  as users run it (the default ledger on);
* **raw**: a minimal hand-written Flask endpoint doing the work issue 12
  names (``e2e_apps.create_raw_app``): decode the form, RSA-verify, one
  transaction inserting the inbox row and updating the payment;
* **raw+ledger**: the same endpoint also posting the payment's ledger entry
  linked into the audit chain (``e2e_apps.create_raw_ledger_app``).

Why a third side. Since issue 12's reading, a payment credit in payhub also
writes, in the same transaction, the ledger entry (issue 13: the entry, two
account balances, two lines) and chain links (issue 17: the head locked,
hashed and advanced for the entry and for the audit row). A shop keeping
books would do the entry by hand too, so (b) compares with that; it is
reported beside (a), never instead of it, and the raw endpoint of (a) is left
as issue 12 defines it. The raw+ledger side still writes no audit row and no
outbox event (payhub did both already in issue 12's reading).

One load generator (threads of keep-nothing HTTP/1.1 connections) sends signed
Alipay notifications for fresh pending payments, every notification twice
(50 % duplicates, shuffled). Rounds rotate over the three servers. Every
round is checked for exactly-once on its side: each payment paid once, one
inbox row per notification id, one ledger entry per payment (payhub,
raw+ledger), and for payhub one ``payment.succeeded`` event per payment.
Printed per side: throughput (median of rounds), p50/p99 latency over all
rounds, PostgreSQL WAL bytes per first delivery (the server's WAL position
moved during the round ÷ payments: the whole cluster's WAL, so on a shared
server other sessions' writes land in it too; the least disturbed round, the
minimum, is printed). The verdict is (a), payhub ÷ raw throughput >= 0.8
(issue 12); (b) is printed. Exits 1 if (a) is missed.

Round trips on PostgreSQL (statements + BEGIN + COMMIT; counted with
SQLAlchemy's cursor events, ``tests/store/test_notification_round_trips.py``
guards payhub's): first delivery / duplicate

=================  ===========  =========
side               first        duplicate
=================  ===========  =========
raw                4            3
raw+ledger         9            3
raw+books          13           3
payhub before      10           3
payhub then        7            3
payhub now         6            3
=================  ===========  =========

payhub before (commit e19c45d): inbox insert, conditional UPDATE, head lock,
ledger entry (one CTE), head lock, audit insert, head advance, event. Then
(d542f30): inbox insert and conditional UPDATE as one statement
(data-modifying CTEs; the UPDATE only if the insert happened), head lock +
ledger entry, the audit row with its link computed and the head advanced by
the server (one statement), event. Now: the ledger entry's statement locks
the head and computes the entry's link itself, as the audit row's does.

Readings on the shared 2-core machine, 2026-12-07, ``bench_e2e_flask.py 5``
(5 rounds of 800 deliveries per side; throughput ratio, the run's median).
Before = commit e19c45d with this benchmark; after = this branch. Other
engineers' test runs loaded the machine throughout (load average in
brackets): absolute rates are a fraction of a quiet machine's and a ratio
moves by ±0.1 between runs, so pairs run back to back count most.

===========================  ==========  ==========  ==========  ==========
run (load)                   (a) before  (a) after   (b) before  (b) after
===========================  ==========  ==========  ==========  ==========
busy (9-17), separate        0.32, 0.24  0.36, 0.24  0.46, 0.42  0.45, 0.42
calmer pair 1 (5)            0.39        0.48        0.55        0.56
calmer pair 2 (4.5)          0.40        0.44        0.51        0.60
median of runs               0.355       0.40        0.485       0.505
===========================  ==========  ==========  ==========  ==========

Calmer pairs, notifications/s and latency: payhub after 274 and 263/s,
p50 29.1 / 33.4 ms, p99 71.5 / 176.7 ms (before 212 and 245/s, p50 38.6 /
25.6 ms, p99 90.3 / 69.9 ms); raw 550-617/s, p50 12.5-13.5 ms, p99 27.5-35.1
ms; raw+ledger 387-489/s, p50 15.1-19.6 ms, p99 36.5-76.4 ms. WAL per first
delivery (least disturbed round): payhub 5.5 KiB before and after (the same
rows: inbox, payment, entry with two lines and two balances, audit, event,
head), raw 2.0 KiB, raw+ledger 3.95 KiB. Target (a) >= 0.8: missed.

On a quiet machine (load < 1, no other work), main at ca7ea53, same
command: payhub 525/s (rounds 510-541), p50 15.1 ms, p99 26.8 ms; raw 1033/s,
p50 7.4 ms, p99 13.8 ms; raw+ledger 838/s, p50 9.3 ms, p99 16.1 ms. (a) 0.51,
(b) 0.63; WAL 5.52 / 2.00 / 3.93 KiB per first delivery. Serially through the
Flask test client (cProfile, 1000 payments, each delivered twice): 3.6 ms wall
per delivery, of which ~1.4 ms waiting on PostgreSQL, ~1.2 ms payhub's store
path in Python (SQLAlchemy statement set-up, the ledger draft, chain link),
~0.35 ms Flask/werkzeug, ~0.22 ms parse and RSA verify.

Session of 2026-12-07 evening, quiet machine (load 1-2.5, nothing else
running), ``bench_e2e_flask.py 5``, with the fourth side raw+books (every row
payhub writes, hand-written) and the head lock folded into the ledger
statement: payhub 468/s (rounds 442-499), p50 16.1 ms, p99 36.8 ms; raw
906/s, p50 8.2 ms, p99 18.9 ms; raw+ledger 709/s, p50 10.5 ms, p99 21.3 ms;
raw+books 647/s (541-683), p50 11.8 ms, p99 29.1 ms. (a) 0.52, (b) 0.66,
(c) 0.72. WAL per first delivery 5.53 / 2.01 / 3.96 / 5.47 KiB: raw+books
writes what payhub writes, byte for byte within 1 %. The absolute rates are
below the 21:19 reading (raw 1073/s): the same code, a slower hour of the
host; only ratios within a run compare.

Why (a) cannot reach 0.8 while issues 13 and 17 hold: since issue 12 was
filed, its raw side's work has stayed two statements while payhub's first
delivery must (issue 13) post the ledger entry in the notification's
transaction and (issue 17) link the entry and the audit row into the chain
in it. Issue 13 itself budgets the ledger at <= 1.3x the transaction; the
hand-written raw+books, which does only that mandated work with no library
around it, already runs at 647/906 = 0.71 of raw. payhub would have to do
the same durable work faster than hand-written psycopg code to reach 0.8.

Per delivery, serially (process CPU time through the Flask test client,
1,000 payments each delivered twice): a duplicate costs payhub 0.96 ms of
CPU against 0.48 ms raw (one statement each plus BEGIN/COMMIT: the gap is
SQLAlchemy's per-statement work, a RETURNING of the payment's 19 columns that
psycopg describes on every execute, the adapter and the hub); a first
delivery 1.9 ms against 0.68 ms raw and 1.34 ms raw+ledger.

The gap left is CPU in the workers more than round trips (raw+ledger makes
9 round trips per first delivery and still serves ~1.8x payhub's rate): a
payhub delivery costs 2.4-3.0 ms of CPU (before: 3.1-3.4 ms) against
0.8-0.9 ms for raw and 1.1 ms for raw+ledger (Flask test client in one
process, serial, alternated runs), spent in SQLAlchemy Core's per-statement
work, the Flask adapter, the ledger's draft and the pydantic models; and the
chain head, locked from the ledger posting until COMMIT, serialises the two
workers' first deliveries for longer than the raw side holds it.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import Ratio, report  # noqa: E402
from e2e_apps import APP_ID, SELLER_ID  # noqa: E402

from payhub import Money, PaymentRequest  # noqa: E402
from payhub.signing import rsa_sign  # noqa: E402
from payhub.store import Store  # noqa: E402

UNIQUE = 400  #: payments per round; each is notified twice
CLIENTS = 8  #: concurrent connections of the load generator
WORKERS = 2  #: gunicorn workers per server
TARGET = 0.8
SIDES = ("payhub", "raw", "raw+ledger", "raw+books")
_TAG = {"payhub": "P", "raw": "R", "raw+ledger": "L", "raw+books": "B"}  #: in order numbers
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def _pem_private(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_public(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _now_text() -> str:
    return datetime.now(_SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _body(private: rsa.RSAPrivateKey, out_trade_no: str) -> bytes:
    params = {
        "app_id": APP_ID,
        "notify_id": uuid.uuid4().hex,
        # paid now (Asia/Shanghai, as Alipay writes it): a fixed past date is a
        # paid time before the payment was created, i.e. a paid_time anomaly
        # on every delivery, work the raw side does not do
        "notify_time": _now_text(),
        "notify_type": "trade_status_sync",
        "out_trade_no": out_trade_no,
        "total_amount": "10.00",
        "trade_no": f"20261101220{abs(hash(out_trade_no)) % 10**12:012d}",
        "trade_status": "TRADE_SUCCESS",
        "seller_id": SELLER_ID,
        "buyer_id": "2088102177846880",
        "gmt_create": _now_text(),
        "gmt_payment": _now_text(),
        "subject": "Steam 礼品卡 30 元",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "version": "1.0",
    }
    signed = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign_type",))
    params["sign"] = rsa_sign(private, signed.encode())
    return urlencode(params).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _gunicorn(app: str, env: dict[str, str]) -> Iterator[int]:
    port = _free_port()
    binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    proc = subprocess.Popen(
        [binary, "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning", app],
        cwd=HERE,
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn {app} did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _drive(port: int, bodies: list[bytes]) -> tuple[float, list[float]]:
    """Send every body once over CLIENTS threads; (elapsed seconds, latencies in ms)."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def client() -> None:
        mine: list[float] = []
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            start = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(
                "POST",
                "/payhub/notify/alipay",
                body,
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = conn.getresponse()
            text = response.read()
            conn.close()
            mine.append((time.perf_counter() - start) * 1000)
            if response.status != 200 or text != b"success":
                failures.append(f"{response.status} {text[:80]!r}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise AssertionError(f"{len(failures)} deliveries not acknowledged, e.g. {failures[0]}")
    return elapsed, latencies


def _wal(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").scalar_one())


def _check_exactly_once(engine: sa.Engine, prefix: str, side: str) -> None:
    like = f"{prefix}%"
    with engine.connect() as conn:
        paid = conn.execute(
            sa.text(
                "SELECT count(*) FROM payhub_payments"
                " WHERE out_trade_no LIKE :p AND status = 'paid'"
            ),
            {"p": like},
        ).scalar_one()
        inbox = conn.execute(
            sa.text("SELECT count(*) FROM payhub_notifications WHERE out_trade_no LIKE :p"),
            {"p": like},
        ).scalar_one()
        events = conn.execute(
            sa.text(
                "SELECT count(*) FROM payhub_events WHERE out_trade_no LIKE :p"
                " AND type = 'payment.succeeded'"
            ),
            {"p": like},
        ).scalar_one()
        entries = conn.execute(
            sa.text(
                "SELECT count(*) FROM payhub_ledger_entries WHERE reference LIKE :p"
                " AND cause = 'payment'"
            ),
            {"p": like},
        ).scalar_one()
        audits = conn.execute(
            sa.text(
                "SELECT count(*) FROM payhub_audit a JOIN payhub_payments p"
                " ON p.id = a.payment_id WHERE p.out_trade_no LIKE :p AND a.to_status = 'paid'"
            ),
            {"p": like},
        ).scalar_one()
    want_events = UNIQUE if side in ("payhub", "raw+books") else 0
    if audits != want_events:
        raise AssertionError(f"{side} round {prefix}: {audits} audit rows for {want_events}")
    want_entries = 0 if side == "raw" else UNIQUE
    if (paid, inbox, events, entries) != (UNIQUE, UNIQUE, want_events, want_entries):
        raise AssertionError(
            f"{side} round {prefix}: paid {paid}, inbox rows {inbox}, events {events},"
            f" ledger entries {entries}; expected {UNIQUE}, {UNIQUE}, {want_events},"
            f" {want_entries}"
        )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    server = os.environ.get("PAYHUB_TEST_POSTGRES_URL")
    if not server:
        print("end-to-end Flask benchmark: needs PAYHUB_TEST_POSTGRES_URL")
        sys.exit(2)
    schema = f"payhub_e2e_{os.getpid()}"
    admin = sa.create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = (
        make_url(server)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    workdir = Path(tempfile.mkdtemp(prefix="payhub-e2e-"))
    (workdir / "alipay-public.pem").write_bytes(_pem_public(private))
    (workdir / "app-private.pem").write_bytes(_pem_private(app_key))
    env = {
        "BENCH_DB_URL": url,
        "BENCH_ALIPAY_PUBLIC_KEY": str(workdir / "alipay-public.pem"),
        "BENCH_APP_PRIVATE_KEY": str(workdir / "app-private.pem"),
    }
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    latencies: dict[str, list[float]] = {side: [] for side in SIDES}
    wal: dict[str, list[float]] = {side: [] for side in SIDES}
    engine = sa.create_engine(url)
    try:
        with Store(url) as store:
            store.upgrade()
            with (
                _gunicorn("e2e_apps:create_payhub_app()", env) as payhub_port,
                _gunicorn("e2e_apps:create_raw_app()", env) as raw_port,
                _gunicorn("e2e_apps:create_raw_ledger_app()", env) as ledger_port,
                _gunicorn("e2e_apps:create_raw_books_app()", env) as books_port,
            ):
                ports = {
                    "payhub": payhub_port,
                    "raw": raw_port,
                    "raw+ledger": ledger_port,
                    "raw+books": books_port,
                }
                for side, port in ports.items():  # warm-up: workers connect, fill caches
                    _run_round(store, engine, private, side, f"W{_TAG[side]}-", port, None)
                for n in range(rounds):
                    # rotate which side goes first, so none always runs on a calmer machine
                    order = SIDES[n % len(SIDES) :] + SIDES[: n % len(SIDES)]
                    for side in order:
                        rate, lat, wal_bytes = _run_round(
                            store, engine, private, side, f"R{n}{_TAG[side]}-", ports[side], side
                        )
                        rates[side].append(rate)
                        latencies[side].extend(lat)
                        wal[side].append(wal_bytes)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    for side in SIDES:
        q = statistics.quantiles(latencies[side], n=100)
        print(
            f"{side:>10}: {statistics.median(rates[side]):.0f} notifications/s"
            f" (rounds {', '.join(f'{r:.0f}' for r in rates[side])});"
            f" p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms;"
            f" WAL {min(wal[side]) / 1024:.2f} KiB per first delivery"
        )
    payhub_rate, raw_rate = statistics.median(rates["payhub"]), statistics.median(rates["raw"])
    ledger_rate = statistics.median(rates["raw+ledger"])
    books_rate = statistics.median(rates["raw+books"])
    print(
        f"(b) payhub ÷ raw+ledger (the raw endpoint also posting the ledger entry, chained):"
        f" throughput ratio {payhub_rate / ledger_rate:.2f} (information; issue 12's target"
        " is (a))"
    )
    print(
        f"(c) payhub ÷ raw+books (every row payhub writes, hand-written: inbox, payment,"
        f" entry, audit row, chain, event): throughput ratio {payhub_rate / books_rate:.2f}"
        " (information)"
    )
    # Throughput >= 0.8 of raw is wall time per notification <= 1/0.8 of raw.
    sys.exit(
        report(
            [
                Ratio(
                    f"(a) Flask + gunicorn ({WORKERS} workers) on PostgreSQL, 50 % duplicates,"
                    f" wall time per notification (throughput ratio {payhub_rate / raw_rate:.2f})",
                    candidate_us=1e6 / payhub_rate,
                    baseline_us=1e6 / raw_rate,
                    target=round(1 / TARGET, 3),
                )
            ]
        )
    )


def _run_round(
    store: Store,
    engine: sa.Engine,
    private: rsa.RSAPrivateKey,
    side: str,
    prefix: str,
    port: int,
    check: str | None,
) -> tuple[float, list[float], float]:
    numbers = [f"{prefix}{i}" for i in range(UNIQUE)]
    for number in numbers:
        store.begin_payment(
            PaymentRequest(out_trade_no=number, amount=Money(1000), subject="card", method="qr")
        )
    bodies = [_body(private, n) for n in numbers]
    deliveries = bodies + bodies  # every notification twice: 50 % duplicates
    random.Random(prefix).shuffle(deliveries)
    before = _wal(engine)
    elapsed, lat = _drive(port, deliveries)
    wal_bytes = (_wal(engine) - before) / UNIQUE
    if check is not None:
        _check_exactly_once(engine, prefix, check)
    return len(deliveries) / elapsed, lat, wal_bytes


if __name__ == "__main__":
    main()
