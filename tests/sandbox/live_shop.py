"""A sandbox and a small shop, each served over real HTTP on loopback, for end-to-end tests.

The shop is a Flask app using payhub through flask-payhub, as a 发卡网 would:
``/buy/<channel>/<order>`` takes a payment and sends the buyer to the channel's
cashier page; ``POST /payhub/notify/<channel>`` is flask-payhub's notification
endpoint; ``/orders/<order>`` shows what the shop's store knows (JSON, and an
HTML page a browser test reads). A WSGI wrapper records every request the
shop receives, body bytes included, before payhub reads it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, redirect, request
from flask_payhub import PayHubExtension
from payhub_sandbox import Sandbox, create_app
from werkzeug.serving import make_server

from payhub import PayHub, Store, models
from payhub.money import Money

ALIPAY_APP_ID = "2021000000000077"
ALIPAY_SELLER_ID = "2088000000000077"
WECHAT_MCH_ID = "1900000077"
WECHAT_APP_ID = "wx0000000000000077"
WECHAT_SERIAL = "77B6A45ACD588826D15E583A95F5DD2C3B1A7F77"
WECHAT_API_V3_KEY = "0123456789abcdef0123456789abcdef"
UNIONPAY_MER_ID = "777290058110097"


@dataclass
class Received:
    """One request the shop received."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0


class _Recorder:
    """WSGI middleware: keep each request's exact bytes, then hand it on unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received: list[Received] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        record = Received(environ.get("PATH_INFO", ""), headers, body)

        def recording_start(status: str, *args: Any) -> Any:
            record.status = int(status.split(maxsplit=1)[0])
            return start_response(status, *args)

        # Listed only once the app has answered, so whoever sees the record sees its status.
        response = self.app(environ, recording_start)
        with self._lock:
            self.received.append(record)
        return response  # type: ignore[no-any-return]


class _Slot:
    """A WSGI app whose target is set once the server's port is known."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)  # type: ignore[no-any-return]


@contextmanager
def serve(app: Any) -> Iterator[tuple[str, _Slot]]:
    """Serve ``app`` (None: set ``slot.app`` later) on a free loopback port, threaded."""
    slot = _Slot()
    slot.app = app
    server = make_server("127.0.0.1", 0, slot, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}", slot
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def live_sandbox(sandbox: Sandbox) -> Iterator[str]:
    """``sandbox`` served (its ``base_url`` set) with its delivery thread running."""
    with serve(create_app(sandbox)) as (url, _):
        sandbox.base_url = url
        sandbox.start_delivery_thread(interval=0.05)
        try:
            yield url
        finally:
            sandbox.stop()


@dataclass
class LiveShop:
    url: str
    hub: PayHub
    store: Store
    recorder: _Recorder
    notify_base: str
    orders: dict[str, str] = field(default_factory=dict)

    @property
    def received(self) -> list[Received]:
        return [r for r in self.recorder.received if r.path.startswith("/payhub/notify/")]

    def payment(self, out_trade_no: str) -> Any:
        return self.store.payment(out_trade_no)


