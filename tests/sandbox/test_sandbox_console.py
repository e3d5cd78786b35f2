"""The console page: what it lists, and its buttons (Flask's test client)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from payhub_sandbox import DeliveryStatus, Sandbox, TradeState
from sandbox_support import APP_ID, NOTIFY_URL, SELLER_ID, Shop, new_trade


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _page(client: FlaskClient) -> str:
    response = client.get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    return response.get_data(as_text=True)


def _act(client: FlaskClient, path: str, **form: str) -> dict[str, list[str]]:
    """POST a console form; it answers 303 back to the console; return the message."""
    response = client.post(path, data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    assert location.path == "/"
    return parse_qs(location.query)


def _forms(html: str) -> set[str]:
    return set(re.findall(r'<form method="post" action="([^"]+)"', html))


def test_lists_merchants_trades_refunds_notifications_and_attempts(
    client: FlaskClient, alipay, sandbox: Sandbox, shop: Shop
) -> None:
    trade_no = new_trade(alipay, "C1", "12.50")
    sandbox.alipay.pay(APP_ID, "C1")
    sandbox.alipay.refund(APP_ID, "C1", "2.50", out_refund_no="RF-C1")
    shop.answers = ["<b>nope</b>"]
    sandbox.deliver_due()
    html = _page(client)
    assert APP_ID in html
    assert SELLER_ID in html
    assert f"<td>{trade_no}</td><td>C1</td>" in html
    assert "RF-C1" in html
    assert "<td>2.50</td>" in html
    assert NOTIFY_URL in html
    assert "TRADE_SUCCESS (refund)" in html
    attempts = html.split('<table id="attempts">', 1)[1]
    assert attempts.count("<tr><td>N") == 2
    assert "&lt;b&gt;nope&lt;/b&gt;" in attempts  # the shop's answer, escaped
    assert "<b>nope</b>" not in html
    assert "<td><code>success</code></td><td>yes</td>" in attempts
    assert f"/_console/trades/{trade_no}/refund" in _forms(html)
    for note in sandbox.notifications:
        assert f"/_console/notifications/{note.id}/resend" in _forms(html)


def test_pay_and_fail_buttons(client: FlaskClient, alipay, sandbox: Sandbox, shop: Shop) -> None:
    first = new_trade(alipay, "C1")
    second = new_trade(alipay, "C2")
    html = _page(client)
    assert {f"/_console/trades/{first}/pay", f"/_console/trades/{first}/fail"} <= _forms(html)

    message = _act(client, f"/_console/trades/{first}/pay", buyer_id="2088102000009999")
    assert "pay: alipay trade C1" in message["msg"][0]
    paid = sandbox.alipay_trade(APP_ID, "C1")
    assert (paid.state, paid.buyer_id) == (TradeState.PAID, "2088102000009999")

    _act(client, f"/_console/trades/{second}/fail")
    assert sandbox.alipay_trade(APP_ID, "C2").state is TradeState.CLOSED
    sandbox.deliver_due()
    assert [f["trade_status"] for f in shop.forms()] == ["TRADE_SUCCESS", "TRADE_CLOSED"]

    again = _act(client, f"/_console/trades/{first}/pay")
    assert "not WAIT_BUYER_PAY" in again["error"][0]
    html = client.get("/?error=" + again["error"][0]).get_data(as_text=True)
    assert 'id="error"' in html
    forms = _forms(html)
    assert f"/_console/trades/{first}/pay" not in forms
    assert f"/_console/trades/{first}/refund" in forms


def test_refund_button(client: FlaskClient, alipay, sandbox: Sandbox, shop: Shop) -> None:
    trade_no = new_trade(alipay, "C1", "10.00")
    sandbox.alipay.pay(APP_ID, "C1")
    _act(client, f"/_console/trades/{trade_no}/refund", amount="4.00")
    (refund,) = sandbox.refunds
    assert refund.amount.to_decimal_string() == "4.00"
    assert f"<td>{refund.out_refund_no}</td><td>4.00</td>" in _page(client)
    over = _act(client, f"/_console/trades/{trade_no}/refund", amount="7.00")
    assert "exceeds the refundable 6.00" in over["error"][0]
    empty = _act(client, f"/_console/trades/{trade_no}/refund", amount="")
    assert "amount is required" in empty["error"][0]
    sandbox.deliver_due()
    assert shop.forms()[-1]["refund_fee"] == "4.00"


def test_resend_and_deliver_buttons(
    client: FlaskClient, alipay, sandbox: Sandbox, shop: Shop
) -> None:
    new_trade(alipay, "C1")
    sandbox.alipay.pay(APP_ID, "C1")
    shop.answers = [500]
    delivered = _act(client, "/_console/deliver")
    assert delivered["msg"] == ["delivered: 1 attempt(s)"]
    (note,) = sandbox.notifications
    assert note.status is DeliveryStatus.PENDING
    resent = _act(client, f"/_console/notifications/{note.id}/resend")
    assert resent["msg"] == [f"resent {note.id}: 200"]
    assert sandbox.notification(note.id).status is DeliveryStatus.ACKNOWLEDGED
    _act(client, f"/_console/notifications/{note.id}/resend")
    assert [a.effects for a in sandbox.deliveries] == [(), (), ("resend",)]
    assert len(shop.requests) == 3
    missing = _act(client, "/_console/notifications/N999/resend")
    assert "no notification" in missing["error"][0]
    forced = _act(client, "/_console/deliver", force="1")
    assert forced["msg"] == ["delivered: 0 attempt(s)"]


def test_fault_buttons(client: FlaskClient, alipay, sandbox: Sandbox, shop: Shop) -> None:
    trade_no = new_trade(alipay, "C1")
    added = _act(
        client,
        "/_console/delivery-faults",
        channel="alipay",
        merchant_id=APP_ID,
        out_trade_no="C1",
        effect="duplicates",
        count="3",
        concurrent="1",
    )
    assert added["msg"] == ["fault F0001: ×3 concurrent"]
    html = _page(client)
    faults = html.split('<table id="delivery-faults">', 1)[1].split("</table>", 1)[0]
    assert "F0001" in faults
    assert "×3 concurrent" in faults
    _act(client, f"/_console/trades/{trade_no}/pay")
    sandbox.deliver_due()
    assert len(shop.requests) == 3
    attempts = _page(client).split('<table id="attempts">', 1)[1]
    assert "3/3" in attempts
    assert "F0001 duplicate, concurrent" in attempts

    for form, described in (
        ({"effect": "delay", "delay": "5", "delay_max": "9", "seed": "3"}, "delay 5-9s"),
        ({"effect": "reorder"}, "refund before payment"),
        ({"effect": "drop_first", "count": "2"}, "drop first 2"),
        ({"effect": "replay", "delay": "60"}, "replay ×1 after 60s"),
        ({"effect": "tamper_amount"}, "tamper amount ×1"),
        ({"effect": "tamper_signature", "count": "2", "limit": "1"}, "tamper signature ×2"),
    ):
        message = _act(client, "/_console/delivery-faults", **form)
        assert described in message["msg"][0], message

    bad = _act(client, "/_console/delivery-faults", effect="delay")
    assert "seconds are required" in bad["error"][0]
    unknown = _act(client, "/_console/delivery-faults", effect="explode")
    assert "unknown effect" in unknown["error"][0]
    nan = _act(client, "/_console/delivery-faults", effect="drop_first", count="x")
    assert "whole number" in nan["error"][0]

    _act(client, "/_console/delivery-faults/F0001/delete")
    assert "F0001" not in [f.id for f in sandbox.delivery_faults]
    gone = _act(client, "/_console/delivery-faults/F0001/delete")
    assert "no delivery fault" in gone["error"][0]


def test_empty_console(client: FlaskClient) -> None:
    html = _page(client)
    assert "none: notifications are delivered as the channel would" in html
    assert 'id="add-fault"' in html
