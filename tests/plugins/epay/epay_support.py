"""A shop, payhub with the EPay plugin, and the sandbox with its EPay part, in one process.

Notifications go from the sandbox's EPay provider straight into
``hub.handle_notification`` (a GET's query string, or a POST's body, as the
raw body), exactly as a web adapter hands them over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from payhub_epay import EpayChannel, EpayConfig
from payhub_epay_sandbox import EpaySimulator, init_app
from payhub_sandbox import ManualClock, Sandbox, create_app

from payhub import PayHub, PaymentRequest, PayMethod
from payhub.money import Money
from payhub.store import Store

PID = "1001"
KEY = "k7VfQ2pX9mZsT4wLr8YbNc3H"
OTHER_PID = "1002"
OTHER_KEY = "Zq1Wn8Rt5Uv2Xy7Ab4Cd9Ef0"
GATEWAY = "http://epay.sandbox.test/epay/"
NOTIFY_URL = "https://shop.example/payhub/notify/epay"
RETURN_URL = "https://shop.example/paid"
START = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


def md5_sign(params: Mapping[str, str], key: str) -> str:
    """The signature written out independently of the plugin, from the protocol text."""
    text = "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k]
    )
    return hashlib.md5((text + key).encode("utf-8"), usedforsecurity=False).hexdigest()


def signed_body(fields: Mapping[str, str], key: str = KEY, **extra: str) -> bytes:
    params = dict(fields)
    params["sign"] = md5_sign(params, key)
    params["sign_type"] = "MD5"
    params.update(extra)
    return urlencode(params).encode("ascii")


def notification_fields(
    out_trade_no: str = "ORDER-1", money: str = "12.5", param: str | None = None, **over: str
) -> dict[str, str]:
    fields = {
        "pid": PID,
        "trade_no": "2026030112000010001",
        "out_trade_no": out_trade_no,
        "type": "alipay",
        "name": "Gift card",
        "money": money,
        "trade_status": "TRADE_SUCCESS",
    }
    if param is not None:
        fields["param"] = param
    fields.update(over)
    return fields


def config(**over: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "pid": PID,
        "key": KEY,
        "gateway": GATEWAY,
        "environment": "sandbox",
        "notify_url": NOTIFY_URL,
        "return_url": RETURN_URL,
    }
    settings.update(over)
    return settings


@dataclass
class Shop:
    clock: ManualClock
    epay: EpaySimulator
    hub: PayHub
    channel: EpayChannel
    store: Store | None
    http: httpx.Client
    received: list[httpx.Request] = field(default_factory=list)

    def request(
        self,
        out_trade_no: str = "ORDER-1",
        amount: int = 1250,
        method: PayMethod = PayMethod.PAGE,
        expires_in: timedelta | None = None,
    ) -> PaymentRequest:
        from payhub import BuyerHints

        return PaymentRequest(
            out_trade_no=out_trade_no,
            amount=Money(amount),
            subject="Gift card",
            method=method,
            expires_at=None if expires_in is None else self.clock.now() + expires_in,
            buyer=BuyerHints(ip="203.0.113.7"),
        )

    def trade_no(self, out_trade_no: str) -> str:
        return self.epay.order_by_out(PID, out_trade_no).trade_no

    def pay_at_cashier(self, out_trade_no: str) -> None:
        self.epay.pay(self.trade_no(out_trade_no))

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta.total_seconds())


def make_shop(store: Store | None = None, *, notify_method: str = "GET", **settings: Any) -> Shop:
    clock = ManualClock(START)
    sandbox = Sandbox(clock=clock)
    app = create_app(sandbox)
    received: list[httpx.Request] = []
    holder: dict[str, PayHub] = {}

    def shop_endpoint(request: httpx.Request) -> httpx.Response:
        received.append(request)
        body = request.url.query if request.method == "GET" else request.content
        outcome = holder["hub"].handle_notification("epay", request.headers, body)
        return httpx.Response(outcome.ack.status_code, content=outcome.ack.body)

    transport = httpx.MockTransport(shop_endpoint)
    epay = init_app(app, EpaySimulator(clock=clock, notify_transport=transport))
    epay.add_merchant(PID, KEY, notify_method="POST" if notify_method == "POST" else "GET")
    epay.add_merchant(OTHER_PID, OTHER_KEY)
    channel = EpayChannel("epay", EpayConfig.validated("epay", config(**settings)), clock=clock.now)
    http = httpx.Client(transport=httpx.WSGITransport(app=app))
    hub = PayHub(channels=[channel], http_client=http, store=store)
    holder["hub"] = hub
    return Shop(clock, epay, hub, channel, store, http, received)