def shop_config(
    sandbox: Sandbox,
    sandbox_url: str,
    notify_base: str,
    merchant_keys: Any,
    channels: Iterable[str],
) -> dict[str, Any]:
    """The shop's channel configuration against the sandbox; registers its merchants there."""
    config: dict[str, Any] = {}
    if "alipay" in channels:
        sandbox.add_alipay_merchant(ALIPAY_APP_ID, merchant_keys.public_pem, ALIPAY_SELLER_ID)
        config["alipay"] = {
            "type": "alipay",
            "app_id": ALIPAY_APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "alipay_public_key": sandbox.alipay_public_key_pem,
            "environment": "sandbox",
            "gateway": f"{sandbox_url}/gateway.do",
            "bill_download_hosts": [sandbox_url],
            "seller_id": ALIPAY_SELLER_ID,
            "notify_url": f"{notify_base}/payhub/notify/alipay",
        }
    if "wechat" in channels:
        sandbox.add_wechat_merchant(
            WECHAT_MCH_ID,
            WECHAT_APP_ID,
            WECHAT_SERIAL,
            merchant_keys.public_pem,
            WECHAT_API_V3_KEY.encode(),
            "public_key",
        )
        config["wechat"] = {
            "type": "wechat",
            "mch_id": WECHAT_MCH_ID,
            "app_id": WECHAT_APP_ID,
            "merchant_private_key": merchant_keys.private_pem,
            "merchant_serial_no": WECHAT_SERIAL,
            "api_v3_key": WECHAT_API_V3_KEY,
            "wechatpay_public_key": sandbox.wechat_public_key_pem,
            "wechatpay_public_key_id": sandbox.wechat_public_key_id,
            "environment": "sandbox",
            "base_url": sandbox_url,
            "notify_url": f"{notify_base}/payhub/notify/wechat",
            "refund_notify_url": f"{notify_base}/payhub/notify/wechat",
        }
    if "unionpay" in channels:
        pfx, _ = sandbox.issue_unionpay_merchant(
            UNIONPAY_MER_ID, "000000", key=merchant_keys.private
        )
        config["unionpay"] = {
            "type": "unionpay",
            "mer_id": UNIONPAY_MER_ID,
            "environment": "test",
            "sign_cert": pfx,
            "sign_cert_password": "000000",
            "root_cert": sandbox.unionpay_root_cert_pem,
            "middle_cert": sandbox.unionpay_middle_cert_pem,
            "gateway_url": sandbox_url,
            "back_url": f"{notify_base}/payhub/notify/unionpay",
        }
    return config


def build_shop(
    shop_url: str,
    channels: dict[str, Any],
    db: Path,
) -> tuple[Flask, PayHub, Store]:
    store = Store(f"sqlite:///{db}", external_refunds=True)
    store.upgrade()
    hub = PayHub.from_config({"channels": channels}, store=store)
    app = Flask("live_shop")
    PayHubExtension(app, hub=hub)

    @app.route("/buy/<channel>/<order>", methods=["GET", "POST"])
    def buy(channel: str, order: str) -> Any:
        result = hub.pay(
            models.PaymentRequest(
                out_trade_no=order,
                amount=Money(1000),
                subject="礼品卡 / gift card",
                method=request.args.get("method", "qr"),
                channel=channel,
                return_url=f"{shop_url}/payhub/return/{channel}",
            )
        )
        if result.form_html:  # UnionPay's page payment: a form the browser submits itself
            return result.form_html
        return redirect(result.qr_code or result.redirect_url or "/", code=303)

    @app.get("/orders/<order>.json")
    def order_json(order: str) -> Any:
        found = store.payment(order)
        if found is None:
            return jsonify({"status": None}), 404
        return jsonify({"status": found.status.value, "refunded": found.refunded.minor})

    @app.get("/orders/<order>")
    def order_page(order: str) -> Any:
        found = store.payment(order)
        status = "unknown" if found is None else found.status.value
        refunded = "0.00" if found is None else found.refunded.to_decimal_string()
        return (
            f'<!doctype html><title>order {order}</title><p id="status">{status}</p>'
            f'<p id="refunded">{refunded}</p>'
        )

    return app, hub, store


@contextmanager
def live_shop(
    sandbox: Sandbox,
    sandbox_url: str,
    merchant_keys: Any,
    tmp_path: Path,
    *,
    channels: Iterable[str] = ("alipay",),
    notify_base: str | None = None,
) -> Iterator[LiveShop]:
    """The shop, served; ``notify_base`` is where the channels are told to notify
    (default: the shop itself; a public name nothing answers for, with ``listen``)."""
    with serve(None) as (url, slot):
        base = notify_base or url
        config = shop_config(sandbox, sandbox_url, base, merchant_keys, list(channels))
        app, hub, store = build_shop(url, config, tmp_path / "shop.db")
        recorder = _Recorder(app.wsgi_app)
        app.wsgi_app = recorder  # type: ignore[method-assign]
        slot.app = app
        try:
            yield LiveShop(url, hub, store, recorder, base)
        finally:
            hub.close()
            store.close()
