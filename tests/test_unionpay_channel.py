"""UnionPay flows driven by the sync and async hubs over httpx.MockTransport.

The fake gateway below verifies every merchant request independently and
answers with bodies built and signed independently (see test_unionpay_pki).
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pluggy
import pytest
from test_unionpay_pki import (
    GATEWAY,
    MER_ID,
    MERCHANT_SERIAL,
    NOW,
    PFX_PASSWORD,
    TEST_CN,
    acp_body,
    assert_no_secret,
    clock,
    config,
    issue,
    pem,
    pki,
    platform_signed,
    verify_merchant_fields,
    verify_merchant_request,
)

import payhub.channels.unionpay as unionpay_module
from payhub import (
    AsyncPayHub,
    ChannelError,
    ConfigurationError,
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
)
from payhub.channels.unionpay import (
    QUERY_BACKOFF,
    RESP_CODES,
    UnionPayChannel,
    UnionPayConfig,
)
from payhub.hookspecs import PROJECT_NAME
from payhub.hub import build_channels
from payhub.plugins import channel_types

ORDER = "ORDER20250601"
TXN_TIME = "20250601100000"  # NOW in Shanghai

Answer = dict[str, str] | Callable[[dict[str, str]], httpx.Response]


class FakeGateway:
    """A scripted ACP gateway: verifies the merchant's signature, signs its answers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.script: dict[str, list[Answer]] = {}

    def answer(self, path: str, *answers: Answer) -> None:
        self.script.setdefault(path, []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url).startswith(GATEWAY + "/gateway/api/")
        fields = verify_merchant_request(request)
        path = request.url.path.rsplit("/", 1)[-1]
        self.requests.append((path, fields))
        queued = self.script.get(path)
        extra: Answer = queued.pop(0) if queued else {}
        if callable(extra):
            return extra(fields)
        answer = self.default(path, fields) | extra
        answer = {k: v for k, v in answer.items() if v != "<drop>"}
        return httpx.Response(200, content=acp_body(platform_signed(answer)))

    @staticmethod
    def default(path: str, fields: dict[str, str]) -> dict[str, str]:
        echo = {k: fields[k] for k in ("version", "encoding", "txnType", "txnSubType",
                                       "bizType", "accessType", "merId", "orderId",
                                       "txnTime") if k in fields}
        answer = {**echo, "signMethod": "01", "respCode": "00", "respMsg": "成功[0000000]"}
        if path == "appTransReq.do":
            answer["tn"] = "761312345678901234567"
        elif path == "queryTrans.do":
            answer |= {"origRespCode": "00", "origRespMsg": "成功", "queryId": "Q0001",
                       "txnAmt": "1234", "currencyCode": "156"}
        elif path == "backTransReq.do":
            answer |= {"queryId": "R0001", "txnAmt": fields["txnAmt"]}
        return answer


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def channel() -> UnionPayChannel:
    return UnionPayChannel(config(), clock=clock)


@pytest.fixture
def hub(gateway: FakeGateway, channel: UnionPayChannel) -> Any:
    client = httpx.Client(transport=httpx.MockTransport(gateway))
    with client, PayHub(channels=[channel], http_client=client) as hub:
        yield hub


def pay_request(method: PayMethod = PayMethod.PAGE, **kw: Any) -> PaymentRequest:
    return PaymentRequest(out_trade_no=ORDER, amount=Money(1234), subject="Gift card",
                          method=method, **kw)


# -- configuration ---------------------------------------------------------------


def test_cert_id_is_the_serial_in_decimal(channel: UnionPayChannel) -> None:
    assert channel.cert_id == str(MERCHANT_SERIAL)
    assert channel.kind == "unionpay"
    assert channel.supports(PayMethod.APP, "CNY")
    assert not channel.supports(PayMethod.QR, "CNY")
    assert not channel.supports(PayMethod.PAGE, "USD")


def test_environment_is_required() -> None:
    settings = config()
    del settings["environment"]
    with pytest.raises(ConfigurationError, match="environment"):
        UnionPayChannel(settings)


def test_environment_is_test_sandbox_or_production() -> None:
    with pytest.raises(ConfigurationError, match="environment"):
        UnionPayChannel(config(environment="staging"))
    sandbox = UnionPayChannel(config(environment="sandbox"))  # payhub's name for "test"
    assert sandbox.config.is_test
    assert sandbox.config.gateway == "https://gateway.test.95516.com"
    assert sandbox.config.expected_cn == UnionPayChannel(config()).config.expected_cn


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="expected_cn"):
        UnionPayChannel(config(expected_cn="anything"))


