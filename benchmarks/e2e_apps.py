"""The two WSGI apps ``bench_e2e_flask.py`` serves with gunicorn.

* ``create_payhub_app()``: a Flask app with flask-payhub's notification
  endpoint (``POST /payhub/notify/alipay``), the hub built from configuration
  on a PostgreSQL store, exactly as a shop would set it up.
* ``create_raw_app()``: the minimal hand-written Flask endpoint doing the same
  work: decode the form, RSA-verify it, check the app id, then one transaction
  that inserts the inbox row (duplicates discarded by the unique key) and moves
  the payment from pending to paid.

Both read their setting from the environment the benchmark passes to gunicorn:
``BENCH_DB_URL`` (a SQLAlchemy URL whose ``options`` select the benchmark's
schema), ``BENCH_ALIPAY_PUBLIC_KEY`` and ``BENCH_APP_PRIVATE_KEY`` (PEM files).
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Flask, request
from flask_payhub import PayHubExtension
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


def create_raw_app() -> Any:
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
                cur.execute(_PAY, (params["trade_no"], now, now, params["out_trade_no"], amount))
        return "success", 200

    return app
