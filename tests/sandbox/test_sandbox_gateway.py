"""gateway.do: transports, charsets, signatures, common errors, signed responses."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox
from sandbox_alipay_client import (
    AlipayWireClient,
    content_to_sign,
    parse_reply,
    rsa_sign,
    rsa_verifies,
)
from sandbox_support import APP_ID, SELLER_ID, new_trade

QUERY = "alipay.trade.query"


@pytest.mark.parametrize("transport", ["get", "post", "split"])
def test_every_transport_verifies(
    alipay: AlipayWireClient, sandbox: Sandbox, transport, platform_keys
) -> None:
    new_trade(alipay, "T-transport")
    sandbox.alipay.scan(APP_ID, "T-transport")
    reply = alipay.call(QUERY, {"out_trade_no": "T-transport"}, transport=transport)
    assert reply.code == "10000", reply.node
    assert reply.node["trade_status"] == "WAIT_BUYER_PAY"
    assert reply.verifies(platform_keys.public)


@pytest.mark.parametrize(
    "biz_content",
    [
        # \uXXXX escapes (Python's and fastjson's default)
        '{"out_trade_no":"T-biz","total_amount":"9.90","subject":"\\u793c\\u54c1\\u5361"}',
        # raw UTF-8, different key order, spaces and a trailing newline
        '{ "subject": "礼品卡", "total_amount": "9.90",\n "out_trade_no": "T-biz" }\n',
        # escaped slashes and an extra unknown field
        '{"subject":"a\\/b 礼品卡","out_trade_no":"T-biz","total_amount":"9.90","x":null}',
    ],
)
def test_biz_content_verified_as_received(alipay: AlipayWireClient, biz_content) -> None:
    reply = alipay.call("alipay.trade.precreate", biz_content)
    assert reply.code == "10000", reply.node
    assert reply.node["out_trade_no"] == "T-biz"


def test_json_number_amount_is_parsed_from_its_text(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    reply = alipay.call(
        "alipay.trade.precreate", '{"out_trade_no":"T-num","total_amount":88.8,"subject":"s"}'
    )
    assert reply.code == "10000", reply.node
    sandbox.alipay.scan(APP_ID, "T-num")
    query = alipay.call(QUERY, {"out_trade_no": "T-num"})
    assert query.node["total_amount"] == "88.80"


def test_gbk_request(
    http: httpx.Client, sandbox: Sandbox, merchant_keys, clock, platform_keys
) -> None:
    gbk = AlipayWireClient(
        http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now, charset="GBK"
    )
    reply = gbk.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T-gbk", "total_amount": "1.00", "subject": "点卡充值"},
    )
    assert reply.code == "10000", reply.node
    assert reply.http.headers["content-type"] == "application/json;charset=gbk"
    assert reply.verifies(platform_keys.public)
    sandbox.alipay.scan(APP_ID, "T-gbk")
    query = gbk.call(QUERY, {"out_trade_no": "T-gbk"})
    assert query.node["subject"] == "点卡充值"
    assert "点卡充值".encode("gbk") in query.http.content


def test_multipart_form(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T-multipart")
    sandbox.alipay.scan(APP_ID, "T-multipart")
    params = alipay.signed(alipay.params(QUERY, {"out_trade_no": "T-multipart"}))
    response = alipay.http.post("/gateway.do", data=params, files={"file": ("a.txt", b"x")})
    assert parse_reply(response, QUERY).code == "10000"


def test_duplicate_fields_first_query_then_form(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T-dup")
    sandbox.alipay.scan(APP_ID, "T-dup")
    params = alipay.signed(alipay.params(QUERY, {"out_trade_no": "T-dup"}))
    query = httpx.QueryParams(params)
    # the body repeats app_id with another value: the query string's wins
    response = alipay.http.post(
        f"/gateway.do?{query}",
        content=b"app_id=9999&sign_type=RSA",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert parse_reply(response, QUERY).code == "10000"


def test_response_node_first_and_sign_over_raw_bytes(
    alipay: AlipayWireClient, platform_keys
) -> None:
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T-raw", "total_amount": "1.00", "subject": "卡密/兑换"},
    )
    body = reply.http.content.decode()
    assert re.match(r'^\{"alipay_trade_precreate_response":\{', body)
    assert body.endswith('"}')
    assert body[len('{"alipay_trade_precreate_response":') + len(reply.raw_node) :].startswith(
        ',"sign":"'
    )
    assert list(json.loads(body)) == ["alipay_trade_precreate_response", "sign"]
    # Alipay escapes "/" as "\/": the sign covers those exact bytes ...
    assert "\\/" in reply.raw_node
    assert reply.verifies(platform_keys.public)
    # ... so a client re-serialising the parsed node cannot verify it.
    reserialised = json.dumps(reply.node, ensure_ascii=False, separators=(",", ":"))
    assert not rsa_verifies(platform_keys.public, reserialised.encode(), reply.sign)


def test_escape_slashes_can_be_turned_off(platform_keys, merchant_keys, clock) -> None:
    from payhub_sandbox import create_app

    box = Sandbox(
        alipay_platform_key=platform_keys.private, clock=clock, alipay_escape_slashes=False
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    transport = httpx.WSGITransport(app=create_app(box))
    with httpx.Client(transport=transport, base_url="http://sb.test") as http:
        client = AlipayWireClient(
            http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        reply = client.call(
            "alipay.trade.precreate",
            {"out_trade_no": "T", "total_amount": "1.00", "subject": "s"},
        )
    assert reply.node["qr_code"].startswith("http://sb.test/alipay/cashier/")
    assert "\\/" not in reply.raw_node
    assert reply.verifies(platform_keys.public)


# -- errors ------------------------------------------------------------------------


def _error(reply, code: str, sub_code: str) -> None:
    assert reply.node["code"] == code, reply.node
    assert reply.node["sub_code"] == sub_code, reply.node
    assert reply.node["msg"]
    assert reply.node["sub_msg"]


def test_bad_signature(alipay: AlipayWireClient, other_keys, platform_keys) -> None:
    params = alipay.signed(alipay.params(QUERY, {"out_trade_no": "x"}), key=other_keys.private)
    reply = parse_reply(alipay.send(params), QUERY)
    assert reply.name == "alipay_trade_query_response"
    _error(reply, "40002", "isv.invalid-signature")
    assert reply.node["msg"] == "Invalid Arguments"
    assert reply.node["sub_msg"].startswith("验签出错")
    # the gateway shows the string it verified
    assert content_to_sign(params) in reply.node["sub_msg"]
    assert reply.verifies(platform_keys.public)


def test_tampered_after_signing(alipay: AlipayWireClient) -> None:
    params = alipay.signed(alipay.params(QUERY, {"out_trade_no": "x"}))
    params["biz_content"] = '{"out_trade_no":"y"}'
    _error(parse_reply(alipay.send(params), QUERY), "40002", "isv.invalid-signature")


def test_sign_type_must_be_the_merchants(alipay: AlipayWireClient) -> None:
    alipay.sign_type = "RSA"  # signs with SHA1: valid RSA, but the app is registered RSA2
    _error(alipay.call(QUERY, {"out_trade_no": "x"}), "40002", "isv.invalid-signature")


def test_unknown_sign_type(alipay: AlipayWireClient) -> None:
    params = alipay.params(QUERY, {"out_trade_no": "x"})
    params["sign_type"] = "MD5"
    params["sign"] = "AAAA"
    _error(parse_reply(alipay.send(params), QUERY), "40002", "isv.invalid-signature-type")


def test_legacy_rsa_merchant(sandbox: Sandbox, http, clock, other_keys, platform_keys) -> None:
    sandbox.add_alipay_merchant("2021000000000002", other_keys.public_base64, SELLER_ID, "RSA")
    legacy = AlipayWireClient(
        http,
        app_id="2021000000000002",
        private_key=other_keys.private,
        now=clock.now,
        sign_type="RSA",
    )
    reply = legacy.call(QUERY, {"out_trade_no": "nope"})
    _error(reply, "40004", "ACQ.TRADE_NOT_EXIST")
    assert reply.verifies(platform_keys.public, "RSA")  # answered with SHA1withRSA too


def test_missing_signature(alipay: AlipayWireClient, platform_keys) -> None:
    reply = parse_reply(alipay.send(alipay.params(QUERY, {"out_trade_no": "x"})), QUERY)
    _error(reply, "40001", "isv.missing-signature")
    assert reply.node["msg"] == "Missing Required Arguments"
    assert reply.verifies(platform_keys.public)


@pytest.mark.parametrize(
    ("drop", "sub_code"),
    [
        ("app_id", "isv.missing-app-id"),
        ("timestamp", "isv.missing-timestamp"),
        ("version", "isv.missing-version"),
        ("sign_type", "isv.missing-signature-type"),
    ],
)
def test_missing_common_parameter(alipay: AlipayWireClient, drop, sub_code) -> None:
    params = alipay.params(QUERY, {"out_trade_no": "x"})
    del params[drop]
    reply = parse_reply(alipay.send(alipay.signed(params)), QUERY)
    _error(reply, "40001", sub_code)


def test_missing_method_is_error_response(alipay: AlipayWireClient, platform_keys) -> None:
    params = alipay.params(QUERY, {"out_trade_no": "x"})
    del params["method"]
    reply = parse_reply(alipay.send(alipay.signed(params)), QUERY)
    assert reply.name == "error_response"
    _error(reply, "40001", "isv.missing-method")
    assert reply.http.content.startswith(b'{"error_response":{')
    assert reply.verifies(platform_keys.public)


def test_unknown_method_is_error_response(alipay: AlipayWireClient, platform_keys) -> None:
    reply = alipay.call("alipay.trade.teleport", {"out_trade_no": "x"})
    assert reply.name == "error_response"
    _error(reply, "40002", "isv.invalid-method")
    assert reply.verifies(platform_keys.public)


def test_known_but_unsupported_method(alipay: AlipayWireClient) -> None:
    reply = alipay.call("alipay.trade.cancel", {"out_trade_no": "x"})
    assert reply.name == "alipay_trade_cancel_response"
    _error(reply, "40006", "isv.insufficient-isv-permissions")


def test_unknown_app(alipay: AlipayWireClient, platform_keys) -> None:
    alipay.app_id = "2021999999999999"
    reply = alipay.call(QUERY, {"out_trade_no": "x"})
    _error(reply, "40002", "isv.invalid-app-id")
    assert reply.verifies(platform_keys.public)


@pytest.mark.parametrize("stamp", ["2024/03/01 10:00:00", "2024-03-01T10:00:00", "1709258400"])
def test_malformed_timestamp(alipay: AlipayWireClient, stamp) -> None:
    reply = alipay.call(QUERY, {"out_trade_no": "x"}, timestamp=stamp)
    _error(reply, "40002", "isv.invalid-timestamp")


def test_timestamp_window_is_15_minutes(alipay: AlipayWireClient, clock: ManualClock) -> None:
    real_now = clock.now
    alipay.now = lambda: real_now() - timedelta(minutes=15)
    _error(alipay.call(QUERY, {"out_trade_no": "x"}), "40004", "ACQ.TRADE_NOT_EXIST")
    alipay.now = lambda: real_now() - timedelta(minutes=15, seconds=1)
    _error(alipay.call(QUERY, {"out_trade_no": "x"}), "40002", "isv.invalid-timestamp")
    alipay.now = lambda: real_now() + timedelta(minutes=16)
    _error(alipay.call(QUERY, {"out_trade_no": "x"}), "40002", "isv.invalid-timestamp")


def test_timestamp_is_shanghai_time(alipay: AlipayWireClient, clock: ManualClock) -> None:
    utc_text = clock.now().strftime("%Y-%m-%d %H:%M:%S")  # 8 hours off
    _error(
        alipay.call(QUERY, {"out_trade_no": "x"}, timestamp=utc_text),
        "40002",
        "isv.invalid-timestamp",
    )


def test_unsupported_charset(alipay: AlipayWireClient) -> None:
    alipay.charset = "utf-8"
    params = alipay.signed(alipay.params(QUERY, {"out_trade_no": "x"}))
    params["charset"] = "latin-9"
    _error(parse_reply(alipay.send(params), QUERY), "40002", "isv.invalid-charset")


def test_undecodable_bytes(alipay: AlipayWireClient) -> None:
    params = alipay.signed(alipay.params(QUERY, {"out_trade_no": "x"}))
    body = httpx.QueryParams(params).__str__().encode() + b"&junk=%FF%FE"
    response = alipay.http.post(
        "/gateway.do", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    _error(parse_reply(response, QUERY), "40002", "isv.invalid-charset")


def test_biz_content_not_json(alipay: AlipayWireClient) -> None:
    _error(alipay.call(QUERY, "{out_trade_no: x}"), "40002", "isv.invalid-parameter")
    _error(alipay.call(QUERY, "[1, 2]"), "40002", "isv.invalid-parameter")


def test_app_auth_token_is_refused(alipay: AlipayWireClient) -> None:
    reply = alipay.call(QUERY, {"out_trade_no": "x"}, app_auth_token="201810BB")
    _error(reply, "20001", "aop.invalid-app-auth-token")


def test_format_must_be_json(alipay: AlipayWireClient) -> None:
    _error(alipay.call(QUERY, {"out_trade_no": "x"}, format="XML"), "40002", "isv.invalid-format")


def test_page_pay_errors_are_html(alipay: AlipayWireClient, other_keys) -> None:
    params = alipay.signed(
        alipay.params(
            "alipay.trade.page.pay",
            {
                "out_trade_no": "P",
                "total_amount": "1.00",
                "subject": "s",
                "product_code": "FAST_INSTANT_TRADE_PAY",
            },
        ),
        key=other_keys.private,
    )
    response = alipay.send(params, "get")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "isv.invalid-signature" in response.text


def test_sign_is_standard_base64_without_newlines(alipay: AlipayWireClient) -> None:
    reply = alipay.call(QUERY, {"out_trade_no": "x"})
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", reply.sign)


def test_sign_with_spaces_from_unencoded_plus_fails(alipay: AlipayWireClient) -> None:
    for n in range(100):  # find a signature that contains "+"
        params = alipay.signed(alipay.params(QUERY, {"out_trade_no": f"x{n}"}))
        if "+" in params["sign"]:
            break
    sign = params.pop("sign")
    # a client bug: "+" left unencoded in the query string reads as a space
    response = alipay.http.get(f"/gateway.do?{httpx.QueryParams(params)}&sign={sign}")
    _error(parse_reply(response, QUERY), "40002", "isv.invalid-signature")


def test_rsa_sign_helper_sanity(merchant_keys) -> None:
    signature = rsa_sign(merchant_keys.private, b"abc")
    assert rsa_verifies(merchant_keys.public, b"abc", signature)