def test_default_gateways_follow_the_environment() -> None:
    assert UnionPayChannel(config()).config.gateway == "https://gateway.test.95516.com"
    prod = UnionPayChannel(config(environment="production", mer_id="898111448161234"))
    assert prod.config.gateway == "https://gateway.95516.com"
    assert prod.config.expected_cn == {"中国银联股份有限公司"}
    local = UnionPayChannel(config(gateway_url="http://127.0.0.1:5000/"))
    assert local.config.gateway == "http://127.0.0.1:5000"


def test_production_gateway_must_be_https() -> None:
    with pytest.raises(ConfigurationError, match="https"):
        UnionPayChannel(config(environment="production", mer_id="898111448161234",
                               gateway_url="http://gw.example"))


@pytest.mark.parametrize(
    ("gateway_url", "match"),
    [
        ("https://gateway.test.95516.com", "test host"),
        ("https://GATEWAY.TEST.95516.COM./", "test host"),
        ("https://101.231.204.80", "test host"),
        ("https://127.0.0.1:5000", "non-public"),
        ("https://localhost:5000", "localhost"),
        ("https://10.1.2.3", "non-public"),
        ("https://169.254.169.254", "non-public"),
    ],
)
def test_production_refuses_test_and_local_gateways(gateway_url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        UnionPayChannel(config(environment="production", mer_id="898111448161234",
                               gateway_url=gateway_url))
    # The same gateway is fine for the test environment (UnionPay's, or a local sandbox).
    assert UnionPayChannel(config(environment="sandbox", gateway_url=gateway_url))


@pytest.mark.parametrize("mer_id", ["777290058110048", "777290058167151", "700000000000001"])
def test_production_refuses_public_test_merchant_numbers(mer_id: str) -> None:
    with pytest.raises(ConfigurationError, match="public UnionPay test merchant number"):
        UnionPayChannel(config(environment="production", mer_id=mer_id))
    assert UnionPayChannel(config(environment="test", mer_id=mer_id))


def test_wrong_pfx_password_names_no_secret() -> None:
    with pytest.raises(ConfigurationError) as info:
        UnionPayChannel(config(sign_cert_password="wrong-password"))
    assert "wrong-password" not in str(info.value)
    assert_no_secret(str(info.value), repr(info.value))


def test_invalid_settings_do_not_echo_their_values() -> None:
    with pytest.raises(ConfigurationError) as info:
        UnionPayChannel(config(mer_id=PFX_PASSWORD + "!"))
    assert_no_secret(str(info.value))


def test_certificates_from_files(tmp_path: Any) -> None:
    p = pki()
    (tmp_path / "sign.pfx").write_bytes(p.pfx)
    (tmp_path / "root.cer").write_text(p.root_pem)
    (tmp_path / "middle.cer").write_text(p.middle_pem)
    channel = UnionPayChannel(
        config(
            sign_cert={"$file": str(tmp_path / "sign.pfx")},
            root_cert={"$file": str(tmp_path / "root.cer")},
            middle_cert={"$file": str(tmp_path / "middle.cer")},
        )
    )
    assert channel.cert_id == str(MERCHANT_SERIAL)
    with pytest.raises(ConfigurationError, match="middle_cert"):
        UnionPayChannel(config(middle_cert={"$file": str(tmp_path / "missing.cer")}))


def test_middle_must_chain_to_root() -> None:
    with pytest.raises(ConfigurationError, match="middle certificate"):
        UnionPayChannel(config(middle_cert=pem(pki().platform)))


def test_unreadable_trust_anchor() -> None:
    with pytest.raises(ConfigurationError, match="root_cert"):
        UnionPayChannel(config(root_cert="not a certificate"))


def test_config_and_channel_reprs_hide_secrets(channel: UnionPayChannel) -> None:
    assert_no_secret(repr(channel.config), str(channel.config), repr(channel))
    assert_no_secret(repr(channel._signer))


def test_registered_through_the_plugin_hook() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    from payhub import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(unionpay_module, name="unionpay")
    assert channel_types(pm) == {"unionpay": UnionPayChannel}
    (built,) = build_channels({"up": {"type": "unionpay", **config()}}, pm)
    assert isinstance(built, UnionPayChannel)
    assert built.name == "up"


def test_exports_are_curated() -> None:
    assert unionpay_module.__all__ == sorted(unionpay_module.__all__)
    assert set(unionpay_module.__all__) == {
        "QUERY_BACKOFF", "RESP_CODES", "RespCode", "UnionPayChannel", "UnionPayConfig",
        "parse_acp_body",
    }
    assert UnionPayChannel.__module__ == "payhub.channels.unionpay"
    assert UnionPayConfig.__module__ == "payhub.channels.unionpay"


# -- browser consume: a form, no HTTP ------------------------------------------------


def test_page_pay_is_an_auto_submitting_signed_form(hub: PayHub, gateway: FakeGateway) -> None:
    result = hub.pay(pay_request(return_url='https://shop.example/r?a=1&b="<x>"'))
    assert gateway.requests == []  # the browser posts the form, not payhub
    assert result.kind is ResultKind.FORM
    assert result.form_html is not None
    fields = result.raw["fields"]
    verify_merchant_fields(fields)
    assert result.raw["action"] == GATEWAY + "/gateway/api/frontTransReq.do"
    assert fields | {"signature": "", "certId": ""} == fields | {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": "01",
        "txnSubType": "01", "bizType": "000201", "channelType": "07", "accessType": "0",
        "merId": MER_ID, "orderId": ORDER, "txnTime": TXN_TIME, "txnAmt": "1234",
        "currencyCode": "156", "backUrl": "https://shop.example/notify/unionpay",
        "frontUrl": 'https://shop.example/r?a=1&b="<x>"', "signature": "", "certId": "",
    }
    page = result.form_html
    assert 'action="https://gateway.test.95516.com/gateway/api/frontTransReq.do"' in page
    assert "submit()" in page
    assert "&quot;&lt;x&gt;&quot;" in page
    assert '"<x>"' not in page
    posted = dict(re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page))
    assert {k: html.unescape(v) for k, v in posted.items()} == fields


