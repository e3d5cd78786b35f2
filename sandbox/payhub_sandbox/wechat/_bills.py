"""WeChat Pay's daily trade bill (``GET /v3/bill/tradebill``), as a CSV file.

UTF-8 (with a BOM unless the merchant turned it off), CRLF lines. The header
rows are plain; every field of a data row is prefixed with a backtick (so
spreadsheet programs keep ids as text)::

    交易时间,公众账号ID,商户号,...,费率备注
    `2024-03-01 10:00:05,`wx...,`1900000001,...
    总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
    `2,`100.00,`30.00,`0.00,`0.42000,`100.00,`30.00

Shaped after real bills (``tests/fixtures/wechat/``): the columns depend on
``bill_type`` (``ALL`` 27, ``SUCCESS`` 20, ``REFUND`` 29 with the refund's
request and success times), and the fee (``手续费``, and its total) has five
decimals. A payment is a ``SUCCESS`` row on the day (Asia/Shanghai) it was
paid, its fee positive (charged); a refund is a ``REFUND`` row on the day it
succeeded, its fee negative (the part of the service fee given back). In an
``ALL`` bill a refund row's ``交易时间`` is the refund's time; in a ``REFUND``
bill it is the payment's, the refund's own times in their columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._state import Refund, Trade

__all__ = [
    "WECHAT_BILL_COLUMNS",
    "WECHAT_BILL_SUMMARY_COLUMNS",
    "WECHAT_BILL_TYPES",
    "bill_line",
    "wechat_bill_csv",
]

#: The 27 columns of the ``ALL`` trade bill, in order.
WECHAT_BILL_COLUMNS: Final = (
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
)

#: The 20 columns of a ``SUCCESS`` bill: no refund columns.
_SUCCESS_COLUMNS: Final = tuple(
    name
    for name in WECHAT_BILL_COLUMNS
    if name
    not in (
        "微信退款单号",
        "商户退款单号",
        "退款金额",
        "充值券退款金额",
        "退款类型",
        "退款状态",
        "申请退款金额",
    )
)

#: The 29 columns of a ``REFUND`` bill: the refund's request and success times
#: follow ``代金券金额``.
_REFUND_COLUMNS: Final = (
    *WECHAT_BILL_COLUMNS[:14],
    "退款申请时间",
    "退款成功时间",
    *WECHAT_BILL_COLUMNS[14:],
)

_COLUMNS: Final = {
    "ALL": WECHAT_BILL_COLUMNS,
    "SUCCESS": _SUCCESS_COLUMNS,
    "REFUND": _REFUND_COLUMNS,
}

WECHAT_BILL_SUMMARY_COLUMNS: Final = (
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
)

#: ``bill_type`` values: every row, payments only, refunds only.
WECHAT_BILL_TYPES: Final = ("ALL", "SUCCESS", "REFUND")

_TRADE_TYPES: Final = {"native": "NATIVE", "jsapi": "JSAPI", "app": "APP", "h5": "MWEB"}


def _time(moment: datetime) -> str:
    return f"{moment.astimezone(CHINA_TZ):%Y-%m-%d %H:%M:%S}"


def _day(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


def _yuan(value: Money) -> str:
    return value.to_decimal_string()


def _fee(value: Money) -> str:
    # Real bills give the fee to five decimals: "0.04000", "-1.56000".
    return f"{value.to_decimal():.5f}"


def _rate(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.01'))}%"


def bill_line(fields: Iterable[str], *, ticked: bool) -> str:
    """One CSV line of a WeChat bill; data rows (``ticked``) prefix every field with a backtick."""
    # Bill values never hold a comma that matters here; descriptions are
    # cleaned of commas and line breaks as WeChat's exporter does.
    cleaned = [f.replace(",", "，").replace("\r", " ").replace("\n", " ") for f in fields]
    return ",".join(f"`{f}" for f in cleaned) if ticked else ",".join(cleaned)


def wechat_bill_csv(
    *,
    mch_id: str,
    bill_date: date,
    trades: Sequence[Trade],
    refunds: Sequence[Refund],
    fee_rate: Decimal,
    bill_type: str = "ALL",
) -> str:
    """The bill's text (before encoding), CRLF lines, ending with CRLF."""
    if bill_type not in WECHAT_BILL_TYPES:
        raise ValueError(f"bill_type must be one of {WECHAT_BILL_TYPES}")
    trades = [t for t in trades if t.merchant_id == mch_id]
    refunds = [r for r in refunds if r.merchant_id == mch_id]
    by_no = {t.trade_no: t for t in trades}
    paid = sorted(
        (t for t in trades if t.paid_at is not None and _day(t.paid_at) == bill_date),
        key=lambda t: (t.paid_at, t.trade_no),
    )
    refunded = sorted(
        (
            r
            for r in refunds
            if r.status == "SUCCESS"
            and r.settled_at is not None
            and _day(r.settled_at) == bill_date
            and r.trade_no in by_no
        ),
        key=lambda r: (r.settled_at, r.refund_no),
    )
    if bill_type == "REFUND":
        paid = []
    if bill_type == "SUCCESS":
        refunded = []
    zero = Money.zero()
    rate = _rate(fee_rate)
    columns = _COLUMNS[bill_type]
    rows: list[list[str]] = []
    for trade in paid:
        assert trade.paid_at is not None
        row = _row(
            trade,
            at=trade.paid_at,
            state="SUCCESS",
            settled=trade.amount,
            refund=None,
            fee=trade.fee,
            rate=rate,
        )
        rows.append([row[name] for name in columns])
    for refund in refunded:
        assert refund.settled_at is not None
        trade = by_no[refund.trade_no]
        # A REFUND bill dates the row by its payment; an ALL bill by the refund.
        at = trade.paid_at if bill_type == "REFUND" and trade.paid_at else refund.settled_at
        row = _row(
            trade,
            at=at,
            state="REFUND",
            settled=zero,
            refund=refund,
            fee=-refund.fee_returned,
            rate=rate,
        )
        rows.append([row[name] for name in columns])
    paid_total = sum((t.amount for t in paid), zero)
    refund_total = sum((r.amount for r in refunded), zero)
    fees = sum((t.fee for t in paid), zero) - sum((r.fee_returned for r in refunded), zero)
    lines = [bill_line(columns, ticked=False)]
    lines += [bill_line(row, ticked=True) for row in rows]
    lines.append(bill_line(WECHAT_BILL_SUMMARY_COLUMNS, ticked=False))
    lines.append(
        bill_line(
            [
                str(len(rows)),
                _yuan(paid_total),
                _yuan(refund_total),
                "0.00",
                _fee(fees),
                _yuan(paid_total),
                _yuan(refund_total),
            ],
            ticked=True,
        )
    )
    return "\r\n".join(lines) + "\r\n"


