"""The two WSGI apps ``bench_e2e_flask.py`` serves with gunicorn.

* ``create_payhub_app()``: a Flask app with flask-payhub's notification
  endpoint (``POST /payhub/notify/alipay``), the hub built from configuration
  on a PostgreSQL store, exactly as a shop would set it up.
* ``create_raw_app()``: the minimal hand-written Flask endpoint doing the same
  work: decode the form, RSA-verify it, check the app id, then one transaction
  that inserts the inbox row (duplicates discarded by the unique key) and moves
  the payment from pending to paid.
* ``create_raw_ledger_app()``: the same endpoint, and in the same transaction
  what payhub has written there since issues 13 and 17: the payment's ledger
  entry (Alipay clearing +amount, the shop's pending balance; zero fees, paid
  out ``D+1``, as payhub's default ledger configuration posts it) linked into
  the audit chain: lock the chain head, hash the entry's canonical form after
  the previous link, insert the entry, upsert the two accounts' balances,
  insert the two lines, advance the head. Hand-written SQL as a shop keeping
  such books would write it (``benchmarks/bench_ledger.py``'s raw poster).
  It is the baseline for reading (b) of ``bench_e2e_flask.py``; it writes
  no audit row and no outbox event (payhub's audit and event were already
  outside the raw side's work in issue 12's reading).
* ``create_raw_books_app()``: the raw+ledger endpoint also writing the rest of
  what payhub's first delivery writes: the payment's audit row (pending →
  paid, the notification its source) linked into the chain after the entry
  (the head locked again, hashed, advanced), and the outbox event
  ``payment.succeeded`` with the payload payhub's event carries. Every durable
  row payhub writes, hand-written: the baseline of reading (c).

All read their setting from the environment the benchmark passes to gunicorn:
``BENCH_DB_URL`` (a SQLAlchemy URL whose ``options`` select the benchmark's
schema), ``BENCH_ALIPAY_PUBLIC_KEY`` and ``BENCH_APP_PRIVATE_KEY`` (PEM files).
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from _rawchain import raw_link, raw_payment_entry
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Flask, request
from flask_payhub import PayHubExtension
from psycopg.types.json import Json
from sqlalchemy.engine import make_url

from payhub.channels.alipay import AlipayConfig

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"


def _read(name: str) -> str:
    return Path(os.environ[name]).read_text(encoding="utf-8")


def create_payhub_app() -> Any:
    # The gateway is never called; a loopback one is a sandbox's (issue 11, point 16).
    environment = {"environment": "sandbox"} if "environment" in AlipayConfig.model_fields else {}
    app = Flask("payhub_bench")
    app.config["PAYHUB"] = {
        "channels": {
            "alipay": {
                "type": "alipay",
                **environment,
                "app_id": APP_ID,
                "app_private_key": _read("BENCH_APP_PRIVATE_KEY"),
                "alipay_public_key": _read("BENCH_ALIPAY_PUBLIC_KEY"),
                "seller_id": SELLER_ID,
                "gateway": "http://127.0.0.1:9/gateway.do",
            }
        },
        "store": {"url": os.environ["BENCH_DB_URL"]},
    }
    PayHubExtension(app)
    return app


_INBOX = (
    "INSERT INTO payhub_notifications (channel, event_key, kind, out_trade_no, received_at,"
    " raw_body, payload, outcome) VALUES ('alipay', %s, 'payment', %s, %s, %s, '{}', 'applied')"
    " ON CONFLICT (channel, event_key) DO NOTHING RETURNING id"
)
_PAY = (
    "UPDATE payhub_payments SET status = 'paid', channel = 'alipay', channel_trade_id = %s,"
    " paid_at = %s, updated_at = %s, version = version + 1"
    " WHERE out_trade_no = %s AND status = 'pending' AND amount_minor = %s"
)
_PAY_ID = _PAY + " RETURNING id"
_AUDIT = (
    "INSERT INTO payhub_audit (payment_id, from_status, to_status, cause, source, at,"
    " chain_seq, chain_hash) VALUES (%s, 'pending', 'paid', 'notification', %s, %s, %s, %s)"
)
_EVENT = (
    "INSERT INTO payhub_events (id, type, out_trade_no, payload, created_at, attempts)"
    " VALUES (%s, 'payment.succeeded', %s, %s, %s, 0) ON CONFLICT DO NOTHING"
)


def _raw_books(cur: Any, params: dict[str, str], payment_id: int, now: datetime) -> None:
    """The audit row, chained after the entry, and the outbox event (see the module docstring)."""
    source = f"notification:alipay:alipay:{APP_ID}:{params['notify_id']}"
    fields = (payment_id, "pending", "paid", "notification", source, now.replace(tzinfo=UTC))
    seq, digest = raw_link(cur, "%s", "payhub_audit", fields)
    cur.execute(_AUDIT, (payment_id, source, now, seq, digest))
    out_trade_no = params["out_trade_no"]
    payload = {
        "out_trade_no": out_trade_no,
        "channel": "alipay",
        "channel_trade_id": params["trade_no"],
        "amount": {"minor": int(params["total_amount"].replace(".", "")), "currency": "CNY"},
        "status": "paid",
        "previous_status": "pending",
        "cause": "notification",
        "source": source,
    }
    event_id = hashlib.sha256(f"{out_trade_no}:paid".encode()).hexdigest()[:32]
    cur.execute(_EVENT, (event_id, out_trade_no, Json(payload), now))


def create_raw_app() -> Any:
    return _raw_app(ledger=False)


def create_raw_ledger_app() -> Any:
    return _raw_app(ledger=True)


def create_raw_books_app() -> Any:
    return _raw_app(ledger=True, books=True)


def _raw_app(*, ledger: bool, books: bool = False) -> Any:
    url = make_url(os.environ["BENCH_DB_URL"])
    public = load_pem_public_key(_read("BENCH_ALIPAY_PUBLIC_KEY").encode())
    connection: list[Any] = []  # one per worker process, opened on first use

    def conn() -> Any:
        if not connection:
            connection.append(
                psycopg.connect(
                    host=url.host,
                    port=url.port,
                    user=url.username,
                    password=url.password,
                    dbname=url.database,
                    options=url.query.get("options", ""),
                )
            )
        return connection[0]

    app = Flask("raw_bench")

    @app.post("/payhub/notify/alipay")
    def notify() -> tuple[str, int]:
        body = request.get_data()
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        signed = "&".join(
            f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type") and v
        ).encode()
        try:
            public.verify(  # type: ignore[union-attr, call-arg]
                base64.b64decode(params["sign"], validate=True),
                signed,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return "fail", 400
        if params.get("app_id") != APP_ID:
            return "fail", 400
        amount = int(params["total_amount"].replace(".", ""))
        now = datetime.now(UTC).replace(tzinfo=None)
        db = conn()
        with db.transaction(), db.cursor() as cur:
            cur.execute(_INBOX, (params["notify_id"], params["out_trade_no"], now, body))
            if cur.fetchone() is not None:
                pay = _PAY_ID if books else _PAY
                cur.execute(pay, (params["trade_no"], now, now, params["out_trade_no"], amount))
                paid = cur.fetchone() if books else None
                if ledger and cur.rowcount == 1:
                    raw_payment_entry(cur, "%s", params["out_trade_no"], amount, now)
                    if paid is not None:
                        _raw_books(cur, params, int(paid[0]), now)
        return "success", 200

    return app
