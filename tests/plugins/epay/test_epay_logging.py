"""The merchant key never reaches a log record, at DEBUG, across pay, query, refund
and notifications: over real HTTP, so httpx's and httpcore's own loggers speak."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import httpx
import pytest
from epay_support import PID, START, config
from payhub_epay import REDACTED, EpayChannel, EpayConfig
from payhub_epay_sandbox import EpaySimulator, init_app
from payhub_sandbox import ManualClock, Sandbox, create_app
from werkzeug.serving import make_server

from payhub import BuyerHints, PayHub, PaymentRequest, PayMethod, RefundRequest
from payhub.money import Money

# A key with characters that URL-encoding changes: every form must be redacted.
KEY = "Sk+y/8=Q&m%Z t9"


@pytest.fixture
def served() -> Iterator[tuple[str, EpaySimulator, dict[str, PayHub]]]:
    clock = ManualClock(START)
    app = create_app(Sandbox(clock=clock))
    holder: dict[str, PayHub] = {}

    def shop(request: httpx.Request) -> httpx.Response:
        body = request.url.query if request.method == "GET" else request.content
        outcome = holder["hub"].handle_notification("epay", request.headers, body)
        return httpx.Response(outcome.ack.status_code, content=outcome.ack.body)

    epay = init_app(app, EpaySimulator(clock=clock, notify_transport=httpx.MockTransport(shop)))
    epay.add_merchant(PID, KEY)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/epay/", epay, holder
    finally:
        server.shutdown()
        thread.join(5)


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def _leaks(records: list[logging.LogRecord]) -> list[str]:
    leaks = []
    for record in records:
        text = " ".join(
            [record.getMessage(), repr(record.args), repr(record.__dict__), str(record.exc_text)]
        )
        if any(form in text for form in _forms(KEY)):
            leaks.append(f"{record.name}: {record.getMessage()[:200]}")
    return leaks


def test_no_log_record_carries_the_key(
    served: tuple[str, EpaySimulator, dict[str, PayHub]], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, epay, holder = served
    caplog.set_level(logging.DEBUG)
    channel = EpayChannel(
        "epay", EpayConfig.validated("epay", config(key=KEY, gateway=gateway)), clock=lambda: START
    )
    with PayHub(channels=[channel], http_client=httpx.Client(timeout=10)) as hub:
        holder["hub"] = hub
        request = PaymentRequest(
            out_trade_no="LOG-1",
            amount=Money(1000),
            subject="Card",
            method=PayMethod.QR,
            buyer=BuyerHints(ip="203.0.113.9"),
        )
        hub.pay(request)
        hub.pay(request.model_copy(update={"method": PayMethod.PAGE, "out_trade_no": "LOG-2"}))
        hub.query("epay", "LOG-1")
        epay.pay(epay.order_by_out(PID, "LOG-1").trade_no)
        assert epay.deliver_due()[0].acknowledged
        hub.handle_notification("epay", {}, b"pid=1001&sign=0&money=1")  # a forged one
        hub.refund(
            "epay", RefundRequest(out_trade_no="LOG-1", out_refund_no="R-1", amount=Money(100))
        )
        with pytest.raises(Exception):  # noqa: B017,PT011 - any refusal: only its logs matter
            hub.query("epay", "NO-SUCH-ORDER")

    names = {r.name for r in caplog.records}
    assert {"httpx", "httpcore.connection", "httpcore.http11"} <= names, names
    # httpx's INFO request line is there, with the key redacted.
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("act=order" in line and f"key={REDACTED}" in line for line in lines), lines
    assert _leaks(caplog.records) == []
