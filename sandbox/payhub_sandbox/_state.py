"""The sandbox's state: trades and refunds, channel-neutral, behind one lock.

Records are frozen dataclasses. Changing a trade means storing a new record in
its place (``dataclasses.replace``), so a view handed out earlier never changes
under its reader and needs no lock to read. Each channel maps the neutral
:class:`TradeState` to its own words (Alipay: ``WAIT_BUYER_PAY``,
``TRADE_SUCCESS``, ``TRADE_CLOSED``, ``TRADE_FINISHED``).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from payhub.money import Money

__all__ = ["BillRewriter", "NoBillFaults", "Refund", "Trade", "TradeState", "TradeStore"]


class TradeState(enum.Enum):
    """Where a trade is, whatever the channel."""

    PENDING = "PENDING"
    """Created, waiting for the buyer to pay."""
    PAID = "PAID"
    """Paid (possibly partly refunded)."""
    CLOSED = "CLOSED"
    """Closed unpaid (timeout, merchant close) or closed by a full refund."""
    FINISHED = "FINISHED"
    """Paid and final: no refund is possible any more."""


@dataclass(frozen=True)
class Trade:
    """One trade at one channel, as the channel would keep it."""

    channel: str
    merchant_id: str
    trade_no: str
    out_trade_no: str
    amount: Money
    subject: str
    state: TradeState
    created_at: datetime
    product: str
    notify_url: str | None = None
    return_url: str | None = None
    buyer_id: str | None = None
    buyer_account: str | None = None
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    close_reason: str | None = None
    refunded: Money = field(default_factory=Money.zero)
    fee: Money = field(default_factory=Money.zero)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def refundable(self) -> Money:
        return self.amount - self.refunded

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "merchant_id": self.merchant_id,
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "amount": self.amount.to_decimal_string(),
            "currency": self.amount.currency,
            "subject": self.subject,
            "state": self.state.value,
            "product": self.product,
            "created_at": self.created_at.isoformat(),
            "paid_at": _iso(self.paid_at),
            "closed_at": _iso(self.closed_at),
            "finished_at": _iso(self.finished_at),
            "expires_at": _iso(self.expires_at),
            "close_reason": self.close_reason,
            "buyer_id": self.buyer_id,
            "refunded": self.refunded.to_decimal_string(),
            "fee": self.fee.to_decimal_string(),
            "notify_url": self.notify_url,
            "return_url": self.return_url,
        }


@dataclass(frozen=True)
class Refund:
    """One accepted refund request of one trade."""

    channel: str
    merchant_id: str
    refund_no: str
    out_refund_no: str
    trade_no: str
    out_trade_no: str
    amount: Money
    refunded_total: Money
    """The trade's cumulative refunded amount once this refund was applied."""
    fee_returned: Money
    """The part of the channel's service fee given back with this refund."""
    created_at: datetime
    reason: str = ""
    full: bool = False
    """Whether this refund brought the cumulative refunds to the trade's total."""
    status: str = "SUCCESS"
    """Channel-neutral progress: ``PROCESSING``, then ``SUCCESS``, ``ABNORMAL`` or
    ``CLOSED`` (a closed refund gives its amount back to the trade's refundable
    amount). Channels whose refunds are immediate (Alipay) store ``SUCCESS``."""
    settled_at: datetime | None = None
    """When the refund left ``PROCESSING``, if it has (None for immediate refunds)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "merchant_id": self.merchant_id,
            "refund_no": self.refund_no,
            "out_refund_no": self.out_refund_no,
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "amount": self.amount.to_decimal_string(),
            "refunded_total": self.refunded_total.to_decimal_string(),
            "fee_returned": self.fee_returned.to_decimal_string(),
            "created_at": self.created_at.isoformat(),
            "reason": self.reason,
            "full": self.full,
            "status": self.status,
            "settled_at": _iso(self.settled_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class BillRewriter(Protocol):
    """Changes the trades and refunds a channel's bill of a day is built from."""

    def apply(
        self,
        channel: str,
        merchant_id: str,
        bill_date: date,
        trades: Sequence[Trade],
        refunds: Sequence[Refund],
    ) -> tuple[list[Trade], list[Refund]]: ...