def test_wap_pay_uses_channel_type_08(hub: PayHub) -> None:
    result = hub.pay(pay_request(PayMethod.WAP))
    assert result.raw["fields"]["channelType"] == "08"


def test_pay_timeout_from_expires_at(hub: PayHub) -> None:
    result = hub.pay(pay_request(expires_at=NOW + timedelta(minutes=15)))
    assert result.raw["fields"]["payTimeout"] == "20250601101500"


def test_pay_needs_a_back_url() -> None:
    channel = UnionPayChannel(config(back_url=None), clock=clock)
    with pytest.raises(InvalidRequestError, match="backUrl"):
        channel.pay(pay_request())


@pytest.mark.parametrize("order", ["SHORT1", "ORDER-2025-0601", "A" * 41])
def test_order_numbers_must_suit_unionpay(channel: UnionPayChannel, order: str) -> None:
    request = PaymentRequest(out_trade_no=order, amount=Money(1), subject="x",
                             method=PayMethod.PAGE)
    with pytest.raises(InvalidRequestError, match="8-40"):
        channel.pay(request)


def test_unsupported_method(channel: UnionPayChannel) -> None:
    with pytest.raises(InvalidRequestError, match="qr"):
        channel.pay(pay_request(PayMethod.QR))


# -- app consume ---------------------------------------------------------------


def test_app_pay_returns_tn(hub: PayHub, gateway: FakeGateway) -> None:
    result = hub.pay(pay_request(PayMethod.APP))
    assert result.kind is ResultKind.APP
    assert result.app_params == {"tn": "761312345678901234567"}
    ((path, sent),) = gateway.requests
    assert path == "appTransReq.do"
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"], sent["channelType"]) == (
        "01", "01", "000201", "08")
    assert sent["txnAmt"] == "1234"
    assert sent["currencyCode"] == "156"
    assert "frontUrl" not in sent


def test_answer_with_a_pem_holding_ampersand_and_equals(
    hub: PayHub, gateway: FakeGateway
) -> None:
    """Bad input: a PEM value containing '&' and '=' must parse and verify."""
    cert_pem = pem(pki().platform).replace("-----\n", "-----\nComment: a&b=c&tn=forged\n\n", 1)

    def answer(fields: dict[str, str]) -> httpx.Response:
        body = FakeGateway.default("appTransReq.do", fields)
        return httpx.Response(200, content=acp_body(platform_signed(body, cert_pem=cert_pem)))

    gateway.answer("appTransReq.do", answer)
    result = hub.pay(pay_request(PayMethod.APP))
    assert result.app_params == {"tn": "761312345678901234567"}
    assert result.raw["answer"]["signPubKeyCert"] == cert_pem
    assert result.raw["fields"]["txnTime"] == TXN_TIME


