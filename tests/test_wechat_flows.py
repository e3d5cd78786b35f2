"""WeChat Pay APIv3 flows against a fake host that checks every signature itself."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pluggy
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from test_wechat_support import (
    APP_ID,
    MCH_ID,
    NOTIFY_URL,
    PUB_KEY_ID,
    Clock,
    FakeWechat,
    signed_headers,
    transaction_resource,
    world,
)

import payhub.channels.wechat as wechat_module
from payhub import (
    AmountError,
    AsyncPayHub,
    BuyerHints,
    ChannelError,
    ErrorCode,
    InvalidRequestError,
    Money,
    PayHub,
    PaymentRequest,
    PaymentStatus,
    PayMethod,
    ProtocolError,
    RefundQueryRequest,
    RefundRequest,
    RefundStatus,
    ResultKind,
    SignatureError,
    hookspecs,
)
from payhub.channels import run_flow_sync
from payhub.channels.wechat import WECHAT_ERROR_CODES, WechatPayChannel

MODES = ["public_key", "certificates"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setup(mode: str, merchant_keys: Any, platform_keys: Any, clock: Clock
          ) -> tuple[WechatPayChannel, FakeWechat]:
    return world(mode, merchant_keys.private, platform_keys.private, clock)


def run_sync(ch: WechatPayChannel, fake: FakeWechat, call: Callable[[Any], Any]) -> Any:
    with PayHub(channels=[ch], http_client=httpx.Client(transport=fake.transport())) as hub:
        return call(hub)


def run_async(ch: WechatPayChannel, fake: FakeWechat, call: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        client = httpx.AsyncClient(transport=fake.transport())
        async with AsyncPayHub(channels=[ch], http_client=client) as hub:
            try:
                return await call(hub)
            finally:
                await client.aclose()

    return asyncio.run(main())


DRIVERS = {"sync": run_sync, "async": run_async}


def business(fake: FakeWechat) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path != "/v3/certificates"]


def payment(method: PayMethod = PayMethod.QR, **changes: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "out_trade_no": "A100001",
        "amount": Money(100, "CNY"),
        "subject": "游戏点卡 100 元",
        "method": method,
    }
    fields.update(changes)
    return PaymentRequest(**fields)


def verify_merchant(merchant_keys: Any, message: str, signature: str) -> None:
    merchant_keys.public.verify(
        base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


# -- pay ----------------------------------------------------------------------


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_native_pay_returns_the_code_url(setup: Any, driver: str) -> None:
    ch, fake = setup
    result = DRIVERS[driver](ch, fake, lambda hub: hub.pay(payment()))
    assert result.kind is ResultKind.QR
    assert result.qr_code == "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"
    (request,) = business(fake)
    assert request.url.path == "/v3/pay/transactions/native"
    body = json.loads(request.content)
    assert body == {
        "appid": APP_ID,
        "mchid": MCH_ID,
        "description": "游戏点卡 100 元",
        "out_trade_no": "A100001",
        "notify_url": NOTIFY_URL,
        "amount": {"total": 100, "currency": "CNY"},
    }
    assert type(body["amount"]["total"]) is int
    assert "游戏".encode() in request.content  # UTF-8 bytes, signed exactly as sent
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("payhub/")


def test_public_key_mode_sends_the_key_id_as_wechatpay_serial(
    merchant_keys: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = world("public_key", merchant_keys.private, platform_keys.private, clock)
    run_sync(ch, fake, lambda hub: hub.pay(payment()))
    assert fake.requests[0].headers.get_list("Wechatpay-Serial") == [PUB_KEY_ID]


def test_certificate_mode_downloads_certificates_once_before_the_first_call(
    merchant_keys: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = world("certificates", merchant_keys.private, platform_keys.private, clock)
    run_sync(ch, fake, lambda hub: [hub.pay(payment()), hub.query("wechat", "A100001")])
    assert [r.url.path for r in fake.requests] == [
        "/v3/certificates",
        "/v3/pay/transactions/native",
        "/v3/pay/transactions/out-trade-no/A100001",
    ]
    assert "Wechatpay-Serial" not in fake.requests[1].headers


def test_authorization_header_has_the_documented_shape(setup: Any) -> None:
    ch, fake = setup
    run_sync(ch, fake, lambda hub: hub.pay(payment()))
    header = business(fake)[0].headers["Authorization"]
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="')
    assert '",signature="' in header
    assert header.endswith(',serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"')


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_jsapi_pay_returns_params_signed_for_the_page(
    setup: Any, merchant_keys: Any, driver: str
) -> None:
    ch, fake = setup
    request = payment(PayMethod.JSAPI, buyer=BuyerHints(openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
    result = DRIVERS[driver](ch, fake, lambda hub: hub.pay(request))
    assert result.kind is ResultKind.JSAPI
    params = result.app_params
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == APP_ID
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100"
    assert params["signType"] == "RSA"
    assert params["timeStamp"] == "1700000000"
    message = f"{APP_ID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    verify_merchant(merchant_keys, message, params["paySign"])
    body = json.loads(business(fake)[0].content)
    assert body["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}


def test_jsapi_pay_needs_an_openid(setup: Any) -> None:
    ch, fake = setup
    with pytest.raises(InvalidRequestError, match="openid"):
        run_sync(ch, fake, lambda hub: hub.pay(payment(PayMethod.JSAPI)))
    assert business(fake) == []


def test_app_pay_returns_params_signed_for_the_sdk(setup: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    result = run_sync(ch, fake, lambda hub: hub.pay(payment(PayMethod.APP)))
    assert result.kind is ResultKind.APP
    params = result.app_params
    assert params["appid"] == APP_ID
    assert params["partnerid"] == MCH_ID
    assert params["prepayid"] == "wx201410272009395522657a690389285100"
    assert params["package"] == "Sign=WXPay"
    message = f"{APP_ID}\n{params['timestamp']}\n{params['noncestr']}\n{params['prepayid']}\n"
    verify_merchant(merchant_keys, message, params["sign"])


def test_h5_pay_redirects_and_sends_the_scene(setup: Any) -> None:
    ch, fake = setup
    request = payment(PayMethod.H5, buyer=BuyerHints(ip="203.0.113.7"))
    result = run_sync(ch, fake, lambda hub: hub.pay(request))
    assert result.kind is ResultKind.REDIRECT
    assert result.redirect_url.startswith("https://wx.tenpay.com/")
    body = json.loads(business(fake)[0].content)
    assert body["scene_info"] == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}


def test_h5_pay_needs_the_buyer_ip(setup: Any) -> None:
    ch, fake = setup
    with pytest.raises(InvalidRequestError, match=r"buyer\.ip"):
        run_sync(ch, fake, lambda hub: hub.pay(payment(PayMethod.H5)))


def test_pay_needs_a_notify_url(merchant_keys: Any, platform_keys: Any, clock: Clock) -> None:
    ch, fake = world(
        "public_key", merchant_keys.private, platform_keys.private, clock, notify_url=None
    )
    with pytest.raises(InvalidRequestError, match="notify_url"):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))
    result = run_sync(ch, fake, lambda hub: hub.pay(payment(notify_url="https://x.example/n")))
    assert result.qr_code
    assert json.loads(fake.requests[0].content)["notify_url"] == "https://x.example/n"


def test_pay_sends_time_expire_in_shanghai_time(setup: Any) -> None:
    ch, fake = setup
    expires = datetime(2023, 11, 15, 0, 0, tzinfo=UTC)
    run_sync(ch, fake, lambda hub: hub.pay(payment(expires_at=expires)))
    assert json.loads(business(fake)[0].content)["time_expire"] == "2023-11-15T08:00:00+08:00"


def test_pay_refuses_unsupported_methods_and_currencies(setup: Any) -> None:
    ch, _ = setup
    # The hub's routing refuses these first; the channel refuses them on its own too.
    with pytest.raises(InvalidRequestError):
        next(ch.pay(payment(PayMethod.PAGE)))
    with pytest.raises(InvalidRequestError):
        next(ch.pay(payment(amount=Money(100, "USD"))))
    assert ch.supports(PayMethod.QR, "CNY")
    assert not ch.supports(PayMethod.WAP, "CNY")


# -- query and close ----------------------------------------------------------


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_query_by_out_trade_no(setup: Any, driver: str) -> None:
    ch, fake = setup
    result = DRIVERS[driver](ch, fake, lambda hub: hub.query("wechat", "A100001"))
    request = business(fake)[0]
    assert request.method == "GET"
    assert request.url.raw_path == b"/v3/pay/transactions/out-trade-no/A100001?mchid=1900000109"
    assert request.content == b""
    assert result.status is PaymentStatus.PAID
    assert result.amount == Money(100, "CNY")
    assert result.channel_trade_id == "4200001234202311150000000001"
    assert result.buyer_id == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert result.paid_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_query_by_transaction_id(setup: Any) -> None:
    ch, fake = setup
    with httpx.Client(transport=fake.transport()) as client:
        result = run_flow_sync(
            ch.query_by_transaction_id("4200001234202311150000000009"), client.send
        )
    assert business(fake)[0].url.raw_path == (
        b"/v3/pay/transactions/id/4200001234202311150000000009?mchid=1900000109"
    )
    assert result.channel_trade_id == "4200001234202311150000000009"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("SUCCESS", PaymentStatus.PAID),
        ("REFUND", PaymentStatus.REFUNDED),
        ("NOTPAY", PaymentStatus.PENDING),
        ("USERPAYING", PaymentStatus.PENDING),
        ("CLOSED", PaymentStatus.CLOSED),
        ("REVOKED", PaymentStatus.CLOSED),
        ("PAYERROR", PaymentStatus.FAILED),
    ],
)
def test_query_maps_trade_states(setup: Any, state: str, status: PaymentStatus) -> None:
    ch, fake = setup
    answer = transaction_resource(trade_state=state)
    if state != "SUCCESS":
        del answer["success_time"]
    fake.routes["GET", "/v3/pay/transactions/out-trade-no/A100001"] = (
        lambda request: fake.signed(200, answer)
    )
    assert run_sync(ch, fake, lambda hub: hub.query("wechat", "A100001")).status is status


@pytest.mark.parametrize("total", [100.0, "100", -100, True])
def test_query_refuses_an_amount_that_is_not_a_json_integer(setup: Any, total: Any) -> None:
    ch, fake = setup
    answer = transaction_resource()
    answer["amount"]["total"] = total
    fake.routes["GET", "/v3/pay/transactions/out-trade-no/A100001"] = (
        lambda request: fake.signed(200, answer)
    )
    with pytest.raises(AmountError):
        run_sync(ch, fake, lambda hub: hub.query("wechat", "A100001"))


def test_query_refuses_an_answer_for_another_merchant(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/pay/transactions/out-trade-no/A100001"] = (
        lambda request: fake.signed(200, transaction_resource(mchid="1900000999"))
    )
    with pytest.raises(ProtocolError, match="another merchant"):
        run_sync(ch, fake, lambda hub: hub.query("wechat", "A100001"))


@pytest.mark.parametrize("bad", ["../certificates", "A 1", "A1?x=1", "", "x" * 65])
def test_malformed_order_numbers_never_reach_the_path(setup: Any, bad: str) -> None:
    ch, fake = setup
    with pytest.raises(InvalidRequestError):
        run_sync(ch, fake, lambda hub: hub.query("wechat", bad))
    with pytest.raises(InvalidRequestError):
        run_sync(ch, fake, lambda hub: hub.close_trade("wechat", bad))
    assert business(fake) == []


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_close_accepts_a_signed_204(setup: Any, driver: str) -> None:
    ch, fake = setup
    assert DRIVERS[driver](ch, fake, lambda hub: hub.close_trade("wechat", "A100001")) is None
    request = business(fake)[0]
    assert request.url.raw_path == b"/v3/pay/transactions/out-trade-no/A100001/close"
    assert json.loads(request.content) == {"mchid": MCH_ID}


def test_close_refuses_an_unsigned_204(setup: Any) -> None:
    ch, fake = setup
    fake.routes["POST", "/v3/pay/transactions/out-trade-no/A100001/close"] = (
        lambda request: httpx.Response(204)
    )
    with pytest.raises(SignatureError, match="missing"):
        run_sync(ch, fake, lambda hub: hub.close_trade("wechat", "A100001"))


# -- refunds --------------------------------------------------------------------


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_refund_sends_refund_total_and_currency(setup: Any, driver: str) -> None:
    ch, fake = setup
    request = RefundRequest(
        out_trade_no="A100001", out_refund_no="R1001", amount=Money(40), total=Money(100),
        reason="卡密失效",
    )
    result = DRIVERS[driver](ch, fake, lambda hub: hub.refund("wechat", request))
    body = json.loads(business(fake)[0].content)
    assert body == {
        "out_trade_no": "A100001",
        "out_refund_no": "R1001",
        "reason": "卡密失效",
        "amount": {"refund": 40, "total": 100, "currency": "CNY"},
    }
    assert result.status is RefundStatus.PENDING
    assert result.amount == Money(40)
    assert result.channel_refund_id == "50000000382019052709732678859"


def test_refund_needs_the_payment_total(setup: Any) -> None:
    ch, fake = setup
    request = RefundRequest(out_trade_no="A100001", out_refund_no="R1001", amount=Money(40))
    with pytest.raises(InvalidRequestError, match="total"):
        run_sync(ch, fake, lambda hub: hub.refund("wechat", request))
    assert business(fake) == []


def test_refund_above_the_total_is_refused_locally(setup: Any) -> None:
    ch, fake = setup
    request = RefundRequest(
        out_trade_no="A100001", out_refund_no="R1001", amount=Money(101), total=Money(100)
    )
    with pytest.raises(InvalidRequestError) as info:
        run_sync(ch, fake, lambda hub: hub.refund("wechat", request))
    assert info.value.code is ErrorCode.REFUND_EXCEEDS_PAID


def test_refund_query(setup: Any) -> None:
    ch, fake = setup
    result = run_sync(ch, fake, lambda hub: hub.refund_query(
        "wechat", RefundQueryRequest(out_trade_no="A100001", out_refund_no="R1001")))
    assert business(fake)[0].url.raw_path == b"/v3/refund/domestic/refunds/R1001"
    assert result.status is RefundStatus.SUCCEEDED
    assert result.amount == Money(40)


def test_a_succeeded_refunds_success_time_is_its_succeeded_at(setup: Any) -> None:
    # WeChat's refund answer gives success_time once the refund is SUCCESS: the
    # day the channel's bill lists the refund on (reconciliation reads it)
    ch, fake = setup
    answer = fake.refund_answer("A100001", "R1001", 40, 100, "SUCCESS")
    answer["success_time"] = "2023-11-15T23:59:30+08:00"
    fake.routes["GET", "/v3/refund/domestic/refunds/R1001"] = (
        lambda request: fake.signed(200, answer)
    )
    result = run_sync(ch, fake, lambda hub: hub.refund_query(
        "wechat", RefundQueryRequest(out_trade_no="A100001", out_refund_no="R1001")))
    assert result.succeeded_at == datetime(2023, 11, 15, 15, 59, 30, tzinfo=UTC)
    pending = fake.refund_answer("A100001", "R1001", 40, 100, "PROCESSING")
    fake.routes["GET", "/v3/refund/domestic/refunds/R1001"] = (
        lambda request: fake.signed(200, pending)
    )
    result = run_sync(ch, fake, lambda hub: hub.refund_query(
        "wechat", RefundQueryRequest(out_trade_no="A100001", out_refund_no="R1001")))
    assert result.succeeded_at is None


def test_refund_query_of_an_unknown_refund_is_not_found(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/refund/domestic/refunds/R404"] = (
        lambda request: fake.error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    )
    result = run_sync(ch, fake, lambda hub: hub.refund_query(
        "wechat", RefundQueryRequest(out_trade_no="A100001", out_refund_no="R404")))
    assert result.status is RefundStatus.NOT_FOUND


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "unified", "retryable"),
    [
        (500, "SYSTEM_ERROR", ErrorCode.CHANNEL_UNAVAILABLE, True),
        (500, "BANK_ERROR", ErrorCode.CHANNEL_UNAVAILABLE, True),
        (429, "FREQUENCY_LIMITED", ErrorCode.RATE_LIMITED, True),
        (403, "ORDERPAID", ErrorCode.TRADE_ALREADY_PAID, False),
        (403, "OUT_TRADE_NO_USED", ErrorCode.ORDER_NUMBER_USED, False),
        (401, "SIGN_ERROR", ErrorCode.SIGNATURE_INVALID, False),
        (400, "PARAM_ERROR", ErrorCode.INVALID_REQUEST, False),
        (400, "INVALID_REQUEST", ErrorCode.INVALID_REQUEST, False),
        (404, "ORDER_NOT_EXIST", ErrorCode.TRADE_NOT_FOUND, False),
        (400, "ORDER_CLOSED", ErrorCode.TRADE_CLOSED, False),
        (403, "NO_AUTH", ErrorCode.PERMISSION_DENIED, False),
        (403, "NOT_ENOUGH", ErrorCode.INSUFFICIENT_BALANCE, False),
        (400, "APPID_MCHID_NOT_MATCH", ErrorCode.CONFIGURATION, False),
        (503, "SOMETHING_NEW", ErrorCode.CHANNEL_UNAVAILABLE, True),
        (403, "SOMETHING_NEW", ErrorCode.CHANNEL_ERROR, False),
    ],
)
def test_error_answers_map_to_unified_codes(
    setup: Any, status: int, code: str, unified: ErrorCode, retryable: bool
) -> None:
    ch, fake = setup
    fake.routes["POST", "/v3/pay/transactions/native"] = (
        lambda request: fake.error(status, code, "中文的错误信息")
    )
    with pytest.raises(ChannelError) as info:
        run_sync(ch, fake, lambda hub: hub.pay(payment()))
    error = info.value
    assert (error.code, error.retryable) == (unified, retryable)
    assert error.channel_code == code
    assert error.channel_message == "中文的错误信息"
    assert error.http_status == status
    assert error.request_id == "REQ-ERR-1"


def test_the_error_table_is_sorted_and_complete() -> None:
    assert list(WECHAT_ERROR_CODES) == sorted(WECHAT_ERROR_CODES)
    for name in ("SYSTEM_ERROR", "BANK_ERROR", "FREQUENCY_LIMITED"):
        assert WECHAT_ERROR_CODES[name].retryable
    for name in ("ORDERPAID", "OUT_TRADE_NO_USED", "SIGN_ERROR", "PARAM_ERROR"):
        assert not WECHAT_ERROR_CODES[name].retryable
    for row in WECHAT_ERROR_CODES.values():
        assert row.retryable == row.error.retryable


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (400, False)])
def test_html_error_pages_are_protocol_errors(setup: Any, status: int, retryable: bool) -> None:
    ch, fake = setup
    fake.routes["POST", "/v3/pay/transactions/native"] = lambda request: httpx.Response(
        status, html="<html><body>502 Bad Gateway</body></html>"
    )
    with pytest.raises(ProtocolError) as info:
        run_sync(ch, fake, lambda hub: hub.pay(payment()))
    assert info.value.retryable is retryable
    assert "HTML" in info.value.message


def test_a_signed_2xx_that_is_not_json_is_a_protocol_error(setup: Any) -> None:
    ch, fake = setup
    fake.routes["POST", "/v3/pay/transactions/native"] = (
        lambda request: fake.signed(200, b"<html>ok</html>")
    )
    with pytest.raises(ProtocolError):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))


# -- response verification ------------------------------------------------------


def test_an_unsigned_2xx_is_refused(setup: Any) -> None:
    ch, fake = setup
    fake.routes["POST", "/v3/pay/transactions/native"] = (
        lambda request: httpx.Response(200, json={"code_url": "weixin://evil"})
    )
    with pytest.raises(SignatureError):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))


def test_a_response_signed_by_another_key_is_refused(setup: Any, other_keys: Any) -> None:
    ch, fake = setup
    fake.routes["POST", "/v3/pay/transactions/native"] = lambda request: fake.signed(
        200, {"code_url": "weixin://evil"}, key=other_keys.private
    )
    with pytest.raises(SignatureError, match="does not verify"):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))


def test_a_response_reserialized_after_signing_is_refused(setup: Any) -> None:
    ch, fake = setup

    def route(request: httpx.Request) -> httpx.Response:
        signed = fake.signed(200, {"code_url": "weixin://wxpay/bizpayurl?pr=x"})
        reserialized = json.dumps(json.loads(signed.content), indent=1).encode()
        return httpx.Response(200, content=reserialized, headers=signed.headers)

    fake.routes["POST", "/v3/pay/transactions/native"] = route
    with pytest.raises(SignatureError, match="does not verify"):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("Wechatpay-Signature", "WECHATPAY/SIGNTEST/abc", "probe"),
        ("Wechatpay-Timestamp", str(1_700_000_000 - 301), "behind"),
        ("Wechatpay-Timestamp", str(1_700_000_000 + 301), "ahead"),
        ("Wechatpay-Timestamp", "1700000000000", "milliseconds"),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3", "Signature-Type"),
    ],
)
def test_responses_get_the_same_header_checks_as_notifications(
    setup: Any, name: str, value: str, match: str
) -> None:
    ch, fake = setup

    def route(request: httpx.Request) -> httpx.Response:
        signed = fake.signed(200, {"code_url": "weixin://wxpay/bizpayurl?pr=x"})
        headers = httpx.Headers([(k, v) for k, v in signed.headers.multi_items() if k != name])
        headers[name] = value
        return httpx.Response(200, content=signed.content, headers=headers)

    fake.routes["POST", "/v3/pay/transactions/native"] = route
    with pytest.raises(SignatureError, match=match):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))


def test_a_response_with_a_repeated_header_is_refused(setup: Any) -> None:
    ch, fake = setup

    def route(request: httpx.Request) -> httpx.Response:
        signed = fake.signed(200, {"code_url": "weixin://wxpay/bizpayurl?pr=x"})
        headers = [*signed.headers.multi_items(), ("Wechatpay-Nonce", "again")]
        return httpx.Response(200, content=signed.content, headers=headers)

    fake.routes["POST", "/v3/pay/transactions/native"] = route
    with pytest.raises(SignatureError, match="repeated"):
        run_sync(ch, fake, lambda hub: hub.pay(payment()))


def test_requests_whose_signature_the_host_refuses_surface_as_sign_error(
    mode: str, merchant_keys: Any, other_keys: Any, platform_keys: Any, clock: Clock
) -> None:
    # The channel signs with a key the host does not know.
    ch, _ = world(mode, other_keys.private, platform_keys.private, clock)
    _, fake = world(mode, merchant_keys.private, platform_keys.private, clock)
    with pytest.raises(ChannelError) as info:
        run_sync(ch, fake, lambda hub: hub.pay(payment()))
    assert info.value.code is ErrorCode.SIGNATURE_INVALID


# -- plugin registration and exports -------------------------------------------


def test_the_channel_registers_through_the_plugin_hook(
    merchant_keys: Any, platform_keys: Any, clock: Clock
) -> None:
    from test_wechat_support import config

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(wechat_module, name="wechat")
    settings = {"type": "wechat", **config(merchant_keys.private, platform_keys.private)}
    hub = PayHub.from_config({"channels": {"wx-main": settings}}, plugin_manager=pm)
    try:
        channel = hub.channel("wx-main")
        assert isinstance(channel, WechatPayChannel)
        assert channel.kind == "wechat"
        assert channel.name == "wx-main"
    finally:
        hub.close()


def test_exports_are_sorted_and_named_after_the_package() -> None:
    assert wechat_module.__all__ == sorted(wechat_module.__all__)
    assert WechatPayChannel.__module__ == "payhub.channels.wechat"


def test_signed_headers_helper_matches_the_channel_rules(platform_keys: Any) -> None:
    # Guards the test helper itself: its signature verifies with the platform key.
    body = b'{"a":1}'
    headers = dict(signed_headers(platform_keys.private, "X", body))
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
    platform_keys.public.verify(
        base64.b64decode(headers["Wechatpay-Signature"]), message + body + b"\n",
        padding.PKCS1v15(), hashes.SHA256(),
    )
    assert int(headers["Wechatpay-Timestamp"]) == 1_700_000_000
    assert timedelta(seconds=0) == timedelta()


def test_the_docs_list_every_row_of_the_error_table() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "channels" / "wechat.md").read_text("utf-8")
    for row in WECHAT_ERROR_CODES.values():
        line = (
            f"| `{row.code}` | {row.http_status} | {row.meaning} | `{row.error.name}` | "
            f"{'yes' if row.retryable else 'no'} |"
        )
        assert line in text, row.code


def test_a_payment_to_split_sends_settle_info_profit_sharing(setup: Any) -> None:
    """The order APIs' ``settle_info.profit_sharing`` (是否指定分账, a boolean; the
    documented request examples send the object with ``true`` to split later)."""
    ch, fake = setup
    run_sync(ch, fake, lambda hub: hub.pay(payment(split=True)))
    body = json.loads(business(fake)[0].content)
    assert body["settle_info"] == {"profit_sharing": True}
    assert body["settle_info"]["profit_sharing"] is True  # a JSON boolean, never "Y"
