"""Alipay trade bills: a zip of GBK CSV files, built here in the real layout."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from payhub.channels.alipay._bill import parse_bill_archive
from payhub.errors import ProtocolError
from payhub.models import BillRecordKind
from payhub.money import Money

ACCOUNT = "20881234567890120156"
HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,"
    "终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)
PAYMENT_ROW = (
    "2024010222001446880500001234\t,ORDER-0001\t,交易,游戏点卡 100元,2024-01-02 10:30:58,"
    "2024-01-02 10:31:04,,,,,abc***@example.com,88.88,88.88,0.00,0.00,0.00,0.00,0.00,,"
    "0.00,0.00,,-0.53,0.00,"
)
REFUND_ROW = (
    "2024010222001446880500001234\t,ORDER-0001\t,退款,游戏点卡 100元,2024-01-02 10:30:58,"
    "2024-01-02 18:00:00,,,,,abc***@example.com,-10.00,-10.00,0.00,0.00,0.00,0.00,0.00,,"
    "0.00,0.00,R-1\t,0.06,0.00,"
)
#: The other layout: 订单金额 repeats the order total, 商家实收 holds the refund.
REFUND_ROW_ORDER_TOTAL = (
    "2024010222001446880500001234\t,ORDER-0001\t,退款,游戏点卡 100元,2024-01-02 10:30:58,"
    "2024-01-02 18:00:00,,,,,abc***@example.com,88.88,-10.00,0.00,0.00,0.00,0.00,0.00,,"
    "0.00,0.00,R-1\t,0.06,0.00,"
)
OTHER_ROW = (
    "2024010222001446880500009999\t,ORDER-0009\t,分账,x,2024-01-02 11:00:00,2024-01-02 11:00:00,"
    ",,,,y,1.00,1.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,"
)


def detail_csv(*rows: str) -> bytes:
    lines = [
        "#支付宝业务明细查询",
        f"#账号：[{ACCOUNT}]",
        "#起始日期：[2024年01月02日 00:00:00]   终止日期：[2024年01月03日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        HEADER,
        *rows,
        "#-----------------------------------------业务明细列表结束------------------------------------",
        "#交易合计：1笔，商家实收共88.88元，商家优惠共0.00元，服务费共-0.53元",
        "#退款合计：1笔，商家实收共-10.00元，商家优惠共0.00元，服务费共0.06元",
        "#导出时间：[2024年01月03日 09:00:00]",
    ]
    return "\r\n".join(lines).encode("gbk")


class _GbkName(zipfile.ZipInfo):
    """A member name stored as raw GBK without the UTF-8 flag, as Alipay writes it."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("cp437"), self.flag_bits


def bill_zip(*rows: str, gbk_names: bool = True, detail: bytes | None = None) -> bytes:
    rows = rows or (PAYMENT_ROW, REFUND_ROW, OTHER_ROW)
    files = {
        f"{ACCOUNT}_20240102_业务明细.csv": detail if detail is not None else detail_csv(*rows),
        f"{ACCOUNT}_20240102_业务明细(汇总).csv": "#汇总\r\n门店编号,门店名称\r\n".encode("gbk"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            if gbk_names:
                info: zipfile.ZipInfo = _GbkName(name.encode("gbk").decode("cp437"))
            else:
                info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def parse(content: bytes) -> Any:
    return parse_bill_archive(
        content, channel="alipay", bill_date=date(2024, 1, 2), max_minor=10_000_000_000
    )


@pytest.mark.parametrize("gbk_names", [True, False])
def test_bill_rows(gbk_names: bool) -> None:
    payment, refund = parse(bill_zip(gbk_names=gbk_names))
    shanghai = ZoneInfo("Asia/Shanghai")

    assert payment.kind is BillRecordKind.PAYMENT
    assert payment.channel_trade_id == "2024010222001446880500001234"  # tab stripped
    assert payment.out_trade_no == "ORDER-0001"
    assert payment.out_refund_no is None
    assert payment.subject == "游戏点卡 100元"
    assert payment.amount == Money(8888)
    assert payment.fee == Money(53)  # printed -0.53: charged to the merchant
    assert payment.created_at == datetime(2024, 1, 2, 10, 30, 58, tzinfo=shanghai)
    assert payment.finished_at == datetime(2024, 1, 2, 10, 31, 4, tzinfo=shanghai)
    assert payment.finished_at.utcoffset() is not None
    assert payment.bill_date == date(2024, 1, 2)
    assert payment.raw["商家实收（元）"] == "88.88"

    assert refund.kind is BillRecordKind.REFUND
    assert refund.amount == Money(-1000)
    assert refund.fee == Money(-6)  # printed 0.06: returned with the refund
    assert refund.out_refund_no == "R-1"


def test_summary_file_alone_is_not_a_bill() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x_业务明细(汇总).csv", b"#")
    with pytest.raises(ProtocolError, match="detail"):
        parse(buffer.getvalue())


def test_not_a_zip() -> None:
    with pytest.raises(ProtocolError, match="zip"):
        parse(b"<html>expired</html>")


def test_bad_amount_in_a_row() -> None:
    row = PAYMENT_ROW.replace(",88.88,88.88,", ",8８.88,88.88,")
    with pytest.raises(ProtocolError, match="row 1"):
        parse(bill_zip(row))


def test_short_row() -> None:
    with pytest.raises(ProtocolError, match="columns"):
        parse(bill_zip("2024\t,A\t,交易"))


def test_header_without_required_columns() -> None:
    detail = "#x\r\n支付宝交易号,其它\r\n1,2\r\n".encode("gbk")
    with pytest.raises(ProtocolError, match="header"):
        parse(bill_zip(detail=detail))


def test_empty_bill_has_no_records() -> None:
    assert parse(bill_zip(OTHER_ROW)) == []


def test_refund_row_with_the_order_total_takes_the_refund_from_merchant_received() -> None:
    records = parse(bill_zip(PAYMENT_ROW, REFUND_ROW_ORDER_TOTAL))
    refund = next(r for r in records if r.kind is BillRecordKind.REFUND)
    assert refund.amount == Money(-1000)
    assert sum((r.amount for r in records), Money(0)) == Money(7888)