@pytest.mark.parametrize(
    ("resp_code", "code", "retryable"),
    [
        ("12", ErrorCode.ORDER_NUMBER_USED, False),
        ("03", ErrorCode.TIMEOUT, True),
        ("06", ErrorCode.CHANNEL_UNAVAILABLE, True),
        ("11", ErrorCode.INVALID_REQUEST, False),
        ("31", ErrorCode.PERMISSION_DENIED, False),
        ("ZZ", ErrorCode.CHANNEL_ERROR, False),
    ],
)
def test_app_pay_errors_map_resp_codes(
    hub: PayHub, gateway: FakeGateway, resp_code: str, code: ErrorCode, retryable: bool
) -> None:
    gateway.answer("appTransReq.do", {"respCode": resp_code, "respMsg": "不行", "tn": ""})
    with pytest.raises(ChannelError) as info:
        hub.pay(pay_request(PayMethod.APP))
    error = info.value
    assert (error.code, error.retryable, error.channel_code) == (code, retryable, resp_code)
    assert error.channel_message == "不行"
    assert error.channel == "unionpay"


def test_answer_over_a_different_txn_amt_is_refused(hub: PayHub, gateway: FakeGateway) -> None:
    def answer(fields: dict[str, str]) -> httpx.Response:
        body = FakeGateway.default("queryTrans.do", fields)
        signed = platform_signed(body | {"txnAmt": "1"})
        signed["txnAmt"] = "1234"
        return httpx.Response(200, content=acp_body(signed))

    gateway.answer("queryTrans.do", answer)
    with pytest.raises(SignatureError, match="does not verify"):
        hub.query("unionpay", ORDER)


def test_unsigned_answer_is_refused_but_shows_its_code(
    hub: PayHub, gateway: FakeGateway
) -> None:
    gateway.answer("appTransReq.do", lambda f: httpx.Response(
        200, content=acp_body({"respCode": "11", "respMsg": "验证签名失败", "merId": MER_ID})))
    with pytest.raises(SignatureError, match=r"unsigned.*'11'"):
        hub.pay(pay_request(PayMethod.APP))


def test_answer_signed_by_a_certificate_outside_the_chain(
    hub: PayHub, gateway: FakeGateway
) -> None:
    gateway.answer("queryTrans.do", lambda f: httpx.Response(200, content=acp_body(
        platform_signed(FakeGateway.default("queryTrans.do", f), cert=pki().foreign))))
    with pytest.raises(SignatureError):
        hub.query("unionpay", ORDER)


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (httpx.Response(502, content=b"bad gateway"), ChannelError, "HTTP 502"),
        (httpx.Response(404, content=b"nope"), ProtocolError, "HTTP 404"),
        (httpx.Response(200, content=b"<html>maintenance</html>"), ProtocolError, "HTML"),
        (httpx.Response(200, content=b""), ProtocolError, "empty"),
        (httpx.Response(200, content=b"foo=bar"), ProtocolError, "respCode"),
        (httpx.Response(200, content=b"respCode=00&respCode=00"), ProtocolError, "twice"),
    ],
)
def test_broken_answers(
    hub: PayHub, gateway: FakeGateway, response: httpx.Response, error: type[Exception],
    match: str,
) -> None:
    gateway.answer("appTransReq.do", lambda f: response)
    with pytest.raises(error, match=match):
        hub.pay(pay_request(PayMethod.APP))


