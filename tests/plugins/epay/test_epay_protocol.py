"""The plugin and the sandbox against facts read from 彩虹易支付's published source
(``tests/fixtures/epay/caihong_protocol.json``, see its SOURCES.md)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from epay_support import KEY, PID, START, config, md5_sign
from payhub_epay import EpayChannel, EpayConfig
from payhub_epay_sandbox import EPAY_RETRY_DELAYS, EpaySimulator, php_money

from payhub import BuyerHints, PaymentRequest, PayMethod, RefundRequest
from payhub.models import PaymentStatus
from payhub.money import Money

FACTS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "epay" / "caihong_protocol.json").read_text("utf-8")
)


def channel() -> EpayChannel:
    return EpayChannel("epay", EpayConfig.validated("epay", config()), clock=lambda: START)


def request(method: PayMethod) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no="F-1",
        amount=Money(1050),
        subject="Card",
        method=method,
        buyer=BuyerHints(ip="203.0.113.1"),
    )


def test_page_payment_sends_every_field_submit_php_requires() -> None:
    flow = channel().pay(request(PayMethod.PAGE))
    with pytest.raises(StopIteration) as done:
        next(flow)  # no I/O: the browser goes to the provider
    result = done.value.value
    sent = dict(parse_qsl(urlsplit(result.redirect_url).query))
    assert set(FACTS["submit"]["required"]) <= set(sent)
    assert re.fullmatch(FACTS["submit"]["out_trade_no_pattern"], sent["out_trade_no"])
    assert re.fullmatch(FACTS["submit"]["money_pattern"], sent["money"])
    assert sent["sign"] == md5_sign(sent, KEY)


def test_api_payment_posts_every_field_mapi_php_requires() -> None:
    flow = channel().pay(request(PayMethod.QR))
    sent = next(flow)
    flow.close()
    assert sent.method in FACTS["mapi"]["methods"]
    assert sent.url.path.endswith("/" + FACTS["mapi"]["path"])
    fields = dict(parse_qsl(sent.content.decode()))
    assert set(FACTS["mapi"]["required"]) <= set(fields)
    assert fields["sign"] == md5_sign(fields, KEY)


def test_the_order_query_is_a_get_with_credentials_in_the_query() -> None:
    flow = channel().query("F-1")
    sent = next(flow)
    query = dict(parse_qsl(sent.url.query.decode()))
    assert (sent.method, query["act"]) == (FACTS["order_query"]["method"], "order")
    assert query["pid"] == PID
    assert query["key"] == KEY
    answer = dict.fromkeys(FACTS["order_query"]["answer_keys"], "")
    answer.update(
        code=1,
        msg="succ",
        out_trade_no="F-1",
        money="10.50",
        status=1,
        trade_no="2026030112000010001",
        endtime="2026-03-01 12:00:00",
    )
    with pytest.raises(StopIteration) as done:
        flow.send(httpx.Response(200, json=answer))
    result = done.value.value
    assert result.status is PaymentStatus.PAID
    assert result.paid_at is not None
    assert result.paid_at.isoformat() == "2026-03-01T12:00:00+08:00"


@pytest.mark.parametrize(("code", "status"), [("0", "pending"), ("2", "refunded"), ("3", "paid")])
def test_query_status_codes(code: str, status: str) -> None:
    assert code in FACTS["order_query"]["status"]
    flow = channel().query("F-1")
    next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(httpx.Response(200, json={"code": 1, "status": int(code), "money": "10.50"}))
    assert done.value.value.status.value == status


def test_the_refund_posts_credentials_in_the_body_and_reads_code_zero() -> None:
    flow = channel().refund(
        RefundRequest(out_trade_no="F-1", out_refund_no="R-1", amount=Money(50))
    )
    sent = next(flow)
    assert sent.method == FACTS["refund"]["method"]
    assert dict(parse_qsl(sent.url.query.decode())) == {"act": "refund"}
    body = dict(parse_qsl(sent.content.decode()))
    assert set(body) <= set(FACTS["refund"]["fields"])
    assert body["money"] == "0.50"
    with pytest.raises(StopIteration) as done:
        flow.send(httpx.Response(200, json={"code": FACTS["refund"]["success_code"], "msg": "ok"}))
    assert done.value.value.amount == Money(50)


def test_the_sandbox_notifies_with_the_sources_fields_money_and_schedule() -> None:
    epay = EpaySimulator()
    epay.add_merchant(PID, KEY)
    params = {
        "pid": PID,
        "type": "alipay",
        "out_trade_no": "F-1",
        "notify_url": "https://s/n",
        "return_url": "https://s/r",
        "name": "Card",
        "money": "1.50",
        "param": "x",
    }
    params["sign"] = md5_sign(params, KEY)
    order = epay.create_order(params, api=False)
    fields = epay.notification_fields(order)
    assert list(fields) == FACTS["notify_fields_md5"]
    assert fields["money"] == FACTS["notify_money_examples"]["1.50"]
    for shown, printed in FACTS["notify_money_examples"].items():
        assert php_money(Decimal(shown)) == printed
    assert list(EPAY_RETRY_DELAYS) == FACTS["retry_delays_seconds"]
    assert fields["sign"] == md5_sign(fields, KEY)


def test_the_channel_reads_php_float_money() -> None:
    for shown, printed in FACTS["notify_money_examples"].items():
        fields = {
            "pid": PID,
            "trade_no": "T1",
            "out_trade_no": "F-1",
            "type": "alipay",
            "name": "Card",
            "money": printed,
            "trade_status": FACTS["notify_trade_status"],
        }
        fields["sign"] = md5_sign(fields, KEY)
        fields["sign_type"] = FACTS["notify_sign_type_md5"]
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
        note = channel().parse_notification(httpx.Headers(), body)
        assert note.amount == Money.parse(shown)
