"""A real third-party Alipay SDK, ``python-alipay-sdk`` (``alipay.AliPay``), against
the sandbox served live on a loopback port.

The sandbox implements the protocol, not payhub's habits: a widely used client
library written by someone else must work against it unmodified except for the
gateway URL. None of the SDK's signing, request building, response locating or
signature verification is patched here.

What had to be set to point the SDK at the sandbox:

* the gateway. ``AliPay.__init__`` hard-codes it from ``debug``
  (``https://openapi.alipay.com/gateway.do`` or Alipay's own sandbox) and has no
  argument for it; every request goes to ``self._gateway + "?" + signed query``
  (``verified_sync_response``). We assign ``client._gateway`` after
  construction, the SDK's only gateway setting; nothing else on the client is
  touched.
* the process time zone. The SDK stamps requests with naive ``datetime.now()``,
  i.e. it assumes the host runs on Beijing time; Alipay (and the sandbox, with
  a 15-minute tolerance) reads ``timestamp`` as Asia/Shanghai. The fixture
  runs the test with ``TZ=Asia/Shanghai`` (what a deployment of this SDK must
  do anyway), and restores the zone afterwards.

The SDK speaks HTTP through ``urllib.request.urlopen`` (GET, everything in the
query string), not ``requests``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from payhub_sandbox import Sandbox, create_app
from sandbox_support import APP_ID, SELLER_ID, Shop
from werkzeug.serving import make_server

alipay_sdk = pytest.importorskip("alipay", reason="python-alipay-sdk is not installed")

NOTIFY_URL = "http://shop.test/alipay/notify"
RETURN_URL = "http://shop.test/alipay/return"


@dataclass
class Live:
    box: Sandbox
    shop: Shop
    base: str
    client: alipay_sdk.AliPay


@pytest.fixture
def beijing_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with the host on Asia/Shanghai: the SDK stamps requests with local time."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _sdk(app_private_pem: str, alipay_public_pem: str, gateway: str) -> alipay_sdk.AliPay:
    client = alipay_sdk.AliPay(
        appid=APP_ID,
        app_notify_url=NOTIFY_URL,
        app_private_key_string=app_private_pem,
        alipay_public_key_string=alipay_public_pem,
        sign_type="RSA2",
        debug=False,
    )
    client._gateway = gateway  # the only change: no constructor argument exists for it
    return client


@pytest.fixture
def live(
    platform_keys, merchant_keys, beijing_time, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Live]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # urllib honours *_proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    shop = Shop()
    box = Sandbox(  # the real clock: the SDK stamps requests with it
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        notify_transport=shop.transport,
        bills_ready_immediately=True,
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    server = make_server("127.0.0.1", 0, create_app(box), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    box.base_url = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = _sdk(merchant_keys.private_pem, box.alipay_public_key_pem, f"{base}/gateway.do")
    try:
        yield Live(box, shop, base, client)
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
        box.stop()


def _verified(client: alipay_sdk.AliPay, form: dict[str, str]) -> bool:
    """Verify a notification / return with the SDK's own ``verify``."""
    data = dict(form)
    signature = data.pop("sign")
    return bool(client.verify(data, signature))


def test_precreate_pay_query_notify_refund(live: Live) -> None:
    client, box, shop = live.client, live.box, live.shop
    made = client.api_alipay_trade_precreate(
        subject="礼品卡 / gift card", out_trade_no="TP-A1", total_amount="10.00"
    )
    assert made["code"] == "10000", made
    assert made["out_trade_no"] == "TP-A1"
    assert made["qr_code"].startswith(f"{live.base}/alipay/cashier/")

    # Alipay has no trade until the buyer scans the QR code
    unscanned = client.api_alipay_trade_query(out_trade_no="TP-A1")
    assert unscanned["sub_code"] == "ACQ.TRADE_NOT_EXIST", unscanned
    box.alipay.scan(APP_ID, "TP-A1")
    waiting = client.api_alipay_trade_query(out_trade_no="TP-A1")
    assert waiting["code"] == "10000", waiting
    assert waiting["trade_status"] == "WAIT_BUYER_PAY"

    box.alipay.pay(APP_ID, "TP-A1")
    paid = client.api_alipay_trade_query(out_trade_no="TP-A1")
    assert paid["code"] == "10000", paid
    assert paid["trade_status"] == "TRADE_SUCCESS"
    assert paid["total_amount"] == "10.00"
    assert paid["out_trade_no"] == "TP-A1"
    assert paid["trade_no"] == made["qr_code"].rsplit("/", 1)[1]

    box.deliver_due()
    (sent,) = shop.requests
    assert str(sent.url) == NOTIFY_URL
    form = dict(parse_qsl(sent.content.decode(), keep_blank_values=True))
    assert form["trade_status"] == "TRADE_SUCCESS"
    assert form["out_trade_no"] == "TP-A1"
    assert form["total_amount"] == "10.00"
    assert _verified(client, form)
    assert not _verified(client, {**form, "total_amount": "1000.00"})

    refund = client.api_alipay_trade_refund("4.00", out_trade_no="TP-A1", out_request_no="TP-A1-R1")
    assert refund["code"] == "10000", refund
    assert refund["refund_fee"] == "4.00"
    assert refund["fund_change"] == "Y"
    again = client.api_alipay_trade_refund(  # same out_request_no: idempotent
        "4.00", out_trade_no="TP-A1", out_request_no="TP-A1-R1"
    )
    assert again["code"] == "10000", again
    assert again["refund_fee"] == "4.00"
    assert again["fund_change"] == "N"
    too_much = client.api_alipay_trade_refund(
        "6.01", out_trade_no="TP-A1", out_request_no="TP-A1-R2"
    )
    assert too_much["code"] == "40004", too_much
    assert too_much["sub_code"] == "ACQ.REASON_TRADE_REFUND_FEE_ERR"

    box.deliver_due()
    refund_note = shop.requests[-1]
    assert refund_note is not sent
    refund_form = dict(parse_qsl(refund_note.content.decode(), keep_blank_values=True))
    assert refund_form["refund_fee"] == "4.00"
    assert _verified(client, refund_form)

    missing = client.api_alipay_trade_query(out_trade_no="TP-NOPE")
    assert missing["code"] == "40004"
    assert missing["sub_code"] == "ACQ.TRADE_NOT_EXIST"