def test_answer_about_another_order_is_refused(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("queryTrans.do", {"orderId": "ORDER99999999"})
    with pytest.raises(ProtocolError, match="orderId"):
        hub.query("unionpay", ORDER)


def test_answer_about_another_merchant_is_refused(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("queryTrans.do", {"merId": "898111111111111"})
    with pytest.raises(ProtocolError, match="merchant"):
        hub.query("unionpay", ORDER)


# -- query -------------------------------------------------------------------------


def test_query_paid(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("queryTrans.do", {"txnTime": "20250601095900"})
    result = hub.query("unionpay", ORDER)
    assert result.status is PaymentStatus.PAID
    assert result.amount == Money(1234)
    assert result.channel_trade_id == "Q0001"
    assert result.paid_at == datetime.fromisoformat("2025-06-01T09:59:00+08:00")
    ((path, sent),) = gateway.requests
    assert path == "queryTrans.do"
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"]) == ("00", "00", "000000")
    assert "channelType" not in sent


def test_query_sends_the_original_txn_time(gateway: FakeGateway) -> None:
    moments = [NOW]
    channel = UnionPayChannel(config(), clock=lambda: moments[-1])
    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        hub = PayHub(channels=[channel], http_client=client)
        hub.pay(pay_request())
        moments.append(NOW + timedelta(hours=3))
        hub.query("unionpay", ORDER)
        hub.query("unionpay", "ORDER99999999")
    assert gateway.requests[0][1]["txnTime"] == TXN_TIME  # remembered from pay
    assert gateway.requests[1][1]["txnTime"] == "20250601130000"  # unknown: now


def test_query_with_an_explicit_txn_time(channel: UnionPayChannel, gateway: FakeGateway) -> None:
    from payhub.channels import run_flow_sync

    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        def send(request: httpx.Request) -> httpx.Response:
            return client.send(request)

        run_flow_sync(channel.query(ORDER, txn_time="20250530080000"), send)
        run_flow_sync(channel.query(ORDER, txn_time=NOW - timedelta(days=1)), send)
    assert gateway.requests[0][1]["txnTime"] == "20250530080000"
    assert gateway.requests[1][1]["txnTime"] == "20250531100000"
    with pytest.raises(InvalidRequestError):
        channel.query(ORDER, txn_time="2025-05-30")


def test_pay_returns_the_txn_time_as_channel_context(hub: PayHub) -> None:
    assert hub.pay(pay_request()).channel_context == {"txnTime": TXN_TIME}
    assert hub.pay(pay_request(PayMethod.APP)).channel_context == {"txnTime": TXN_TIME}


def test_query_with_a_context_sends_its_txn_time(gateway: FakeGateway) -> None:
    """Another process (a fresh channel, nothing remembered) finds the trade by its context."""
    from payhub.channels import run_flow_sync

    sent_times: list[str] = []

    def answer(fields: dict[str, str]) -> httpx.Response:
        sent_times.append(fields["txnTime"])
        if fields["txnTime"] != "20250530080000":
            body = FakeGateway.default("queryTrans.do", fields) | {"respCode": "34"}
            del body["origRespCode"]
            return httpx.Response(200, content=acp_body(platform_signed(body)))
        return httpx.Response(200, content=acp_body(platform_signed(
            FakeGateway.default("queryTrans.do", fields))))

    gateway.answer("queryTrans.do", answer, answer, answer)
    fresh = UnionPayChannel(config(), clock=clock)
    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        result = run_flow_sync(
            fresh.query(ORDER, context={"txnTime": "20250530080000"}), client.send
        )
        assert result.status is PaymentStatus.PAID
        # an explicit txn_time wins over the context
        with pytest.raises(ChannelError) as info:
            run_flow_sync(
                fresh.query(ORDER, context={"txnTime": "20250530080000"},
                            txn_time="20250529080000"),
                client.send,
            )
        assert info.value.code is ErrorCode.TRADE_NOT_FOUND
        # no context, nothing remembered: now, as before (and not found)
        with pytest.raises(ChannelError):
            run_flow_sync(fresh.query(ORDER, context={}), client.send)
    assert sent_times == ["20250530080000", "20250529080000", TXN_TIME]


def test_refund_takes_the_txn_time_from_the_payment_context(
    hub: PayHub, gateway: FakeGateway
) -> None:
    hub.refund("unionpay", refund_request(payment_context={"txnTime": "20250530080000"}))
    assert [path for path, _ in gateway.requests] == ["queryTrans.do", "backTransReq.do"]
    assert gateway.requests[0][1]["txnTime"] == "20250530080000"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"origRespCode": "03"}, PaymentStatus.PENDING),
        ({"origRespCode": "05"}, PaymentStatus.PENDING),
        ({"respCode": "04", "origRespCode": "<drop>"}, PaymentStatus.PENDING),
        ({"origRespCode": "61"}, PaymentStatus.FAILED),
        ({"origRespCode": "A6"}, PaymentStatus.PENDING),  # unknown to payhub: not final
    ],
)
def test_query_states(
    hub: PayHub, gateway: FakeGateway, answer: dict[str, str], status: PaymentStatus
) -> None:
    gateway.answer("queryTrans.do", answer)
    result = hub.query("unionpay", ORDER)
    assert result.status is status
    assert result.paid_at is None
    assert result.raw["respCode"] == answer.get("respCode", "00")


