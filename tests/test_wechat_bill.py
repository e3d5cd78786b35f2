"""The trade bill: signed GET of download_url, gunzip, SHA1 check, backtick CSV."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_wechat_support import Clock, FakeWechat, world

from payhub import (
    AsyncPayHub,
    BillRecordKind,
    ChannelError,
    Money,
    PayHub,
    ProtocolError,
    SignatureError,
)
from payhub.channels.wechat import WechatPayChannel
from payhub.channels.wechat._bill import gunzip_bill, parse_trade_bill

SHANGHAI = timezone(timedelta(hours=8))

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
PAYMENT = (
    "`2023-11-14 10:00:01,`wxd678efh567hg6787,`1900000109,`0,`,`4200001234202311140000000001,"
    "`A100001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`1.00,`0.00,`0,`0,"
    "`0.00,`0.00,`,`,`游戏点卡, 100 元,`,`0.00600,`0.60%,`1.00,`0.00,`"
)
REFUND = (
    "`2023-11-14 11:00:00,`wxd678efh567hg6787,`1900000109,`0,`,`4200001234202311140000000001,"
    "`A100001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
    "`50000000382019052709732678859,`R1001,`0.40,`0.00,`ORIGINAL,`SUCCESS,`游戏点卡, 100 元,"
    "`,`-0.00240,`0.60%,`0.00,`0.40,`"
)
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
    "`2,`1.00,`0.40,`0.00,`0.00360,`1.00,`0.40"
)
BILL = ("\ufeff" + "\r\n".join([HEADER, PAYMENT, REFUND, *SUMMARY.split("\n")]) + "\r\n").encode()


@pytest.fixture(params=["public_key", "certificates"])
def setup(request: Any, merchant_keys: Any, platform_keys: Any
          ) -> tuple[WechatPayChannel, FakeWechat]:
    ch, fake = world(request.param, merchant_keys.private, platform_keys.private, Clock())
    fake.bill = BILL
    return ch, fake


def download(ch: WechatPayChannel, fake: FakeWechat) -> Any:
    with PayHub(channels=[ch], http_client=httpx.Client(transport=fake.transport())) as hub:
        return hub.download_bill("wechat", date(2023, 11, 14))


def test_download_parses_payments_and_negative_refunds(setup: Any) -> None:
    ch, fake = setup
    payment, refund = download(ch, fake)
    assert payment.kind is BillRecordKind.PAYMENT
    assert payment.amount == Money(100)
    assert payment.fee == Money(1)  # 0.00600 yuan, half-up to the fen
    assert payment.channel_trade_id == "4200001234202311140000000001"
    assert payment.out_trade_no == "A100001"
    assert payment.out_refund_no is None
    assert payment.subject == "游戏点卡, 100 元"  # a comma inside a field survives
    assert payment.created_at == datetime(2023, 11, 14, 10, 0, 1, tzinfo=SHANGHAI)
    assert payment.bill_date == date(2023, 11, 14)
    assert payment.raw["交易类型"] == "NATIVE"
    assert refund.kind is BillRecordKind.REFUND
    assert refund.amount == Money(-40)
    assert refund.fee == Money(0)  # -0.00240 rounds to zero fen
    assert refund.out_refund_no == "R1001"


def test_the_bill_requests_are_signed_and_go_where_they_should(setup: Any) -> None:
    ch, fake = setup
    download(ch, fake)
    paths = [r.url.raw_path for r in fake.requests if r.url.path != "/v3/certificates"]
    assert paths == [
        b"/v3/bill/tradebill?bill_date=2023-11-14&bill_type=ALL&tar_type=GZIP",
        b"/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd",
    ]
    # The fake answers 401 SIGN_ERROR to any request whose Authorization fails.
    assert all(fake.check_authorization(r) is None for r in fake.requests)


def test_async_download(setup: Any) -> None:
    ch, fake = setup

    async def main() -> Any:
        client = httpx.AsyncClient(transport=fake.transport())
        async with AsyncPayHub(channels=[ch], http_client=client) as hub:
            records = await hub.download_bill("wechat", date(2023, 11, 14))
        await client.aclose()
        return records

    assert [r.amount for r in asyncio.run(main())] == [Money(100), Money(-40)]


def test_a_bad_hash_is_refused(setup: Any) -> None:
    ch, fake = setup
    fake.bill_hash = hashlib.sha1(b"another file").hexdigest()
    with pytest.raises(SignatureError, match="SHA1"):
        download(ch, fake)


def test_the_hash_covers_the_decompressed_bill(setup: Any) -> None:
    ch, fake = setup
    fake.bill_hash = hashlib.sha1(gzip.compress(BILL)).hexdigest()
    with pytest.raises(SignatureError):
        download(ch, fake)


def test_an_upper_case_hash_is_fine(setup: Any) -> None:
    ch, fake = setup
    fake.bill_hash = hashlib.sha1(BILL).hexdigest().upper()
    assert len(download(ch, fake)) == 2


def test_a_download_url_on_another_host_is_never_requested(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/bill/tradebill"] = lambda request: fake.signed(200, {
        "hash_type": "SHA1", "hash_value": hashlib.sha1(BILL).hexdigest(),
        "download_url": "https://evil.example/v3/billdownload/file?token=x",
    })
    with pytest.raises(ProtocolError, match="not on the API host"):
        download(ch, fake)
    assert all(r.url.host == "api.mch.weixin.qq.com" for r in fake.requests)


def test_an_unsigned_tradebill_answer_is_refused(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/bill/tradebill"] = lambda request: httpx.Response(200, json={
        "hash_type": "SHA1", "hash_value": hashlib.sha1(BILL).hexdigest(),
        "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=x",
    })
    with pytest.raises(SignatureError):
        download(ch, fake)


def test_a_bill_that_is_not_gzip_is_refused(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/billdownload/file"] = lambda request: httpx.Response(
        200, content=BILL
    )
    with pytest.raises(ProtocolError, match="gzip"):
        download(ch, fake)


def test_a_bill_decoded_by_the_http_layer_is_accepted(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/billdownload/file"] = lambda request: httpx.Response(
        200, content=gzip.compress(BILL), headers={"Content-Encoding": "gzip"}
    )
    assert len(download(ch, fake)) == 2


def test_a_day_without_a_bill_is_an_empty_bill(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/bill/tradebill"] = lambda request: fake.error(
        400, "NO_STATEMENT_EXIST", "账单文件不存在"
    )
    assert download(ch, fake) == []


def test_a_bill_not_made_yet_is_a_retryable_channel_error(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", "/v3/bill/tradebill"] = lambda request: fake.error(
        400, "STATEMENT_CREATING", "账单生成中"
    )
    with pytest.raises(ChannelError) as info:
        download(ch, fake)
    assert info.value.channel_code == "STATEMENT_CREATING"
    assert info.value.retryable is True


def test_truncated_gzip_is_refused() -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        gunzip_bill(gzip.compress(BILL)[:-12])


def test_parse_an_older_bill_format() -> None:
    bill = "\n".join([
        "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
        "交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,"
        "退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率",
        "`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,"
        "`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,"
        "`SUCCESS,`CFT,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,`0.60%",
        "总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额",
        "`1,`0.01,`0.0,`0.0,`0",
    ]).encode()
    (record,) = parse_trade_bill(bill, channel="wechat")
    assert record.amount == Money(1)
    assert record.fee == Money(0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "header"),
        (HEADER + "\n" + PAYMENT, "summary"),
        (HEADER + "\n" + PAYMENT.replace("`0.60%,`1.00", "`0.60%,`1.0.0") + "\n" + SUMMARY,
         "line 2"),
        (HEADER + "\n" + PAYMENT.rsplit(",`", 1)[0] + "\n" + SUMMARY, "fields"),
        (HEADER + "\n" + PAYMENT.replace("`NATIVE", "`NATIVE,`x") + "\n" + SUMMARY, "fields"),
    ],
)
def test_malformed_bills_are_protocol_errors(text: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_trade_bill(text.encode(), channel="wechat")


def test_an_empty_day_has_only_header_and_summary() -> None:
    bill = (HEADER + "\n" + SUMMARY.replace("`2,", "`0,")).encode()
    assert parse_trade_bill(bill, channel="wechat") == []


# -- real bills (issue 11, point 20): BillRecord.fee is what WeChat charged ----------

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"


def test_a_real_refund_bill_has_negative_fees(setup: Any) -> None:
    """bittercoffeetech/wechat-trade-js's real refund bill, downloaded through the channel."""
    ch, fake = setup
    fake.bill = gzip.decompress((FIXTURES / "tradebill_refund_2020-04-01.csv.gz").read_bytes())
    records = download(ch, fake)
    assert len(records) == 72
    assert {r.kind for r in records} == {BillRecordKind.REFUND}
    first = records[0]
    assert first.amount == Money(-26000)
    assert first.fee == Money(-156)  # 手续费 -1.56000: 0.60% of 260.00 given back
    assert first.out_refund_no == "46643757494149190670976216892493"
    assert first.channel_trade_id == "4200000472202004011622497871"
    assert all(r.fee is not None and r.fee.minor < 0 for r in records)
    # The bill's own summary: 退款总金额 18705.73, 手续费总金额 -112.22000.
    assert sum((r.amount for r in records), Money(0)) == Money(-1870573)
    assert sum((r.fee for r in records if r.fee is not None), Money(0)) == Money(-11222)


def test_a_real_payment_row_has_a_positive_fee(setup: Any) -> None:
    """WxJava's ALL bill sample: 6.00 paid, 手续费 0.04000 charged."""
    ch, fake = setup
    fake.bill = (FIXTURES / "tradebill_all_wxjava.csv").read_bytes()
    (record,) = download(ch, fake)
    assert record.kind is BillRecordKind.PAYMENT
    assert (record.amount, record.fee) == (Money(600), Money(4))
