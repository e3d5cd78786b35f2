"""Bill files in the channels' formats.

Alipay's daily trade bill is a zip of two GBK CSV files, the detail
(``<pid>_<yyyymmdd>_业务明细.csv``) and the summary
(``<pid>_<yyyymmdd>_业务明细(汇总).csv``). As in Alipay's own archives, the
names inside the zip are GBK bytes without the zip UTF-8 flag: read them with
``zipfile.ZipFile(..., metadata_encoding="gbk")``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._state import Refund, Trade

__all__ = [
    "ALIPAY_BILL_COLUMNS",
    "DETAIL_END",
    "DETAIL_START",
    "SUMMARY_END",
    "SUMMARY_START",
    "alipay_bill_csvs",
    "alipay_bill_filename",
    "build_alipay_bill_zip",
]

#: The 25 columns of the detail file, in order.
ALIPAY_BILL_COLUMNS: Final = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)

_SUMMARY_COLUMNS: Final = (
    "门店编号",
    "门店名称",
    "交易订单总笔数",
    "退款订单总笔数",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "卡消费金额（元）",
    "服务费（元）",
    "分润（元）",
    "实收净额（元）",
)

#: The section marker lines, byte for byte as Alipay writes them (the dashes are
#: not symmetric; parsers split on these exact strings). See
#: tests/fixtures/alipay/SOURCES.md.
DETAIL_START: Final = "#" + "-" * 41 + "业务明细列表" + "-" * 40
DETAIL_END: Final = "#" + "-" * 41 + "业务明细列表结束" + "-" * 36
SUMMARY_START: Final = "#" + "-" * 41 + "业务汇总列表" + "-" * 40
SUMMARY_END: Final = "#" + "-" * 40 + "业务汇总列表结束" + "-" * 37
_ZERO: Final = "0.00"


def alipay_bill_filename(seller_id: str, bill_date: date) -> str:
    """The download's file name: ``<pid>_<yyyymmdd>.csv.zip``."""
    return f"{seller_id}_{bill_date:%Y%m%d}.csv.zip"


def _cn_time(moment: datetime) -> str:
    return f"{moment.astimezone(CHINA_TZ):%Y-%m-%d %H:%M:%S}"


def _cn_long(moment: datetime) -> str:
    local = moment.astimezone(CHINA_TZ)
    return f"{local:%Y}年{local:%m}月{local:%d}日 {local:%H:%M:%S}"


