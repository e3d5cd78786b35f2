"""Alipay trades: creating them (page, wap, app, precreate), query, close,
expiry, and what the buyer does (scan, pay) and the refund period's end."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeStateError,
)
from payhub_sandbox._state import Trade, TradeState
from payhub_sandbox.alipay._answers import (
    OUT_NO_RE,
    ZERO_AMOUNTS,
    AlipayFailure,
    GatewayRequest,
    bad_param,
    biz_amount,
    biz_text,
    business_error,
    query_options,
)
from payhub_sandbox.alipay._merchants import (
    CHANNEL,
    DEFAULT_BUYER_ID,
    alipay_trade_status,
)
from payhub_sandbox.alipay._notify import AlipayNotifier
from payhub_sandbox.alipay._wire import (
    amount_text,
    format_time,
    parse_time,
)

__all__ = ["AlipayTrades"]

_MAX_TOTAL: Final = Money.parse("100000000.00")
_TIMEOUT_RE: Final = re.compile(r"([1-9][0-9]{0,4})([mhdc])", re.ASCII)
_MAX_TIMEOUT: Final = timedelta(days=15)


class AlipayTrades(AlipayNotifier):
    """Trades from creation to their end."""

    def _create(self, request: GatewayRequest) -> Trade:
        biz = request.biz
        merchant = request.merchant
        out_trade_no = biz_text(biz, "out_trade_no")
        if not OUT_NO_RE.fullmatch(out_trade_no):
            raise bad_param("out_trade_no必须是1-64位字母、数字、下划线或连字符")
        total = biz_amount(biz, "total_amount")
        if total > _MAX_TOTAL:
            raise business_error("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        if total.is_zero():
            raise bad_param("total_amount必须大于0")
        subject = biz_text(biz, "subject")
        if not subject or len(subject) > 256:
            raise bad_param("subject不能为空且不能超过256个字符")
        now = self._clock.now()
        expires_at = self._expiry(biz, now)
        existing = self._store.find(CHANNEL, merchant.app_id, out_trade_no=out_trade_no)
        if existing is not None:
            if existing.state is TradeState.PAID:
                raise business_error("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.state is TradeState.FINISHED:
                raise business_error("ACQ.TRADE_HAS_FINISHED", "交易已完结")
            if existing.state is TradeState.CLOSED:
                raise business_error("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.amount != total or existing.subject != subject:
                raise business_error("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return existing
        trade = Trade(
            channel=CHANNEL,
            merchant_id=merchant.app_id,
            trade_no=self._new_trade_no(now),
            out_trade_no=out_trade_no,
            amount=total,
            subject=subject,
            state=TradeState.PENDING,
            created_at=now,
            product=request.method,
            notify_url=request.params.get("notify_url") or None,
            return_url=request.params.get("return_url") or None,
            expires_at=expires_at,
            extra={
                "charset": request.codec,
                "seller_id": merchant.seller_id,
                "body": biz_text(biz, "body"),
                "royalty_freeze": _royalty_freeze(biz),
            },
        )
        self._store.add_trade(trade)
        return trade

    def _expiry(self, biz: Mapping[str, object], now: datetime) -> datetime | None:
        absolute = biz_text(biz, "time_expire")
        if absolute:
            when = parse_time(absolute)
            if when is None:
                raise bad_param("time_expire格式必须为yyyy-MM-dd HH:mm:ss")
            return when
        relative = biz_text(biz, "timeout_express")
        if not relative:
            return None
        match = _TIMEOUT_RE.fullmatch(relative)
        if match is None:
            raise bad_param("timeout_express格式错误")
        count, unit = int(match.group(1)), match.group(2)
        if unit == "c":
            if count != 1:
                raise bad_param("timeout_express取值1c表示当天")
            today = now.astimezone(CHINA_TZ).date()
            return datetime.combine(today, time(23, 59, 59), CHINA_TZ)
        span = timedelta(minutes=count) * {"m": 1, "h": 60, "d": 1440}[unit]
        if span > _MAX_TIMEOUT:
            raise bad_param("timeout_express取值范围1m～15d")
        return now + span / self._time_factor

    def _locate(self, request: GatewayRequest) -> Trade:
        trade_no = biz_text(request.biz, "trade_no")
        out_trade_no = biz_text(request.biz, "out_trade_no")
        if not trade_no and not out_trade_no:
            raise bad_param("trade_no和out_trade_no不能同时为空")
        trade = self._store.find(
            CHANNEL, request.merchant.app_id, trade_no=trade_no, out_trade_no=out_trade_no
        )
        if trade is None:
            extra = {"out_trade_no": out_trade_no} if out_trade_no else {}
            raise business_error("ACQ.TRADE_NOT_EXIST", "交易不存在", extra)
        return trade

    def _query(self, request: GatewayRequest) -> dict[str, Any]:
        try:
            trade = self._locate(request)
            if not self._visible(trade):
                raise business_error("ACQ.TRADE_NOT_EXIST", "交易不存在")
        except AlipayFailure as failure:
            if failure.node["sub_code"] == "ACQ.TRADE_NOT_EXIST":
                # Alipay's "no such trade" answer to a query carries zero amounts.
                failure.node.update(dict.fromkeys(ZERO_AMOUNTS, "0.00"))
                failure.node["out_trade_no"] = biz_text(request.biz, "out_trade_no")
                if not failure.node["out_trade_no"]:
                    del failure.node["out_trade_no"]
            raise
        zero = Money.zero(trade.amount.currency)
        paid = trade.paid_at is not None
        fields: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": alipay_trade_status(trade),
            "total_amount": amount_text(trade.amount),
            "buyer_pay_amount": amount_text(trade.amount if paid else zero),
            "point_amount": "0.00",
            "invoice_amount": amount_text(trade.amount if paid else zero),
            "receipt_amount": amount_text(trade.amount if paid else zero),
            "subject": trade.subject,
        }
        if paid and trade.paid_at is not None:
            fields["buyer_logon_id"] = trade.buyer_account
            fields["buyer_user_id"] = trade.buyer_id
            fields["buyer_user_type"] = "PRIVATE"
            fields["send_pay_date"] = format_time(trade.paid_at)
            if "fund_bill_list" in query_options(request.biz):
                fields["fund_bill_list"] = [
                    {"fund_channel": "ALIPAYACCOUNT", "amount": amount_text(trade.amount)}
                ]
        return fields

    def _visible(self, trade: Trade) -> bool:
        """Whether a query finds the trade: a precreated QR code nobody has scanned
        yet is not a trade at Alipay (``ACQ.TRADE_NOT_EXIST``), unless the sandbox
        was told to answer ``WAIT_BUYER_PAY`` for it."""
        return (
            trade.product != "alipay.trade.precreate"
            or trade.paid_at is not None
            or "scanned_at" in trade.extra
            or self._unscanned_waits
        )

    def scan(self, trade: Trade) -> Trade:
        """The buyer scans a precreated QR code (opens its cashier): from now on a
        query finds the trade as ``WAIT_BUYER_PAY``."""
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if "scanned_at" in trade.extra:
                return trade
            scanned = replace(
                trade, extra={**trade.extra, "scanned_at": self._clock.now().isoformat()}
            )
            self._store.replace_trade(scanned)
            return scanned

    def _close(self, request: GatewayRequest) -> dict[str, Any]:
        trade = self._locate(request)
        if trade.state is not TradeState.PENDING:
            raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        self._close_trade(trade, "merchant")
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _close_trade(self, trade: Trade, reason: str) -> Trade:
        merchant = self.merchant(trade.merchant_id)
        closed = replace(
            trade, state=TradeState.CLOSED, closed_at=self._clock.now(), close_reason=reason
        )
        self._store.replace_trade(closed)
        if reason != "merchant" or merchant.notify_on_close:
            self._notify(closed, merchant)
        return closed

    def pay(self, trade: Trade, *, buyer_id: str = DEFAULT_BUYER_ID) -> Trade:
        """The buyer pays: ``WAIT_BUYER_PAY`` → ``TRADE_SUCCESS``, notification scheduled."""
        with self._lock:
            self.close_expired()
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}, not WAIT_BUYER_PAY"
                )
            merchant = self.merchant(trade.merchant_id)
            if not buyer_id:
                raise InvalidInputError("buyer_id is required")
            if buyer_id == merchant.seller_id:
                raise TradeStateError("ACQ.BUYER_SELLER_EQUAL: 买卖家不能相同")
            fee = (Decimal(trade.amount.minor) * merchant.fee_rate).quantize(
                Decimal(1), ROUND_HALF_UP
            )
            paid = replace(
                trade,
                state=TradeState.PAID,
                paid_at=self._clock.now(),
                buyer_id=buyer_id,
                buyer_account=f"138****{buyer_id[-4:]}",
                fee=Money(int(fee), trade.amount.currency),
            )
            self._store.replace_trade(paid)
            self._notify(paid, merchant)
            return paid

    def finish(self, trade: Trade) -> Trade:
        """``TRADE_SUCCESS`` → ``TRADE_FINISHED`` (the refund period is over)."""
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PAID:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}, not TRADE_SUCCESS"
                )
            done = replace(trade, state=TradeState.FINISHED, finished_at=self._clock.now())
            self._store.replace_trade(done)
            self._notify(done, self.merchant(trade.merchant_id))
            return done

    def close(self, trade: Trade, *, reason: Literal["timeout", "merchant"] = "timeout") -> Trade:
        """Close an unpaid trade, as a timeout (always notified) or as the merchant."""
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}, not WAIT_BUYER_PAY"
                )
            return self._close_trade(trade, reason)

    def close_expired(self) -> list[Trade]:
        """Close every unpaid trade whose ``timeout_express``/``time_expire`` has passed."""
        now = self._clock.now()
        with self._lock:
            due = self._store.expired(CHANNEL, now)
            return [self._close_trade(t, "timeout") for t in due]

    def cashier_url(self, trade: Trade, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/alipay/cashier/{trade.trade_no}"


def _royalty_freeze(biz: Mapping[str, object]) -> str:
    """``"true"`` when the trade was created for 商家分账 (``extend_params.royalty_freeze``):
    its money stays frozen until settled or finished."""
    extend = biz.get("extend_params")
    return "true" if isinstance(extend, dict) and extend.get("royalty_freeze") == "true" else ""
