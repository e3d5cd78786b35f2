"""WeChat Pay refunds: ``POST /v3/refund/domestic/refunds``, the refund query, the
merchant portal's refunds, and their end (``SUCCESS``, ``ABNORMAL``, ``CLOSED``)."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from payhub.money import Money
from payhub_sandbox._errors import InvalidInputError, TradeNotFoundError, TradeStateError
from payhub_sandbox._state import Refund, Trade, TradeState
from payhub_sandbox.wechat._api import (
    Answer,
    Call,
    body_param,
    currency_field,
    fen_field,
    object_field,
    string_field,
    url_field,
)
from payhub_sandbox.wechat._core import CHANNEL, WechatCore
from payhub_sandbox.wechat._merchants import WechatMerchant
from payhub_sandbox.wechat._notifications import REFUND_EVENTS, WechatNotifier
from payhub_sandbox.wechat._orders import WechatOrders
from payhub_sandbox.wechat._wire import WechatFailure, format_time

__all__ = ["RefundOutcome", "WechatRefunds"]

RefundOutcome = Literal["SUCCESS", "ABNORMAL", "CLOSED"]

OUT_REFUND_NO_RE: Final = re.compile(r"[0-9A-Za-z_\-*|@]{1,64}", re.ASCII)


def half_up_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


class WechatRefunds:
    """Refunds of one sandbox; callers hold the core's lock around the API handlers."""

    def __init__(self, core: WechatCore, orders: WechatOrders, notifier: WechatNotifier) -> None:
        self._core = core
        self._orders = orders
        self._notifier = notifier
        self._due: dict[str, datetime] = {}
        self._notify_urls: dict[str, str] = {}

    def find(self, mch_id: str, out_refund_no: str) -> Refund | None:
        for refund in self._core.store.refunds(CHANNEL):
            if refund.merchant_id == mch_id and refund.out_refund_no == out_refund_no:
                return refund
        return None

    def create(self, call: Call) -> Answer:
        data = call.json()
        merchant = call.merchant
        transaction_id = string_field(data, "transaction_id", "", required=False, max_len=32)
        out_trade_no = string_field(data, "out_trade_no", "", required=False, max_len=32)
        if not transaction_id and not out_trade_no:
            raise body_param("/transaction_id", None, "transaction_id和out_trade_no必须二选一")
        out_refund_no = string_field(data, "out_refund_no", "", max_len=64)
        if not OUT_REFUND_NO_RE.fullmatch(out_refund_no):
            raise body_param("/out_refund_no", out_refund_no, "只能是数字、大小写字母_-|*@")
        reason = string_field(data, "reason", "", required=False, max_len=80)
        notify_url = url_field(data, "notify_url", "", required=False)
        funds = string_field(data, "funds_account", "", required=False, max_len=32)
        if funds and funds != "AVAILABLE":
            raise body_param("/funds_account", funds, "仅支持AVAILABLE")
        amount = object_field(data, "amount", "")
        refund_fen = fen_field(amount, "refund", "/amount")
        total_fen = fen_field(amount, "total", "/amount")
        currency = currency_field(amount, "/amount", required=True)
        if transaction_id:
            trade = self._core.store.find(CHANNEL, merchant.mch_id, trade_no=transaction_id)
            if trade is not None and trade.paid_at is None:
                trade = None
            if trade is not None and out_trade_no and trade.out_trade_no != out_trade_no:
                raise WechatFailure("INVALID_REQUEST", "transaction_id与out_trade_no不是同一笔订单")
        else:
            trade = self._core.store.find(CHANNEL, merchant.mch_id, out_trade_no=out_trade_no)
        existing = self.find(merchant.mch_id, out_refund_no)
        if existing is not None:
            if (
                trade is None
                or existing.trade_no != trade.trade_no
                or existing.amount.minor != refund_fen
            ):
                raise WechatFailure(
                    "INVALID_REQUEST", "退款单号out_refund_no已存在，且请求参数与原退款请求不一致"
                )
            return Answer(data=self.refund_json(existing, trade))
        if trade is None:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "订单不存在")
        if trade.state is TradeState.PAID and (
            total_fen != trade.amount.minor or currency != trade.amount.currency
        ):
            raise WechatFailure("INVALID_REQUEST", "订单金额amount.total与原订单金额不一致")
        refund = self._apply_refund(
            merchant,
            trade,
            Money(refund_fen, currency),
            out_refund_no=out_refund_no,
            reason=reason,
            notify_url=notify_url,
        )
        return Answer(data=self.refund_json(refund, self._core.store.get(trade.trade_no)))

    def _apply_refund(
        self,
        merchant: WechatMerchant,
        trade: Trade,
        money: Money,
        *,
        out_refund_no: str,
        reason: str,
        notify_url: str,
    ) -> Refund:
        """Accept a refund (``PROCESSING``) under WeChat's rules, or raise the failure."""
        if trade.state is not TradeState.PAID:
            raise WechatFailure(
                "INVALID_REQUEST",
                "订单未支付，不能退款" if trade.paid_at is None else "订单状态不允许退款",
            )
        if money.currency != trade.amount.currency:
            raise WechatFailure("INVALID_REQUEST", "退款币种与原订单不一致")
        if money > trade.refundable:
            raise WechatFailure(
                "INVALID_REQUEST",
                "订单已全额退款" if trade.refundable.is_zero() else "申请退款金额超过订单可退金额",
            )
        currency = money.currency
        now = self._core.now()
        refunded = trade.refunded + money
        full = refunded == trade.amount
        returned = sum(
            (
                r.fee_returned
                for r in self._core.store.refunds(CHANNEL)
                if r.trade_no == trade.trade_no and r.status != "CLOSED"
            ),
            Money.zero(currency),
        )
        if full:
            fee_back = trade.fee - returned
        else:
            share = half_up_div(trade.fee.minor * money.minor, trade.amount.minor)
            fee_back = Money(share, currency)
        refund = Refund(
            channel=CHANNEL,
            merchant_id=merchant.mch_id,
            refund_no=self._core.number("5030", 11),
            out_refund_no=out_refund_no,
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            amount=money,
            refunded_total=refunded,
            fee_returned=fee_back,
            created_at=now,
            reason=reason,
            full=full,
            status="PROCESSING",
        )
        self._core.store.add_refund(refund)
        changed = replace(trade, refunded=refunded, extra={**trade.extra, "refund_requested": "1"})
        self._core.store.replace_trade(changed)
        delay = timedelta(seconds=merchant.refund_delay / self._core.time_factor)
        self._due[refund.refund_no] = now + delay
        if notify_url:
            self._notify_urls[refund.refund_no] = notify_url
        return refund

    def portal_refund(
        self,
        mch_id: str,
        out_trade_no: str,
        amount: Money,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
        notify_url: str | None = None,
    ) -> Refund:
        """Refund as the merchant platform (商户平台) would: the API's rules, no request.

        ``out_refund_no`` (None: a new one) makes it idempotent."""
        with self._core.lock:
            merchant = self._core.merchant(mch_id)
            trade = self._orders.trade(mch_id, out_trade_no)
            number = out_refund_no or f"PORTAL-{secrets.token_hex(8).upper()}"
            existing = self.find(mch_id, number)
            if existing is not None:
                if existing.trade_no != trade.trade_no or existing.amount != amount:
                    raise InvalidInputError(f"refund {number} exists with another trade or amount")
                return existing
            try:
                return self._apply_refund(
                    merchant,
                    trade,
                    amount,
                    out_refund_no=number,
                    reason=reason,
                    notify_url=notify_url or "",
                )
            except WechatFailure as failure:
                raise TradeStateError(f"{failure.code}: {failure.message}") from None

    def query(self, call: Call) -> Answer:
        refund = self.find(call.merchant.mch_id, call.groups[0])
        if refund is None:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "退款单不存在")
        return Answer(data=self.refund_json(refund, self._core.store.get(refund.trade_no)))

    def refund_json(self, refund: Refund, trade: Trade | None) -> dict[str, Any]:
        total = trade.amount.minor if trade is not None else refund.amount.minor
        data: dict[str, Any] = {
            "refund_id": refund.refund_no,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.trade_no,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
        }
        if refund.status == "SUCCESS" and refund.settled_at is not None:
            data["success_time"] = format_time(refund.settled_at)
        data.update(
            {
                "create_time": format_time(refund.created_at),
                "status": refund.status,
                "funds_account": "AVAILABLE",
                "amount": {
                    "total": total,
                    "refund": refund.amount.minor,
                    "from": [],
                    "payer_total": total,
                    "payer_refund": refund.amount.minor,
                    "settlement_refund": refund.amount.minor,
                    "settlement_total": total,
                    "discount_refund": 0,
                    "currency": refund.amount.currency,
                    "refund_fee": refund.fee_returned.minor,
                },
                "promotion_detail": [],
            }
        )
        return data

    def settle_due_refunds(self) -> list[Refund]:
        """Move every ``PROCESSING`` refund whose delay has passed to ``SUCCESS`` (notified)."""
        now = self._core.now()
        with self._core.lock:
            due = [
                r
                for r in self._core.store.refunds(CHANNEL)
                if r.status == "PROCESSING" and self._due.get(r.refund_no, now) <= now
            ]
            return [self._settle(r, "SUCCESS") for r in due]

    def settle_refund(self, mch_id: str, out_refund_no: str, status: str = "SUCCESS") -> Refund:
        """End a ``PROCESSING`` refund now: ``SUCCESS``, ``ABNORMAL`` or ``CLOSED`` (notified)."""
        if status not in REFUND_EVENTS:
            raise InvalidInputError("status must be SUCCESS, ABNORMAL or CLOSED")
        with self._core.lock:
            self._core.merchant(mch_id)
            refund = self.refund(mch_id, out_refund_no)
            if refund.status != "PROCESSING":
                raise TradeStateError(f"refund {out_refund_no} is {refund.status}, not PROCESSING")
            return self._settle(refund, status)

    def refund(self, mch_id: str, out_refund_no: str) -> Refund:
        with self._core.lock:
            refund = self.find(mch_id, out_refund_no)
        if refund is None:
            raise TradeNotFoundError(f"no WeChat Pay refund {out_refund_no!r} of {mch_id!r}")
        return refund

    def _settle(self, refund: Refund, status: str) -> Refund:
        now = self._core.now()
        settled = replace(refund, status=status, settled_at=now)
        self._core.store.replace_refund(settled)
        self._due.pop(refund.refund_no, None)
        trade = self._core.store.get(refund.trade_no)
        if trade is not None and status == "CLOSED":
            trade = replace(trade, refunded=trade.refunded - refund.amount)
            self._core.store.replace_trade(trade)
        url = self._notify_urls.get(refund.refund_no)
        if url and trade is not None:
            self._notifier.refund(settled, trade, url)
        return settled