def test_query_of_an_unknown_trade(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("queryTrans.do", {"respCode": "34", "origRespCode": "<drop>"})
    with pytest.raises(ChannelError) as info:
        hub.query("unionpay", ORDER)
    assert info.value.code is ErrorCode.TRADE_NOT_FOUND


def test_query_with_a_malformed_amount(hub: PayHub, gateway: FakeGateway) -> None:
    from payhub import AmountError

    gateway.answer("queryTrans.do", {"txnAmt": "12.34"})
    with pytest.raises(AmountError):
        hub.query("unionpay", ORDER)


def test_query_until_final_backs_off(
    channel: UnionPayChannel, hub: PayHub, gateway: FakeGateway
) -> None:
    gateway.answer("queryTrans.do", {"origRespCode": "03"}, {"respCode": "05"}, {})
    slept: list[float] = []
    result = channel.query_until_final(lambda: hub.query("unionpay", ORDER), sleep=slept.append)
    assert result.status is PaymentStatus.PAID
    assert slept == [1, 2]
    assert len(gateway.requests) == 3


def test_query_until_final_gives_up_after_the_schedule(
    channel: UnionPayChannel, hub: PayHub, gateway: FakeGateway
) -> None:
    gateway.answer("queryTrans.do", *[{"origRespCode": "04"}] * 10)
    slept: list[float] = []
    result = channel.query_until_final(lambda: hub.query("unionpay", ORDER), sleep=slept.append)
    assert result.status is PaymentStatus.PENDING
    assert channel.is_state_unknown(result)
    assert slept == list(QUERY_BACKOFF) == [1, 2, 4, 8, 16, 32]
    assert len(gateway.requests) == 7


def test_query_until_final_stops_at_a_final_failure(
    channel: UnionPayChannel, hub: PayHub, gateway: FakeGateway
) -> None:
    gateway.answer("queryTrans.do", {"origRespCode": "61"})
    slept: list[float] = []
    result = channel.query_until_final(lambda: hub.query("unionpay", ORDER), sleep=slept.append)
    assert result.status is PaymentStatus.FAILED
    assert slept == []


# -- close, refund, undo -------------------------------------------------------------


def test_close_is_not_a_unionpay_operation(hub: PayHub, gateway: FakeGateway) -> None:
    with pytest.raises(InvalidRequestError, match="no close"):
        hub.close_trade("unionpay", ORDER)
    assert gateway.requests == []


def refund_request(**kw: Any) -> RefundRequest:
    settings: dict[str, Any] = {"out_trade_no": ORDER, "out_refund_no": "REFUND20250601",
                                "amount": Money(234)}
    settings.update(kw)
    return RefundRequest(**settings)


def test_refund_with_orig_qry_id(channel: UnionPayChannel, gateway: FakeGateway) -> None:
    from payhub.channels import run_flow_sync

    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        result = run_flow_sync(channel.refund(refund_request(), orig_qry_id="Q0001"),
                               client.send)
    ((path, sent),) = gateway.requests
    assert path == "backTransReq.do"
    assert (sent["txnType"], sent["txnSubType"], sent["bizType"], sent["channelType"]) == (
        "04", "00", "000201", "07")
    assert sent["orderId"] == "REFUND20250601"
    assert sent["origQryId"] == "Q0001"
    assert sent["txnAmt"] == "234"
    assert result.status is RefundStatus.PENDING  # 00 means accepted
    assert (result.out_trade_no, result.out_refund_no) == (ORDER, "REFUND20250601")
    assert (result.channel_trade_id, result.channel_refund_id) == ("Q0001", "R0001")


def test_refund_looks_up_the_payment_first(hub: PayHub, gateway: FakeGateway) -> None:
    result = hub.refund("unionpay", refund_request())
    assert [path for path, _ in gateway.requests] == ["queryTrans.do", "backTransReq.do"]
    assert gateway.requests[0][1]["orderId"] == ORDER
    assert gateway.requests[1][1]["origQryId"] == "Q0001"
    assert result.status is RefundStatus.PENDING


def test_refund_of_an_unpaid_trade(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("queryTrans.do", {"origRespCode": "04"})
    with pytest.raises(InvalidRequestError, match="not paid"):
        hub.refund("unionpay", refund_request())
    assert [path for path, _ in gateway.requests] == ["queryTrans.do"]


def test_refund_above_the_total(channel: UnionPayChannel) -> None:
    with pytest.raises(InvalidRequestError) as info:
        channel.refund(refund_request(amount=Money(2000), total=Money(1234)))
    assert info.value.code is ErrorCode.REFUND_EXCEEDS_PAID


def test_refund_refused(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("backTransReq.do", {"respCode": "35"})
    with pytest.raises(ChannelError) as info:
        hub.refund("unionpay", refund_request())
    assert info.value.code is ErrorCode.TRADE_NOT_FOUND


def test_undo(channel: UnionPayChannel, gateway: FakeGateway) -> None:
    from payhub.channels import run_flow_sync

    flow = channel.undo(ORDER, "Q0001", Money(1234), out_undo_no="UNDO20250601")
    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        result = run_flow_sync(flow, client.send)
    ((path, sent),) = gateway.requests
    assert path == "backTransReq.do"
    assert (sent["txnType"], sent["txnSubType"], sent["orderId"], sent["origQryId"]) == (
        "31", "00", "UNDO20250601", "Q0001")
    assert sent["txnAmt"] == "1234"
    assert (result.out_trade_no, result.out_refund_no) == (ORDER, "UNDO20250601")
    assert result.status is RefundStatus.PENDING


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({}, RefundStatus.SUCCEEDED),
        ({"origRespCode": "05"}, RefundStatus.PENDING),
        ({"respCode": "03", "origRespCode": "<drop>"}, RefundStatus.PENDING),
        ({"origRespCode": "35"}, RefundStatus.FAILED),
        ({"respCode": "34", "origRespCode": "<drop>"}, RefundStatus.NOT_FOUND),
    ],
)
def test_refund_query(
    hub: PayHub, gateway: FakeGateway, answer: dict[str, str], status: RefundStatus
) -> None:
    gateway.answer("queryTrans.do", {"orderId": "REFUND20250601", "txnType": "04",
                                     "txnAmt": "234", **answer})
    result = hub.refund_query(
        "unionpay", RefundQueryRequest(out_trade_no=ORDER, out_refund_no="REFUND20250601"))
    assert result.status is status
    assert gateway.requests[0][1]["orderId"] == "REFUND20250601"
    if status is RefundStatus.SUCCEEDED:
        assert result.amount == Money(234)


def test_refund_query_error(hub: PayHub, gateway: FakeGateway) -> None:
    gateway.answer("queryTrans.do", {"respCode": "37", "orderId": "REFUND20250601"})
    with pytest.raises(ChannelError) as info:
        hub.refund_query(
            "unionpay", RefundQueryRequest(out_trade_no=ORDER, out_refund_no="REFUND20250601"))
    assert info.value.code is ErrorCode.RATE_LIMITED
    assert info.value.retryable


# -- the same flows, async -------------------------------------------------------------


def test_async_hub_runs_the_same_flows(gateway: FakeGateway, channel: UnionPayChannel) -> None:
    gateway.answer("queryTrans.do", {"origRespCode": "03"}, {"origRespCode": "03"}, {})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(gateway)) as client:
            hub = AsyncPayHub(channels=[channel], http_client=client)
            page = await hub.pay(pay_request())
            assert page.kind is ResultKind.FORM
            app = await hub.pay(pay_request(PayMethod.APP))
            assert app.app_params == {"tn": "761312345678901234567"}
            slept: list[float] = []

            async def sleep(delay: float) -> None:
                slept.append(delay)

            paid = await channel.aquery_until_final(
                lambda: hub.query("unionpay", ORDER), sleep=sleep)
            assert paid.status is PaymentStatus.PAID
            assert slept == [1, 2]
            refund = await hub.refund("unionpay", refund_request())
            assert refund.status is RefundStatus.PENDING
            with pytest.raises(InvalidRequestError):
                await hub.close_trade("unionpay", ORDER)

    asyncio.run(main())
    assert [p for p, _ in gateway.requests] == [
        "appTransReq.do", "queryTrans.do", "queryTrans.do", "queryTrans.do",
        "queryTrans.do", "backTransReq.do"]


