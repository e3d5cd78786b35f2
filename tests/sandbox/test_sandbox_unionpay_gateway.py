"""The ACP endpoints under ``/gateway/api/``: happy paths, respCodes, the answer grammar."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from payhub_sandbox import TradeState
from sandbox_unionpay_client import (
    BACK_URL,
    MER_ID,
    Env,
    acp_sign,
    parse_body,
    unionpay_env,
    verify_message,
)

from payhub.money import Money


@pytest.fixture
def env(merchant_keys) -> Iterator[Env]:
    with unionpay_env(merchant_keys.private) as made:
        yield made


def _raw_answer(env: Env, endpoint: str, fields: dict[str, str]) -> dict[str, str]:
    response = env.client.post(endpoint, fields)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    answer = parse_body(response.content.decode("utf-8"))
    verify_message(answer, env.client.trust, env.clock.now())  # errors are signed too
    return answer


def _paid(env: Env, order_id: str = "PAIDORDER1", amount: str = "1000") -> dict[str, str]:
    """An app consume, paid; its query answer."""
    answer = env.client.app_consume(order_id, amount)
    env.sandbox.unionpay.pay(MER_ID, order_id)
    return env.client.query(order_id, answer["txnTime"])


# -- app consume and query ----------------------------------------------------------------


def test_app_consume_returns_a_tn_and_creates_a_pending_trade(env: Env) -> None:
    answer = env.client.app_consume("APPORDER01", "1234", reqReserved="{a=1&b=2}")
    assert answer["respCode"] == "00"
    assert answer["respMsg"] == "成功[0000000]"
    assert answer["tn"].isdigit()
    assert len(answer["tn"]) == 21
    assert answer["reqReserved"] == "{a=1&b=2}"  # braces holding & and = survive the grammar
    assert answer["signPubKeyCert"].startswith("-----BEGIN CERTIFICATE-----\r\n")
    for name in ("merId", "orderId", "txnTime", "txnType", "txnSubType", "bizType"):
        assert answer[name]
    assert answer["version"] == "5.1.0"
    trade = env.sandbox.unionpay_trade(MER_ID, "APPORDER01")
    assert trade.state is TradeState.PENDING
    assert trade.amount == Money(1234)
    assert trade.extra["tn"] == answer["tn"]
    assert trade.notify_url == BACK_URL


def test_query_follows_the_trade(env: Env) -> None:
    created = env.client.app_consume("QUERYORD01", "500")
    pending = env.client.query("QUERYORD01", created["txnTime"])
    assert (pending["respCode"], pending["origRespCode"]) == ("00", "05")
    env.clock.advance(30)
    env.sandbox.unionpay.pay(MER_ID, "QUERYORD01")
    paid = env.client.query("QUERYORD01", created["txnTime"])
    assert (paid["respCode"], paid["origRespCode"]) == ("00", "00")
    assert paid["txnAmt"] == "500"
    assert paid["txnType"] == "01"
    assert paid["queryId"] == env.sandbox.unionpay_trade(MER_ID, "QUERYORD01").trade_no
    assert paid["settleAmt"] == "500"
    assert paid["settleDate"] == "0301"
    assert len(paid["traceNo"]) == 6


def test_query_needs_the_original_txn_time(env: Env) -> None:
    created = env.client.app_consume("QUERYORD02")
    assert created["txnTime"] == "20240301100000"
    other_time = "20240301095959"
    assert env.client.query("QUERYORD02", other_time)["respCode"] == "34"
    assert env.client.query("NOSUCHORDER", created["txnTime"])["respCode"] == "34"


def test_pay_timeout_closes_an_unpaid_trade(env: Env) -> None:
    created = env.client.app_consume("TIMEOUT001", payTimeout="20240301101500")
    env.clock.advance(15 * 60)
    env.sandbox.close_expired()
    answer = env.client.query("TIMEOUT001", created["txnTime"])
    assert (answer["respCode"], answer["origRespCode"]) == ("00", "01")
    assert env.sandbox.unionpay_trade(MER_ID, "TIMEOUT001").state is TradeState.CLOSED


def test_the_same_order_again(env: Env) -> None:
    first = env.client.app_consume("REPEAT0001", "700")
    again = env.client.app_consume("REPEAT0001", "700")  # same txnTime: the same trade
    assert again["tn"] == first["tn"]
    assert env.client.app_consume("REPEAT0001", "701")["respCode"] == "12"
    env.clock.advance(1)
    assert env.client.app_consume("REPEAT0001", "700")["respCode"] == "12"  # another txnTime


# -- refund and undo ----------------------------------------------------------------------


def test_refunds_up_to_the_total(env: Env) -> None:
    paid = _paid(env, amount="1000")
    first = env.client.refund("REFUNDNO01", paid["queryId"], "400")
    assert first["respCode"] == "00"
    assert first["origQryId"] == paid["queryId"]
    assert first["queryId"] != paid["queryId"]
    too_much = env.client.refund("REFUNDNO02", paid["queryId"], "601")
    assert too_much["respCode"] == "36"
    assert env.client.refund("REFUNDNO03", paid["queryId"], "600")["respCode"] == "00"
    trade = env.sandbox.unionpay_trade(MER_ID, "PAIDORDER1")
    assert trade.refunded == Money(1000)
    assert trade.state is TradeState.CLOSED
    assert env.client.refund("REFUNDNO04", paid["queryId"], "1")["respCode"] == "36"
    assert [r.out_refund_no for r in env.sandbox.refunds] == ["REFUNDNO01", "REFUNDNO03"]
    # A refund is a transaction of its own: queried by its own orderId and txnTime.
    found = env.client.query("REFUNDNO01", first["txnTime"])
    assert (found["respCode"], found["origRespCode"], found["txnType"]) == ("00", "00", "04")
    assert found["origQryId"] == paid["queryId"]
    assert found["txnAmt"] == "400"
    # The consume itself still succeeded.
    assert env.client.query("PAIDORDER1", paid["txnTime"])["origRespCode"] == "00"


def test_refund_refusals(env: Env) -> None:
    created = env.client.app_consume("UNPAID0001")
    unpaid_qid = env.sandbox.unionpay_trade(MER_ID, "UNPAID0001").trade_no
    assert env.client.refund("REFUNDNO10", unpaid_qid, "1")["respCode"] == "35"
    assert env.client.refund("REFUNDNO11", "999999999999999999999", "1")["respCode"] == "35"
    paid = _paid(env)
    assert env.client.refund("REFUNDNO12", paid["queryId"], "100")["respCode"] == "00"
    # orderId already used: by this refund, or by a consume.
    assert env.client.refund("REFUNDNO12", paid["queryId"], "100")["respCode"] == "12"
    assert env.client.refund("UNPAID0001", paid["queryId"], "100")["respCode"] == "12"
    assert created["respCode"] == "00"
    assert len(env.sandbox.refunds) == 1


def test_undo_the_same_day(env: Env) -> None:
    paid = _paid(env, amount="880")
    assert env.client.undo("UNDONO0001", paid["queryId"], "879")["respCode"] == "36"
    answer = env.client.undo("UNDONO0001", paid["queryId"], "880")
    assert answer["respCode"] == "00"
    assert answer["txnType"] == "31"
    trade = env.sandbox.unionpay_trade(MER_ID, "PAIDORDER1")
    assert trade.state is TradeState.CLOSED
    assert trade.close_reason == "undone"
    assert env.client.refund("REFUNDNO20", paid["queryId"], "1")["respCode"] == "35"
    found = env.client.query("UNDONO0001", answer["txnTime"])
    assert (found["origRespCode"], found["txnType"]) == ("00", "31")


def test_undo_after_the_cutoff_or_after_a_refund(env: Env) -> None:
    paid = _paid(env, "UNDOLATE01")
    env.clock.advance(13 * 3600)  # 10:00 → 23:00 Beijing time: the next clearing day
    assert env.client.undo("UNDONO0002", paid["queryId"], "1000")["respCode"] == "39"
    refunded = _paid(env, "UNDOREFD01")
    assert env.client.refund("REFUNDNO30", refunded["queryId"], "1")["respCode"] == "00"
    assert env.client.undo("UNDONO0003", refunded["queryId"], "1000")["respCode"] == "35"


# -- refusals of the request itself -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"txnAmt": "1.00"}, "10"),
        ({"txnAmt": "-1"}, "10"),
        ({"txnAmt": "0"}, "10"),
        ({"txnAmt": "0100"}, "10"),
        ({"txnAmt": "1000000000000"}, "10"),
        ({"txnAmt": "１00"}, "10"),
        ({"txnTime": "2024-03-01 10:00:00"}, "10"),
        ({"txnTime": "20240230100000"}, "10"),
        ({"orderId": "SHORT1"}, "10"),
        ({"orderId": "A" * 41}, "10"),
        ({"orderId": "ORDER-0001"}, "10"),
        ({"currencyCode": "840"}, "10"),
        ({"version": "5.0.0"}, "10"),
        ({"encoding": "GBK"}, "10"),
        ({"channelType": "07"}, "10"),
        ({"backUrl": "ftp://shop.test/x"}, "10"),
        ({"txnType": "02"}, "32"),
        ({"bizType": "000301"}, "32"),
        ({"accessType": "1"}, "32"),
        ({"merId": "999999999999999"}, "31"),
        ({"txnAmt": ""}, "13"),
        ({"backUrl": ""}, "13"),
        ({"currencyCode": ""}, "13"),
        ({"txnTime": ""}, "13"),
    ],
)
def test_malformed_requests(env: Env, change: dict[str, str], code: str) -> None:
    fields = env.client.consume_fields("BADORDER01", channelType="08")
    fields.update(change)
    answer = _raw_answer(env, "appTransReq.do", env.client.sign(fields))
    assert answer["respCode"] == code, answer["respMsg"]
    assert answer["respMsg"]
    assert env.sandbox.trades == []  # nothing changed


def test_signature_checks(env: Env, other_keys) -> None:
    fields = env.client.sign(env.client.consume_fields("SIGNORDER1", channelType="08"))
    tampered = dict(fields, txnAmt="1")  # signed over another txnAmt
    assert _raw_answer(env, "appTransReq.do", tampered)["respCode"] == "11"
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    assert _raw_answer(env, "appTransReq.do", unsigned)["respCode"] == "13"
    no_cert_id = {k: v for k, v in fields.items() if k != "certId"}
    assert _raw_answer(env, "appTransReq.do", no_cert_id)["respCode"] == "13"
    other_cert = dict(fields, certId="12345678901")
    other_cert["signature"] = acp_sign(env.client.key, other_cert)
    assert _raw_answer(env, "appTransReq.do", other_cert)["respCode"] == "11"
    forged = dict(fields, signature=acp_sign(other_keys.private, fields))
    assert _raw_answer(env, "appTransReq.do", forged)["respCode"] == "11"
    sha1_method = dict(fields, signMethod="02")
    assert _raw_answer(env, "appTransReq.do", sha1_method)["respCode"] == "10"
    assert env.sandbox.trades == []
    assert _raw_answer(env, "appTransReq.do", fields)["respCode"] == "00"


def test_the_signed_string_is_not_url_encoded_and_keeps_received_empty_fields(
    env: Env,
) -> None:
    fields = env.client.consume_fields(
        "ENCODING01", channelType="08", reqReserved="{a b&c=d+e/f%20}", riskRateInfo=""
    )
    signed = env.client.sign(fields)  # signing leaves the empty field out
    answer = _raw_answer(env, "appTransReq.do", signed)
    assert answer["respCode"] == "00", answer["respMsg"]
    assert answer["reqReserved"] == "{a b&c=d+e/f%20}"  # echoed raw, as received
    # A field received empty is part of what the signature must cover, as in
    # UnionPay's SDKs' verification (SDKUtil.coverMap2String keeps "k="): adding
    # one after signing breaks the signature.
    again = env.client.sign(env.client.consume_fields("ENCODING02", channelType="08"))
    again["riskRateInfo"] = ""
    refused = _raw_answer(env, "appTransReq.do", again)
    assert refused["respCode"] != "00"


def test_not_a_form(env: Env) -> None:
    response = env.http.post(
        "/gateway/api/queryTrans.do",
        content=b"\xff\xfe not utf-8",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = parse_body(response.content.decode())
    verify_message(answer, env.client.trust, env.clock.now())
    assert answer["respCode"] == "10"
    assert env.http.post("/gateway/api/nothing.do").status_code == 404
    assert env.http.get("/gateway/api/queryTrans.do").status_code == 405


def test_endpoints_serve_only_their_transactions(env: Env) -> None:
    paid = _paid(env)
    query = env.client.base("00", "00", "000000", "PAIDORDER1")
    query["txnTime"] = paid["txnTime"]
    assert env.client.call("backTransReq.do", query)["respCode"] == "32"
    consume = env.client.consume_fields("WRONGEND01", channelType="08")
    assert env.client.call("queryTrans.do", consume)["respCode"] == "32"
    refund = env.client.base(
        "04", "00", "000201", "WRONGEND02", channelType="07", txnAmt="1",
        currencyCode="156", backUrl=BACK_URL, origQryId=paid["queryId"],
    )  # fmt: skip
    assert env.client.call("appTransReq.do", refund)["respCode"] == "32"
    missing = {k: v for k, v in refund.items() if k != "origQryId"}
    assert env.client.call("backTransReq.do", missing)["respCode"] == "13"


def test_answers_parse_with_pem_values(env: Env) -> None:
    """The raw body holds the CRLF PEM unencoded, with its '=' padding and '+' and '/'."""
    fields = env.client.sign(env.client.consume_fields("PEMORDER01", channelType="08"))
    body = env.client.post("appTransReq.do", fields).content.decode()
    assert "signPubKeyCert=-----BEGIN CERTIFICATE-----\r\n" in body
    assert "%" not in body.split("signPubKeyCert=", 1)[1].split("-----END", 1)[0]
    answer = parse_body(body)
    pem = answer["signPubKeyCert"]
    assert pem.endswith("-----END CERTIFICATE-----")
    assert answer["signature"].endswith("=")
    # sorted by name, then signPubKeyCert and signature last, as UnionPay's answers
    assert list(answer)[-2:] == ["signPubKeyCert", "signature"]
    assert list(answer)[:-2] == sorted(list(answer)[:-2])


# -- the sandbox's gateway faults, on UnionPay's endpoints ------------------------------------


def test_a_system_error_fault_is_a_signed_acp_answer(env: Env) -> None:
    env.sandbox.set_fault("unionpay", "system_error", count=1)
    fields = env.client.sign(env.client.consume_fields("BUSYORDER1", channelType="08"))
    answer = _raw_answer(env, "appTransReq.do", fields)  # verified: signed by the platform
    assert answer["respCode"] == "03"
    assert answer["respMsg"] == "交易通讯超时，请发起查询交易"
    assert answer["orderId"] == "BUSYORDER1"
    assert env.sandbox.trades == []
    assert _raw_answer(env, "appTransReq.do", fields)["respCode"] == "00"  # count=1: over
    env.sandbox.set_fault("unionpay", "system_error", code="01", count=1)
    browser = env.client.sign(env.client.consume_fields("BUSYORDER2"))
    page = env.client.post("frontTransReq.do", browser).text
    assert 'id="resp-code">01<' in page
