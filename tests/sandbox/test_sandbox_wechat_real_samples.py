"""The WeChat sandbox's messages diffed against real ones WeChat Pay published.

Each sample is a file under ``tests/fixtures/wechat/`` (its source in that
folder's ``README.md``): notifications, the platform certificate, the
``/v3/certificates`` answer, the bill-request answer, trade bills and a fund-flow
bill. Values a merchant chooses (order numbers, names, amounts) differ, so the
comparison is of what clients and parsers depend on: field names and their
order, and each field's *format* (:func:`shape`: digits of an integer part
collapsed, other digits and upper-case codes kept as classes).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sandbox_support import BASE_URL
from sandbox_wechat_client import API_V3_KEY, MCHID, WechatEnv, decrypt, wechat_env

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wechat"

#: The id of both real notifications: a version-5 UUID (RFC 4122 variant).
REAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private)


def shape(value: str) -> str:
    """A field's format: ``"260.00"`` → ``"n.99"``, ``"-1.56000"`` → ``"-n.99999"``,
    ``"2020-04-01 13:44:57"`` → ``"9999-99-99 99:99:99"``, ``"ICBC_DEBIT"`` → ``"A"``,
    ``"1601959334API"`` → ``"9999999999A"``; anything else is kept."""
    value = re.sub(r"\d+(?=\.\d)", "n", value)
    value = re.sub(r"\d", "9", value)
    return re.sub(r"[A-Z][A-Z_]*", "A", value)


def total_shape(value: str) -> str:
    """A summary value's format: a count of any size is ``"n"``."""
    return "n" if value.isdigit() else shape(value)


def keys_in_order(data: Any) -> Any:
    """The nested key order of a JSON value (lists: of their first element)."""
    if isinstance(data, dict):
        return [(k, keys_in_order(v)) for k, v in data.items()]
    if isinstance(data, list):
        return [keys_in_order(data[0])] if data else []
    return None


def _csv(raw: bytes, *, gz: bool = False) -> list[list[str]]:
    text = (gzip.decompress(raw) if gz else raw).decode("utf-8-sig")
    return [line.split(",") for line in text.replace("\r\n", "\n").split("\n") if line]


def _records(rows: list[list[str]]) -> tuple[list[dict[str, str]], list[str]]:
    """The data rows as {column: value without its backtick} and the summary values."""
    header, body, summary = rows[0], rows[1:-2], rows[-1]
    assert all(f.startswith("`") for row in [*body, summary] for f in row)
    records = [dict(zip(header, (f[1:] for f in row), strict=True)) for row in body]
    return records, [f[1:] for f in summary]


def _shapes(record: dict[str, str], columns: list[str]) -> dict[str, str]:
    return {name: shape(record[name]) for name in columns}


def _day_of_trading(env: WechatEnv) -> None:
    """Two payments and one partial refund on 2024-03-01, then the next morning."""
    env.client.native("ORDER-0001", total=10000, attach="cart=1")
    env.client.native("ORDER-0002", total=2500)
    env.pay("ORDER-0001")
    env.clock.advance(60)
    env.pay("ORDER-0002")
    env.clock.advance(60)
    assert env.client.refund("R-1", 3000, total=10000).status_code == 200
    env.sandbox.deliver_due()
    env.clock.advance(24 * 3600)


# -- notifications -------------------------------------------------------------------


def _real_notifications() -> list[dict[str, Any]]:
    return [
        json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        for name in ("notification_payscore_wechatpay_go.json", "notification_transfer_wxjava.json")
    ]


def test_notifications_are_shaped_as_real_ones(env: WechatEnv) -> None:
    """``id`` a version-5 UUID, the envelope's and the resource block's keys in the
    real order, a 12-character nonce, RFC 3339 ``create_time``."""
    reals = _real_notifications()
    for real in reals:
        assert REAL_ID.fullmatch(real["id"])
    env.client.native("ORDER-0001", total=100)
    env.pay("ORDER-0001")
    env.clock.advance(60)
    env.client.native("ORDER-0002", total=100)
    env.pay("ORDER-0002")
    env.sandbox.deliver_due()
    first, second = (json.loads(r.content) for r in env.shop.requests)
    for sent in (first, second):
        assert REAL_ID.fullmatch(sent["id"]), sent["id"]
        for real in reals:
            assert keys_in_order(sent) == keys_in_order(real)
            assert shape(sent["create_time"]) == shape(real["create_time"])
            assert len(sent["resource"]["nonce"]) == len(real["resource"]["nonce"]) == 12
            assert sent["resource"]["nonce"].isalnum()
            assert real["resource"]["nonce"].isalnum()
    assert first["id"] != second["id"]