def test_every_resp_code_row_is_consistent() -> None:
    for code, row in RESP_CODES.items():
        assert row.code == code
        assert re.fullmatch(r"[0-9A-Z]{2}", code)
        assert row.is_success == (code == "00")
        if row.error is not None:
            assert row.retryable == row.error.retryable, code


def test_expired_platform_certificate_on_an_answer(gateway: FakeGateway) -> None:
    p = pki()
    almost = issue(TEST_CN, p.platform_key.public_key(), issuer=p.middle.subject,
                   issuer_key=p.middle_key, serial=3001,
                   not_after=NOW + timedelta(hours=1))
    moments = [NOW]
    channel = UnionPayChannel(config(), clock=lambda: moments[-1])
    answer = lambda f: httpx.Response(200, content=acp_body(  # noqa: E731
        platform_signed(FakeGateway.default("queryTrans.do", f), cert=almost)))
    gateway.answer("queryTrans.do", answer, answer)
    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        hub = PayHub(channels=[channel], http_client=client)
        assert hub.query("unionpay", ORDER).status is PaymentStatus.PAID
        assert channel.verifier.cached == 1
        moments.append(NOW + timedelta(hours=2))  # cached, but now expired
        with pytest.raises(SignatureError, match="validity"):
            hub.query("unionpay", ORDER)


