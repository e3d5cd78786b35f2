"""The trade bill: ``/v3/bill/tradebill``, the signed download, the file's format."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sandbox_support import BASE_URL
from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, V3Client, WechatEnv, wechat_env

from payhub.channels.wechat._bill import parse_trade_bill
from payhub.money import Money

#: The 27 columns of the ALL bill, as WeChat Pay's documentation lists them.
COLUMNS = [
    *("交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号"),
    *("用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额"),
    *("微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态"),
    *("商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"),
]
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
TRADEBILL = "/v3/bill/tradebill?bill_date=2024-03-01&bill_type=ALL&tar_type=GZIP"


@pytest.fixture
def env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private)


def _day_of_trading(env: WechatEnv) -> None:
    """Two payments and one partial refund on 2024-03-01, then the next morning."""
    env.client.native("ORDER-0001", total=10000, attach="cart=1")
    env.client.native("ORDER-0002", total=2500)
    env.client.native("ORDER-0003", total=999)  # never paid
    env.pay("ORDER-0001")
    env.clock.advance(60)
    env.pay("ORDER-0002")
    env.clock.advance(60)
    assert env.client.refund("R-1", 3000, total=10000).status_code == 200
    env.sandbox.deliver_due()  # the refund settles
    env.clock.advance(24 * 3600)  # 2024-03-02 10:02 Asia/Shanghai


def _rows(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.split("\r\n") if line]


def test_bill_hash_and_format(env: WechatEnv) -> None:
    _day_of_trading(env)
    response = env.client.get(TRADEBILL)
    assert response.status_code == 200, response.text
    env.verify(response)
    data = response.json()
    assert data["hash_type"] == "SHA1"
    assert data["download_url"].startswith(f"{BASE_URL}/v3/billdownload/file?token=")

    target = data["download_url"].removeprefix(BASE_URL)
    download = env.client.get(target)
    assert download.status_code == 200
    assert "Wechatpay-Signature" not in download.headers  # a file is not signed
    plain = gzip.decompress(download.content)
    # The hash is of the bill as it is after decompressing.
    assert hashlib.sha1(plain).hexdigest() == data["hash_value"]
    assert hashlib.sha1(download.content).hexdigest() != data["hash_value"]

    assert plain.startswith(b"\xef\xbb\xbf")
    text = plain.decode("utf-8-sig")
    assert text.endswith("\r\n")
    rows = _rows(text)
    assert rows[0] == COLUMNS
    assert rows[-2] == SUMMARY.split(",")
    body = rows[1:-2]
    assert len(body) == 3
    for row in [*body, rows[-1]]:
        assert all(field.startswith("`") for field in row), row
    records = [dict(zip(COLUMNS, (f[1:] for f in row), strict=True)) for row in body]
    first, second, refund = records
    trade = env.sandbox.wechat_trade(MCHID, "ORDER-0001")
    assert first["交易时间"] == "2024-03-01 10:00:00"
    assert first["公众账号ID"] == APPID
    assert first["商户号"] == MCHID
    assert first["微信订单号"] == trade.trade_no
    assert first["商户订单号"] == "ORDER-0001"
    assert first["交易类型"] == "NATIVE"
    assert first["交易状态"] == "SUCCESS"
    assert first["应结订单金额"] == "100.00"
    assert first["订单金额"] == "100.00"
    assert first["手续费"] == "0.60000"
    assert first["费率"] == "0.60%"
    assert first["商户数据包"] == "cart=1"
    assert second["应结订单金额"] == "25.00"
    assert second["手续费"] == "0.15000"
    assert refund["交易状态"] == "REFUND"
    assert refund["交易时间"] == "2024-03-01 10:02:00"
    assert refund["商户退款单号"] == "R-1"
    assert refund["退款金额"] == "30.00"
    assert refund["申请退款金额"] == "30.00"
    assert refund["退款状态"] == "SUCCESS"
    assert refund["手续费"] == "-0.18000"
    assert refund["应结订单金额"] == "0.00"
    summary = [f[1:] for f in rows[-1]]
    assert summary == ["3", "125.00", "30.00", "0.00", "0.57000", "125.00", "30.00"]


FIXTURES = Path(__file__).parent.parent / "fixtures" / "wechat"


def _real_header(name: str) -> list[str]:
    raw = (FIXTURES / name).read_bytes()
    text = gzip.decompress(raw) if name.endswith(".gz") else raw
    return text.decode("utf-8-sig").splitlines()[0].split(",")


def _bill_rows(env: WechatEnv, bill_type: str) -> list[list[str]]:
    raw = env.sandbox.wechat.bill(MCHID, date(2024, 3, 1), bill_type)
    return _rows(raw.decode("utf-8-sig"))


def test_bills_have_the_columns_of_real_bills(env: WechatEnv) -> None:
    """ALL as in WxJava's sample bill, REFUND as in a real refund bill (tests/fixtures/wechat)."""
    _day_of_trading(env)
    assert _bill_rows(env, "ALL")[0] == _real_header("tradebill_all_wxjava.csv")
    refund_rows = _bill_rows(env, "REFUND")
    real_refund_header = _real_header("tradebill_refund_2020-04-01.csv.gz")
    assert refund_rows[0] == real_refund_header
    assert len(refund_rows[1]) == len(real_refund_header) == 29
    refund = dict(zip(real_refund_header, (f[1:] for f in refund_rows[1]), strict=True))
    # A REFUND bill dates the row by its payment and gives the refund's own times.
    assert refund["交易时间"] == "2024-03-01 10:00:00"
    assert refund["退款申请时间"] == "2024-03-01 10:02:00"
    assert refund["退款成功时间"].startswith("2024-03-01 10:02")
    assert refund["手续费"] == "-0.18000"
    success_rows = _bill_rows(env, "SUCCESS")
    assert len(success_rows[0]) == 20
    assert "商户退款单号" not in success_rows[0]


