"""Every Alipay operation, through PayHub and AsyncPayHub, against the fake gateway.

The fake verifies each request's signature with the merchant's public key
(parsing query string and form body itself) and signs its answers with the
platform key.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_alipay_fake import (
    APP_ID,
    GATEWAY,
    NOW,
    FakeGateway,
    make_channel,
    string_to_sign,
    success,
    verifies,
)

from payhub.channels.alipay import AlipayChannel
from payhub.errors import AmountError, InvalidRequestError, ProtocolError
from payhub.hub import AsyncPayHub, PayHub
from payhub.models import (
    PaymentRequest,
    PaymentStatus,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundStatus,
    ResultKind,
)
from payhub.money import Money

T = TypeVar("T")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def channel(merchant_keys: Any, platform_keys: Any) -> AlipayChannel:
    return make_channel(merchant_keys, platform_keys)


@pytest.fixture
def fake(merchant_keys: Any, platform_keys: Any) -> FakeGateway:
    return FakeGateway(merchant_keys.public, platform_keys.private)


Runner = Callable[[str, Any], Any]


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest, channel: AlipayChannel, fake: FakeGateway) -> Runner:
    """``run("query", "A1")`` calls the hub method on a sync or an async hub."""

    def sync(name: str, *args: Any) -> Any:
        with PayHub(channels=[channel], http_client=fake.client()) as hub:
            method = getattr(hub, name)
            return method(*args) if name == "pay" else method("alipay", *args)

    def asynchronous(name: str, *args: Any) -> Any:
        async def go() -> Any:
            async with AsyncPayHub(channels=[channel], http_client=fake.async_client()) as hub:
                method = getattr(hub, name)
                return await (method(*args) if name == "pay" else method("alipay", *args))

        return asyncio.run(go())

    return sync if request.param == "sync" else asynchronous


def payment(method: PayMethod, **extra: Any) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no="ORDER-0001",
        amount=Money(8888),
        subject="游戏点卡 100元",
        method=method,
        **extra,
    )


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# -- payments signed locally -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "api", "product"),
    [
        (PayMethod.PAGE, "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
        (PayMethod.WAP, "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
    ],
)
def test_browser_payment_form_and_redirect(
    run: Runner, fake: FakeGateway, merchant_keys: Any, method: PayMethod, api: str, product: str
) -> None:
    result = run("pay", payment(method))
    assert fake.seen == []  # no HTTP
    assert result.kind is ResultKind.FORM
    assert result.redirect_url.startswith(GATEWAY + "?")
    params = query_params(result.redirect_url)
    assert params["method"] == api
    assert params["app_id"] == APP_ID
    assert params["format"] == "JSON"
    assert params["charset"] == "utf-8"
    assert params["sign_type"] == "RSA2"
    assert params["version"] == "1.0"
    assert params["timestamp"] == "2024-01-02 10:30:00"
    assert params["notify_url"] == "https://shop.example/alipay/notify"
    assert params["return_url"] == "https://shop.example/alipay/return"
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "ORDER-0001",
        "total_amount": "88.88",
        "subject": "游戏点卡 100元",
        "product_code": product,
    }
    assert "游戏点卡" in params["biz_content"]  # ensure_ascii=False: signed as sent
    assert verifies(merchant_keys.public, string_to_sign(params).encode(), params["sign"])

    # The form posts the same parameters: common ones in the action's query,
    # biz_content as a field, and submits itself.
    form = result.form_html
    action = html.unescape(re.search(r'action="([^"]*)"', form).group(1))
    field = html.unescape(re.search(r'name="biz_content" value="([^"]*)"', form).group(1))
    assert action.startswith(GATEWAY + "?")
    assert 'method="POST"' in form
    assert "submit()" in form
    assert {**query_params(action), "biz_content": field} == params


def test_app_payment_order_string(run: Runner, fake: FakeGateway, merchant_keys: Any) -> None:
    result = run("pay", payment(PayMethod.APP))
    assert fake.seen == []
    assert result.kind is ResultKind.APP
    params = dict(parse_qsl(result.app_order_string, keep_blank_values=True))
    assert params["method"] == "alipay.trade.app.pay"
    assert "return_url" not in params
    assert json.loads(params["biz_content"])["product_code"] == "QUICK_MSECURITY_PAY"
    assert verifies(merchant_keys.public, string_to_sign(params).encode(), params["sign"])


def test_expiry_becomes_time_expire(channel: AlipayChannel, fake: FakeGateway) -> None:
    expires = NOW + timedelta(minutes=30)
    with PayHub(channels=[channel], http_client=fake.client()) as hub:
        result = hub.pay(payment(PayMethod.PAGE, expires_at=expires.astimezone(ZoneInfo("UTC"))))
    biz = json.loads(query_params(result.redirect_url)["biz_content"])
    assert biz["time_expire"] == "2024-01-02 11:00:00"


def test_request_urls_override_the_configured_ones(channel: AlipayChannel) -> None:
    with PayHub(channels=[channel], http_client=httpx.Client()) as hub:
        result = hub.pay(
            payment(
                PayMethod.WAP, notify_url="https://a.example/n", return_url="https://a.example/r"
            )
        )
    params = query_params(result.redirect_url)
    assert params["notify_url"] == "https://a.example/n"
    assert params["return_url"] == "https://a.example/r"


# -- over HTTP ------------------------------------------------------------------------------


def test_qr_payment_precreate(run: Runner, fake: FakeGateway) -> None:
    fake.nodes["alipay.trade.precreate"] = success(
        out_trade_no="ORDER-0001", qr_code="https://qr.alipay.com/bax01234"
    )
    result = run("pay", payment(PayMethod.QR, expires_at=NOW + timedelta(minutes=15)))
    assert result.kind is ResultKind.QR
    assert result.qr_code == "https://qr.alipay.com/bax01234"
    (seen,) = fake.seen
    assert seen.signature_ok
    assert seen.method == "POST"
    assert seen.params["method"] == "alipay.trade.precreate"
    assert seen.params["notify_url"] == "https://shop.example/alipay/notify"
    assert seen.biz["total_amount"] == "88.88"
    assert seen.biz["timeout_express"] == "15m"


def test_requests_post_common_params_in_query_and_biz_in_form(
    channel: AlipayChannel, fake: FakeGateway
) -> None:
    fake.nodes["alipay.trade.close"] = success(out_trade_no="ORDER-0001")
    sent: list[httpx.Request] = []

    def spy(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return fake(request)

    client = httpx.Client(transport=httpx.MockTransport(spy))
    with PayHub(channels=[channel], http_client=client) as hub:
        hub.close_trade("alipay", "ORDER-0001")
    (request,) = sent
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "charset=utf-8" in request.headers["content-type"]
    query = query_params(str(request.url))
    assert "biz_content" not in query
    assert {"app_id", "method", "sign", "timestamp", "sign_type"} <= set(query)
    assert request.content.startswith(b"biz_content=")


@pytest.mark.parametrize(
    ("trade_status", "expected"),
    [
        ("WAIT_BUYER_PAY", PaymentStatus.PENDING),
        ("TRADE_SUCCESS", PaymentStatus.PAID),
        ("TRADE_CLOSED", PaymentStatus.CLOSED),
        ("TRADE_FINISHED", PaymentStatus.FINISHED),
    ],
)
def test_query(run: Runner, fake: FakeGateway, trade_status: str, expected: PaymentStatus) -> None:
    fake.nodes["alipay.trade.query"] = success(
        trade_no="2024010222001446880500001234",
        out_trade_no="ORDER-0001",
        buyer_logon_id="abc***@example.com",
        trade_status=trade_status,
        total_amount="88.88",
        buyer_user_id="2088102177846880",
        send_pay_date="2024-01-02 10:31:04",
    )
    result = run("query", "ORDER-0001")
    assert fake.seen[0].signature_ok
    assert fake.seen[0].biz == {"out_trade_no": "ORDER-0001"}
    assert result.status is expected
    assert result.amount == Money(8888)
    assert result.channel_trade_id == "2024010222001446880500001234"
    assert result.buyer_id == "2088102177846880"
    assert result.paid_at == datetime(2024, 1, 2, 10, 31, 4, tzinfo=SHANGHAI)
    assert result.raw["buyer_logon_id"] == "abc***@example.com"


@pytest.mark.parametrize(
    ("fund_change", "status"), [("Y", RefundStatus.SUCCEEDED), ("N", RefundStatus.PENDING)]
)
def test_refund(run: Runner, fake: FakeGateway, fund_change: str, status: RefundStatus) -> None:
    fake.nodes["alipay.trade.refund"] = success(
        trade_no="2024010222001446880500001234",
        out_trade_no="ORDER-0001",
        fund_change=fund_change,
        refund_fee="30.00",
        gmt_refund_pay="2024-01-03 09:00:00",
    )
    request = RefundRequest(
        out_trade_no="ORDER-0001", out_refund_no="R-1", amount=Money(1000), reason="退货"
    )
    result = run("refund", request)
    (seen,) = fake.seen
    assert seen.signature_ok
    assert seen.biz == {
        "out_trade_no": "ORDER-0001",
        "refund_amount": "10.00",
        "out_request_no": "R-1",
        "refund_reason": "退货",
    }
    assert result.status is status
    assert result.amount == Money(1000)
    assert result.refunded_total == Money(3000)
    assert result.raw["fund_change"] == fund_change


@pytest.mark.parametrize(
    ("node", "status"),
    [
        ({"refund_status": "REFUND_SUCCESS", "refund_amount": "10.00"}, RefundStatus.SUCCEEDED),
        ({"refund_amount": "10.00"}, RefundStatus.SUCCEEDED),
        ({}, RefundStatus.NOT_FOUND),
    ],
)
def test_refund_query(
    run: Runner, fake: FakeGateway, node: dict[str, str], status: RefundStatus
) -> None:
    fake.nodes["alipay.trade.fastpay.refund.query"] = success(
        trade_no="2024010222001446880500001234",
        out_trade_no="ORDER-0001",
        out_request_no="R-1",
        total_amount="88.88",
        **node,
    )
    result = run("refund_query", RefundQueryRequest(out_trade_no="ORDER-0001", out_refund_no="R-1"))
    assert fake.seen[0].biz == {"out_trade_no": "ORDER-0001", "out_request_no": "R-1"}
    assert fake.seen[0].params["method"] == "alipay.trade.fastpay.refund.query"
    assert result.status is status
    if status is RefundStatus.SUCCEEDED:
        assert result.amount == Money(1000)


def test_close(run: Runner, fake: FakeGateway) -> None:
    fake.nodes["alipay.trade.close"] = success(
        trade_no="2024010222001446880500001234", out_trade_no="ORDER-0001"
    )
    assert run("close_trade", "ORDER-0001") is None
    (seen,) = fake.seen
    assert seen.signature_ok
    assert seen.params["method"] == "alipay.trade.close"
    assert seen.biz == {"out_trade_no": "ORDER-0001"}


def test_download_bill(run: Runner, fake: FakeGateway) -> None:
    from test_alipay_bill import bill_zip

    url = "https://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&fileType=csv.zip"
    fake.nodes["alipay.data.dataservice.bill.downloadurl.query"] = success(bill_download_url=url)
    fake.downloads[url] = bill_zip()
    records = run("download_bill", date(2024, 1, 2))
    assert fake.seen[0].biz == {"bill_type": "trade", "bill_date": "2024-01-02"}
    assert [r.amount for r in records] == [Money(8888), Money(-1000)]


# -- refused before anything is sent ------------------------------------------------------


def test_non_cny_is_refused(channel: AlipayChannel) -> None:
    request = PaymentRequest(
        out_trade_no="A1", amount=Money(100, "USD"), subject="x", method=PayMethod.PAGE
    )
    with pytest.raises(InvalidRequestError, match="CNY"):
        list(channel.pay(request))  # the hub's routing would not even pick it


def test_amount_above_the_limit_is_refused(merchant_keys: Any, platform_keys: Any) -> None:
    channel = make_channel(merchant_keys, platform_keys, max_amount="100.00")
    request = PaymentRequest(
        out_trade_no="A1", amount=Money(10001), subject="x", method=PayMethod.PAGE
    )
    with pytest.raises(AmountError):
        list(channel.pay(request))


def test_unsupported_method_is_refused(channel: AlipayChannel) -> None:
    request = PaymentRequest(
        out_trade_no="A1", amount=Money(1), subject="x", method=PayMethod.JSAPI
    )
    with pytest.raises(InvalidRequestError):
        list(channel.pay(request))
    assert not channel.supports(PayMethod.JSAPI, "CNY")
    assert channel.supports(PayMethod.QR, "CNY")
    assert not channel.supports(PayMethod.QR, "USD")


def test_expiry_in_the_past_is_refused(channel: AlipayChannel) -> None:
    with pytest.raises(InvalidRequestError, match="past"):
        list(channel.pay(payment(PayMethod.PAGE, expires_at=NOW - timedelta(seconds=1))))


def test_response_about_another_trade_is_refused(channel: AlipayChannel, fake: FakeGateway) -> None:
    fake.nodes["alipay.trade.query"] = success(
        out_trade_no="SOMEONE-ELSE", trade_status="TRADE_SUCCESS"
    )
    with (
        PayHub(channels=[channel], http_client=fake.client()) as hub,
        pytest.raises(ProtocolError, match="another out_trade_no"),
    ):
        hub.query("alipay", "ORDER-0001")


def test_from_hub_configuration(merchant_keys: Any, platform_keys: Any) -> None:
    hub = PayHub.from_config(
        {
            "channels": {
                "shop-alipay": {
                    "type": "alipay",
                    "app_id": APP_ID,
                    "app_private_key": merchant_keys.private_pem,
                    "alipay_public_key": platform_keys.public_base64,
                    "environment": "sandbox",
                    "gateway": "sandbox",
                }
            }
        },
        http_client=httpx.Client(),
    )
    channel = hub.channel("shop-alipay")
    assert isinstance(channel, AlipayChannel)
    assert channel.kind == "alipay"
    assert channel.config.gateway == "https://openapi-sandbox.dl.alipaydev.com/gateway.do"
    hub.close()


@pytest.mark.parametrize("method", [PayMethod.PAGE, PayMethod.QR])
def test_a_payment_to_split_freezes_its_money(
    run: Runner, fake: FakeGateway, method: PayMethod
) -> None:
    """商家分账: ``extend_params.royalty_freeze = "true"`` keeps the trade's money
    frozen for alipay.trade.order.settle (a string, as in Alipay's samples)."""
    fake.nodes["alipay.trade.precreate"] = success(
        out_trade_no="ORDER-0001", qr_code="https://qr.alipay.com/bax01234"
    )
    result = run("pay", payment(method, split=True))
    if method is PayMethod.QR:
        biz = fake.seen[0].biz
    else:
        biz = json.loads(query_params(result.redirect_url)["biz_content"])
    assert biz["extend_params"] == {"royalty_freeze": "true"}
    plain = run("pay", payment(method))
    if method is PayMethod.QR:
        assert "extend_params" not in fake.seen[1].biz
    else:
        assert "extend_params" not in json.loads(
            query_params(plain.redirect_url)["biz_content"]
        )
