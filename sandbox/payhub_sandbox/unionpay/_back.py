"""Refunds (``04``) and undos (``31``) on ``backTransReq.do``, and refunds made
from the merchant's portal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeStateError,
)
from payhub_sandbox._state import Refund, Trade, TradeState
from payhub_sandbox.unionpay._answers import (
    CHANNEL,
    ORDER_ID_RE,
    AcpFailure,
    Txn,
    UnionPayMerchant,
)
from payhub_sandbox.unionpay._consume import UnionPayConsumes
from payhub_sandbox.unionpay._wire import (
    amount_text,
    parse_txn_amt,
    settle_date,
)

__all__ = ["UnionPayBacks"]


class UnionPayBacks(UnionPayConsumes):
    """Refunds and undos."""

    def _back(self, fields: Mapping[str, str], merchant: UnionPayMerchant) -> dict[str, str]:
        order_id = fields["orderId"]
        if (merchant.mer_id, order_id) in self._txns:
            raise AcpFailure("12", "orderId已被使用")
        trade = self._store.get(fields["origQryId"])
        if trade is None or trade.channel != CHANNEL or trade.merchant_id != merchant.mer_id:
            raise AcpFailure("35", "origQryId")
        if trade.paid_at is None:
            raise AcpFailure("35", "原交易未成功")
        if trade.close_reason == "undone":
            raise AcpFailure("35", "原交易已撤销")
        amount = parse_txn_amt(fields["txnAmt"])
        assert amount is not None  # checked
        undo = fields["txnType"] == "31"
        now = self._clock.now()
        if undo:
            if not trade.refunded.is_zero():
                raise AcpFailure("35", "原交易已退货")
            if amount != trade.amount:
                raise AcpFailure("36", "撤销金额须等于原交易金额")
            if settle_date(trade.paid_at) != settle_date(now):
                raise AcpFailure("39", "只能撤销当日（23:00前）的交易")
        elif amount > trade.refundable:
            raise AcpFailure("36", "退货金额超过原交易可退金额")
        txn = self._apply_back(trade, fields, amount, undo=undo, now=now)
        return {
            "queryId": txn.query_id,
            "origQryId": trade.trade_no,
            "txnAmt": fields["txnAmt"],
        }

    def _apply_back(
        self,
        trade: Trade,
        fields: Mapping[str, str],
        amount: Money,
        *,
        undo: bool,
        now: datetime,
    ) -> Txn:
        query_id = self._new_query_id(now)
        total = trade.refunded + amount
        full = total == trade.amount
        refund = Refund(
            channel=CHANNEL,
            merchant_id=trade.merchant_id,
            refund_no=query_id,
            out_refund_no=fields["orderId"],
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            amount=amount,
            refunded_total=total,
            fee_returned=Money.zero(amount.currency),
            created_at=now,
            reason="undo" if undo else "refund",
            full=full,
        )
        self._store.add_refund(refund)
        changed = replace(trade, refunded=total)
        if full:
            changed = replace(
                changed,
                state=TradeState.CLOSED,
                closed_at=now,
                close_reason="undone" if undo else "refunded",
            )
        self._store.replace_trade(changed)
        local = now.astimezone(CHINA_TZ)
        wire = {
            "merId": trade.merchant_id,
            "orderId": fields["orderId"],
            "txnTime": fields["txnTime"],
            "txnType": fields["txnType"],
            "txnSubType": fields["txnSubType"],
            "bizType": fields["bizType"],
            "accessType": fields["accessType"],
            "currencyCode": "156",
            "txnAmt": fields["txnAmt"],
            "queryId": query_id,
            "origQryId": trade.trade_no,
            "traceNo": f"{self._next() % 10**6:06d}",
            "traceTime": f"{local:%m%d%H%M%S}",
            "settleAmt": fields["txnAmt"],
            "settleCurrencyCode": "156",
            "settleDate": f"{settle_date(now):%m%d}",
            "reqReserved": fields.get("reqReserved", ""),
        }
        txn = Txn("undo" if undo else "refund", fields["txnTime"], trade.trade_no, query_id, wire)
        self._txns[(trade.merchant_id, fields["orderId"])] = txn
        self._notify(
            wire,
            url=fields["backUrl"],
            encoding=fields["encoding"],
            kind=f"{fields['txnType']} {'undo' if undo else 'refund'}",
            trade=changed,
        )
        return txn

    def portal_refund(
        self, mer_id: str, order_id: str, amount: Money, *, out_refund_no: str | None = None
    ) -> Refund:
        """A refund (``04``) made outside the gateway (the merchant's portal), with the
        gateway's rules, notified to the consume's ``backUrl``. ``out_refund_no`` is the
        refund's own ``orderId`` (None: a new one); the same one and amount returns the
        earlier refund unchanged."""
        with self._lock:
            self.merchant(mer_id)
            trade = self.trade(mer_id, order_id)
            if amount.is_zero() or amount.minor < 0:
                raise InvalidInputError("the refund amount must be positive")
            if out_refund_no is None:
                done = sum(1 for r in self._store.refunds(CHANNEL) if r.trade_no == trade.trade_no)
                out_refund_no = f"R{done + 1:02d}{trade.trade_no}"[:40]
            if ORDER_ID_RE.fullmatch(out_refund_no) is None:
                raise InvalidInputError("out_refund_no: orderId须为8-40位字母或数字")
            earlier = self._store.find_refund(CHANNEL, mer_id, trade.trade_no, out_refund_no)
            if earlier is not None:
                if earlier.amount != amount:
                    raise InvalidInputError(f"refund {out_refund_no} was made for another amount")
                return earlier
            fields = {
                "orderId": out_refund_no,
                "origQryId": trade.trade_no,
                "txnTime": f"{self._clock.now().astimezone(CHINA_TZ):%Y%m%d%H%M%S}",
                "txnType": "04",
                "txnSubType": "00",
                "bizType": "000201",
                "accessType": "0",
                "txnAmt": amount_text(amount),
                "backUrl": trade.notify_url or "",
                "encoding": trade.extra.get("encoding", "UTF-8"),
            }
            try:
                txn = self._back(fields, self.merchant(mer_id))
            except AcpFailure as exc:
                raise TradeStateError(f"UnionPay refuses the refund: {exc.message}") from None
            found = self._store.find_refund(CHANNEL, mer_id, trade.trade_no, out_refund_no)
            assert found is not None, txn  # just added
            return found