def test_a_resent_notification_keeps_its_id(env: WechatEnv) -> None:
    env.client.native("ORDER-0001", total=100)
    env.shop.answers = [500]
    env.pay("ORDER-0001")
    env.sandbox.deliver_due()
    env.clock.advance(15)
    env.sandbox.deliver_due()
    ids = {json.loads(r.content)["id"] for r in env.shop.requests}
    assert len(env.shop.requests) == 2
    assert len(ids) == 1


# -- the platform certificate -----------------------------------------------------------


def _real_certificate_pem() -> str:
    return (FIXTURES / "platform_certificate_wechatpay_java.pem").read_text(encoding="ascii")


def _pem_layout(pem: str) -> tuple[str, set[int], bool, str, bool]:
    """Its first line, the lengths of its full base64 lines, whether the last base64
    line is shorter, its last line, and whether a newline follows."""
    lines = pem.split("\n")
    final_newline = lines[-1] == ""
    if final_newline:
        lines.pop()
    body = lines[1:-1]
    return (lines[0], {len(b) for b in body[:-1]}, len(body[-1]) <= 64, lines[-1], final_newline)


def _extensions(cert: x509.Certificate) -> dict[str, tuple[bool, str]]:
    return {ext.oid.dotted_string: (ext.critical, repr(ext.value)) for ext in cert.extensions}


def test_platform_certificate_is_shaped_as_the_real_one(env: WechatEnv) -> None:
    real_pem = _real_certificate_pem()
    real = x509.load_pem_x509_certificate(real_pem.encode())
    (pem,) = env.sandbox.wechat_platform_certificates_pem
    ours = x509.load_pem_x509_certificate(pem.encode())
    assert ours.subject.rfc4514_string() == real.subject.rfc4514_string()
    assert ours.subject.rfc4514_string() == (
        "L=ShenZhen,C=CN,OU=Tenpay.com CA Center,O=Tenpay.com,CN=Tenpay.com sign"
    )
    assert ours.issuer.rfc4514_string() == real.issuer.rfc4514_string()
    assert ours.signature_algorithm_oid == real.signature_algorithm_oid
    real_key, our_key = real.public_key(), ours.public_key()
    assert isinstance(real_key, rsa.RSAPublicKey)
    assert isinstance(our_key, rsa.RSAPublicKey)
    assert our_key.key_size == real_key.key_size == 2048
    assert len(f"{ours.serial_number:X}") == len(f"{real.serial_number:X}") == 40
    lifetime = real.not_valid_after_utc - real.not_valid_before_utc
    assert ours.not_valid_after_utc - ours.not_valid_before_utc == lifetime == timedelta(days=1825)
    real_ext, our_ext = _extensions(real), _extensions(ours)
    crl = x509.ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string
    assert crl in real_ext  # the one deliberate difference
    assert crl not in our_ext
    del real_ext[crl]
    assert our_ext == real_ext
    # The PEM as /v3/certificates hands it over: 64-character lines, no final newline.
    assert _pem_layout(pem) == _pem_layout(real_pem)


def test_certificates_answer_is_shaped_as_the_real_one(env: WechatEnv) -> None:
    real = json.loads((FIXTURES / "certificates_answer_wechatpay_java.json").read_text())
    response = env.client.get("/v3/certificates")
    assert response.status_code == 200
    env.verify(response)
    ours = response.json()
    assert keys_in_order(ours) == keys_in_order(real)
    for mine, theirs in zip(ours["data"], real["data"], strict=False):
        for name in ("effective_time", "expire_time"):
            assert shape(mine[name]) == shape(theirs[name])
        for serial in (mine["serial_no"], theirs["serial_no"]):
            assert re.fullmatch(r"[0-9A-F]{40}", serial)
        block, real_block = mine["encrypt_certificate"], theirs["encrypt_certificate"]
        assert re.fullmatch(r"[0-9a-f]{12}", block["nonce"])
        assert re.fullmatch(r"[0-9a-f]{12}", real_block["nonce"])
        plain = decrypt(API_V3_KEY, block).decode("ascii")
        assert _pem_layout(plain) == _pem_layout(_real_certificate_pem())


# -- bills ------------------------------------------------------------------------------


def test_bill_request_answer_is_shaped_as_the_real_one(env: WechatEnv) -> None:
    real = json.loads((FIXTURES / "tradebill_answer_gunsluo.json").read_text())
    _day_of_trading(env)
    for target in (
        "/v3/bill/tradebill?bill_date=2024-03-01",
        "/v3/bill/fundflowbill?bill_date=2024-03-01",
    ):
        response = env.client.get(target)
        assert response.status_code == 200, response.text
        ours = response.json()
        assert list(ours) == list(real)
        assert ours["hash_type"] == real["hash_type"] == "SHA1"
        for digest in (ours["hash_value"], real["hash_value"]):
            assert re.fullmatch(r"[0-9a-f]{40}", digest)
        token = ours["download_url"].removeprefix(f"{BASE_URL}/v3/billdownload/file?token=")
        real_token = real["download_url"].split("token=")[1]
        assert len(token) == len(real_token) == 64
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


