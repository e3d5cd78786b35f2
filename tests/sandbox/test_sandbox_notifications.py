"""Asynchronous notifications: content, signature, charset, retry schedule."""

from __future__ import annotations

import itertools
import json
import time
from urllib.parse import parse_qsl

import httpx
import pytest
from flask import Flask, request
from payhub_sandbox import DeliveryStatus, ManualClock, Sandbox, create_app
from sandbox_alipay_client import AlipayWireClient, notification_verifies, parse_form
from sandbox_support import APP_ID, NOTIFY_URL, SELLER_ID, Shop, new_trade

MINUTE = 60 / 60  # one minute of Alipay time at time factor 60
HOUR = 60 * MINUTE


def test_pay_notification(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, platform_keys
) -> None:
    trade_no = new_trade(alipay, "T1", "88.80")
    assert sandbox.deliver_due() == []  # creating a trade notifies nothing
    sandbox.alipay.pay(APP_ID, "T1", buyer_id="2088102000001234")
    attempts = sandbox.deliver_due()
    assert len(attempts) == 1
    attempt = attempts[0]
    assert (attempt.number, attempt.status_code, attempt.response_body) == (1, 200, "success")
    assert attempt.acknowledged
    assert attempt.at == sandbox.clock.now()

    (sent,) = shop.requests
    assert sent.method == "POST"
    assert str(sent.url) == NOTIFY_URL
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    form = parse_form(sent.content)
    assert notification_verifies(form, platform_keys.public)
    assert form["sign_type"] == "RSA2"
    expected = {
        "notify_type": "trade_status_sync",
        "app_id": APP_ID,
        "auth_app_id": APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": trade_no,
        "out_trade_no": "T1",
        "seller_id": SELLER_ID,
        "buyer_id": "2088102000001234",
        "buyer_logon_id": "138****1234",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.80",
        "receipt_amount": "88.80",
        "invoice_amount": "88.80",
        "buyer_pay_amount": "88.80",
        "point_amount": "0.00",
        "gmt_create": "2024-03-01 10:00:00",
        "gmt_payment": "2024-03-01 10:00:00",
        "notify_time": "2024-03-01 10:00:00",
        "subject": "Gift card 礼品卡",
    }
    assert {k: form[k] for k in expected} == expected
    assert json.loads(form["fund_bill_list"]) == [
        {"amount": "88.80", "fundChannel": "ALIPAYACCOUNT"}
    ]
    assert form["notify_id"] == attempt.event_id
    assert "refund_fee" not in form
    assert "gmt_close" not in form
    assert all(v != "" for v in form.values())  # empty values are left out


def test_forged_or_altered_fields_do_not_verify(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, platform_keys, other_keys
) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    sandbox.deliver_due()
    form = shop.forms()[0]
    assert not notification_verifies(form, other_keys.public)
    assert not notification_verifies({**form, "total_amount": "0.01"}, platform_keys.public)
    # sign_type is outside the signed string
    assert notification_verifies({**form, "sign_type": "RSA2 "}, platform_keys.public)


def test_no_notify_url_no_notification(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T1", "total_amount": "1.00", "subject": "s"},
    )
    sandbox.alipay.pay(APP_ID, "T1")
    assert sandbox.deliver_due(force=True) == []
    assert sandbox.notifications == []


def test_resent_on_alipays_schedule_until_success(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, clock: ManualClock
) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    shop.answers = ["fail", 500, "SUCCESS", "success\n", httpx.ConnectError("refused")]
    assert len(sandbox.deliver_due()) == 1  # attempt 1 at once

    # Alipay's gaps: 4m, 10m, 10m, 1h, ... (time factor 60: minutes become seconds)
    for gap in (4 * MINUTE, 10 * MINUTE, 10 * MINUTE, 1 * HOUR, 2 * HOUR):
        clock.advance(gap - 0.5)
        assert sandbox.deliver_due() == [], "delivered early"
        clock.advance(0.5)
        assert len(sandbox.deliver_due()) == 1
    attempts = sandbox.deliveries
    assert [a.number for a in attempts] == [1, 2, 3, 4, 5, 6]
    assert [a.acknowledged for a in attempts] == [False] * 5 + [True]
    assert attempts[1].status_code == 500
    assert attempts[4].status_code is None
    assert attempts[4].error is not None
    assert "ConnectError" in attempts[4].error
    assert attempts[5].response_body == "success"
    # every resend is the same event, byte for byte
    assert len({a.event_id for a in attempts}) == 1
    assert len({r.content for r in shop.requests}) == 1
    # acknowledged: never sent again
    clock.advance(30 * HOUR)
    assert sandbox.deliver_due(force=True) == []
    (notification,) = sandbox.notifications
    assert notification.status is DeliveryStatus.ACKNOWLEDGED
    assert notification.attempts == 6


