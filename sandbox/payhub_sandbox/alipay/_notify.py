"""Alipay's asynchronous notifications and the browser's signed return URL."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Final

import httpx

from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._state import Refund, Trade, TradeState
from payhub_sandbox.alipay._answers import (
    BROWSER_METHODS,
)
from payhub_sandbox.alipay._base import AlipayBase
from payhub_sandbox.alipay._merchants import (
    CHANNEL,
    AlipayMerchant,
    alipay_trade_status,
)
from payhub_sandbox.alipay._wire import (
    amount_text,
    encode_form,
    format_time,
    sign_params,
)
from payhub_sandbox.delivery._scheduler import OutboundNotification, scaled

__all__ = ["ALIPAY_RETRY_DELAYS", "AlipayNotifier"]

#: Seconds between notification attempts: after 4m, 10m, 10m, 1h, 2h, 6h, 15h
#: (8 attempts in all, about 25 hours).
ALIPAY_RETRY_DELAYS: Final = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)


class AlipayNotifier(AlipayBase):
    """Builds, signs and schedules notifications; signs return URLs."""

    def _notify(
        self, trade: Trade, merchant: AlipayMerchant, *, refund: Refund | None = None
    ) -> None:
        if not trade.notify_url:
            return
        now = self._clock.now()
        notify_id = _notify_id(now)
        paid = trade.paid_at is not None
        total = amount_text(trade.amount)
        closed_at = trade.finished_at or trade.closed_at
        fields: dict[str, str] = {
            "gmt_create": format_time(trade.created_at),
            "charset": merchant.charset,
            "seller_id": merchant.seller_id,
            "subject": trade.subject,
            "body": trade.extra.get("body", ""),
            "buyer_id": trade.buyer_id or "",
            "buyer_logon_id": trade.buyer_account or "",
            "invoice_amount": total if paid else "",
            "notify_id": notify_id,
            "fund_bill_list": _fund_bill_list(trade) if paid else "",
            "notify_type": "trade_status_sync",
            "trade_status": alipay_trade_status(trade),
            "receipt_amount": total if paid else "",
            "buyer_pay_amount": total if paid else "",
            "app_id": merchant.app_id,
            "notify_time": format_time(now),
            "point_amount": "0.00" if paid else "",
            "total_amount": total,
            "gmt_payment": format_time(trade.paid_at) if trade.paid_at else "",
            "gmt_close": format_time(closed_at) if closed_at and trade.state in _ENDED else "",
            "trade_no": trade.trade_no,
            "auth_app_id": merchant.app_id,
            "out_trade_no": trade.out_trade_no,
            "version": "1.0",
        }
        if refund is not None:
            fields["refund_fee"] = amount_text(refund.refunded_total)
            fields["gmt_refund"] = _millis(refund.created_at)
            fields["out_biz_no"] = refund.out_refund_no
        fields = {k: v for k, v in fields.items() if v != ""}
        fields["sign_type"] = merchant.sign_type
        fields["sign"] = sign_params(
            fields, self._key, sign_type=merchant.sign_type, codec=merchant.charset
        )
        declared = "utf-8" if merchant.lie_content_type else merchant.charset
        notification = OutboundNotification(
            id=self._scheduler.new_id(),
            channel=CHANNEL,
            merchant_id=merchant.app_id,
            event_id=notify_id,
            kind=fields["trade_status"] + (" (refund)" if refund is not None else ""),
            trade_no=trade.trade_no,
            url=trade.notify_url,
            headers=(("Content-Type", f"application/x-www-form-urlencoded; charset={declared}"),),
            body=encode_form(fields.items(), merchant.charset),
            created_at=now,
            delays=scaled(ALIPAY_RETRY_DELAYS, self._time_factor),
        )
        self._scheduler.enqueue(notification, _acknowledged)

    def return_url(self, trade: Trade) -> str | None:
        """The browser's signed way back to the shop after paying, if it gave one (a page
        or wap payment: a QR code is paid in the Alipay app and has no way back)."""
        if not trade.return_url or trade.product not in BROWSER_METHODS:
            return None
        merchant = self.merchant(trade.merchant_id)
        codec = trade.extra.get("charset", "utf-8")
        fields = {
            "charset": codec,
            "out_trade_no": trade.out_trade_no,
            "method": f"{trade.product}.return",
            "total_amount": amount_text(trade.amount),
            "trade_no": trade.trade_no,
            "auth_app_id": merchant.app_id,
            "version": "1.0",
            "app_id": merchant.app_id,
            "sign_type": merchant.sign_type,
            "seller_id": merchant.seller_id,
            "timestamp": format_time(self._clock.now()),
        }
        sign = sign_params(fields, self._key, sign_type=merchant.sign_type, codec=codec)
        # Alipay puts ``sign`` right after ``total_amount`` in the return URL.
        items = list(fields.items())
        items.insert(list(fields).index("total_amount") + 1, ("sign", sign))
        query = encode_form(items, codec).decode("ascii")
        return f"{trade.return_url}{'&' if '?' in trade.return_url else '?'}{query}"


_ENDED: Final = frozenset({TradeState.CLOSED, TradeState.FINISHED})


def _acknowledged(response: httpx.Response) -> bool:
    """Alipay stops resending only when the body is exactly ``success``."""
    return response.content == b"success"


def _fund_bill_list(trade: Trade) -> str:
    return json.dumps(
        [{"amount": amount_text(trade.amount), "fundChannel": "ALIPAYACCOUNT"}],
        separators=(",", ":"),
    )


def _notify_id(moment: datetime) -> str:
    """34 digits as Alipay's are: the day, ``01222``, the time of day, 15 more digits."""
    local = moment.astimezone(CHINA_TZ)
    return f"{local:%Y%m%d}01222{local:%H%M%S}{secrets.randbelow(10**15):015d}"


def _millis(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in Asia/Shanghai: the format of ``gmt_refund``."""
    local = moment.astimezone(CHINA_TZ)
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}"
