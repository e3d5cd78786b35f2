"""The Alipay sandbox's messages diffed against messages Alipay really sent.

The samples (tests/fixtures/alipay/, sources in SOURCES.md) are checked first:
the signed ones must verify with the Alipay public key certificate they were
signed for, so a sample edited by mistake fails here rather than teaching the
sandbox a wrong layout. Then the sandbox, driven through the same scenario,
must answer with the same fields, in the same order, in the same formats.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from payhub_sandbox import Sandbox
from sandbox_alipay_client import (
    AlipayWireClient,
    content_to_sign,
    extract_node,
    parse_form,
    rsa_verifies,
)
from sandbox_support import APP_ID, Shop, new_trade

from payhub.signing import load_certificate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alipay"
SIGNED = json.loads((FIXTURES / "sandbox_env_messages_2023.json").read_text("utf-8"))
QUOTED = json.loads((FIXTURES / "quoted_answers.json").read_text("utf-8"))
ALIPAY_CERT = load_certificate((FIXTURES / "yansongda_alipayPublicCert.crt").read_bytes())
ALIPAY_KEY = ALIPAY_CERT.public_key()

LEADING = ("code", "msg", "sub_code", "sub_msg")

#: Every value's shape, by field name, as the samples show it.
FORMATS = {
    "code": r"[0-9]{5}",
    "msg": r"Success|Business Failed",
    "trade_no": r"20[0-9]{6}2200[0-9]{16}",
    "out_trade_no": r"[A-Za-z0-9_\-]{1,64}",
    "out_request_no": r"[A-Za-z0-9_\-]{1,64}",
    "total_amount": r"[0-9]+\.[0-9]{2}",
    "buyer_pay_amount": r"[0-9]+\.[0-9]{2}",
    "invoice_amount": r"[0-9]+\.[0-9]{2}",
    "receipt_amount": r"[0-9]+\.[0-9]{2}",
    "point_amount": r"[0-9]+\.[0-9]{2}",
    "refund_fee": r"[0-9]+\.[0-9]{2}",
    "refund_amount": r"[0-9]+\.[0-9]{2}",
    "send_back_fee": r"[0-9]+\.[0-9]{2}",
    "buyer_user_id": r"2088[0-9]{12}",
    "buyer_id": r"2088[0-9]{12}",
    "seller_id": r"2088[0-9]{12}",
    "buyer_logon_id": r".+\*{3}.+",
    "buyer_user_type": r"PRIVATE|CORPORATE",
    "send_pay_date": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    "gmt_refund_pay": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    "gmt_create": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    "gmt_payment": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    "notify_time": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    "timestamp": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    "fund_change": r"[YN]",
    "refund_status": r"REFUND_SUCCESS",
    "trade_status": r"WAIT_BUYER_PAY|TRADE_SUCCESS|TRADE_CLOSED|TRADE_FINISHED",
    "notify_id": r"[0-9]{8}0[01]222[0-9]{21}",
    "notify_type": r"trade_status_sync",
    "fund_bill_list": r'\[\{"amount":"[0-9]+\.[0-9]{2}","fundChannel":"ALIPAYACCOUNT"\}\]',
    "version": r"1\.0",
    "charset": r"utf-8|gbk",
    "sign_type": r"RSA2|RSA",
    "method": r"alipay\.trade\.(page|wap)\.pay\.return",
}


def layout(keys: list[str]) -> list[str]:
    """Alipay's answer layout: the leading keys in their order, then the rest sorted."""
    lead = [k for k in LEADING if k in keys]
    return lead + sorted(k for k in keys if k not in LEADING)


def shapes(fields: dict[str, Any]) -> dict[str, bool]:
    """Which fields match their sample format (fields without a known format are left out)."""
    return {
        k: re.fullmatch(FORMATS[k], v) is not None
        for k, v in fields.items()
        if k in FORMATS and isinstance(v, str)
    }


def signed_node(body: str) -> tuple[str, dict[str, Any]]:
    name = next(iter(json.loads(body)))
    raw, _ = extract_node(body, name)
    return raw, json.loads(raw)


# -- the samples are genuine -----------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SIGNED["answers"]))
def test_sample_answers_verify_with_alipays_key(scenario: str) -> None:
    body = SIGNED["answers"][scenario]
    raw, node = signed_node(body)
    assert rsa_verifies(ALIPAY_KEY, raw.encode("utf-8"), json.loads(body)["sign"])
    assert list(node) == layout(list(node))  # the layout the sandbox copies
    assert all(shapes(node).values()), shapes(node)


def test_sample_notification_and_return_verify_with_alipays_key() -> None:
    form = SIGNED["notification"]
    assert rsa_verifies(
        ALIPAY_KEY, content_to_sign(form, drop=("sign", "sign_type")).encode(), form["sign"]
    )
    returned = dict(parse_qsl(SIGNED["return_url"]))
    assert rsa_verifies(
        ALIPAY_KEY, content_to_sign(returned, drop=("sign", "sign_type")).encode(), returned["sign"]
    )
    for notify_id in QUOTED["notify_ids"]:
        assert re.fullmatch(FORMATS["notify_id"], notify_id), notify_id


# -- the sandbox answers alike ---------------------------------------------------------


def sample(scenario: str) -> dict[str, Any]:
    return signed_node(SIGNED["answers"][scenario])[1]


