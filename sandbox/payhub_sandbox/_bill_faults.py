"""Planted bill differences: what a day's bill shows that did not happen (or hides what did).

QA teams test reconciliation against bills that disagree with the shop on
purpose. A fault is planted for one channel, merchant and day and changes the
trades and refunds that day's bill is built from, never the trades
themselves (queries still answer the truth):

- ``unknown_trade``: a paid trade the shop never heard of (``out_trade_no``
  and ``amount`` optional);
- ``wrong_fee``: the trade ``out_trade_no`` billed with the fee ``fee``
  (default: one fen more than the real one);
- ``missing_refund``: the refund ``out_refund_no`` left out of the bill;
- ``missing_trade``: the trade ``out_trade_no`` left out of the bill;
- ``duplicate_row``: the trade ``out_trade_no`` billed twice.

The bill's own totals are computed from the changed rows, so the bill still
adds up: reconciliation, not the bill's checksum, must find the difference.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._state import Refund, Trade, TradeState

__all__ = ["BillFault", "BillFaultKind", "BillFaults"]


class BillFaultKind(enum.StrEnum):
    UNKNOWN_TRADE = "unknown_trade"
    WRONG_FEE = "wrong_fee"
    MISSING_REFUND = "missing_refund"
    MISSING_TRADE = "missing_trade"
    DUPLICATE_ROW = "duplicate_row"


@dataclass(frozen=True)
class BillFault:
    channel: str
    merchant_id: str
    bill_date: date
    kind: BillFaultKind
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    amount: Money | None = None
    fee: Money | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "merchant_id": self.merchant_id,
            "bill_date": self.bill_date.isoformat(),
            "kind": self.kind.value,
            "out_trade_no": self.out_trade_no,
            "out_refund_no": self.out_refund_no,
            "amount": None if self.amount is None else self.amount.minor,
            "fee": None if self.fee is None else self.fee.minor,
        }


_NEEDS_TRADE = frozenset(
    {BillFaultKind.WRONG_FEE, BillFaultKind.MISSING_TRADE, BillFaultKind.DUPLICATE_ROW}
)


class BillFaults:
    """The planted differences of every channel's bills (shared by the simulators)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[BillFault] = []

    def plant(
        self,
        channel: str,
        merchant_id: str,
        bill_date: date,
        kind: BillFaultKind | str,
        *,
        out_trade_no: str | None = None,
        out_refund_no: str | None = None,
        amount: Money | None = None,
        fee: Money | None = None,
    ) -> BillFault:
        try:
            kind = BillFaultKind(kind)
        except ValueError:
            raise InvalidInputError(
                f"kind must be one of {', '.join(k.value for k in BillFaultKind)}"
            ) from None
        if not isinstance(bill_date, date) or isinstance(bill_date, datetime):
            raise InvalidInputError("bill_date must be a date")
        if kind in _NEEDS_TRADE and not out_trade_no:
            raise InvalidInputError(f"{kind.value} needs out_trade_no")
        if kind is BillFaultKind.MISSING_REFUND and not out_refund_no:
            raise InvalidInputError("missing_refund needs out_refund_no")
        for money in (amount, fee):
            if money is not None and (not isinstance(money, Money) or money.minor < 0):
                raise InvalidInputError("amount and fee must be non-negative Money")
        fault = BillFault(
            channel, merchant_id, bill_date, kind, out_trade_no, out_refund_no, amount, fee
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def faults(self) -> list[BillFault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def apply(
        self,
        channel: str,
        merchant_id: str,
        bill_date: date,
        trades: Sequence[Trade],
        refunds: Sequence[Refund],
    ) -> tuple[list[Trade], list[Refund]]:
        """The trades and refunds the day's bill is built from, faults applied."""
        out_trades, out_refunds = list(trades), list(refunds)
        with self._lock:
            mine = [
                f
                for f in self._faults
                if (f.channel, f.merchant_id, f.bill_date) == (channel, merchant_id, bill_date)
            ]
        for number, fault in enumerate(mine, start=1):
            if fault.kind is BillFaultKind.UNKNOWN_TRADE:
                out_trades.append(_unknown_trade(fault, number))
            elif fault.kind is BillFaultKind.MISSING_REFUND:
                out_refunds = [r for r in out_refunds if r.out_refund_no != fault.out_refund_no]
            elif fault.kind is BillFaultKind.MISSING_TRADE:
                out_trades = [t for t in out_trades if t.out_trade_no != fault.out_trade_no]
            elif fault.kind is BillFaultKind.DUPLICATE_ROW:
                out_trades += [t for t in out_trades if t.out_trade_no == fault.out_trade_no]
            else:
                out_trades = [
                    replace(t, fee=fault.fee if fault.fee is not None else t.fee + Money(1))
                    if t.out_trade_no == fault.out_trade_no
                    else t
                    for t in out_trades
                ]
        return out_trades, out_refunds


def _unknown_trade(fault: BillFault, number: int) -> Trade:
    at = datetime.combine(fault.bill_date, time(12, 0, number % 60), CHINA_TZ)
    amount = fault.amount if fault.amount is not None else Money(1000)
    stamp = f"{fault.bill_date:%Y%m%d}"
    return Trade(
        channel=fault.channel,
        merchant_id=fault.merchant_id,
        trade_no=f"PLANTED{stamp}{number:08d}",
        out_trade_no=fault.out_trade_no or f"UNKNOWN-{stamp}-{number}",
        amount=amount,
        subject="planted: a trade the shop never heard of",
        state=TradeState.PAID,
        created_at=at,
        product="native",
        paid_at=at,
        fee=fault.fee if fault.fee is not None else Money.zero(amount.currency),
    )