class NoBillFaults:
    """Bills as the trades are."""

    def apply(
        self,
        channel: str,
        merchant_id: str,
        bill_date: date,
        trades: Sequence[Trade],
        refunds: Sequence[Refund],
    ) -> tuple[list[Trade], list[Refund]]:
        return list(trades), list(refunds)


class TradeStore:
    """Trades and refunds of every channel, indexed the ways channels look them up.

    Every method takes the store's lock (re-entrant), and channel code holds it
    around a read-check-write sequence so two requests never interleave inside one.
    """

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self._trades: dict[str, Trade] = {}
        self._by_out_no: dict[tuple[str, str, str], str] = {}
        self._refunds: list[Refund] = []
        self._by_out_refund_no: dict[tuple[str, str, str, str], Refund] = {}
        #: what changes the trades a bill is built from (the Sandbox sets its
        #: planted differences, ``_bill_faults``, here); by default nothing
        self.bill_faults: BillRewriter = NoBillFaults()

    # -- trades -----------------------------------------------------------

    def add_trade(self, trade: Trade) -> None:
        key = (trade.channel, trade.merchant_id, trade.out_trade_no)
        with self.lock:
            if trade.trade_no in self._trades or key in self._by_out_no:
                raise ValueError("trade already stored")
            self._trades[trade.trade_no] = trade
            self._by_out_no[key] = trade.trade_no

    def replace_trade(self, trade: Trade) -> None:
        with self.lock:
            if trade.trade_no not in self._trades:
                raise KeyError(trade.trade_no)
            self._trades[trade.trade_no] = trade

    def get(self, trade_no: str) -> Trade | None:
        with self.lock:
            return self._trades.get(trade_no)

    def find(
        self,
        channel: str,
        merchant_id: str,
        *,
        trade_no: str | None = None,
        out_trade_no: str | None = None,
    ) -> Trade | None:
        """The merchant's trade by channel trade number (preferred) or merchant order number.

        When both are given they must name the same trade.
        """
        with self.lock:
            found: Trade | None = None
            if trade_no:
                found = self._trades.get(trade_no)
                if found is None or (found.channel, found.merchant_id) != (channel, merchant_id):
                    return None
                if out_trade_no and found.out_trade_no != out_trade_no:
                    return None
                return found
            if out_trade_no:
                number = self._by_out_no.get((channel, merchant_id, out_trade_no))
                found = None if number is None else self._trades[number]
            return found

    def trades(self, channel: str | None = None) -> list[Trade]:
        with self.lock:
            return [t for t in self._trades.values() if channel is None or t.channel == channel]

    def expired(self, channel: str, now: datetime) -> list[Trade]:
        """The channel's unpaid trades whose expiry has passed at ``now``."""
        return [
            t
            for t in self.trades(channel)
            if t.state is TradeState.PENDING and t.expires_at is not None and t.expires_at <= now
        ]

    # -- refunds ----------------------------------------------------------

    def add_refund(self, refund: Refund) -> None:
        key = (refund.channel, refund.merchant_id, refund.trade_no, refund.out_refund_no)
        with self.lock:
            if key in self._by_out_refund_no:
                raise ValueError("refund already stored")
            self._refunds.append(refund)
            self._by_out_refund_no[key] = refund

    def replace_refund(self, refund: Refund) -> None:
        """Store a new record of a refund (same channel, merchant, trade and number)."""
        key = (refund.channel, refund.merchant_id, refund.trade_no, refund.out_refund_no)
        with self.lock:
            old = self._by_out_refund_no.get(key)
            if old is None or old.refund_no != refund.refund_no:
                raise KeyError(refund.refund_no)
            self._refunds[self._refunds.index(old)] = refund
            self._by_out_refund_no[key] = refund

    def find_refund(
        self, channel: str, merchant_id: str, trade_no: str, out_refund_no: str
    ) -> Refund | None:
        with self.lock:
            return self._by_out_refund_no.get((channel, merchant_id, trade_no, out_refund_no))

    def refunds(self, channel: str | None = None) -> list[Refund]:
        with self.lock:
            return [r for r in self._refunds if channel is None or r.channel == channel]