def test_gives_up_after_eight_attempts(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, clock: ManualClock
) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    shop.answers = ["fail"] * 20
    times = []
    for _ in range(1500):  # 25 minutes of sandbox time: 25 hours of Alipay's
        made = sandbox.deliver_due()
        times.extend(a.at for a in made)
        clock.advance(1 * MINUTE)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps == [4, 10, 10, 60, 120, 360, 900]
    assert len(sandbox.deliveries) == 8
    assert sandbox.notifications[0].status is DeliveryStatus.GAVE_UP
    assert sandbox.notifications[0].next_at is None


def test_time_factor_one_is_real_time(
    platform_keys, merchant_keys, clock: ManualClock, shop: Shop, http
) -> None:
    box = Sandbox(
        alipay_platform_key=platform_keys.private, clock=clock, notify_transport=shop.transport
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    with httpx.Client(
        transport=httpx.WSGITransport(app=create_app(box)), base_url="http://sb.test"
    ) as client:
        wire = AlipayWireClient(
            client, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        new_trade(wire, "T1")
    box.alipay.pay(APP_ID, "T1")
    shop.answers = ["fail"]
    box.deliver_due()
    clock.advance(239)
    assert box.deliver_due() == []
    clock.advance(1)
    assert len(box.deliver_due()) == 1
    box.stop()


def test_new_notify_id_per_event(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, platform_keys
) -> None:
    new_trade(alipay, "T1", "100.00")
    sandbox.alipay.pay(APP_ID, "T1")
    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "25.50", "out_request_no": "R1"},
    )
    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "74.50", "out_request_no": "R2"},
    )
    sandbox.deliver_due()
    paid, partial, full = shop.forms()
    assert len({paid["notify_id"], partial["notify_id"], full["notify_id"]}) == 3
    for form in (paid, partial, full):
        assert notification_verifies(form, platform_keys.public)

    assert partial["trade_status"] == "TRADE_SUCCESS"
    assert partial["refund_fee"] == "25.50"
    assert partial["out_biz_no"] == "R1"
    assert partial["gmt_refund"] == "2024-03-01 10:00:00.000"  # Alipay adds milliseconds
    assert partial["total_amount"] == "100.00"
    assert "gmt_close" not in partial

    assert full["trade_status"] == "TRADE_CLOSED"
    assert full["refund_fee"] == "100.00"  # cumulative
    assert full["out_biz_no"] == "R2"
    assert full["gmt_close"] == "2024-03-01 10:00:00"


def test_idempotent_refund_notifies_once(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop
) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    biz = {"out_trade_no": "T1", "refund_amount": "1.00", "out_request_no": "R1"}
    alipay.call("alipay.trade.refund", biz)
    alipay.call("alipay.trade.refund", biz)
    sandbox.deliver_due()
    assert [f["trade_status"] for f in shop.forms()] == ["TRADE_SUCCESS", "TRADE_SUCCESS"]


def test_close_notifications(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, clock: ManualClock, merchant_keys
) -> None:
    new_trade(alipay, "BY-MERCHANT")
    alipay.call("alipay.trade.close", {"out_trade_no": "BY-MERCHANT"})
    new_trade(alipay, "BY-TIMEOUT")
    sandbox.alipay.close(APP_ID, "BY-TIMEOUT")
    sandbox.deliver_due()
    (form,) = shop.forms()  # a merchant's close is not notified by default
    assert form["out_trade_no"] == "BY-TIMEOUT"
    assert form["trade_status"] == "TRADE_CLOSED"
    assert "refund_fee" not in form
    assert "gmt_payment" not in form
    assert "buyer_id" not in form
    assert form["gmt_close"] == "2024-03-01 10:00:00"

    sandbox.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID, notify_on_close=True)
    new_trade(alipay, "BY-MERCHANT-2")
    alipay.call("alipay.trade.close", {"out_trade_no": "BY-MERCHANT-2"})
    sandbox.deliver_due()
    assert shop.forms()[-1]["out_trade_no"] == "BY-MERCHANT-2"


