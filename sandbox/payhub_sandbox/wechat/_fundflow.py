"""WeChat Pay's daily fund-flow bill (资金账单, ``GET /v3/bill/fundflowbill``), as a CSV file.

Shaped after a real basic-account bill (``tests/fixtures/wechat/``,
``fundflowbill_basic_2021-02-01_gunsluo.csv.gz``): an 11-column header (half-width
parentheses in ``收支金额(元)`` and ``账户结余(元)``), one backtick-prefixed row
per movement of the account, then ``资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额``
and its row (counts as integers, amounts with two decimals)::

    记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),...
    `2021-02-01 13:54:01,`50300806962021020105978994968,`4200000920202101197964319284,`退款,...
    资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额
    `3,`1,`0.01,`2,`0.02

A refund is a ``退款/退款/支出`` row when it succeeds: the refund number, the
payment's transaction id as the flow number, ``<mchid>API`` as the applicant, the
note ``退款总金额X元;含手续费Y元`` and the refund's ``out_refund_no`` as the
voucher, as in the real bill; what leaves the account is the refund less the fee
given back. A payment is a ``交易/交易/收入`` row of its amount less the fee when
it is paid (no published sample shows one: its note is empty, its voucher the
``out_trade_no``). ``账户结余`` is the running balance of every movement the
sandbox has seen. Only the ``BASIC`` account moves; ``OPERATION`` and ``FEES``
bills are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.wechat._bills import bill_line

__all__ = [
    "WECHAT_ACCOUNT_TYPES",
    "WECHAT_FUNDFLOW_COLUMNS",
    "WECHAT_FUNDFLOW_SUMMARY_COLUMNS",
    "wechat_fundflow_csv",
]

#: The 11 columns of a fund-flow bill, in order.
WECHAT_FUNDFLOW_COLUMNS: Final = (
    "记账时间",
    "微信支付业务单号",
    "资金流水单号",
    "业务名称",
    "业务类型",
    "收支类型",
    "收支金额(元)",
    "账户结余(元)",
    "资金变更提交申请人",
    "备注",
    "业务凭证号",
)

WECHAT_FUNDFLOW_SUMMARY_COLUMNS: Final = (
    "资金流水总笔数",
    "收入笔数",
    "收入金额",
    "支出笔数",
    "支出金额",
)

#: ``account_type`` values: the basic, operation and fees accounts.
WECHAT_ACCOUNT_TYPES: Final = ("BASIC", "OPERATION", "FEES")


@dataclass(frozen=True)
class _Flow:
    at: datetime
    number: str
    flow_no: str
    kind: str
    income: bool
    amount: Money
    applicant: str
    note: str
    voucher: str


def _flows(mch_id: str, trades: Sequence[Trade], refunds: Sequence[Refund]) -> list[_Flow]:
    by_no = {t.trade_no: t for t in trades if t.merchant_id == mch_id}
    found: list[_Flow] = []
    for trade in by_no.values():
        if trade.paid_at is not None:
            found.append(
                _Flow(
                    at=trade.paid_at,
                    number=trade.trade_no,
                    flow_no=trade.trade_no,
                    kind="交易",
                    income=True,
                    amount=trade.amount - trade.fee,
                    applicant="system",
                    note="",
                    voucher=trade.out_trade_no,
                )
            )
    for refund in refunds:
        if (
            refund.merchant_id != mch_id
            or refund.status != "SUCCESS"
            or refund.settled_at is None
            or refund.trade_no not in by_no
        ):
            continue
        total = refund.amount.to_decimal_string()
        fee = refund.fee_returned.to_decimal_string()
        found.append(
            _Flow(
                at=refund.settled_at,
                number=refund.refund_no,
                flow_no=refund.trade_no,
                kind="退款",
                income=False,
                amount=refund.amount - refund.fee_returned,
                applicant=f"{mch_id}API",
                note=f"退款总金额{total}元;含手续费{fee}元",
                voucher=refund.out_refund_no,
            )
        )
    return sorted(found, key=lambda f: (f.at, f.number))


def wechat_fundflow_csv(
    *,
    mch_id: str,
    bill_date: date,
    trades: Sequence[Trade],
    refunds: Sequence[Refund],
    account_type: str = "BASIC",
) -> tuple[str, int]:
    """The bill's text (CRLF lines, ending with CRLF) and its number of rows."""
    if account_type not in WECHAT_ACCOUNT_TYPES:
        raise ValueError(f"account_type must be one of {WECHAT_ACCOUNT_TYPES}")
    flows = _flows(mch_id, trades, refunds) if account_type == "BASIC" else []
    zero = Money.zero()
    balance = zero
    rows: list[list[str]] = []
    totals = [zero, zero]
    counts = [0, 0]
    for flow in flows:
        balance = balance + flow.amount if flow.income else balance - flow.amount
        if flow.at.astimezone(CHINA_TZ).date() != bill_date:
            continue
        side = 0 if flow.income else 1
        counts[side] += 1
        totals[side] = totals[side] + flow.amount
        rows.append(
            [
                f"{flow.at.astimezone(CHINA_TZ):%Y-%m-%d %H:%M:%S}",
                flow.number,
                flow.flow_no,
                flow.kind,
                flow.kind,
                "收入" if flow.income else "支出",
                flow.amount.to_decimal_string(),
                balance.to_decimal_string(),
                flow.applicant,
                flow.note,
                flow.voucher,
            ]
        )
    lines = [bill_line(WECHAT_FUNDFLOW_COLUMNS, ticked=False)]
    lines += [bill_line(row, ticked=True) for row in rows]
    lines.append(bill_line(WECHAT_FUNDFLOW_SUMMARY_COLUMNS, ticked=False))
    summary = [
        str(len(rows)),
        str(counts[0]),
        totals[0].to_decimal_string(),
        str(counts[1]),
        totals[1].to_decimal_string(),
    ]
    lines.append(bill_line(summary, ticked=True))
    return "\r\n".join(lines) + "\r\n", len(rows)
