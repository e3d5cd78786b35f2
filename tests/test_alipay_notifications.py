"""Alipay asynchronous notifications and browser returns: good ones, and each bad input.

Every bad input must raise its typed error from ``parse_notification`` and make
``hub.handle_notification`` answer ``fail`` (so Alipay resends) with the error set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_alipay_fake import (
    APP_ID,
    FORM,
    SELLER_ID,
    make_channel,
    notification_body,
    notification_fields,
    sign_bytes,
    string_to_sign,
)

from payhub.channels.alipay import AlipayChannel
from payhub.errors import (
    AmountError,
    NotificationRejected,
    PayhubError,
    ProtocolError,
    SignatureError,
)
from payhub.hub import PayHub
from payhub.models import Ack, NotificationKind, PaymentStatus
from payhub.money import Money

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def channel(merchant_keys: Any, platform_keys: Any) -> AlipayChannel:
    return make_channel(merchant_keys, platform_keys)


@pytest.fixture
def hub(channel: AlipayChannel) -> PayHub:
    return PayHub(channels=[channel], http_client=httpx.Client())


def parse(channel: AlipayChannel, body: bytes, headers: dict[str, str] = FORM) -> Any:
    return channel.parse_notification(httpx.Headers(headers), body)


def assert_refused(hub: PayHub, body: bytes, error: type[PayhubError]) -> PayhubError:
    with pytest.raises(error) as raised:
        parse(hub.channel("alipay"), body)  # type: ignore[arg-type]
    outcome = hub.handle_notification("alipay", FORM, body)
    assert outcome.ack.body == b"fail"
    assert not outcome.ack.ok
    assert isinstance(outcome.error, error)
    assert outcome.notification is None
    assert not outcome.accepted
    return raised.value


# -- good notifications ---------------------------------------------------------------


def test_payment(channel: AlipayChannel, hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(notification_fields(), platform_keys.private)
    n = parse(channel, body)
    assert n.channel == "alipay"
    assert n.kind is NotificationKind.PAYMENT
    assert n.status is PaymentStatus.PAID
    assert n.out_trade_no == "ORDER-0001"
    assert n.channel_trade_id == "2024010222001446880500001234"
    assert n.amount == Money(8888)
    assert n.refund_amount is None
    assert n.event_key == f"alipay:{APP_ID}:2024010200222103105000001234567890"
    assert n.occurred_at == datetime(2024, 1, 2, 10, 31, 4, tzinfo=SHANGHAI)
    assert n.merchant_id == SELLER_ID
    assert n.raw["fund_bill_list"] == '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]'
    assert n.raw["notify_time"] == "2024-01-02 10:31:05"
    assert n.raw_body == body

    outcome = hub.handle_notification("alipay", FORM, body)
    assert outcome.accepted
    assert outcome.ack == Ack(status_code=200, body=b"success", content_type="text/plain", ok=True)
    assert outcome.notification == n


def test_resends_share_the_event_key(channel: AlipayChannel, platform_keys: Any) -> None:
    first = parse(channel, notification_body(notification_fields(), platform_keys.private))
    again = notification_fields(notify_time="2024-01-02 10:35:05")
    assert (
        parse(channel, notification_body(again, platform_keys.private)).event_key == first.event_key
    )


@pytest.mark.parametrize(
    ("overrides", "kind", "status", "refund"),
    [
        (
            {"refund_fee": "10.00", "gmt_refund": "2024-01-03 09:00:00", "out_biz_no": "R-1"},
            NotificationKind.REFUND,
            PaymentStatus.PAID,
            Money(1000),
        ),
        (
            {"trade_status": "TRADE_CLOSED", "refund_fee": "88.88", "out_biz_no": "R-2"},
            NotificationKind.REFUND,
            PaymentStatus.CLOSED,
            Money(8888),
        ),
        ({"trade_status": "TRADE_CLOSED"}, NotificationKind.CLOSED, PaymentStatus.CLOSED, None),
        (
            {"trade_status": "TRADE_FINISHED"},
            NotificationKind.FINISHED,
            PaymentStatus.FINISHED,
            None,
        ),
        ({"trade_status": "WAIT_BUYER_PAY"}, NotificationKind.PENDING, PaymentStatus.PENDING, None),
    ],
)
def test_kinds(
    channel: AlipayChannel,
    platform_keys: Any,
    overrides: dict[str, str],
    kind: NotificationKind,
    status: PaymentStatus,
    refund: Money | None,
) -> None:
    n = parse(channel, notification_body(notification_fields(**overrides), platform_keys.private))
    assert n.kind is kind
    assert n.status is status
    # Alipay's refund_fee is the running total of refunds, never this refund alone.
    assert n.refunded_total == refund
    assert n.refund_amount is None
    assert n.out_refund_no == overrides.get("out_biz_no")
    assert n.amount == Money(8888)


def test_refund_time_is_gmt_refund(channel: AlipayChannel, platform_keys: Any) -> None:
    fields = notification_fields(refund_fee="1.00", gmt_refund="2024-01-03 09:00:00")
    n = parse(channel, notification_body(fields, platform_keys.private))
    assert n.occurred_at == datetime(2024, 1, 3, 9, 0, 0, tzinfo=SHANGHAI)


def test_gbk_body_with_a_utf8_content_type(channel: AlipayChannel, platform_keys: Any) -> None:
    fields = notification_fields(charset="gbk", subject="游戏点卡 100元（自动发货）")
    body = notification_body(fields, platform_keys.private)
    assert "游戏".encode("gbk") not in body
    assert b"%D3%CE" in body
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    n = parse(channel, body, headers)
    assert n.raw["subject"] == "游戏点卡 100元（自动发货）"
    assert n.amount == Money(8888)


def test_gbk_body_is_not_utf8(channel: AlipayChannel, platform_keys: Any) -> None:
    """Decoding a GBK body as UTF-8 (as the header claims) would fail or garble."""
    fields = notification_fields(charset="gbk", subject="点卡")
    body = notification_body(fields, platform_keys.private)
    wrong = body.replace(b"charset=gbk", b"charset=utf-8")
    with pytest.raises((SignatureError, ProtocolError)):
        parse(channel, wrong)


def test_empty_values_are_not_signed(channel: AlipayChannel, platform_keys: Any) -> None:
    fields = notification_fields(passback_params="", body="")
    n = parse(channel, notification_body(fields, platform_keys.private))
    assert n.raw["passback_params"] == ""


def test_unusual_encoding_takes_the_general_decoder(
    channel: AlipayChannel, platform_keys: Any
) -> None:
    """Escaped '&', '=' left raw in a value, lowercase escapes: still the same fields."""
    fields = notification_fields(subject="A&B=C", passback_params="k=v&x=%")
    message = string_to_sign(fields, exclude=("sign", "sign_type")).encode()
    signature = sign_bytes(platform_keys.private, message)
    body = "&".join(
        f"{k}={quote(v, safe='=').lower() if k == 'passback_params' else quote(v, safe='')}"
        for k, v in {**fields, "sign": signature}.items()
    ).encode()
    n = parse(channel, body)
    assert n.raw["subject"] == "A&B=C"
    assert n.raw["passback_params"] == "k=v&x=%"


# -- each bad input ---------------------------------------------------------------------


def test_missing_sign(hub: PayHub) -> None:
    body = urlencode(notification_fields()).encode()
    assert "not signed" in str(assert_refused(hub, body, SignatureError))


def test_wrong_signature(hub: PayHub, other_keys: Any) -> None:
    body = notification_body(notification_fields(), other_keys.private)
    assert_refused(hub, body, SignatureError)


def test_valid_signature_with_total_amount_altered(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(notification_fields(), platform_keys.private)
    assert b"total_amount=88.88" in body
    assert_refused(hub, body.replace(b"total_amount=88.88", b"total_amount=0.01"), SignatureError)


def test_sign_type_rsa_while_rsa2_is_configured(hub: PayHub, platform_keys: Any) -> None:
    # a genuine SHA1withRSA signature: the configured RSA2 must still be used, and fail
    body = notification_body(notification_fields(sign_type="RSA"), platform_keys.private)
    error = assert_refused(hub, body, SignatureError)
    assert "RSA2" in str(error)


def test_rsa_when_configured(merchant_keys: Any, platform_keys: Any) -> None:
    channel = make_channel(merchant_keys, platform_keys, sign_type="RSA")
    body = notification_body(notification_fields(sign_type="RSA"), platform_keys.private)
    assert parse(channel, body).amount == Money(8888)


def test_notification_for_another_app_id(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(notification_fields(app_id="2021999999999999"), platform_keys.private)
    assert_refused(hub, body, NotificationRejected)


def test_notification_for_another_seller_id(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(
        notification_fields(seller_id="2088000000000000"), platform_keys.private
    )
    assert_refused(hub, body, NotificationRejected)


def test_seller_id_unchecked_when_not_configured(merchant_keys: Any, platform_keys: Any) -> None:
    channel = make_channel(merchant_keys, platform_keys, seller_id=None)
    fields = notification_fields(seller_id="2088000000000000")
    assert parse(channel, notification_body(fields, platform_keys.private)).amount == Money(8888)


@pytest.mark.parametrize("amount", ["1e2", "１００.００", " 100.00", "-1", "NaN", "100.001", ""])
def test_bad_total_amount(hub: PayHub, platform_keys: Any, amount: str) -> None:
    body = notification_body(notification_fields(total_amount=amount), platform_keys.private)
    assert_refused(hub, body, AmountError)


@pytest.mark.parametrize("amount", ["1e2", "-1", "NaN"])
def test_bad_refund_fee(hub: PayHub, platform_keys: Any, amount: str) -> None:
    body = notification_body(notification_fields(refund_fee=amount), platform_keys.private)
    assert_refused(hub, body, AmountError)


def test_amount_above_the_limit(merchant_keys: Any, platform_keys: Any) -> None:
    channel = make_channel(merchant_keys, platform_keys, max_amount="50.00")
    hub = PayHub(channels=[channel], http_client=httpx.Client())
    assert_refused(
        hub, notification_body(notification_fields(), platform_keys.private), AmountError
    )


def test_missing_notify_id(hub: PayHub, platform_keys: Any) -> None:
    fields = notification_fields()
    del fields["notify_id"]
    assert_refused(hub, notification_body(fields, platform_keys.private), NotificationRejected)


def test_unknown_trade_status(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(
        notification_fields(trade_status="TRADE_PENDING"), platform_keys.private
    )
    assert_refused(hub, body, NotificationRejected)


def test_duplicated_field(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(notification_fields(), platform_keys.private)
    assert_refused(hub, body + b"&total_amount=0.01", ProtocolError)


def test_undecodable_body(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(notification_fields(subject="x"), platform_keys.private)
    assert_refused(hub, body.replace(b"subject=x", b"subject=%FF%FE"), ProtocolError)


def test_unknown_charset(hub: PayHub, platform_keys: Any) -> None:
    body = notification_body(notification_fields(), platform_keys.private)
    assert_refused(hub, body.replace(b"charset=utf-8", b"charset=ebcdic-x"), ProtocolError)


def test_not_a_form(hub: PayHub) -> None:
    assert_refused(hub, b'{"trade_status": "TRADE_SUCCESS"}', SignatureError)


def test_errors_never_show_the_signature(hub: PayHub, platform_keys: Any, other_keys: Any) -> None:
    body = notification_body(notification_fields(), other_keys.private)
    signature = dict(p.split("=", 1) for p in body.decode().split("&"))["sign"]
    error = assert_refused(hub, body, SignatureError)
    for text in (str(error), repr(error)):
        assert signature not in text
        assert signature[:16] not in text


# -- browser return ----------------------------------------------------------------------


def return_params(platform_keys: Any, **overrides: str) -> dict[str, str]:
    params = {
        "charset": "utf-8",
        "out_trade_no": "ORDER-0001",
        "method": "alipay.trade.page.pay.return",
        "total_amount": "88.88",
        "trade_no": "2024010222001446880500001234",
        "auth_app_id": APP_ID,
        "version": "1.0",
        "app_id": APP_ID,
        "sign_type": "RSA2",
        "seller_id": SELLER_ID,
        "timestamp": "2024-01-02 10:31:06",
    }
    params.update(overrides)
    message = string_to_sign(params, exclude=("sign", "sign_type")).encode()
    params["sign"] = sign_bytes(platform_keys.private, message)
    return params


def test_return(hub: PayHub, platform_keys: Any) -> None:
    info = hub.verify_return("alipay", return_params(platform_keys))
    assert info.out_trade_no == "ORDER-0001"
    assert info.channel_trade_id == "2024010222001446880500001234"
    assert info.amount == Money(8888)


def test_return_tampered(hub: PayHub, platform_keys: Any) -> None:
    params = return_params(platform_keys)
    params["total_amount"] = "0.01"
    with pytest.raises(SignatureError):
        hub.verify_return("alipay", params)


def test_return_unsigned(hub: PayHub, platform_keys: Any) -> None:
    params = return_params(platform_keys)
    del params["sign"]
    with pytest.raises(SignatureError):
        hub.verify_return("alipay", params)


def test_return_for_another_app(hub: PayHub, platform_keys: Any) -> None:
    with pytest.raises(NotificationRejected):
        hub.verify_return("alipay", return_params(platform_keys, app_id="2021999999999999"))


def test_ack(channel: AlipayChannel) -> None:
    assert channel.ack(True) == Ack(
        status_code=200, body=b"success", content_type="text/plain", ok=True
    )
    assert channel.ack(False, "SIGNATURE_INVALID") == Ack(
        status_code=200, body=b"fail", content_type="text/plain", ok=False
    )