def assert_alike(
    ours: dict[str, Any], theirs: dict[str, Any], *, extra: frozenset[str] = frozenset()
) -> None:
    assert list(ours) == layout(list(ours)), list(ours)
    assert set(ours) - extra == set(theirs), set(ours) ^ set(theirs)
    assert all(shapes(ours).values()), shapes(ours)


def test_precreate_answer(alipay: AlipayWireClient) -> None:
    reply = alipay.call(
        "alipay.trade.precreate", {"out_trade_no": "S1", "total_amount": "0.01", "subject": "s"}
    )
    assert_alike(reply.node, sample("alipay.trade.precreate"))
    # the node's raw bytes escape "/" as Alipay's do: https:\/\/…
    assert '"qr_code":"http:\\/\\/' in reply.http.text
    assert "https:\\/\\/qr.alipay.com" in SIGNED["answers"]["alipay.trade.precreate"]


def test_query_answer_of_a_paid_trade(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "S1", "0.01")
    sandbox.alipay.pay(APP_ID, "S1")
    node = alipay.call("alipay.trade.query", {"out_trade_no": "S1"}).node
    # subject: a deliberate difference (docs/channels/alipay.md)
    assert_alike(node, sample("alipay.trade.query"), extra=frozenset({"subject"}))
    assert node["buyer_user_type"] == "PRIVATE"


def test_full_refund_without_request_number_and_its_query(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    new_trade(alipay, "S1", "0.01")
    sandbox.alipay.pay(APP_ID, "S1")
    refund = alipay.call("alipay.trade.refund", {"out_trade_no": "S1", "refund_amount": "0.01"})
    assert_alike(refund.node, sample("alipay.trade.refund (full, no out_request_no)"))
    theirs = sample("alipay.trade.fastpay.refund.query (out_request_no = out_trade_no)")
    assert theirs["out_request_no"] == theirs["out_trade_no"]
    found = alipay.call(
        "alipay.trade.fastpay.refund.query", {"out_trade_no": "S1", "out_request_no": "S1"}
    ).node
    assert_alike(found, theirs)
    assert found["out_request_no"] == "S1"
    assert found["refund_amount"] == "0.01"


def test_close_answer(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "S1", "0.01")
    sandbox.alipay.scan(APP_ID, "S1")
    node = alipay.call("alipay.trade.close", {"out_trade_no": "S1"}).node
    assert_alike(node, sample("alipay.trade.close"))


def test_query_of_an_unscanned_qr_code(alipay: AlipayWireClient) -> None:
    new_trade(alipay, "S1", "0.01")
    node = alipay.call("alipay.trade.query", {"out_trade_no": "S1"}).node
    theirs = QUOTED["query_trade_not_exist"]
    assert list(node) == list(theirs)
    assert {k: v for k, v in node.items() if k != "out_trade_no"} == {
        k: v for k, v in theirs.items() if k != "out_trade_no"
    }


def test_over_refund_error_carries_the_trade_fields(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    new_trade(alipay, "S1", "0.01")
    sandbox.alipay.pay(APP_ID, "S1")
    node = alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "S1", "refund_amount": "0.02", "out_request_no": "R1"},
    ).node
    theirs = QUOTED["refund_reason_trade_refund_fee_err"]
    assert list(node) == list(theirs)
    assert (node["code"], node["sub_code"]) == (theirs["code"], theirs["sub_code"])
    assert all(shapes(node).values()), shapes(node)


def test_notification(alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop) -> None:
    new_trade(alipay, "S1", "0.01", subject="yansongda+测试 - 1")
    sandbox.alipay.pay(APP_ID, "S1")
    sandbox.deliver_due()
    ours = parse_form(shop.requests[-1].content)
    theirs = SIGNED["notification"]
    # buyer_logon_id: production notifications carry it (Alipay's sandbox leaves it out)
    assert set(ours) - {"buyer_logon_id"} == set(theirs)
    assert all(shapes(ours).values()), shapes(ours)
    assert ours["notify_id"][:8] == ours["notify_time"][:10].replace("-", "")


def test_return_url(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    params = alipay.params(
        "alipay.trade.page.pay",
        {"out_trade_no": "S1", "total_amount": "0.01", "subject": "s",
         "product_code": "FAST_INSTANT_TRADE_PAY"},
        return_url="http://shop.test/return",
    )  # fmt: skip
    assert alipay.send(alipay.signed(params)).status_code == 302
    trade = sandbox.alipay.pay(APP_ID, "S1")
    back = sandbox.alipay.engine.return_url(trade)
    assert back is not None
    ours = parse_qsl(urlsplit(back).query)
    theirs = parse_qsl(SIGNED["return_url"])
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    assert all(shapes(dict(ours)).values())


def test_bill_section_markers_are_alipays(sandbox: Sandbox, alipay: AlipayWireClient) -> None:
    new_trade(alipay, "S1", "0.01")
    sandbox.alipay.pay(APP_ID, "S1")
    archive = sandbox.alipay.bill(APP_ID, date(2024, 3, 1))
    with zipfile.ZipFile(io.BytesIO(archive), metadata_encoding="gbk") as zf:
        texts = {name: zf.read(name).decode("gbk") for name in zf.namelist()}
    detail = next(t for n, t in texts.items() if n.endswith("_业务明细.csv")).split("\r\n")
    summary = next(t for n, t in texts.items() if n.endswith("(汇总).csv")).split("\r\n")
    markers = QUOTED["bill_markers"]
    assert detail[3] == markers["detail_start"]
    assert markers["detail_end"] in detail
    assert summary[3] == markers["summary_start"]
    assert markers["summary_end"] in summary
