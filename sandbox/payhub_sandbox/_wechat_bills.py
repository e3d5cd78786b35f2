"""WeChat Pay's daily trade bill (``GET /v3/bill/tradebill``), as a CSV file.

UTF-8 (with a BOM unless the merchant turned it off), CRLF lines. The header
rows are plain; every field of a data row is prefixed with a backtick (so
spreadsheet programs keep ids as text)::

    交易时间,公众账号ID,商户号,...,费率备注
    `2024-03-01 10:00:05,`wx...,`1900000001,...
    总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
    `2,`100.00,`30.00,`0.00,`0.42,`100.00,`30.00

A payment is a ``SUCCESS`` row on the day (Asia/Shanghai) it was paid; a
refund is a ``REFUND`` row on the day it succeeded, with a negative fee (the
part of the service fee given back).
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


def _rate(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.01'))}%"


def _line(fields: Iterable[str], *, ticked: bool) -> str:
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
    rows: list[list[str]] = []
    for trade in paid:
        assert trade.paid_at is not None
        rows.append(
            _row(
                trade,
                at=trade.paid_at,
                state="SUCCESS",
                settled=trade.amount,
                refund=None,
                fee=trade.fee,
                rate=rate,
            )
        )
    for refund in refunded:
        assert refund.settled_at is not None
        rows.append(
            _row(
                by_no[refund.trade_no],
                at=refund.settled_at,
                state="REFUND",
                settled=zero,
                refund=refund,
                fee=-refund.fee_returned,
                rate=rate,
            )
        )
    paid_total = sum((t.amount for t in paid), zero)
    refund_total = sum((r.amount for r in refunded), zero)
    fees = sum((t.fee for t in paid), zero) - sum((r.fee_returned for r in refunded), zero)
    lines = [_line(WECHAT_BILL_COLUMNS, ticked=False)]
    lines += [_line(row, ticked=True) for row in rows]
    lines.append(_line(WECHAT_BILL_SUMMARY_COLUMNS, ticked=False))
    lines.append(
        _line(
            [
                str(len(rows)),
                _yuan(paid_total),
                _yuan(refund_total),
                "0.00",
                _yuan(fees),
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
) -> list[str]:
    zero = Money.zero(trade.amount.currency)
    return [
        _time(at),
        trade.extra.get("appid", ""),
        trade.merchant_id,
        "0",
        "",
        trade.trade_no,
        trade.out_trade_no,
        trade.buyer_id or "",
        _TRADE_TYPES.get(trade.product, trade.product.upper()),
        state,
        trade.extra.get("bank_type", "OTHERS"),
        trade.amount.currency,
        _yuan(settled),
        "0.00",
        refund.refund_no if refund else "0",
        refund.out_refund_no if refund else "0",
        _yuan(refund.amount if refund else zero),
        "0.00",
        "ORIGINAL" if refund else "",
        refund.status if refund else "",
        trade.subject,
        trade.extra.get("attach", ""),
        _yuan(fee),
        rate,
        _yuan(zero if refund else trade.amount),
        _yuan(refund.amount if refund else zero),
        "",
    ]