def test_close_an_unpaid_trade(live: Live) -> None:
    client, box = live.client, live.box
    made = client.api_alipay_trade_precreate(
        subject="gift card", out_trade_no="TP-A2", total_amount="5.00"
    )
    assert made["code"] == "10000", made
    box.alipay.scan(APP_ID, "TP-A2")
    closed = client.api_alipay_trade_close(out_trade_no="TP-A2")
    assert closed["code"] == "10000", closed
    assert closed["out_trade_no"] == "TP-A2"
    assert client.api_alipay_trade_query(out_trade_no="TP-A2")["trade_status"] == "TRADE_CLOSED"
    assert box.alipay_trade(APP_ID, "TP-A2").state.value == "CLOSED"


def test_page_pay_reaches_the_cashier_and_returns_signed(live: Live) -> None:
    client, box = live.client, live.box
    query = client.api_alipay_trade_page_pay(
        subject="礼品卡", out_trade_no="TP-A3", total_amount="12.34", return_url=RETURN_URL
    )
    with httpx.Client(trust_env=False) as browser:
        opened = browser.get(f"{client._gateway}?{query}")
        assert opened.status_code == 302, opened.text
        cashier = opened.headers["location"]
        assert cashier.startswith(f"{live.base}/alipay/cashier/")
        assert browser.get(cashier).status_code == 200
        paid = browser.post(cashier)
    assert paid.status_code == 302, paid.text
    back = urlsplit(paid.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == RETURN_URL
    params = dict(parse_qsl(back.query, keep_blank_values=True))
    assert params["out_trade_no"] == "TP-A3"
    assert params["total_amount"] == "12.34"
    assert _verified(client, params)
    assert box.alipay_trade(APP_ID, "TP-A3").state.value == "PAID"
    assert client.api_alipay_trade_query(out_trade_no="TP-A3")["trade_status"] == "TRADE_SUCCESS"


def test_the_sdk_rejects_answers_signed_by_another_key(live: Live, merchant_keys, other_keys):
    """Response verification is really on: configured with the wrong Alipay public key,
    the same SDK refuses the sandbox's (correctly signed) answer."""
    live.client.api_alipay_trade_precreate(
        subject="gift card", out_trade_no="TP-A4", total_amount="1.00"
    )
    wrong = _sdk(merchant_keys.private_pem, other_keys.public_pem, live.client._gateway)
    with pytest.raises(alipay_sdk.AliPayValidationError):
        wrong.api_alipay_trade_query(out_trade_no="TP-A4")


def test_the_sandbox_rejects_a_request_signed_by_another_key(live: Live, other_keys) -> None:
    """And the other way: the sandbox checks the SDK's signature. (Its error answer is
    signed too, so the SDK returns it after verifying it rather than raising.)"""
    impostor = _sdk(other_keys.private_pem, live.box.alipay_public_key_pem, live.client._gateway)
    answer = impostor.api_alipay_trade_query(out_trade_no="TP-A5")
    assert answer["code"] == "40002", answer
    assert answer["sub_code"] == "isv.invalid-signature"


def test_timestamp_is_checked(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the fixture pins TZ: on a UTC host the SDK's naive local stamp is 8 h off
    Beijing time and the sandbox, like Alipay, refuses it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        answer = live.client.api_alipay_trade_query(out_trade_no="TP-A6")
    finally:
        os.environ["TZ"] = "Asia/Shanghai"
        time.tzset()
    assert answer["code"] == "40002", answer
    assert answer["sub_code"] == "isv.invalid-timestamp"