def _day_of(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


def _money(value: Money) -> str:
    return value.to_decimal_string()


def _id(value: str) -> str:
    """Ids end with a tab, so spreadsheet programs keep them as text."""
    return f"{value}\t" if value else ""


def _header(title: str, seller_id: str, bill_date: date, marker: str) -> list[str]:
    start = datetime.combine(bill_date, time(0), CHINA_TZ)
    end = start + timedelta(days=1)
    return [
        f"#{title}",
        f"#账号：[{seller_id}]",
        f"#起始日期：[{_cn_long(start)}]   终止日期：[{_cn_long(end)}]",
        marker,
    ]


def _csv_line(fields: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(list(fields))
    return out.getvalue()


def alipay_bill_csvs(
    *,
    seller_id: str,
    bill_date: date,
    trades: Sequence[Trade],
    refunds: Sequence[Refund],
    exported_at: datetime,
) -> tuple[str, str]:
    """The detail and summary files' text (before GBK encoding), lines joined by CRLF.

    Payments made on ``bill_date`` (Asia/Shanghai) are ``交易`` rows; refunds
    made that day are ``退款`` rows with negative amounts.
    """
    by_no = {t.trade_no: t for t in trades}
    paid = sorted(
        (t for t in trades if t.paid_at is not None and _day_of(t.paid_at) == bill_date),
        key=lambda t: (t.paid_at, t.trade_no),
    )
    refunded = sorted(
        (r for r in refunds if _day_of(r.created_at) == bill_date and r.trade_no in by_no),
        key=lambda r: (r.created_at, r.refund_no),
    )
    rows: list[list[str]] = []
    for trade in paid:
        assert trade.paid_at is not None
        rows.append(
            _detail_row(trade, "交易", done_at=trade.paid_at, received=trade.amount, fee=-trade.fee)
        )
    for refund in refunded:
        trade = by_no[refund.trade_no]
        rows.append(
            _detail_row(
                trade,
                "退款",
                done_at=refund.created_at,
                received=-refund.amount,
                fee=refund.fee_returned,
                request_no=refund.out_refund_no,
            )
        )
    currency = trades[0].amount.currency if trades else "CNY"
    zero = Money.zero(currency)
    paid_total = sum((t.amount for t in paid), zero)
    refund_total = sum((r.amount for r in refunded), zero)
    fees = sum((t.fee for t in paid), zero) - sum((r.fee_returned for r in refunded), zero)
    exported = f"#导出时间：[{_cn_long(exported_at)}]"

    detail = _header("支付宝业务明细查询", seller_id, bill_date, DETAIL_START)
    detail.append(_csv_line(ALIPAY_BILL_COLUMNS))
    detail.extend(_csv_line(row) for row in rows)
    detail += [
        DETAIL_END,
        f"#交易合计：{len(paid)}笔，商家实收共：{_money(paid_total)}元，商家优惠共：{_ZERO}元",
        f"#退款合计：{len(refunded)}笔，商家实收退款共：{_money(-refund_total)}元，"
        f"商家优惠退款共：{_ZERO}元",
        exported,
    ]

    received = paid_total - refund_total
    summary = _header("支付宝业务汇总查询", seller_id, bill_date, SUMMARY_START)
    summary.append(_csv_line(_SUMMARY_COLUMNS))
    summary.append(
        _csv_line(
            [
                "合计",
                "",
                str(len(paid)),
                str(len(refunded)),
                _money(paid_total),
                _money(received),
                _ZERO,
                _ZERO,
                _ZERO,
                _money(-fees),
                _ZERO,
                _money(received - fees),
            ]
        )
    )
    summary += [SUMMARY_END, exported]
    return "\r\n".join(detail) + "\r\n", "\r\n".join(summary) + "\r\n"


def _detail_row(
    trade: Trade,
    kind: str,
    *,
    done_at: datetime,
    received: Money,
    fee: Money,
    request_no: str = "",
) -> list[str]:
    return [
        _id(trade.trade_no),
        _id(trade.out_trade_no),
        kind,
        trade.subject,
        _cn_time(trade.created_at),
        _cn_time(done_at),
        "",
        "",
        "",
        "",
        trade.buyer_account or "",
        _money(trade.amount),
        _money(received),
        _ZERO,
        _ZERO,
        _ZERO,
        _ZERO,
        _ZERO,
        "",
        _ZERO,
        _ZERO,
        _id(request_no),
        _money(fee),
        _ZERO,
        "",
    ]


class _GbkName(zipfile.ZipInfo):
    """A zip entry whose name is stored as GBK bytes, without the UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own hook
        return self.filename.encode("gbk"), self.flag_bits


def build_alipay_bill_zip(
    *,
    seller_id: str,
    bill_date: date,
    trades: Sequence[Trade],
    refunds: Sequence[Refund],
    exported_at: datetime,
) -> bytes:
    """The zip Alipay's ``bill_download_url`` points to, for one seller and day."""
    detail, summary = alipay_bill_csvs(
        seller_id=seller_id,
        bill_date=bill_date,
        trades=trades,
        refunds=refunds,
        exported_at=exported_at,
    )
    stamp = exported_at.astimezone(CHINA_TZ)
    stem = f"{seller_id}_{bill_date:%Y%m%d}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            (f"{stem}_业务明细.csv", detail),
            (f"{stem}_业务明细(汇总).csv", summary),
        ):
            info = _GbkName(name, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("gbk", "replace"))
    return out.getvalue()