def _row(
    trade: Trade,
    *,
    at: datetime,
    state: str,
    settled: Money,
    refund: Refund | None,
    fee: Money,
    rate: str,
) -> dict[str, str]:
    """Every column a bill of any type may have, by name."""
    zero = Money.zero(trade.amount.currency)
    return {
        "交易时间": _time(at),
        "公众账号ID": trade.extra.get("appid", ""),
        "商户号": trade.merchant_id,
        "特约商户号": "0",
        "设备号": "",
        "微信订单号": trade.trade_no,
        "商户订单号": trade.out_trade_no,
        "用户标识": trade.buyer_id or "",
        "交易类型": _TRADE_TYPES.get(trade.product, trade.product.upper()),
        "交易状态": state,
        "付款银行": trade.extra.get("bank_type", "OTHERS"),
        "货币种类": trade.amount.currency,
        "应结订单金额": _yuan(settled),
        "代金券金额": "0.00",
        "退款申请时间": _time(refund.created_at) if refund else "",
        "退款成功时间": _time(refund.settled_at) if refund and refund.settled_at else "",
        "微信退款单号": refund.refund_no if refund else "0",
        "商户退款单号": refund.out_refund_no if refund else "0",
        "退款金额": _yuan(refund.amount if refund else zero),
        "充值券退款金额": "0.00",
        "退款类型": "ORIGINAL" if refund else "",
        "退款状态": refund.status if refund else "",
        "商品名称": trade.subject,
        "商户数据包": trade.extra.get("attach", ""),
        "手续费": _fee(fee),
        "费率": rate,
        "订单金额": _yuan(zero if refund else trade.amount),
        "申请退款金额": _yuan(refund.amount if refund else zero),
        "费率备注": "",
    }