def test_payhub_reads_the_sandbox_bill_as_a_real_one(env: WechatEnv) -> None:
    """The fee's sign and scale: what payhub's parser makes of the real files holds here."""
    _day_of_trading(env)
    raw = env.sandbox.wechat.bill(MCHID, date(2024, 3, 1))
    first, second, refund = parse_trade_bill(raw, channel="wechat")
    assert (first.fee, second.fee, refund.fee) == (Money(60), Money(15), Money(-18))


def test_without_gzip_and_by_type(env: WechatEnv) -> None:
    _day_of_trading(env)
    for bill_type, count in (("SUCCESS", 2), ("REFUND", 1)):
        response = env.client.get(f"/v3/bill/tradebill?bill_date=2024-03-01&bill_type={bill_type}")
        data = response.json()
        raw = env.client.get(data["download_url"].removeprefix(BASE_URL)).content
        assert hashlib.sha1(raw).hexdigest() == data["hash_value"]
        rows = _rows(raw.decode("utf-8-sig"))
        assert len(rows) == count + 3
        assert rows[-1][0] == f"`{count}"
    # The control API serves the same file, whatever the time.
    control = env.http.get(f"/_control/wechat/bills/{MCHID}/2024-03-01")
    assert control.status_code == 200
    assert control.content == env.sandbox.wechat.bill(MCHID, date(2024, 3, 1))


def test_the_download_needs_a_signed_get_of_the_same_merchant(env: WechatEnv, other_keys) -> None:
    _day_of_trading(env)
    url = env.client.get(TRADEBILL).json()["download_url"]
    assert env.http.get(url).status_code == 401  # unsigned
    env.sandbox.add_wechat_merchant(
        "1900000002", "wx-other", "AB12", other_keys.public_pem, API_V3_KEY
    )
    other = V3Client(
        env.http, mchid="1900000002", serial_no="AB12", key=other_keys.private, now=env.clock.now
    )
    denied = other.get(url.removeprefix(BASE_URL))
    assert (denied.status_code, denied.json()["code"]) == (403, "NO_AUTH")
    env.clock.advance(31)
    expired = env.client.get(url.removeprefix(BASE_URL))
    assert (expired.status_code, expired.json()["code"]) == (400, "INVALID_REQUEST")


def test_bill_not_ready_missing_or_malformed(env: WechatEnv) -> None:
    env.client.native("ORDER-0001")
    env.pay("ORDER-0001")

    def code(query: str) -> tuple[int, str]:
        response = env.client.get(f"/v3/bill/tradebill?{query}")
        return response.status_code, response.json()["code"]

    assert code("bill_date=2024-03-01") == (400, "STATEMENT_CREATING")  # before 10:00 next day
    assert code("bill_date=2024-03-02") == (400, "INVALID_REQUEST")  # the future
    env.clock.advance(24 * 3600)
    assert env.client.get("/v3/bill/tradebill?bill_date=2024-03-01").status_code == 200
    assert code("bill_date=2024-02-29") == (400, "NO_STATEMENT_EXIST")  # no trade that day
    for bad in (
        "bill_date=20240301",
        "bill_date=2024-02-30",
        "",
        "bill_date=2024-03-01&bill_type=MONTH",
        "bill_date=2024-03-01&tar_type=ZIP",
    ):
        assert code(bad) == (400, "PARAM_ERROR"), bad


def test_bills_ready_immediately_and_without_bom(merchant_keys, platform_keys) -> None:
    for env in wechat_env(
        merchant_keys.private, platform_keys.private, bills_ready_immediately=True
    ):
        env.sandbox.add_wechat_merchant(
            MCHID, APPID, env.serial_no, merchant_keys.public_pem, API_V3_KEY, bill_bom=False
        )
        env.client.native("ORDER-0001")
        env.pay("ORDER-0001")
        data = env.client.get("/v3/bill/tradebill?bill_date=2024-03-01").json()
        raw = env.client.get(data["download_url"].removeprefix(BASE_URL)).content
        assert raw.startswith("交易时间".encode())
