"""Alipay refunds: ``alipay.trade.refund``, ``alipay.trade.fastpay.refund.query``
and refunds made from the merchant's portal."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeStateError,
)
from payhub_sandbox._state import Refund, Trade, TradeState
from payhub_sandbox.alipay._answers import (
    OUT_NO_RE,
    GatewayRequest,
    bad_param,
    biz_amount,
    biz_text,
    business_error,
    query_options,
)
from payhub_sandbox.alipay._merchants import (
    CHANNEL,
    alipay_trade_status,
)
from payhub_sandbox.alipay._trades import AlipayTrades
from payhub_sandbox.alipay._wire import (
    amount_text,
    format_time,
)

__all__ = ["AlipayRefunds"]


class AlipayRefunds(AlipayTrades):
    """Refunds, with the gateway's rules, notified like Alipay's."""

    def _refund(self, request: GatewayRequest) -> dict[str, Any]:
        trade = self._locate(request)
        amount = biz_amount(request.biz, "refund_amount")
        if amount.is_zero():
            raise bad_param("refund_amount必须大于0")
        # Without a request number Alipay files the refund under the order number,
        # and only a refund of the whole amount may go without one.
        given = biz_text(request.biz, "out_request_no")
        out_request_no = given or trade.out_trade_no
        if len(out_request_no) > 64:
            raise bad_param("out_request_no不能超过64个字符")
        earlier = self._store.find_refund(
            CHANNEL, trade.merchant_id, trade.trade_no, out_request_no
        )
        if earlier is not None and (given or amount == trade.amount):
            if earlier.amount != amount:
                raise business_error(
                    "ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求: 该退款请求号已用于另一金额"
                )
            return self._refund_answer(trade, earlier, fund_change=False)
        if trade.state is TradeState.PENDING:
            raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.state is TradeState.FINISHED:
            raise business_error("ACQ.TRADE_HAS_FINISHED", "交易已完结")
        if trade.state is TradeState.CLOSED and trade.close_reason != "refunded":
            raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if not given and amount != trade.amount:
            raise business_error("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与订单金额不一致")
        if amount > trade.refundable:
            # Alipay's refusal of an over-refund carries the trade's refund totals.
            raise business_error(
                "ACQ.REASON_TRADE_REFUND_FEE_ERR",
                "退款金额无效",
                {
                    "out_trade_no": trade.out_trade_no,
                    "refund_fee": amount_text(trade.refunded),
                    "send_back_fee": "0.00",
                },
            )
        refund = self._apply_refund(
            trade, amount, out_request_no, biz_text(request.biz, "refund_reason")
        )
        updated = self._store.get(trade.trade_no)
        assert updated is not None
        return self._refund_answer(updated, refund, fund_change=True)

    def _apply_refund(
        self, trade: Trade, amount: Money, out_request_no: str, reason: str
    ) -> Refund:
        now = self._clock.now()
        merchant = self.merchant(trade.merchant_id)
        total = trade.refunded + amount
        full = total == trade.amount
        earlier_fees = sum(
            (
                r.fee_returned.minor
                for r in self._store.refunds(CHANNEL)
                if r.trade_no == trade.trade_no
            ),
            0,
        )
        if full:
            fee_back = trade.fee.minor - earlier_fees
        else:
            fee_back = min(
                _half_up_div(trade.fee.minor * amount.minor, trade.amount.minor),
                trade.fee.minor - earlier_fees,
            )
        self._serial += 1
        refund = Refund(
            channel=CHANNEL,
            merchant_id=trade.merchant_id,
            refund_no=f"{now.astimezone(CHINA_TZ):%Y%m%d}RF{self._prefix}{self._serial:011d}",
            out_refund_no=out_request_no,
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            amount=amount,
            refunded_total=total,
            fee_returned=Money(fee_back, amount.currency),
            created_at=now,
            reason=reason,
            full=full,
        )
        self._store.add_refund(refund)
        changed = replace(trade, refunded=total)
        if full:
            changed = replace(
                changed, state=TradeState.CLOSED, closed_at=now, close_reason="refunded"
            )
        self._store.replace_trade(changed)
        self._notify(changed, merchant, refund=refund)
        return refund

    def _refund_answer(self, trade: Trade, refund: Refund, *, fund_change: bool) -> dict[str, Any]:
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_account,
            "fund_change": "Y" if fund_change else "N",
            "refund_fee": amount_text(refund.refunded_total),
            "gmt_refund_pay": format_time(refund.created_at),
            "buyer_user_id": trade.buyer_id,
            "send_back_fee": amount_text(refund.amount),
        }

    def _refund_query(self, request: GatewayRequest) -> dict[str, Any]:
        out_request_no = biz_text(request.biz, "out_request_no")
        if not out_request_no:
            raise bad_param("out_request_no不能为空")
        trade = self._locate(request)
        refund = self._store.find_refund(CHANNEL, trade.merchant_id, trade.trade_no, out_request_no)
        if refund is None:
            # Alipay answers a refund it does not know with a bare success.
            return {}
        fields = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": refund.out_refund_no,
            "total_amount": amount_text(trade.amount),
            "refund_amount": amount_text(refund.amount),
            "refund_status": "REFUND_SUCCESS",
        }
        options = query_options(request.biz)
        if "gmt_refund_pay" in options:
            fields["gmt_refund_pay"] = format_time(refund.created_at)
        if "send_back_fee" in options or "refund_detail_item_list" in options:
            fields["send_back_fee"] = amount_text(refund.amount)
        return fields

    def refund(
        self, trade: Trade, amount: Money, *, out_request_no: str | None = None, reason: str = ""
    ) -> Refund:
        """A refund made outside the gateway (the merchant's portal: the console, the
        control API), with the gateway's rules, notified like any refund.

        ``out_request_no`` is the idempotency key (None: a new one); the same number
        and amount returns the earlier refund unchanged.
        """
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if amount.is_zero() or amount.minor < 0:
                raise InvalidInputError("the refund amount must be positive")
            if out_request_no is None:
                done = sum(1 for r in self._store.refunds(CHANNEL) if r.trade_no == trade.trade_no)
                out_request_no = f"R{done + 1}-{trade.trade_no}"
            if not OUT_NO_RE.fullmatch(out_request_no):
                raise InvalidInputError("out_request_no: 1-64 of A-Z a-z 0-9 _ -")
            earlier = self._store.find_refund(
                CHANNEL, trade.merchant_id, trade.trade_no, out_request_no
            )
            if earlier is not None:
                if earlier.amount != amount:
                    raise InvalidInputError(
                        f"refund {out_request_no} was made for another amount "
                        "(ACQ.DISCORDANT_REPEAT_REQUEST)"
                    )
                return earlier
            refundable = trade.state is TradeState.PAID or (
                trade.state is TradeState.CLOSED and trade.close_reason == "refunded"
            )
            if not refundable:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}: it cannot be refunded"
                )
            if amount > trade.refundable:
                raise TradeStateError(
                    f"refund of {amount.to_decimal_string()} exceeds the refundable "
                    f"{trade.refundable.to_decimal_string()} (ACQ.REASON_TRADE_REFUND_FEE_ERR)"
                )
            return self._apply_refund(trade, amount, out_request_no, reason)


def _half_up_div(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)``, halves up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)
