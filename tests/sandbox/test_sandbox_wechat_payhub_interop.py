"""payhub's own WeChat Pay channel against the sandbox, in-process.

The two are written independently from PROTOCOLS.md; they must agree on the
wire. (The sandbox itself never imports ``payhub.channels``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from payhub_sandbox import CHINA_TZ, Sandbox, create_app
from sandbox_support import Shop
from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, spare_key

from payhub import PayHub, models
from payhub.errors import ChannelError, ErrorCode
from payhub.money import Money

wechat_channel = pytest.importorskip(
    "payhub.channels.wechat", reason="payhub.channels.wechat (WechatPayChannel) is not there yet"
)

BASE = "http://sandbox.test"
SERIAL = "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F"


@dataclass
class Live:
    box: Sandbox
    shop: Shop
    hub: PayHub
    http: httpx.Client


@pytest.fixture(params=["public_key", "certificate"])
def live(request, merchant_keys, platform_keys) -> Iterator[Live]:
    mode = request.param
    shop = Shop()
    box = Sandbox(  # the real clock: payhub stamps requests and checks answers with it
        time_factor=60,
        notify_transport=shop.transport,
        base_url=BASE,
        bills_ready_immediately=True,
        alipay_platform_key=platform_keys.private,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=spare_key(),
    )
    box.add_wechat_merchant(MCHID, APPID, SERIAL, merchant_keys.public_pem, API_V3_KEY, mode)
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    config = {
        "mch_id": MCHID,
        "app_id": APPID,
        "merchant_private_key": merchant_keys.private_pem,
        "merchant_serial_no": SERIAL,
        "api_v3_key": API_V3_KEY.decode(),
        "environment": "sandbox",
        "base_url": BASE,
        "notify_url": "http://shop.test/wechat/notify",
        "refund_notify_url": "http://shop.test/wechat/refund-notify",
    }
    if mode == "public_key":
        config["wechatpay_public_key"] = box.wechat_public_key_pem
        config["wechatpay_public_key_id"] = box.wechat_public_key_id
    channel = wechat_channel.WechatPayChannel.from_config("wechat", config)
    hub = PayHub(channels=[channel], http_client=http)
    yield Live(box, shop, hub, http)
    http.close()
    box.stop()


def _request(out_trade_no: str, minor: int = 1000) -> models.PaymentRequest:
    return models.PaymentRequest(
        out_trade_no=out_trade_no,
        amount=Money(minor),
        subject="礼品卡 / gift card",
        method="qr",
        channel="wechat",
    )


def test_native_pay_notify_query_refund_bill(live: Live) -> None:
    box, shop, hub = live.box, live.shop, live.hub
    result = hub.pay(_request("WX-INTEROP-1"))
    assert result.qr_code.startswith(f"{BASE}/wechat/pay/")
    assert live.http.get(result.qr_code).status_code == 200
    assert hub.query("wechat", "WX-INTEROP-1").status == models.PaymentStatus.PENDING

    box.wechat.pay(MCHID, "WX-INTEROP-1")
    box.deliver_due()
    (sent,) = shop.requests
    outcome = hub.handle_notification("wechat", sent.headers, sent.content)
    assert outcome.accepted, outcome.error
    assert outcome.notification.amount == Money(1000)
    assert outcome.ack.status_code in (200, 204)

    paid = hub.query("wechat", "WX-INTEROP-1")
    assert paid.status == models.PaymentStatus.PAID
    assert paid.amount == Money(1000)

    refund = hub.refund(
        "wechat",
        models.RefundRequest(
            out_trade_no="WX-INTEROP-1",
            out_refund_no="WX-R-1",
            amount=Money(400),
            total=Money(1000),
        ),
    )
    assert refund.amount == Money(400)
    box.deliver_due()  # the refund settles; REFUND.SUCCESS goes out
    refund_note = shop.requests[-1]
    assert refund_note is not sent
    outcome = hub.handle_notification("wechat", refund_note.headers, refund_note.content)
    assert outcome.accepted, outcome.error
    queried = hub.refund_query(
        "wechat", models.RefundQueryRequest(out_trade_no="WX-INTEROP-1", out_refund_no="WX-R-1")
    )
    assert queried.status == models.RefundStatus.SUCCEEDED

    with pytest.raises(ChannelError) as missing:
        hub.query("wechat", "NO-SUCH-ORDER")
    assert missing.value.code is ErrorCode.TRADE_NOT_FOUND

    day = datetime.now(CHINA_TZ).date()
    records = hub.download_bill("wechat", day)
    assert {r.out_trade_no for r in records} == {"WX-INTEROP-1"}
    by_kind = {r.kind: r for r in records}
    assert by_kind[models.BillRecordKind.PAYMENT].amount == Money(1000)
    assert by_kind[models.BillRecordKind.PAYMENT].fee == Money(6)
    assert by_kind[models.BillRecordKind.REFUND].amount == Money(-400)
    assert by_kind[models.BillRecordKind.REFUND].out_refund_no == "WX-R-1"


def test_rotation_is_followed(live: Live) -> None:
    box, hub = live.box, live.hub
    hub.pay(_request("WX-INTEROP-2"))
    box.rotate_wechat_platform_certificate()
    assert hub.query("wechat", "WX-INTEROP-2").status == models.PaymentStatus.PENDING
    box.wechat.pay(MCHID, "WX-INTEROP-2")
    box.deliver_due()
    outcome = hub.handle_notification(
        "wechat", live.shop.requests[-1].headers, live.shop.requests[-1].content
    )
    assert outcome.accepted, outcome.error


def test_business_errors_map(live: Live) -> None:
    box, hub = live.box, live.hub
    hub.pay(_request("WX-INTEROP-3"))
    box.wechat.pay(MCHID, "WX-INTEROP-3")
    with pytest.raises(ChannelError) as paid:
        hub.pay(_request("WX-INTEROP-3"))
    assert paid.value.code is ErrorCode.TRADE_ALREADY_PAID
    assert not paid.value.retryable
    box.wechat.fail("SYSTEM_ERROR")
    with pytest.raises(ChannelError) as busy:
        hub.query("wechat", "WX-INTEROP-3")
    assert busy.value.retryable


def test_refund_limits_close_and_other_methods(live: Live, merchant_keys) -> None:
    box, hub = live.box, live.hub
    box.add_wechat_merchant(  # refunds stay PROCESSING for a minute (one second here)
        MCHID,
        APPID,
        SERIAL,
        merchant_keys.public_pem,
        API_V3_KEY,
        box.wechat_merchant(MCHID).key_mode,
        refund_delay=60,
    )
    hub.pay(_request("WX-INTEROP-4"))
    box.wechat.pay(MCHID, "WX-INTEROP-4")
    first = hub.refund(
        "wechat",
        models.RefundRequest(
            out_trade_no="WX-INTEROP-4",
            out_refund_no="WX-R-4",
            amount=Money(600),
            total=Money(1000),
        ),
    )
    assert first.status == models.RefundStatus.PENDING
    with pytest.raises(ChannelError) as over:
        hub.refund(
            "wechat",
            models.RefundRequest(
                out_trade_no="WX-INTEROP-4",
                out_refund_no="WX-R-5",
                amount=Money(401),
                total=Money(1000),
            ),
        )
    assert over.value.channel_code == "INVALID_REQUEST"
    assert not over.value.retryable
    unknown = hub.refund_query(
        "wechat", models.RefundQueryRequest(out_trade_no="WX-INTEROP-4", out_refund_no="NOPE-1")
    )
    assert unknown.status == models.RefundStatus.NOT_FOUND

    hub.pay(_request("WX-INTEROP-5"))
    hub.close_trade("wechat", "WX-INTEROP-5")
    assert hub.query("wechat", "WX-INTEROP-5").status == models.PaymentStatus.CLOSED

    jsapi = hub.pay(
        models.PaymentRequest(
            out_trade_no="WX-INTEROP-6",
            amount=Money(1),
            subject="JSAPI",
            method="jsapi",
            channel="wechat",
            buyer={"openid": "o-interop"},
        )
    )
    assert jsapi.app_params["package"].startswith("prepay_id=wx")
    h5 = hub.pay(
        models.PaymentRequest(
            out_trade_no="WX-INTEROP-7",
            amount=Money(1),
            subject="H5",
            method="h5",
            channel="wechat",
            buyer={"ip": "127.0.0.1"},
        )
    )
    assert h5.redirect_url.startswith(f"{BASE}/wechat/pay/")


def test_a_day_without_trades_has_an_empty_bill(live: Live) -> None:
    """WeChat answers NO_STATEMENT_EXIST for a day with no trades: an empty bill, not an error."""
    quiet_day = datetime.now(CHINA_TZ).date() - timedelta(days=3)
    assert live.hub.download_bill("wechat", quiet_day) == []


def test_refund_whose_notification_was_lost_is_recovered_by_sync(live: Live, tmp_path) -> None:
    """WeChat Pay answers a refund PROCESSING; the result comes by REFUND.SUCCESS.
    When that notification never arrives, sync_pending's refund query applies it."""
    from payhub.store import PaymentState, RefundState, Store

    box, shop = live.box, live.shop
    with Store(f"sqlite:///{tmp_path / 'payhub.db'}") as store:
        store.upgrade()
        hub = PayHub(channels=list(live.hub.channels.values()), http_client=live.http, store=store)
        hub.pay(_request("WX-INTEROP-6"))
        box.wechat.pay(MCHID, "WX-INTEROP-6")
        box.deliver_due()
        (sent,) = shop.requests
        assert hub.handle_notification("wechat", sent.headers, sent.content).accepted
        refund = hub.refund(
            None,
            models.RefundRequest(
                out_trade_no="WX-INTEROP-6", out_refund_no="WX-R-6", amount=Money(250)
            ),
        )
        assert refund.status is models.RefundStatus.PENDING
        assert store.refund("WX-R-6").status is RefundState.PENDING
        box.deliver_due()  # the refund settles at WeChat Pay; its notification is lost
        report = hub.sync_pending(older_than=timedelta(0))
        assert (report.refunds_changed, report.refund_errors) == (
            {"WX-R-6": RefundState.SUCCEEDED},
            {},
        )
        # The lost notification turns up after all: a duplicate.
        late = shop.requests[-1]
        assert late is not sent
        assert hub.handle_notification("wechat", late.headers, late.content).accepted
        record = store.payment("WX-INTEROP-6")
        assert (record.status, record.refunded) == (PaymentState.PARTIALLY_REFUNDED, Money(250))
        types = [e.type for e in store.events(out_trade_no="WX-INTEROP-6")]
        assert types.count("payment.refunded") == 1
