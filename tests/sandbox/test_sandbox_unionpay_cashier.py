"""The browser consume: ``frontTransReq.do`` → cashier → front notification; the control API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from flask.testing import FlaskClient
from payhub_sandbox import TradeState
from sandbox_unionpay_client import (
    BACK_URL,
    FRONT_URL,
    MER_ID,
    Env,
    parse_html_form,
    unionpay_env,
    verify_message,
)


@pytest.fixture
def env(merchant_keys) -> Iterator[Env]:
    with unionpay_env(merchant_keys.private) as made:
        yield made


@pytest.fixture
def browser(env: Env) -> FlaskClient:
    return env.app.test_client()


def _submit(env: Env, browser: FlaskClient, order_id: str, **extra: str) -> str:
    """What a shop's auto-submitting form does: POST the signed fields; the page HTML."""
    fields = env.client.sign(env.client.consume_fields(order_id, "2500", **extra))
    response = browser.post(
        "/gateway/api/frontTransReq.do",
        data=urlencode(fields),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_front_consume_lands_on_the_cashier_and_paying_posts_back(
    env: Env, browser: FlaskClient
) -> None:
    page = _submit(env, browser, "FRONTORD01", frontUrl=FRONT_URL)
    trade = env.sandbox.unionpay_trade(MER_ID, "FRONTORD01")
    assert trade.state is TradeState.PENDING
    assert trade.return_url == FRONT_URL
    assert "¥ 25.00" in page
    assert trade.trade_no in page
    assert f'action="/unionpay/cashier/{trade.trade_no}"' in page
    assert browser.get(f"/unionpay/cashier/{trade.trade_no}").status_code == 200

    paid = browser.post(f"/unionpay/cashier/{trade.trade_no}", data={"card": "6216"})
    assert paid.status_code == 200
    html = paid.get_data(as_text=True)
    assert "&#13;&#10;" in html  # the PEM's CRLF survives a browser's form handling
    action, fields = parse_html_form(html)
    assert action == FRONT_URL
    verify_message(fields, env.client.trust, env.clock.now())
    assert (fields["respCode"], fields["orderId"], fields["txnAmt"]) == ("00", "FRONTORD01", "2500")
    assert fields["queryId"] == trade.trade_no
    assert env.sandbox.unionpay_trade(MER_ID, "FRONTORD01").state is TradeState.PAID
    # The back notification is scheduled as well.
    env.sandbox.deliver_due()
    (note,) = env.notifications()
    assert note["orderId"] == "FRONTORD01"

    again = browser.post(f"/unionpay/cashier/{trade.trade_no}")
    assert again.status_code == 409
    assert "can no longer be paid" in again.get_data(as_text=True)


def test_without_front_url_the_cashier_shows_the_result(env: Env, browser: FlaskClient) -> None:
    _submit(env, browser, "FRONTORD02")
    trade = env.sandbox.unionpay_trade(MER_ID, "FRONTORD02")
    paid = browser.post(f"/unionpay/cashier/{trade.trade_no}")
    assert paid.status_code == 200
    assert 'id="trade-state">PAID' in paid.get_data(as_text=True)


def test_reloading_the_form_shows_the_same_trade(env: Env, browser: FlaskClient) -> None:
    fields = env.client.sign(env.client.consume_fields("FRONTORD03", "2500", frontUrl=FRONT_URL))
    for _ in range(2):
        browser.post("/gateway/api/frontTransReq.do", data=fields)
    assert len(env.sandbox.trades) == 1


def test_a_bad_browser_request_gets_an_error_page(env: Env, browser: FlaskClient) -> None:
    page = _submit(env, browser, "FRONTORD04", txnAmt="25.00")
    assert 'id="resp-code">10<' in page
    assert "txnAmt" in page
    assert env.sandbox.trades == []
    fields = env.client.sign(env.client.consume_fields("FRONTORD05", "2500"))
    fields["txnAmt"] = "1"
    response = browser.post("/gateway/api/frontTransReq.do", data=fields)
    assert 'id="resp-code">11<' in response.get_data(as_text=True)
    assert browser.get("/unionpay/cashier/000000000000000000000").status_code == 404


# -- the control API and the console ----------------------------------------------------------


def test_issue_a_merchant_through_the_control_api(env: Env) -> None:
    response = env.http.post(
        "/_control/unionpay/merchants", json={"mer_id": "898111111111111", "password": "pw"}
    )
    assert response.status_code == 201
    data = response.json()
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(data["pfx"]), b"pw")
    assert key is not None
    assert cert is not None
    assert data["cert_id"] == str(cert.serial_number)
    assert data["root_cert"] == env.sandbox.unionpay_root_cert_pem
    assert data["middle_cert"] == env.sandbox.unionpay_middle_cert_pem
    listed = env.http.get("/_control/unionpay/merchants").json()
    assert {m["mer_id"] for m in listed} == {MER_ID, "898111111111111"}
    bad = env.http.post("/_control/unionpay/merchants", json={"mer_id": "x y"})
    assert bad.status_code == 400
    own = env.http.post(
        "/_control/unionpay/merchants",
        json={"mer_id": "898222222222222", "certificate": data["certificate"]},
    )
    assert own.status_code == 201
    assert own.json()["cert_ids"] == [data["cert_id"]]


def test_pay_and_look_through_the_control_api(env: Env) -> None:
    created = env.client.app_consume("CONTROL001", "300")
    trade = env.http.get("/_control/unionpay/trades/CONTROL001", params={"mer_id": MER_ID}).json()
    assert (trade["state"], trade["orig_resp_code"]) == ("PENDING", "05")
    assert trade["tn"] == created["tn"]
    assert trade["txn_time"] == created["txnTime"]
    paid = env.http.post("/_control/unionpay/trades/CONTROL001/pay", json={"mer_id": MER_ID})
    assert paid.json()["orig_resp_code"] == "00"
    again = env.http.post("/_control/unionpay/trades/CONTROL001/pay", json={"mer_id": MER_ID})
    assert again.status_code == 409
    missing = env.http.post("/_control/unionpay/trades/NOPE00001/pay", json={"mer_id": MER_ID})
    assert missing.status_code == 404
    stranger = env.http.post("/_control/unionpay/trades/CONTROL001/pay", json={"mer_id": "1"})
    assert stranger.json()["error"] == "UNKNOWN_MERCHANT"
    (listed,) = env.http.get("/_control/trades").json()
    assert listed["orig_resp_code"] == "00"
    assert listed["notify_url"] == BACK_URL


def test_the_console_lists_unionpay(env: Env, browser: FlaskClient) -> None:
    env.client.app_consume("CONSOLE001")
    trade = env.sandbox.unionpay_trade(MER_ID, "CONSOLE001")
    env.sandbox.unionpay_fault("expired")
    page = browser.get("/").get_data(as_text=True)
    assert "UnionPay merchants" in page
    assert MER_ID in page
    assert f'/unionpay/cashier/{trade.trade_no}" class="cashier"' in page
    assert "signing fault: expired" in page
