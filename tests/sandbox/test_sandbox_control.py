"""The control API and the console page."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, create_app
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, NOTIFY_URL, SELLER_ID, Shop, new_trade


def test_register_merchant_then_use_it(
    http: httpx.Client, other_keys, clock: ManualClock, platform_keys
) -> None:
    created = http.post(
        "/_control/alipay/merchants",
        json={
            "app_id": "2021000000000009",
            "public_key": other_keys.public_base64,
            "seller_id": "2088000000000009",
            "sign_type": "RSA2",
            "charset": "gbk",
        },
    )
    assert created.status_code == 201
    assert created.json()["charset"] == "gbk"
    assert created.json()["public_key"] == other_keys.public_pem
    listed = http.get("/_control/alipay/merchants").json()
    assert {m["app_id"] for m in listed} == {APP_ID, "2021000000000009"}
    client = AlipayWireClient(
        http, app_id="2021000000000009", private_key=other_keys.private, now=clock.now
    )
    reply = client.call("alipay.trade.query", {"out_trade_no": "x"})
    assert reply.node["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert reply.verifies(platform_keys.public)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"app_id": "a", "seller_id": "s"}, 400),
        ({"app_id": "a", "seller_id": "s", "public_key": "not a key"}, 400),
        ({"app_id": "a", "seller_id": "s", "public_key": "PEM", "sign_type": "MD5"}, 400),
        ([1, 2], 400),
    ],
)
def test_register_merchant_errors(http: httpx.Client, body, status) -> None:
    response = http.post("/_control/alipay/merchants", json=body)
    assert response.status_code == status
    assert response.json()["error"] == "INVALID_INPUT"


def test_platform_key(http: httpx.Client, sandbox: Sandbox, platform_keys) -> None:
    response = http.get("/_control/alipay/platform-key")
    assert response.status_code == 200
    assert response.text == platform_keys.public_pem
    assert "PRIVATE" not in response.text
    assert sandbox.alipay_public_key_pem == platform_keys.public_pem


def test_pay_finish_close_and_lists(
    http: httpx.Client, alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop
) -> None:
    trade_no = new_trade(alipay, "T1", "20.00")
    new_trade(alipay, "T2")
    paid = http.post("/_control/alipay/trades/T1/pay", json={"app_id": APP_ID})
    assert paid.status_code == 200
    assert paid.json()["trade_status"] == "TRADE_SUCCESS"
    assert paid.json()["trade_no"] == trade_no
    again = http.post("/_control/alipay/trades/T1/pay", json={"app_id": APP_ID})
    assert again.status_code == 409
    assert again.json()["error"] == "TRADE_STATE"
    missing = http.post("/_control/alipay/trades/T9/pay", json={"app_id": APP_ID})
    assert missing.status_code == 404
    unknown_app = http.post("/_control/alipay/trades/T1/pay", json={"app_id": "nope"})
    assert unknown_app.status_code == 404
    assert unknown_app.json()["error"] == "UNKNOWN_MERCHANT"
    assert http.post("/_control/alipay/trades/T1/pay", json={}).status_code == 400

    got = http.get("/_control/alipay/trades/T1", params={"app_id": APP_ID}).json()
    assert got["state"] == "PAID"
    assert got["amount"] == "20.00"

    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "5.00", "out_request_no": "R1"},
    )
    finished = http.post("/_control/alipay/trades/T1/finish", json={"app_id": APP_ID})
    assert finished.json()["trade_status"] == "TRADE_FINISHED"
    closed = http.post(
        "/_control/alipay/trades/T2/close", json={"app_id": APP_ID, "reason": "merchant"}
    )
    assert closed.json()["trade_status"] == "TRADE_CLOSED"
    assert closed.json()["close_reason"] == "merchant"

    trades = http.get("/_control/trades").json()
    assert [t["out_trade_no"] for t in trades] == ["T1", "T2"]
    refunds = http.get("/_control/refunds").json()
    assert [(r["out_refund_no"], r["amount"]) for r in refunds] == [("R1", "5.00")]

    shop.answers = ["fail"]
    delivered = http.post("/_control/deliver").json()
    assert [a["acknowledged"] for a in delivered] == [False, True, True]
    assert [a["kind"] for a in delivered] == [
        "TRADE_SUCCESS",
        "TRADE_SUCCESS (refund)",
        "TRADE_FINISHED",
    ]
    assert http.post("/_control/deliver").json() == []
    forced = http.post("/_control/deliver", json={"force": True}).json()
    assert [a["number"] for a in forced] == [2]
    log = http.get("/_control/deliveries").json()
    assert len(log) == 4
    assert log[0]["response_body"] == "fail"
    notifications = http.get("/_control/notifications").json()
    assert [n["status"] for n in notifications] == ["ACKNOWLEDGED"] * 3
    assert notifications[0]["url"] == NOTIFY_URL


def test_clock(http: httpx.Client, sandbox: Sandbox) -> None:
    before = http.get("/_control/clock").json()
    assert before == {
        "now": "2024-03-01T02:00:00+00:00",
        "manual": True,
        "time_factor": 60.0,
    }
    after = http.post("/_control/clock/advance", json={"seconds": 90}).json()
    assert after["now"] == "2024-03-01T02:01:30+00:00"
    assert http.post("/_control/clock/advance", json={"seconds": -1}).status_code == 400
    assert http.post("/_control/clock/advance", json={"seconds": "1"}).status_code == 400


def test_clock_cannot_move_the_real_one(platform_keys) -> None:
    box = Sandbox(alipay_platform_key=platform_keys.private)
    client = create_app(box).test_client()
    response = client.post("/_control/clock/advance", json={"seconds": 1})
    assert response.status_code == 400
    assert client.get("/_control/clock").get_json()["manual"] is False


def test_close_expired_endpoint(http: httpx.Client, alipay: AlipayWireClient, clock) -> None:
    alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T1", "total_amount": "1.00", "subject": "s", "timeout_express": "1m"},
    )
    clock.advance(1)
    closed = http.post("/_control/close-expired").json()
    assert [t["out_trade_no"] for t in closed] == ["T1"]


def test_bill_endpoint(http: httpx.Client, alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1")
    sandbox.pay_alipay(APP_ID, "T1")
    response = http.get(f"/_control/alipay/bills/{APP_ID}/2024-03-01")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content), metadata_encoding="gbk") as zf:
        assert f"{SELLER_ID}_20240301_业务明细.csv" in zf.namelist()
    assert http.get(f"/_control/alipay/bills/{APP_ID}/yesterday").status_code == 400


def test_console_lists_everything(
    http: httpx.Client, alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    trade_no = new_trade(alipay, "T1", subject="控制台")
    sandbox.pay_alipay(APP_ID, "T1")
    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "1.00", "out_request_no": "R-console"},
    )
    sandbox.deliver_due()
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in (APP_ID, SELLER_ID, trade_no, "控制台", "R-console", "TRADE_SUCCESS", "success"):
        assert text in page.text
    assert "PRIVATE KEY" not in page.text