def test_finish_notification(alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    sandbox.alipay.finish(APP_ID, "T1")
    sandbox.deliver_due()
    assert [f["trade_status"] for f in shop.forms()] == ["TRADE_SUCCESS", "TRADE_FINISHED"]
    assert shop.forms()[1]["gmt_close"] == "2024-03-01 10:00:00"


@pytest.mark.parametrize("lie", [False, True])
def test_gbk_merchant(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, merchant_keys, platform_keys, lie
) -> None:
    sandbox.add_alipay_merchant(
        APP_ID, merchant_keys.public_pem, SELLER_ID, charset="gbk", lie_content_type=lie
    )
    new_trade(alipay, "T1", subject="点卡 礼品卡")
    sandbox.alipay.pay(APP_ID, "T1")
    sandbox.deliver_due()
    (sent,) = shop.requests
    declared = "utf-8" if lie else "gbk"
    assert sent.headers["content-type"] == f"application/x-www-form-urlencoded; charset={declared}"
    body = sent.content
    assert "%B5%E3%BF%A8" in body.decode("ascii")  # 点卡, percent-encoded GBK bytes
    # decoding by the Content-Type when it lies garbles the text ...
    if lie:
        wrong = dict(parse_qsl(body.decode("ascii"), encoding="utf-8", errors="replace"))
        assert wrong["subject"] != "点卡 礼品卡"
    # ... the signed charset field says how to read it
    form = parse_form(body)
    assert form["charset"] == "gbk"
    assert form["subject"] == "点卡 礼品卡"
    assert notification_verifies(form, platform_keys.public)


def test_rsa_merchant_notifications_are_sha1(
    sandbox: Sandbox, shop: Shop, http, clock, other_keys, platform_keys
) -> None:
    sandbox.add_alipay_merchant("2021000000000002", other_keys.public_pem, SELLER_ID, "RSA")
    legacy = AlipayWireClient(
        http,
        app_id="2021000000000002",
        private_key=other_keys.private,
        now=clock.now,
        sign_type="RSA",
    )
    new_trade(legacy, "T1")
    sandbox.alipay.pay("2021000000000002", "T1")
    sandbox.deliver_due()
    form = shop.forms()[0]
    assert form["sign_type"] == "RSA"
    assert notification_verifies(form, platform_keys.public, "RSA")
    assert not notification_verifies(form, platform_keys.public, "RSA2")


def test_delivery_to_an_in_process_shop_app(platform_keys, merchant_keys, clock) -> None:
    """A shop that queries the trade back from its handler, all in one process."""
    shop = Flask("shop")
    seen: list[str] = []

    @shop.post("/notify")
    def notify() -> str:
        form = parse_form(request.get_data())
        assert notification_verifies(form, platform_keys.public)
        wire = AlipayWireClient(
            client, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        status = wire.call("alipay.trade.query", {"out_trade_no": form["out_trade_no"]})
        seen.append(status.node["trade_status"])
        return "success"

    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        clock=clock,
        notify_transport=httpx.WSGITransport(app=shop),
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    with httpx.Client(
        transport=httpx.WSGITransport(app=create_app(box)), base_url="http://sb.test"
    ) as client:
        wire = AlipayWireClient(
            client, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        new_trade(wire, "T1", notify_url="http://shop.test/notify")
        box.alipay.pay(APP_ID, "T1")
        (attempt,) = box.deliver_due()
    box.stop()
    assert attempt.acknowledged
    assert seen == ["TRADE_SUCCESS"]


def test_shop_exception_is_a_failed_attempt(
    alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop
) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    shop.answers = [RuntimeError("boom")]
    (attempt,) = sandbox.deliver_due()
    assert not attempt.acknowledged
    assert attempt.error == "RuntimeError: boom"
    assert sandbox.notifications[0].status is DeliveryStatus.PENDING


def test_delivery_thread(platform_keys, merchant_keys, shop: Shop, http) -> None:
    """Server mode: the background thread delivers without being asked."""
    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        notify_transport=shop.transport,
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    with httpx.Client(
        transport=httpx.WSGITransport(app=create_app(box)), base_url="http://sb.test"
    ) as client:
        wire = AlipayWireClient(
            client, app_id=APP_ID, private_key=merchant_keys.private, now=box.clock.now
        )
        new_trade(wire, "T1")
    box.start_delivery_thread(interval=0.02)
    box.start_delivery_thread(interval=0.02)  # idempotent
    try:
        box.alipay.pay(APP_ID, "T1")
        deadline = time.monotonic() + 5
        while not box.deliveries and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        box.stop()
    assert [a.acknowledged for a in box.deliveries] == [True]
