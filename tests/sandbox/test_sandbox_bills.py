"""Bill download links and the bill zip's content."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from payhub_sandbox import (
    ALIPAY_BILL_COLUMNS,
    ManualClock,
    Sandbox,
    build_alipay_bill_zip,
)
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, BASE_URL, SELLER_ID, new_trade

BILL = "alipay.data.dataservice.bill.downloadurl.query"
DAY = "2024-03-01"
DETAIL = f"{SELLER_ID}_20240301_业务明细.csv"
SUMMARY = f"{SELLER_ID}_20240301_业务明细(汇总).csv"


@pytest.fixture
def day_of_trading(alipay: AlipayWireClient, sandbox: Sandbox, clock: ManualClock) -> None:
    """Two payments and a partial refund on 2024-03-01, a payment on 2024-03-02."""
    new_trade(alipay, "T1", "100.00", "Gift card, 100")
    new_trade(alipay, "T2", "50.00", "点卡")
    sandbox.alipay.pay(APP_ID, "T1")
    clock.advance(60)
    sandbox.alipay.pay(APP_ID, "T2")
    clock.advance(60)
    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "30.00", "out_request_no": "RF1"},
    )
    clock.set(datetime(2024, 3, 1, 16, 30, tzinfo=UTC))  # 00:30 on 03-02 in Shanghai
    new_trade(alipay, "T3", "1.00")
    sandbox.alipay.pay(APP_ID, "T3")
    clock.set(datetime(2024, 3, 2, 1, 0, tzinfo=UTC))  # 09:00 on 03-02: the bill is ready


def _read(archive: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(archive), metadata_encoding="gbk") as zf:
        return {name: zf.read(name).decode("gbk") for name in zf.namelist()}


@pytest.mark.usefixtures("day_of_trading")
def test_download_link_and_content(alipay: AlipayWireClient, platform_keys) -> None:
    reply = alipay.call(BILL, {"bill_type": "trade", "bill_date": DAY})
    assert reply.code == "10000", reply.node
    assert reply.verifies(platform_keys.public)
    url = reply.node["bill_download_url"]
    assert url.startswith(f"{BASE_URL}/_bills/alipay/")
    response = alipay.http.get(urlsplit(url).path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f"{SELLER_ID}_20240301.csv.zip" in response.headers["content-disposition"]

    files = _read(response.content)
    assert sorted(files) == sorted([DETAIL, SUMMARY])
    # names are GBK bytes without the UTF-8 flag, as in Alipay's archives
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert all(not info.flag_bits & 0x800 for info in zf.infolist())
        assert DETAIL not in zf.namelist()

    lines = files[DETAIL].split("\r\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert lines[0] == "#支付宝业务明细查询"
    assert lines[1] == f"#账号：[{SELLER_ID}]"
    assert lines[2] == "#起始日期：[2024年03月01日 00:00:00]   终止日期：[2024年03月02日 00:00:00]"
    assert re.fullmatch(r"#-+业务明细列表-+", lines[3])
    rows = list(csv.reader(lines[4:-4]))
    assert tuple(rows[0]) == ALIPAY_BILL_COLUMNS
    assert len(rows[0]) == 25
    data = rows[1:]
    assert len(data) == 3
    assert all(len(r) == 25 for r in data)
    col = {name: i for i, name in enumerate(ALIPAY_BILL_COLUMNS)}

    t1, t2, refund = data
    assert t1[col["商户订单号"]] == "T1\t"
    assert t1[col["支付宝交易号"]].endswith("\t")
    assert t1[col["业务类型"]] == "交易"
    assert t1[col["商品名称"]] == "Gift card, 100"  # quoted by the CSV writer
    assert t1[col["订单金额（元）"]] == "100.00"
    assert t1[col["商家实收（元）"]] == "100.00"
    assert t1[col["服务费（元）"]] == "-0.60"
    assert t1[col["完成时间"]] == "2024-03-01 10:00:00"
    assert t1[col["对方账户"]] == "138****0001"
    assert t2[col["商品名称"]] == "点卡"
    assert t2[col["服务费（元）"]] == "-0.30"
    assert refund[col["业务类型"]] == "退款"
    assert refund[col["商户订单号"]] == "T1\t"
    assert refund[col["商家实收（元）"]] == "-30.00"
    assert refund[col["退款批次号/请求号"]] == "RF1\t"
    assert refund[col["服务费（元）"]] == "0.18"
    assert refund[col["完成时间"]] == "2024-03-01 10:02:00"

    footer = lines[-4:]
    assert re.fullmatch(r"#-+业务明细列表结束-+", footer[0])
    assert footer[1] == "#交易合计：2笔，商家实收共：150.00元，商家优惠共：0.00元"
    assert footer[2] == "#退款合计：1笔，商家实收退款共：-30.00元，商家优惠退款共：0.00元"
    assert footer[3] == "#导出时间：[2024年03月02日 09:00:00]"

    summary = files[SUMMARY].split("\r\n")
    assert summary[0] == "#支付宝业务汇总查询"
    total = next(csv.reader([summary[5]]))
    assert total[:6] == ["合计", "", "2", "1", "150.00", "120.00"]
    assert total[-3:] == ["-0.72", "0.00", "119.28"]


@pytest.mark.usefixtures("day_of_trading")
def test_link_valid_30_seconds(alipay: AlipayWireClient, clock: ManualClock) -> None:
    url = alipay.call(BILL, {"bill_type": "trade", "bill_date": DAY}).node["bill_download_url"]
    path = urlsplit(url).path
    clock.advance(30)
    assert alipay.http.get(path).status_code == 200
    clock.advance(1)
    assert alipay.http.get(path).status_code == 404
    assert alipay.http.get("/_bills/alipay/not-a-token").status_code == 404


def test_bill_not_ready_before_nine_next_day(alipay: AlipayWireClient, clock: ManualClock) -> None:
    def ask(day: str) -> str:
        node = alipay.call(BILL, {"bill_type": "trade", "bill_date": day}).node
        return node.get("sub_code", node["code"])

    assert ask(DAY) == "isp.bill_not_exist"  # it is 10:00 on the day itself
    clock.set(datetime(2024, 3, 2, 0, 59, 59, tzinfo=UTC))  # 08:59:59 next day
    assert ask(DAY) == "isp.bill_not_exist"
    clock.advance(1)
    assert ask(DAY) == "10000"
    assert ask("2024-02-29") == "10000"
    assert ask("2024-03") == "isp.bill_not_exist"  # monthly bills are not kept
    assert ask("2024-02-30") == "isv.invalid-parameter"
    assert ask("20240301") == "isv.invalid-parameter"
    node = alipay.call(BILL, {"bill_type": "fund", "bill_date": DAY}).node
    assert node["sub_code"] == "isv.invalid-parameter"


def test_bills_ready_immediately(platform_keys, merchant_keys, clock) -> None:
    box = Sandbox(
        alipay_platform_key=platform_keys.private, clock=clock, bills_ready_immediately=True
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    assert box.alipay.engine._bill_ready(date(2024, 3, 1))
    assert not box.alipay.engine._bill_ready(date(2024, 3, 2))


def test_empty_day(sandbox: Sandbox) -> None:
    files = _read(sandbox.alipay.bill(APP_ID, date(2024, 1, 1)))
    lines = files[f"{SELLER_ID}_20240101_业务明细.csv"].split("\r\n")
    assert lines[4].split(",") == list(ALIPAY_BILL_COLUMNS)
    assert lines[5].startswith("#---")
    assert lines[6] == "#交易合计：0笔，商家实收共：0.00元，商家优惠共：0.00元"


def test_builder_function(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1", "10.00")
    sandbox.alipay.pay(APP_ID, "T1")
    archive = build_alipay_bill_zip(
        seller_id="2088X",
        bill_date=date(2024, 3, 1),
        trades=sandbox.trades,
        refunds=sandbox.refunds,
        exported_at=datetime(2024, 3, 2, 1, 0, tzinfo=UTC) + timedelta(hours=1),
    )
    files = _read(archive)
    detail = files["2088X_20240301_业务明细.csv"]
    assert "T1\t" in detail
    assert "#导出时间：[2024年03月02日 10:00:00]" in detail
