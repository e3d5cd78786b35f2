"""payhub's own Alipay channel against the sandbox, in-process.

The two are written independently from PROTOCOLS.md; they must agree on the
wire. (The sandbox itself never imports ``payhub.channels``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from payhub_sandbox import CHINA_TZ, Sandbox, create_app
from sandbox_support import APP_ID, SELLER_ID, Shop

from payhub import PayHub, models
from payhub.errors import ChannelError, ErrorCode
from payhub.money import Money

alipay_channel = pytest.importorskip("payhub.channels.alipay")

GATEWAY = "http://sandbox.test/gateway.do"


@pytest.fixture
def live(platform_keys, merchant_keys) -> Iterator[tuple[Sandbox, Shop, object, httpx.Client]]:
    shop = Shop()
    box = Sandbox(  # the real clock: payhub stamps requests with it
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        notify_transport=shop.transport,
        base_url="http://sandbox.test",
        bills_ready_immediately=True,
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    channel = alipay_channel.AlipayChannel.from_config(
        "alipay",
        {
            "app_id": APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "alipay_public_key": box.alipay_public_key_pem,
            "environment": "sandbox",
            "gateway": GATEWAY,
            "bill_download_hosts": ["http://sandbox.test"],
            "seller_id": SELLER_ID,
        },
    )
    hub = PayHub(channels=[channel], http_client=http)
    yield box, shop, hub, http
    http.close()
    box.stop()


def _request(out_trade_no: str, method: str, minor: int = 1000) -> object:
    return models.PaymentRequest(
        out_trade_no=out_trade_no,
        amount=Money(minor),
        subject="礼品卡 / gift card",
        method=method,
        notify_url="http://shop.test/alipay/notify",
        return_url="http://shop.test/return",
        channel="alipay",
    )


def test_qr_pay_query_notify_refund(live) -> None:
    box, shop, hub, _ = live
    result = hub.pay(_request("I1", "qr"))
    assert result.qr_code.startswith("http://sandbox.test/alipay/cashier/")
    box.alipay.scan(APP_ID, "I1")  # before the scan Alipay answers ACQ.TRADE_NOT_EXIST
    assert hub.query("alipay", "I1").status == models.PaymentStatus.PENDING

    box.alipay.pay(APP_ID, "I1")
    paid = hub.query("alipay", "I1")
    assert paid.status == models.PaymentStatus.PAID
    assert paid.amount == Money(1000)

    box.deliver_due()
    (sent,) = shop.requests
    outcome = hub.handle_notification("alipay", sent.headers, sent.content)
    assert outcome.accepted, outcome.error
    assert outcome.ack.body == b"success"
    assert outcome.notification.amount == Money(1000)

    refund = hub.refund(
        "alipay",
        models.RefundRequest(out_trade_no="I1", out_refund_no="R1", amount=Money(400)),
    )
    assert refund.refunded_total == Money(400)
    with pytest.raises(ChannelError) as caught:
        hub.refund(
            "alipay",
            models.RefundRequest(out_trade_no="I1", out_refund_no="R2", amount=Money(601)),
        )
    assert caught.value.code is ErrorCode.REFUND_EXCEEDS_PAID

    box.deliver_due()
    refund_note = shop.requests[-1]
    outcome = hub.handle_notification("alipay", refund_note.headers, refund_note.content)
    assert outcome.accepted, outcome.error
    assert outcome.notification.refunded_total == Money(400)

    with pytest.raises(ChannelError) as missing:
        hub.query("alipay", "NOPE")
    assert missing.value.code is ErrorCode.TRADE_NOT_FOUND


def test_page_pay_url_reaches_the_cashier(live) -> None:
    box, _, hub, http = live
    result = hub.pay(_request("I2", "page"))
    response = http.get(result.redirect_url)
    assert response.status_code == 302, response.text
    cashier = urlsplit(response.headers["location"]).path
    paid = http.post(f"http://sandbox.test{cashier}")
    assert paid.status_code == 302
    back = urlsplit(paid.headers["location"])
    info = hub.channel("alipay").parse_return(dict(httpx.QueryParams(back.query)))
    assert info.out_trade_no == "I2"
    assert box.alipay_trade(APP_ID, "I2").state.value == "PAID"


def test_gbk_notification_with_lying_content_type(live, merchant_keys) -> None:
    box, shop, hub, _ = live
    box.add_alipay_merchant(
        APP_ID, merchant_keys.public_pem, SELLER_ID, charset="gbk", lie_content_type=True
    )
    hub.pay(_request("I3", "qr"))
    box.alipay.pay(APP_ID, "I3")
    box.deliver_due()
    (sent,) = shop.requests
    outcome = hub.handle_notification("alipay", sent.headers, sent.content)
    assert outcome.accepted, outcome.error


def test_bill(live) -> None:
    box, _, hub, _ = live
    hub.pay(_request("I4", "qr", 2500))
    paid = box.alipay.pay(APP_ID, "I4")
    assert paid.paid_at is not None
    (record,) = hub.download_bill("alipay", paid.paid_at.astimezone(CHINA_TZ).date())
    assert record.out_trade_no == "I4"
    assert record.amount == Money(2500)
