"""WeChat Pay APIv3 in the sandbox: ordering, querying, closing, and the errors
of each, with WeChat's codes and HTTP statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sandbox_support import BASE_URL
from sandbox_wechat_client import APPID, MCHID, NOTIFY_URL, WechatEnv, wechat_env


@pytest.fixture
def env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    data = response.json()
    assert data["code"] == code, data
    assert isinstance(data["message"], str)
    assert data["message"]
    return data


def _order(env: WechatEnv, kind: str, **extra) -> dict:
    return {
        "appid": APPID,
        "mchid": MCHID,
        "description": "Game top-up 游戏充值",
        "out_trade_no": f"ORDER-{kind.upper()}-1",
        "notify_url": NOTIFY_URL,
        "amount": {"total": 888, "currency": "CNY"},
        **extra,
    }


# -- ordering ------------------------------------------------------------------------


def test_native_returns_a_code_url_to_a_pay_page(env: WechatEnv) -> None:
    response = env.client.native("ORDER-0001")
    assert response.status_code == 200, response.text
    env.verify(response)
    code_url = response.json()["code_url"]
    assert code_url.startswith(f"{BASE_URL}/wechat/pay/")

    page = env.http.get(code_url)
    assert page.status_code == 200
    assert code_url in page.text
    assert "NOTPAY" in page.text
    paid = env.http.post(code_url, data={"openid": "o-buyer-1"})
    assert paid.status_code == 200
    assert "SUCCESS" in paid.text
    trade = env.sandbox.wechat_trade(MCHID, "ORDER-0001")
    assert trade.buyer_id == "o-buyer-1"
    assert env.http.post(code_url).status_code == 409  # paid already


def test_jsapi_app_and_h5(env: WechatEnv) -> None:
    jsapi = env.client.post(
        "/v3/pay/transactions/jsapi", _order(env, "jsapi", payer={"openid": "o-jsapi"})
    )
    assert jsapi.status_code == 200, jsapi.text
    assert jsapi.json()["prepay_id"].startswith("wx")
    app = env.client.post("/v3/pay/transactions/app", _order(env, "app"))
    assert app.status_code == 200, app.text
    assert set(app.json()) == {"prepay_id"}
    h5 = env.client.post(
        "/v3/pay/transactions/h5",
        _order(env, "h5", scene_info={"payer_client_ip": "127.0.0.1", "h5_info": {"type": "Wap"}}),
    )
    assert h5.status_code == 200, h5.text
    assert h5.json()["h5_url"].startswith(f"{BASE_URL}/wechat/pay/")

    env.sandbox.wechat.pay(MCHID, "ORDER-JSAPI-1")
    query = env.client.query("ORDER-JSAPI-1").json()
    assert query["trade_type"] == "JSAPI"
    assert query["payer"] == {"openid": "o-jsapi"}


@pytest.mark.parametrize(
    ("kind", "missing"),
    [("jsapi", "payer"), ("h5", "scene_info")],
)
def test_product_specific_fields_are_required(env: WechatEnv, kind: str, missing: str) -> None:
    response = env.client.post(f"/v3/pay/transactions/{kind}", _order(env, kind))
    data = _error(response, 400, "PARAM_ERROR")
    assert data["detail"]["field"] == f"/{missing}"


@pytest.mark.parametrize(
    "total",
    ["100.0", "1e2", "-100", "0", '"100"', '"100.0"', "true", "null", "2147483648"],
)
def test_amount_total_must_be_a_positive_json_integer(env: WechatEnv, total: str) -> None:
    body = json.dumps(_order(env, "native")).replace('"total": 888', f'"total": {total}')
    response = env.client.request("POST", "/v3/pay/transactions/native", raw=body.encode())
    env.verify(response)
    data = _error(response, 400, "PARAM_ERROR")
    assert data["detail"]["field"] == "/amount/total"
    assert env.sandbox.trades == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"description": ""}, "/description"),
        ({"out_trade_no": "T1"}, "/out_trade_no"),  # 6 to 32 characters
        ({"out_trade_no": "ORDER 1 with space"}, "/out_trade_no"),
        ({"notify_url": "ftp://shop.test/x"}, "/notify_url"),
        ({"notify_url": "http://shop.test/notify?order=1"}, "/notify_url"),
        ({"amount": {"total": 1, "currency": "USD"}}, "/amount/currency"),
        ({"appid": None}, "/appid"),
        ({"time_expire": "2024-03-01 12:00:00"}, "/time_expire"),
    ],
)
def test_parameter_errors(env: WechatEnv, change: dict, field: str) -> None:
    body = {**_order(env, "native"), **change}
    body = {k: v for k, v in body.items() if v is not None}
    data = _error(env.client.post("/v3/pay/transactions/native", body), 400, "PARAM_ERROR")
    assert data["detail"]["field"] == field


def test_body_that_is_not_a_json_object(env: WechatEnv) -> None:
    for raw in (b"[1]", b"{", "{}".encode("utf-16")):
        response = env.client.request("POST", "/v3/pay/transactions/native", raw=raw)
        _error(response, 400, "PARAM_ERROR")


def test_appid_of_another_merchant_and_mchid_mismatch(env: WechatEnv) -> None:
    response = env.client.post(
        "/v3/pay/transactions/native", _order(env, "native", appid="wx-other-app")
    )
    _error(response, 400, "APPID_MCHID_NOT_MATCH")
    response = env.client.post("/v3/pay/transactions/native", _order(env, "native", mchid="19"))
    _error(response, 400, "INVALID_REQUEST")


def test_same_out_trade_no_again(env: WechatEnv) -> None:
    first = env.client.native("ORDER-0001")
    again = env.client.native("ORDER-0001")
    assert again.status_code == 200
    assert again.json() == first.json()  # same order, same code_url
    _error(env.client.native("ORDER-0001", total=101), 403, "OUT_TRADE_NO_USED")
    env.pay("ORDER-0001")
    _error(env.client.native("ORDER-0001"), 403, "ORDERPAID")
    env.client.native("ORDER-0002")
    env.sandbox.wechat.close(MCHID, "ORDER-0002")
    _error(env.client.native("ORDER-0002"), 400, "ORDER_CLOSED")
    assert len(env.sandbox.trades) == 2


# -- querying and closing ------------------------------------------------------------------


def test_query_before_and_after_payment(env: WechatEnv) -> None:
    env.client.native("ORDER-0001", attach="cart=7")
    before = env.client.query("ORDER-0001")
    assert before.status_code == 200
    env.verify(before)
    data = before.json()
    assert data["trade_state"] == "NOTPAY"
    assert "transaction_id" not in data
    assert data["amount"]["total"] == 100
    assert data["attach"] == "cart=7"

    env.pay("ORDER-0001")
    after = env.client.query("ORDER-0001").json()
    assert after["trade_state"] == "SUCCESS"
    assert after["trade_type"] == "NATIVE"
    assert after["mchid"] == MCHID
    assert after["appid"] == APPID
    assert after["amount"] == {
        "total": 100,
        "payer_total": 100,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    assert after["success_time"] == "2024-03-01T10:00:00+08:00"
    transaction_id = after["transaction_id"]
    assert len(transaction_id) == 28
    by_id = env.client.get(f"/v3/pay/transactions/id/{transaction_id}?mchid={MCHID}")
    assert by_id.status_code == 200
    assert by_id.json() == after


def test_query_errors(env: WechatEnv) -> None:
    _error(env.client.query("NO-SUCH-ORDER"), 404, "ORDER_NOT_EXIST")
    _error(
        env.client.get(f"/v3/pay/transactions/id/4200000000?mchid={MCHID}"), 404, "ORDER_NOT_EXIST"
    )
    env.client.native("ORDER-0001")
    _error(env.client.get("/v3/pay/transactions/out-trade-no/ORDER-0001"), 400, "PARAM_ERROR")
    _error(
        env.client.get("/v3/pay/transactions/out-trade-no/ORDER-0001?mchid=1900000002"),
        400,
        "INVALID_REQUEST",
    )
    _error(env.client.get("/v3/no/such/api"), 404, "NOT_FOUND")


def test_close(env: WechatEnv) -> None:
    env.client.native("ORDER-0001")
    target = "/v3/pay/transactions/out-trade-no/ORDER-0001/close"
    closed = env.client.post(target, {"mchid": MCHID})
    assert closed.status_code == 204
    assert closed.content == b""
    env.verify(closed)  # an empty body is signed too
    assert env.client.query("ORDER-0001").json()["trade_state"] == "CLOSED"
    assert env.client.post(target, {"mchid": MCHID}).status_code == 204  # again: still closed
    assert env.sandbox.notifications == []  # WeChat notifies no close

    env.client.native("ORDER-0002")
    env.pay("ORDER-0002")
    response = env.client.post(
        "/v3/pay/transactions/out-trade-no/ORDER-0002/close", {"mchid": MCHID}
    )
    _error(response, 403, "ORDERPAID")
    response = env.client.post(
        "/v3/pay/transactions/out-trade-no/NO-SUCH-1/close", {"mchid": MCHID}
    )
    _error(response, 404, "ORDER_NOT_EXIST")


def test_time_expire_closes_the_order(env: WechatEnv) -> None:
    env.client.native("ORDER-0001", time_expire="2024-03-01T10:30:00+08:00")
    past = env.client.native("ORDER-0002", time_expire="2024-03-01T09:59:00+08:00")
    _error(past, 400, "INVALID_REQUEST")
    env.clock.advance(30 * 60)
    assert env.client.query("ORDER-0001").json()["trade_state"] == "CLOSED"


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [("SYSTEM_ERROR", 500), ("FREQUENCY_LIMITED", 429), ("BANK_ERROR", 500), ("NO_AUTH", 403)],
)
def test_forced_errors_are_signed_and_used_up(env: WechatEnv, code: str, status: int) -> None:
    env.sandbox.wechat.fail(code, path="/v3/pay/transactions/native")
    failed = env.client.native("ORDER-0001")
    _error(failed, status, code)
    env.verify(failed)
    assert env.sandbox.trades == []
    assert env.client.native("ORDER-0001").status_code == 200
