"""The merchant account's movements (账务明细), as ``alipay.data.bill.accountlog.query``
answers them, built from the same trades and refunds as the day's trade bill.

Each paid trade is its money coming in (``type`` ``交易``, ``direction``
``收入``, ``trans_amount`` positive) and, where Alipay kept a fee, the fee
going out apart (``收费``, ``支出``, negative) with the same
``alipay_order_no`` and ``merchant_order_no`` at the same ``trans_dt``; each
refund is its money going out (``退款``, ``支出``, with
``merchant_out_refund_no``) and the fee given back (``收费``, ``收入``).
Field names, the string types, the sign rule of ``direction`` and the paging
fields (``page_no``, ``page_size`` 1000-2000, ``total_size``,
``detail_list`` left out when empty) are those of the official SDKs'
``AccountLogItemResult`` and ``AlipayDataBillAccountlogQueryResponseModel``
(alipay/alipay-sdk-java-all, alipay/alipay-sdk-php-all ``v3``). Which
``type`` a fee and a returned fee carry is not published: ``收费`` is the
sandbox's choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._state import Refund, Trade

__all__ = ["PAGE_SIZE_RANGE", "account_log_items"]

#: ``page_size``: 1000 to 2000 (2000 when not asked).
PAGE_SIZE_RANGE: Final = (1000, 2000)
_INCOME, _EXPENSE = "收入", "支出"


def _signed(value: Money) -> str:
    return value.to_decimal_string()


def account_log_items(
    *,
    trades: Sequence[Trade],
    refunds: Sequence[Refund],
    start: datetime,
    end: datetime,
) -> list[dict[str, str]]:
    """The movements booked in ``[start, end)``, oldest first, each an
    ``AccountLogItemResult`` (strings only)."""
    by_no = {t.trade_no: t for t in trades}
    moves: list[tuple[datetime, int, dict[str, str], Money]] = []

    def add(at: datetime, fields: dict[str, str], amount: Money) -> None:
        moves.append((at, len(moves), fields, amount))

    for trade in trades:
        if trade.paid_at is None or not start <= trade.paid_at < end:
            continue
        common = {
            "alipay_order_no": trade.trade_no,
            "merchant_order_no": trade.out_trade_no,
            "biz_orig_no": trade.trade_no,
            "other_account": trade.buyer_account or "",
            "bill_source": "开放平台",
        }
        add(trade.paid_at, {**common, "type": "交易", "biz_desc": "交易付款"}, trade.amount)
        if trade.fee.minor:
            add(trade.paid_at, {**common, "type": "收费", "biz_desc": "交易服务费"}, -trade.fee)
    for refund in refunds:
        paid = by_no.get(refund.trade_no)
        if paid is None or not start <= refund.created_at < end:
            continue
        common = {
            "alipay_order_no": paid.trade_no,
            "merchant_order_no": paid.out_trade_no,
            "merchant_out_refund_no": refund.out_refund_no,
            "biz_orig_no": refund.refund_no,
            "other_account": paid.buyer_account or "",
            "bill_source": "开放平台",
        }
        add(refund.created_at, {**common, "type": "退款", "biz_desc": "交易退款"}, -refund.amount)
        if refund.fee_returned.minor:
            add(
                refund.created_at,
                {**common, "type": "收费", "biz_desc": "交易退款退服务费"},
                refund.fee_returned,
            )
    moves.sort(key=lambda move: (move[0], move[1]))
    items: list[dict[str, str]] = []
    balance = Money.zero("CNY")
    stamp = f"{start.astimezone(CHINA_TZ):%Y%m%d}"
    for number, (at, _, fields, amount) in enumerate(moves, start=1):
        balance += amount
        items.append(
            {
                "account_log_id": f"{stamp}{number:011d}",
                "trans_dt": f"{at.astimezone(CHINA_TZ):%Y-%m-%d %H:%M:%S}",
                "trans_amount": _signed(amount),
                "direction": _INCOME if amount.minor >= 0 else _EXPENSE,
                "balance": _signed(balance),
                **fields,
            }
        )
    return items
