"""The cashier page a person clicks, and the signed browser return."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from flask import Flask
from payhub_sandbox import Sandbox, TradeState
from sandbox_alipay_client import AlipayWireClient, notification_verifies, parse_form
from sandbox_support import APP_ID, NOTIFY_URL, SELLER_ID, Shop


def _page_pay(alipay: AlipayWireClient, out_trade_no: str, **extra: str) -> str:
    params = alipay.signed(
        alipay.params(
            "alipay.trade.page.pay",
            {
                "out_trade_no": out_trade_no,
                "total_amount": "66.00",
                "subject": "游戏点卡",
                "product_code": "FAST_INSTANT_TRADE_PAY",
            },
            notify_url=NOTIFY_URL,
            **extra,
        )
    )
    response = alipay.send(params, "get")
    assert response.status_code == 302, response.text
    return urlsplit(response.headers["location"]).path


def test_cashier_pays_and_returns_signed(
    app: Flask, alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop, platform_keys
) -> None:
    path = _page_pay(alipay, "C1", return_url="http://shop.test/return?from=alipay")
    browser = app.test_client()
    page = browser.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "游戏点卡" in html
    assert "66.00" in html
    assert "WAIT_BUYER_PAY" in html
    assert '<form method="post">' in html

    paid = browser.post(path, data={"buyer_id": "2088102000007777"})
    assert paid.status_code == 302
    back = urlsplit(paid.headers["Location"])
    assert (back.scheme, back.netloc, back.path) == ("http", "shop.test", "/return")
    params = dict(parse_qsl(back.query, keep_blank_values=True))
    assert params.pop("from") == "alipay"  # the shop's own query is kept
    trade = sandbox.alipay_trade(APP_ID, "C1")
    assert trade.state is TradeState.PAID
    assert trade.buyer_id == "2088102000007777"
    assert params["method"] == "alipay.trade.page.pay.return"
    assert params["app_id"] == APP_ID
    assert params["out_trade_no"] == "C1"
    assert params["trade_no"] == trade.trade_no
    assert params["total_amount"] == "66.00"
    assert params["seller_id"] == SELLER_ID
    assert params["charset"] == "utf-8"
    assert params["timestamp"] == "2024-03-01 10:00:00"
    assert params["sign_type"] == "RSA2"
    assert notification_verifies(params, platform_keys.public)
    assert not notification_verifies({**params, "total_amount": "0.01"}, platform_keys.public)

    # the notification is sent too: the return alone never proves payment
    sandbox.deliver_due()
    assert parse_form(shop.requests[0].content)["trade_status"] == "TRADE_SUCCESS"

    again = browser.post(path)
    assert again.status_code == 409
    assert "TRADE_SUCCESS" in again.get_data(as_text=True)


def test_cashier_without_return_url(app: Flask, alipay: AlipayWireClient) -> None:
    path = _page_pay(alipay, "C2")
    browser = app.test_client()
    done = browser.post(path)
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert "TRADE_SUCCESS" in html
    assert "<form" not in html


def test_cashier_gbk_return(
    app: Flask, http, merchant_keys, clock, sandbox: Sandbox, platform_keys
) -> None:
    gbk = AlipayWireClient(
        http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now, charset="gbk"
    )
    path = _page_pay(gbk, "C3", return_url="http://shop.test/return")
    paid = app.test_client().post(path)
    query = urlsplit(paid.headers["Location"]).query
    params = parse_form(query.encode("ascii"))
    assert params["charset"] == "gbk"
    assert notification_verifies(params, platform_keys.public)


def test_wap_return_method(app: Flask, alipay: AlipayWireClient) -> None:
    params = alipay.signed(
        alipay.params(
            "alipay.trade.wap.pay",
            {"out_trade_no": "W1", "total_amount": "1.00", "subject": "s"},
            return_url="http://shop.test/r",
        )
    )
    path = urlsplit(alipay.send(params).headers["location"]).path
    paid = app.test_client().post(path)
    assert "method=alipay.trade.wap.pay.return" in paid.headers["Location"]


def test_cashier_unknown_trade(app: Flask) -> None:
    assert app.test_client().get("/alipay/cashier/2024").status_code == 404


def test_closed_trade_cannot_be_paid_at_the_cashier(
    app: Flask, alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    path = _page_pay(alipay, "C4")
    sandbox.alipay.close(APP_ID, "C4")
    browser = app.test_client()
    assert "TRADE_CLOSED" in browser.get(path).get_data(as_text=True)
    assert browser.post(path).status_code == 409
