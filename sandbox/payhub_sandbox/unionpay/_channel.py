"""``sandbox.unionpay``: the common verbs (see :mod:`payhub_sandbox._channel`) for UnionPay.

UnionPay (ACP) has no close and the sandbox serves no UnionPay bill file: those
two verbs raise :class:`~payhub_sandbox.UnsupportedVerbError`.
"""

from __future__ import annotations

from datetime import date

from payhub.money import Money
from payhub_sandbox._channel import SandboxChannel, parse_amount
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.unionpay._simulator import UnionPaySimulator

__all__ = ["UnionPayChannel"]


class UnionPayChannel(SandboxChannel[UnionPaySimulator]):
    """UnionPay's verbs; ``merchant_id`` is the ``merId``, ``out_trade_no`` the consume's
    ``orderId``."""

    name = "unionpay"
    unsupported = frozenset({"close"})

    def pay(self, merchant_id: str, out_trade_no: str, *, buyer_id: str | None = None) -> Trade:
        """The cardholder pays the consume; its notification is scheduled. ``buyer_id`` is
        not used: UnionPay shows the merchant a masked card number only."""
        return self._engine.pay(self.trade(merchant_id, out_trade_no))

    def fail(
        self, code: str | None = None, *, times: int = 1, merchant_id: str | None = None
    ) -> None:
        """``/gateway/api/`` answers its signed "system busy" (``03`` 交易通讯超时 or ``01``)
        to the next ``times`` requests."""
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
        """A refund (``04``); ``out_refund_no`` is its own ``orderId`` (8-40 letters or
        digits). ``reason`` is not sent: ACP refunds carry none."""
        self.trade(merchant_id, out_trade_no)
        return self._engine.portal_refund(
            merchant_id, out_trade_no, parse_amount(amount), out_refund_no=out_refund_no
        )

    def close(self, merchant_id: str, out_trade_no: str) -> Trade:
        """Unsupported: ACP has no close."""
        raise self._unsupported(
            "close",
            "an unpaid consume expires at its payTimeout (sandbox.close_expired()); "
            "a paid one is refunded (04) or undone (31)",
        )

    def bill(self, merchant_id: str, bill_date: date) -> bytes:
        """The ZM reconciliation file of a clearing day (as in ``fileTransfer``'s zip,
        planted differences applied), whatever the time."""
        return self._engine.zm_bill(merchant_id, bill_date)

    def set_cert_fault(self, kind: str | None) -> str | None:
        """Sign answers and notifications with a faulty certificate from now on (see
        :meth:`UnionPaySimulator.set_fault`); None goes back to the good one."""
        return self._engine.set_fault(kind)
