"""What the gateway answers: verified over raw bytes, and every way it can go wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_alipay_fake import FakeGateway, failure, make_channel, response_body, sign_bytes, success

from payhub.channels.alipay import ALIPAY_ERROR_CODES, AlipayChannel
from payhub.channels.alipay._codes import map_error_code
from payhub.errors import (
    AmountError,
    ChannelError,
    ErrorCode,
    ProtocolError,
    SignatureError,
)
from payhub.hub import PayHub
from payhub.models import PaymentStatus

QUERY = "alipay.trade.query"


@pytest.fixture
def channel(merchant_keys: Any, platform_keys: Any) -> AlipayChannel:
    return make_channel(merchant_keys, platform_keys)


@pytest.fixture
def fake(merchant_keys: Any, platform_keys: Any) -> FakeGateway:
    return FakeGateway(merchant_keys.public, platform_keys.private)


def query_with(channel: AlipayChannel, answer: httpx.Response | bytes) -> Any:
    response = answer if isinstance(answer, httpx.Response) else httpx.Response(200, content=answer)
    client = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    with PayHub(channels=[channel], http_client=client) as hub:
        return hub.query("alipay", "ORDER-0001")


def paid(**extra: Any) -> dict[str, Any]:
    fields = {
        "out_trade_no": "ORDER-0001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.88",
    }
    return success(**{**fields, **extra})


# -- verified over the raw bytes ------------------------------------------------------


def test_node_with_escaped_slashes_is_verified_over_raw_bytes(
    channel: AlipayChannel, platform_keys: Any
) -> None:
    # Re-serializing the node would turn "\/" into "/" and break the signature.
    node = (
        '{"code":"10000","msg":"Success","out_trade_no":"ORDER-0001",'
        '"trade_status":"TRADE_SUCCESS","total_amount":"88.88",'
        '"buyer_logon_id":"http:\\/\\/x.example\\/\\u6e38","subject":"\\"quoted\\" {brace}"}'
    )
    result = query_with(channel, response_body(QUERY, node, platform_keys.private))
    assert result.status is PaymentStatus.PAID
    assert result.raw["buyer_logon_id"] == "http://x.example/游"
    assert result.raw["subject"] == '"quoted" {brace}'


def test_non_ascii_node_and_whitespace(channel: AlipayChannel, platform_keys: Any) -> None:
    node = (
        '{ "code" : "10000", "out_trade_no":"ORDER-0001", '
        '"trade_status":"TRADE_SUCCESS", "subject":"点卡" }'
    )
    body = response_body(QUERY, node, platform_keys.private)
    body = body.replace(b'{"alipay_trade_query_response":', b'{ "alipay_trade_query_response" :\n ')
    body = body.replace(b',"sign":', b' ,\r\n\t"sign" : ') + b"\n"
    assert query_with(channel, body).raw["subject"] == "点卡"


def test_sign_before_the_node(channel: AlipayChannel, platform_keys: Any) -> None:
    node = '{"code":"10000","out_trade_no":"ORDER-0001","trade_status":"WAIT_BUYER_PAY"}'
    sign = sign_bytes(platform_keys.private, node.encode())
    body = f'{{"sign":"{sign}","alipay_trade_query_response":{node}}}'.encode()
    assert query_with(channel, body).status is PaymentStatus.PENDING


def test_signature_that_does_not_match(channel: AlipayChannel, other_keys: Any) -> None:
    with pytest.raises(SignatureError):
        query_with(channel, response_body(QUERY, paid(), other_keys.private))


def test_node_altered_after_signing(channel: AlipayChannel, platform_keys: Any) -> None:
    body = response_body(QUERY, paid(), platform_keys.private).replace(b"88.88", b"0.01")
    with pytest.raises(SignatureError):
        query_with(channel, body)


def test_success_without_sign(channel: AlipayChannel) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        query_with(channel, response_body(QUERY, paid(), None))


def test_business_error_without_sign(channel: AlipayChannel) -> None:
    node = failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")
    with pytest.raises(SignatureError, match="not signed"):
        query_with(channel, response_body(QUERY, node, None))


def test_gateway_error_without_sign_is_a_channel_error(channel: AlipayChannel) -> None:
    node = failure("40002", "isv.invalid-signature", "验签出错")
    body = response_body(QUERY, node, None, node_name="error_response")
    with pytest.raises(ChannelError) as raised:
        query_with(channel, body)
    error = raised.value
    assert error.code is ErrorCode.SIGNATURE_INVALID
    assert not error.retryable
    assert error.channel_code == "40002"
    assert error.channel_sub_code == "isv.invalid-signature"
    assert "unsigned" in error.message


def test_error_response_with_a_bad_sign(channel: AlipayChannel, other_keys: Any) -> None:
    node = failure("40002", "isv.invalid-app-id")
    body = response_body(QUERY, node, other_keys.private, node_name="error_response")
    with pytest.raises(SignatureError):
        query_with(channel, body)


def test_sign_is_not_a_string(channel: AlipayChannel) -> None:
    body = b'{"alipay_trade_query_response":{"code":"10000"},"sign":12}'
    with pytest.raises(SignatureError):
        query_with(channel, body)


# -- unparseable answers ------------------------------------------------------------------


def test_truncated_response(channel: AlipayChannel, platform_keys: Any) -> None:
    body = response_body(QUERY, paid(), platform_keys.private)
    with pytest.raises(ProtocolError) as raised:
        query_with(channel, body[: len(body) // 2])
    assert raised.value.retryable


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b"not json",
        b"[]",
        b'{"alipay_trade_query_response":{"code":"10000"},"sign":"x"} trailing',
        b'{"alipay_trade_query_response":NaN,"sign":"x"}',
        b'{"unrelated_response":{"code":"10000"},"sign":"x"}',
        b'{"alipay_trade_query_response":"10000","sign":"x"}',
        '{"alipay_trade_query_response":{"code":"10000"}}'.encode("utf-16"),
    ],
)
def test_non_json_or_wrong_shape(channel: AlipayChannel, body: bytes) -> None:
    with pytest.raises(ProtocolError):
        query_with(channel, body)


def test_duplicate_node_is_ambiguous(channel: AlipayChannel, platform_keys: Any) -> None:
    good = response_body(QUERY, paid(), platform_keys.private)
    body = good[:-1] + b',"alipay_trade_query_response":{"code":"10000","total_amount":"1.00"}}'
    with pytest.raises(ProtocolError, match="duplicate"):
        query_with(channel, body)


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (404, False)])
def test_http_errors(channel: AlipayChannel, status: int, retryable: bool) -> None:
    with pytest.raises(ProtocolError) as raised:
        query_with(channel, httpx.Response(status, content=b"<html>error</html>"))
    assert raised.value.retryable is retryable


def test_malformed_amount_in_a_signed_response(channel: AlipayChannel, platform_keys: Any) -> None:
    body = response_body(QUERY, paid(total_amount="1e2"), platform_keys.private)
    with pytest.raises(AmountError):
        query_with(channel, body)


def test_unknown_trade_status(channel: AlipayChannel, platform_keys: Any) -> None:
    body = response_body(QUERY, paid(trade_status="SOMETHING"), platform_keys.private)
    with pytest.raises(ProtocolError, match="trade_status"):
        query_with(channel, body)


# -- error codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "sub_code", "expected", "retryable"),
    [
        ("20000", "isp.unknow-error", ErrorCode.CHANNEL_UNAVAILABLE, True),
        ("40004", "ACQ.SYSTEM_ERROR", ErrorCode.CHANNEL_UNAVAILABLE, True),
        ("40004", "ACQ.TRADE_HAS_SUCCESS", ErrorCode.TRADE_ALREADY_PAID, False),
        ("40004", "ACQ.TRADE_NOT_EXIST", ErrorCode.TRADE_NOT_FOUND, False),
        ("40004", "ACQ.TRADE_HAS_CLOSE", ErrorCode.TRADE_CLOSED, False),
        ("40004", "ACQ.TRADE_HAS_FINISHED", ErrorCode.TRADE_FINISHED, False),
        ("40004", "ACQ.TOTAL_FEE_EXCEED", ErrorCode.REFUND_EXCEEDS_PAID, False),
        ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", ErrorCode.REFUND_EXCEEDS_PAID, False),
        ("40004", "ACQ.INVALID_PARAMETER", ErrorCode.INVALID_REQUEST, False),
        ("40004", "ACQ.SOMETHING_NEW", ErrorCode.CHANNEL_ERROR, False),
        ("40002", "isv.invalid-signature", ErrorCode.SIGNATURE_INVALID, False),
        ("40002", "isv.invalid-whatever", ErrorCode.INVALID_REQUEST, False),
        ("40001", "isv.missing-method", ErrorCode.INVALID_REQUEST, False),
        ("40006", "isv.insufficient-isv-permissions", ErrorCode.PERMISSION_DENIED, False),
    ],
)
def test_error_codes(
    channel: AlipayChannel,
    platform_keys: Any,
    code: str,
    sub_code: str,
    expected: ErrorCode,
    retryable: bool,
) -> None:
    node = {**failure(code, sub_code, "说明"), "out_trade_no": "ORDER-0001"}
    response = httpx.Response(
        200,
        content=response_body(QUERY, node, platform_keys.private),
        headers={"trace_id": "0b3c7a1f17"},
    )
    with pytest.raises(ChannelError) as raised:
        query_with(channel, response)
    error = raised.value
    assert error.code is expected
    assert error.retryable is retryable
    assert error.channel == "alipay"
    assert error.channel_code == code
    assert error.channel_sub_code == sub_code
    assert error.channel_message == "说明"
    assert error.request_id == "0b3c7a1f17"
    assert error.http_status == 200
    assert sub_code in str(error)


def test_error_table() -> None:
    assert map_error_code("40004", None) is ErrorCode.CHANNEL_ERROR
    assert map_error_code(None, None) is ErrorCode.CHANNEL_ERROR
    assert map_error_code("99999", "nothing") is ErrorCode.CHANNEL_ERROR
    assert ALIPAY_ERROR_CODES["ACQ.TRADE_NOT_EXIST"] is ErrorCode.TRADE_NOT_FOUND
    with pytest.raises(TypeError):
        ALIPAY_ERROR_CODES["x"] = ErrorCode.CHANNEL_ERROR  # type: ignore[index]


def test_request_the_fake_refuses_is_a_signature_error(
    channel: AlipayChannel, merchant_keys: Any, platform_keys: Any, other_keys: Any
) -> None:
    """A gateway that cannot verify our request answers 40002 isv.invalid-signature."""
    fake = FakeGateway(other_keys.public, platform_keys.private)  # expects another key
    with (
        PayHub(channels=[channel], http_client=fake.client()) as hub,
        pytest.raises(ChannelError) as raised,
    ):
        hub.query("alipay", "ORDER-0001")
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