#: Columns whose values the merchant or the buyer chose: their format is theirs.
CHOSEN = {
    "公众账号ID",
    "商户号",
    "商户订单号",
    "用户标识",
    "商户退款单号",
    "商品名称",
    "商户数据包",
}


def test_trade_bill_rows_have_the_formats_of_real_ones(env: WechatEnv) -> None:
    """Payment rows against a real ALL bill (gunsluo/wechatpay-go), refund rows against
    a real REFUND bill (wechat-trade-js), summaries against both."""
    _day_of_trading(env)
    real_all, real_all_summary = _records(
        _csv((FIXTURES / "tradebill_all_2021-01-28_gunsluo.csv.gz").read_bytes(), gz=True)
    )
    real_refunds, real_refund_summary = _records(
        _csv((FIXTURES / "tradebill_refund_2020-04-01.csv.gz").read_bytes(), gz=True)
    )
    ours_all, ours_all_summary = _records(
        _csv(env.sandbox.wechat.bill(MCHID, date(2024, 3, 1), "ALL"))
    )
    ours_refunds, ours_refund_summary = _records(
        _csv(env.sandbox.wechat.bill(MCHID, date(2024, 3, 1), "REFUND"))
    )
    paid_columns = [c for c in real_all[0] if c not in CHOSEN]
    real_paid = {tuple(_shapes(r, paid_columns).items()) for r in real_all}
    assert len(real_paid) == 1  # every real payment row has one format
    for record in ours_all:
        if record["交易状态"] == "SUCCESS":
            assert _shapes(record, paid_columns) == dict(next(iter(real_paid)))
    refund_columns = [c for c in real_refunds[0] if c not in CHOSEN]
    real_refund = {tuple(_shapes(r, refund_columns).items()) for r in real_refunds}
    assert len(real_refund) == 1
    (refund,) = ours_refunds
    assert _shapes(refund, refund_columns) == dict(next(iter(real_refund)))
    assert [total_shape(v) for v in ours_all_summary] == [total_shape(v) for v in real_all_summary]
    assert [total_shape(v) for v in ours_refund_summary] == [
        total_shape(v) for v in real_refund_summary
    ]


def test_fundflow_bill_is_shaped_as_the_real_one(env: WechatEnv) -> None:
    real_raw = gzip.decompress(
        (FIXTURES / "fundflowbill_basic_2021-02-01_gunsluo.csv.gz").read_bytes()
    )
    real_rows = _csv(real_raw)
    real_records, real_summary = _records(real_rows)
    _day_of_trading(env)
    response = env.client.get("/v3/bill/fundflowbill?bill_date=2024-03-01&tar_type=GZIP")
    assert response.status_code == 200, response.text
    env.verify(response)
    answer = response.json()
    download = env.client.get(answer["download_url"].removeprefix(BASE_URL))
    assert download.status_code == 200
    plain = gzip.decompress(download.content)
    assert hashlib.sha1(plain).hexdigest() == answer["hash_value"]
    assert plain == env.sandbox.wechat.fundflow_bill(MCHID, date(2024, 3, 1))
    rows = _csv(plain)
    assert rows[0] == real_rows[0]  # the header, half-width parentheses and all
    assert rows[-2] == real_rows[-2]  # the summary's header
    records, summary = _records(rows)
    assert [total_shape(v) for v in summary] == [total_shape(v) for v in real_summary]
    assert summary == ["3", "2", "124.25", "1", "29.82"]
    refund_columns = [c for c in real_rows[0] if c != "业务凭证号"]
    real_refund = {tuple(_shapes(r, refund_columns).items()) for r in real_records}
    assert len(real_refund) == 1  # both real rows are refunds of one format
    (refund,) = [r for r in records if r["业务类型"] == "退款"]
    assert _shapes(refund, refund_columns) == dict(next(iter(real_refund)))
    assert refund["业务凭证号"] == "R-1"
    assert refund["资金流水单号"] == env.sandbox.wechat_trade(MCHID, "ORDER-0001").trade_no
    assert refund["备注"] == "退款总金额30.00元;含手续费0.18元"
    # The balance runs over the movements: +99.40, +24.85, -29.82.
    assert [r["账户结余(元)"] for r in records] == ["99.40", "124.25", "94.43"]


def test_fundflow_bill_of_other_accounts_and_bad_input(env: WechatEnv) -> None:
    _day_of_trading(env)
    for account in ("OPERATION", "FEES"):
        response = env.client.get(
            f"/v3/bill/fundflowbill?bill_date=2024-03-01&account_type={account}"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "NO_STATEMENT_EXIST"
    response = env.client.get("/v3/bill/fundflowbill?bill_date=2024-03-01&account_type=OTHER")
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "account_type"
    response = env.client.get("/v3/bill/fundflowbill?bill_date=2024-03-02")
    assert response.json()["code"] == "STATEMENT_CREATING"
