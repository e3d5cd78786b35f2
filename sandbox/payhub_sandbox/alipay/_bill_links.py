"""``alipay.data.dataservice.bill.downloadurl.query``: short-lived bill links and
the zips behind them (built by :mod:`payhub_sandbox.alipay._bills`)."""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox.alipay._answers import (
    DATE_RE,
    GatewayRequest,
    biz_text,
    business_error,
    invalid,
)
from payhub_sandbox.alipay._base import AlipayBase, BillLink
from payhub_sandbox.alipay._bills import alipay_bill_filename, build_alipay_bill_zip
from payhub_sandbox.alipay._merchants import (
    CHANNEL,
)

__all__ = ["AlipayBillLinks"]

_BILL_LINK_TTL: Final = timedelta(seconds=30)


class AlipayBillLinks(AlipayBase):
    """Bill links and the day's bill of an app."""

    def _bill_url(self, request: GatewayRequest, base_url: str) -> dict[str, Any]:
        bill_type = biz_text(request.biz, "bill_type")
        bill_date = biz_text(request.biz, "bill_date")
        if bill_type not in ("trade", "signcustomer"):
            raise invalid("isv.invalid-parameter", "参数无效: bill_type")
        if not DATE_RE.fullmatch(bill_date):
            # Monthly bills (yyyy-MM) and customer bills are not kept by the sandbox.
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}", bill_date, re.ASCII):
                raise business_error("isp.bill_not_exist", "账单不存在")
            raise invalid("isv.invalid-parameter", "参数无效: bill_date")
        try:
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise invalid("isv.invalid-parameter", "参数无效: bill_date") from None
        if bill_type != "trade" or not self._bill_ready(day):
            raise business_error("isp.bill_not_exist", "账单不存在")
        now = self._clock.now()
        token = secrets.token_urlsafe(18)
        self._bill_links[token] = BillLink(request.merchant.app_id, day, now + _BILL_LINK_TTL)
        for stale in [t for t, link in self._bill_links.items() if link.expires_at < now]:
            del self._bill_links[stale]
        return {"bill_download_url": f"{base_url.rstrip('/')}/_bills/alipay/{token}"}

    def _bill_ready(self, day: date) -> bool:
        now = self._clock.now().astimezone(CHINA_TZ)
        if self._bills_ready_immediately:
            return day <= now.date()
        return now >= datetime.combine(day + timedelta(days=1), time(9), CHINA_TZ)

    def bill_archive(self, token: str) -> tuple[str, bytes] | None:
        """The zip a bill link points to, with its file name; None if unknown or expired."""
        with self._lock:
            link = self._bill_links.get(token)
            if link is None or self._clock.now() > link.expires_at:
                return None
        return self.bill(link.app_id, link.bill_date)

    def bill(self, app_id: str, bill_date: date) -> tuple[str, bytes]:
        """The day's bill zip of a merchant app (whatever the time), with its file name."""
        merchant = self.merchant(app_id)
        with self._lock:
            trades = [t for t in self._store.trades(CHANNEL) if t.merchant_id == app_id]
            refunds = [r for r in self._store.refunds(CHANNEL) if r.merchant_id == app_id]
        trades, refunds = self._store.bill_faults.apply(CHANNEL, app_id, bill_date, trades, refunds)
        archive = build_alipay_bill_zip(
            seller_id=merchant.seller_id,
            bill_date=bill_date,
            trades=trades,
            refunds=refunds,
            exported_at=self._clock.now(),
        )
        return alipay_bill_filename(merchant.seller_id, bill_date), archive
