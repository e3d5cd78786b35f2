"""``sandbox.wechat``: the common verbs (see :mod:`payhub_sandbox._channel`) for WeChat Pay."""

from __future__ import annotations

from datetime import date

from payhub.money import Money
from payhub_sandbox._channel import SandboxChannel, parse_amount
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.wechat._simulator import RefundOutcome, WechatSimulator

__all__ = ["WechatChannel"]


class WechatChannel(SandboxChannel[WechatSimulator]):
    """WeChat Pay's verbs; ``merchant_id`` is the ``mchid``. Every verb is supported."""

    name = "wechat"

    def pay(self, merchant_id: str, out_trade_no: str, *, buyer_id: str | None = None) -> Trade:
        """The buyer (``buyer_id`` is the ``openid``) pays: ``NOTPAY`` → ``SUCCESS``;
        ``TRANSACTION.SUCCESS`` is scheduled."""
        return self._engine.pay(self.trade(merchant_id, out_trade_no), openid=buyer_id)

    def fail(
        self,
        code: str | None = None,
        *,
        times: int = 1,
        merchant_id: str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` authenticated ``/v3/`` requests (to paths starting
        with ``path``) with the WeChat error ``code`` (default ``SYSTEM_ERROR``) and its
        HTTP status (``SYSTEM_ERROR`` 500, ``FREQUENCY_LIMITED`` 429, ``ORDERPAID`` 403,
        …), signed."""
        self._engine.add_fault(
            code or "SYSTEM_ERROR", times=times, path=path, mch_id=merchant_id, message=message
        )

    def refund(
        self,
        merchant_id: str,
        out_trade_no: str,
        amount: Money | str,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
        notify_url: str | None = None,
    ) -> Refund:
        """``PROCESSING`` until it settles (:meth:`settle_refund`, or the merchant's
        ``refund_delay``); ``REFUND.*`` is notified only with a ``notify_url``."""
        return self._engine.portal_refund(
            merchant_id,
            out_trade_no,
            parse_amount(amount),
            out_refund_no=out_refund_no,
            reason=reason,
            notify_url=notify_url,
        )

    def settle_refund(
        self, merchant_id: str, out_refund_no: str, status: RefundOutcome | str = "SUCCESS"
    ) -> Refund:
        """End a ``PROCESSING`` refund now as ``SUCCESS``, ``ABNORMAL`` or ``CLOSED``
        (notified with ``REFUND.*`` if the refund had a ``notify_url``). WeChat only."""
        return self._engine.settle_refund(merchant_id, out_refund_no, status)

    def close(self, merchant_id: str, out_trade_no: str) -> Trade:
        """Close an unpaid trade (WeChat notifies nothing)."""
        return self._engine.close(self.trade(merchant_id, out_trade_no))

    def bill(self, merchant_id: str, bill_date: date, bill_type: str = "ALL") -> bytes:
        """A day's trade bill file, uncompressed, as its download serves it."""
        return self._engine.bill(merchant_id, bill_date, bill_type)

    def fundflow_bill(
        self, merchant_id: str, bill_date: date, account_type: str = "BASIC"
    ) -> bytes:
        """A day's fund-flow bill (资金账单) of the ``BASIC``, ``OPERATION`` or ``FEES``
        account, uncompressed, as its download serves it. WeChat only."""
        return self._engine.fundflow_bill(merchant_id, bill_date, account_type)