# -- request constraints (routing and failover ask these) ------------------------------


def test_max_amount_is_twelve_digits_of_fen(channel: UnionPayChannel) -> None:
    assert channel.max_amount_minor() == 999_999_999_999
    assert channel.request_problem(pay_request()) is None
    big = PaymentRequest(out_trade_no=ORDER, amount=Money(10**12), subject="Gift card",
                         method=PayMethod.PAGE)
    problem = channel.request_problem(big)
    assert problem is not None
    assert "limit" in problem


@pytest.mark.parametrize(
    ("order", "ok"),
    [
        ("ORDER001", True),
        ("A" * 40, True),
        ("ORDER01", False),  # 7 characters
        ("A" * 41, False),
        ("ORDER-20250601", False),
        ("ORDER_20250601", False),
    ],
)
def test_order_number_problem_follows_acp_order_id(
    channel: UnionPayChannel, order: str, ok: bool
) -> None:
    problem = channel.order_number_problem(order)
    assert (problem is None) is ok
    request = PaymentRequest(out_trade_no=order, amount=Money(1), subject="x",
                             method=PayMethod.PAGE)
    assert (channel.request_problem(request) is None) is ok
    if not ok:
        assert problem is not None
        assert "8-40" in problem


def test_answer_with_a_query_id_outside_acp_grammar_is_refused(
    hub: PayHub, gateway: FakeGateway
) -> None:
    gateway.answer("queryTrans.do", {"queryId": "Q" * 22})
    with pytest.raises(ProtocolError, match="queryId"):
        hub.query("unionpay", ORDER)


def test_unionpay_refuses_splits_and_transfers_before_any_io(
    gateway: FakeGateway, channel: UnionPayChannel
) -> None:
    """UnionPay's ACP gateway offers no 分账 or 转账 (docs/channels/unionpay.md): every
    operation of the split interface is a typed NOT_SUPPORTED, nothing is sent."""
    from payhub.errors import ErrorCode, InvalidRequestError
    from payhub.money import Money
    from payhub.splits_models import (
        ReceiverBinding,
        ReceiverKind,
        SplitLine,
        SplitRequest,
        TransferRequest,
    )

    line = SplitLine(kind=ReceiverKind.USER_ID, account="a", amount=Money(1), description="d")
    calls = [
        lambda: channel.bind_receiver("B1", [ReceiverBinding(kind=ReceiverKind.USER_ID,
                                                              account="a")]),
        lambda: channel.unbind_receiver("B1", []),
        lambda: channel.split(SplitRequest(out_request_no="S1", channel_trade_id="t",
                                           lines=(line,))),
        lambda: channel.split_query("S1", "t"),
        lambda: channel.split_finish("F1", "t", "done"),
        lambda: channel.transfer(TransferRequest(out_transfer_no="T1", kind=ReceiverKind.OPENID,
                                                 account="o", amount=Money(100), remark="r")),
        lambda: channel.transfer_query("T1"),
    ]
    for call in calls:
        with pytest.raises(InvalidRequestError) as caught:
            call()
        assert caught.value.code is ErrorCode.NOT_SUPPORTED
        assert "does not support" in str(caught.value)
    assert gateway.requests == []
