"""``sandbox.alipay``: the common verbs (see :mod:`payhub_sandbox._channel`) for Alipay."""

from __future__ import annotations

from datetime import date
from typing import Literal

from payhub.money import Money
from payhub_sandbox._channel import SandboxChannel, parse_amount
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.alipay._simulator import DEFAULT_BUYER_ID, AlipaySimulator

__all__ = ["AlipayChannel"]


class AlipayChannel(SandboxChannel[AlipaySimulator]):
    """Alipay's verbs; ``merchant_id`` is the ``app_id``. Every verb is supported."""

    name = "alipay"

    def pay(self, merchant_id: str, out_trade_no: str, *, buyer_id: str | None = None) -> Trade:
        """``WAIT_BUYER_PAY`` → ``TRADE_SUCCESS``; the notification is scheduled."""
        trade = self.trade(merchant_id, out_trade_no)
        return self._engine.pay(trade, buyer_id=buyer_id or DEFAULT_BUYER_ID)

    def scan(self, merchant_id: str, out_trade_no: str) -> Trade:
        """The buyer scans a precreated QR code (as opening its cashier does): until
        then ``alipay.trade.query`` answers ``ACQ.TRADE_NOT_EXIST`` for it, as Alipay
        does (unless the sandbox was made with ``alipay_unscanned_query_waits``)."""
        return self._engine.scan(self.trade(merchant_id, out_trade_no))

    def finish(self, merchant_id: str, out_trade_no: str) -> Trade:
        """``TRADE_SUCCESS`` → ``TRADE_FINISHED``, notified (Alipay only)."""
        return self._engine.finish(self.trade(merchant_id, out_trade_no))

    def fail(
        self, code: str | None = None, *, times: int = 1, merchant_id: str | None = None
    ) -> None:
        """``gateway.do`` answers its signed "system busy" (``20000`` isp.unknow-error or
        ``40004`` ACQ.SYSTEM_ERROR) to the next ``times`` calls."""
        self._busy(code, times, merchant_id)

    def refund(
        self,
        merchant_id: str,
        out_trade_no: str,
        amount: Money | str,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
    ) -> Refund:
        """``out_refund_no`` is Alipay's ``out_request_no``."""
        trade = self.trade(merchant_id, out_trade_no)
        return self._engine.refund(
            trade, parse_amount(amount), out_request_no=out_refund_no, reason=reason
        )

    def close(
        self,
        merchant_id: str,
        out_trade_no: str,
        *,
        reason: Literal["timeout", "merchant"] = "timeout",
    ) -> Trade:
        """Close as a timeout would (notified with ``notify_on_close``) or as the merchant."""
        return self._engine.close(self.trade(merchant_id, out_trade_no), reason=reason)

    def bill(self, merchant_id: str, bill_date: date) -> bytes:
        """The day's bill zip, as its download link serves it."""
        return self._engine.bill(merchant_id, bill_date)[1]
