"""``alipay.data.dataservice.bill.downloadurl.query``: short-lived bill links and
the zips behind them (built by :mod:`payhub_sandbox.alipay._bills`)."""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox.alipay._accountlog import PAGE_SIZE_RANGE, account_log_items
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
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
_LONGEST_RANGE: Final = timedelta(days=31)


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

    def _account_log(self, request: GatewayRequest) -> dict[str, Any]:
        """``alipay.data.bill.accountlog.query``: one page of the movements booked
        in ``[start_time, end_time)``, built from the recorded trades and refunds
        with the planted bill differences applied (as the trade bill is)."""
        start = self._log_time(request, "start_time")
        end = self._log_time(request, "end_time")
        if end <= start or end - start > _LONGEST_RANGE:
            raise invalid("isv.invalid-parameter", "参数无效: 起止时间间隔须大于0且不超过31天")
        page_no = self._log_number(request, "page_no", 1)
        page_size = self._log_number(request, "page_size", PAGE_SIZE_RANGE[1])
        if page_no < 1:
            raise invalid("isv.invalid-parameter", "参数无效: page_no")
        if not PAGE_SIZE_RANGE[0] <= page_size <= PAGE_SIZE_RANGE[1]:
            raise invalid("isv.invalid-parameter", "参数无效: page_size须在1000-2000之间")
        app_id = request.merchant.app_id
        trades = [t for t in self._store.trades(CHANNEL) if t.merchant_id == app_id]
        refunds = [r for r in self._store.refunds(CHANNEL) if r.merchant_id == app_id]
        # Planted differences are per bill day: those of every day the range touches.
        day, last = start.date(), (end - timedelta(microseconds=1)).date()
        while day <= last:
            trades, refunds = self._store.bill_faults.apply(CHANNEL, app_id, day, trades, refunds)
            day += timedelta(days=1)
        items = account_log_items(trades=trades, refunds=refunds, start=start, end=end)
        for name in ("merchant_order_no", "alipay_order_no"):
            wanted = biz_text(request.biz, name)
            if wanted:
                items = [item for item in items if item.get(name) == wanted]
        first = (page_no - 1) * page_size
        answer: dict[str, Any] = {
            "page_no": str(page_no),
            "page_size": str(page_size),
            "total_size": str(len(items)),
        }
        page = items[first : first + page_size]
        if page:  # left out when the query finds nothing (the SDKs' model says so)
            answer["detail_list"] = page
        return answer

    @staticmethod
    def _log_time(request: GatewayRequest, name: str) -> datetime:
        text = biz_text(request.biz, name)
        if not _TIME_RE.fullmatch(text):
            raise invalid("isv.invalid-parameter", f"参数无效: {name}")
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
        except ValueError:
            raise invalid("isv.invalid-parameter", f"参数无效: {name}") from None

    @staticmethod
    def _log_number(request: GatewayRequest, name: str, default: int) -> int:
        text = biz_text(request.biz, name)
        if not text:
            return default
        if not text.isascii() or not text.isdigit() or len(text) > 8:
            raise invalid("isv.invalid-parameter", f"参数无效: {name}")
        return int(text)

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
