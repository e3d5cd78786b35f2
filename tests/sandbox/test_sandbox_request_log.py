"""No full signature, key or token in a log line: the sandbox's request log
(werkzeug's, at INFO) and payhub's HTTP client log (httpx's, at INFO).

payhub's Alipay channel sends ``sign`` in the query string of ``gateway.do`` and
the console opens at ``/?token=…``: both servers and clients would log those
URLs whole. Here payhub talks to a live sandbox over a real socket with INFO
logging captured, and every line naming the gateway must carry ``sign_type``
(so the query string was logged) but never a signature's value.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from payhub_sandbox import Sandbox, create_app
from payhub_sandbox._serving import make_sandbox_server
from sandbox_support import APP_ID, SELLER_ID, Shop

from payhub import PayHub, models
from payhub.money import Money
from payhub.signing import redact_url_secrets

alipay_channel = pytest.importorskip("payhub.channels.alipay")

#: A ``sign=`` (any case, any prefix such as ``paySign``) whose value is not redacted.
UNREDACTED = re.compile(r"(?i)sign(?:ature)?=(?!\[redacted\])")


@contextmanager
def _serve(app: object) -> Iterator[str]:
    server = make_sandbox_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _lines(caplog: pytest.LogCaptureFixture, logger: str, needle: str) -> list[str]:
    """The captured lines of ``logger`` holding ``needle``, once werkzeug (which logs
    a request after answering it, on the server's thread) has written them."""
    give_up = time.monotonic() + 10
    while True:
        found = [r.getMessage() for r in caplog.records if r.name == logger]
        found = [line for line in found if needle in line]
        if found or time.monotonic() > give_up:
            return found
        time.sleep(0.02)


@pytest.fixture
def box(platform_keys, merchant_keys) -> Iterator[Sandbox]:
    sandbox = Sandbox(
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        notify_transport=Shop().transport,
    )
    sandbox.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    yield sandbox
    sandbox.stop()


def test_payhub_and_the_sandbox_log_alipay_calls_without_the_signature(
    box: Sandbox, merchant_keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with _serve(create_app(box)) as url:
        box.base_url = url
        channel = alipay_channel.AlipayChannel.from_config(
            "alipay",
            {
                "app_id": APP_ID,
                "app_private_key": merchant_keys.private_pem,
                "alipay_public_key": box.alipay_public_key_pem,
                "environment": "sandbox",
                "gateway": f"{url}/gateway.do",
                "seller_id": SELLER_ID,
            },
        )
        with httpx.Client() as http:  # a real client: httpx logs each request at INFO
            hub = PayHub(channels=[channel], http_client=http)
            request = models.PaymentRequest(
                out_trade_no="LOG1",
                amount=Money(1000),
                subject="gift card",
                method="qr",
                notify_url="http://shop.test/alipay/notify",
                channel="alipay",
            )
            assert hub.pay(request).qr_code
            box.alipay.scan(APP_ID, "LOG1")
            assert hub.query("alipay", "LOG1").status is models.PaymentStatus.PENDING
            # The cashier page a browser opens carries the signature too.
            page = hub.pay(request.model_copy(update={"out_trade_no": "LOG2", "method": "page"}))
            assert "sign=" in page.redirect_url
            assert http.get(page.redirect_url).status_code == 302  # on to the cashier page

        client_lines = _lines(caplog, "httpx", "gateway.do?")
        server_lines = _lines(caplog, "werkzeug", "gateway.do?")
        assert len(client_lines) == 3  # the pay, the query and the cashier page
        assert len(server_lines) == 3
        for line in client_lines + server_lines:
            assert "sign_type=RSA2" in line, line
            assert "sign=[redacted]" in line, line
            assert not UNREDACTED.search(line), line
        assert not UNREDACTED.search(caplog.text)


def test_the_console_token_stays_out_of_the_request_log(
    box: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = "console-token-d41d8cd98f00b204"
    with _serve(create_app(box, token=token)) as url, httpx.Client() as http:
        assert http.get(f"{url}/?token=wrong-{token}").status_code == 403
        assert http.get(f"{url}/?lang=zh&token={token}").status_code == 303  # to /, with a cookie
    lines = _lines(caplog, "werkzeug", "token=")
    assert len(lines) == 2
    assert all("token=[redacted]" in line for line in lines), lines
    assert token not in caplog.text
    assert "lang=zh" in lines[1]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "POST http://x/gateway.do?app_id=1&sign_type=RSA2&sign=AbC%2B%2F%3D&v=1 HTTP/1.1",
            "POST http://x/gateway.do?app_id=1&sign_type=RSA2&sign=[redacted]&v=1 HTTP/1.1",
        ),
        ('"GET /?token=T0k HTTP/1.1" 200 -', '"GET /?token=[redacted] HTTP/1.1" 200 -'),
        (
            "/robot/send?access_token=abc&timestamp=1&sign=xyz",
            "/robot/send?access_token=[redacted]&timestamp=1&sign=[redacted]",
        ),
        ("/api.php?act=order&pid=1&key=K3y", "/api.php?act=order&pid=1&key=[redacted]"),
        ("/pay?signature=s1&paySign=s2", "/pay?signature=[redacted]&paySign=[redacted]"),
        ("/pay?out_trade_no=designer&subject=key", "/pay?out_trade_no=designer&subject=key"),
    ],
)
def test_redact_url_secrets(line: str, expected: str) -> None:
    assert redact_url_secrets(line) == expected
