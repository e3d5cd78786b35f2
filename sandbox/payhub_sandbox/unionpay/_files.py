"""``fileTransfer.do`` (txnType 76, bizType 000000, fileType 00): the merchant's
reconciliation file of a clearing day (``settleDate`` MMDD), with the bill
differences planted for that day (``sandbox.plant_bill_difference``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from payhub_sandbox.unionpay._answers import CHANNEL, AcpFailure, UnionPayMerchant
from payhub_sandbox.unionpay._back import UnionPayBacks
from payhub_sandbox.unionpay._wire import settle_date
from payhub_sandbox.unionpay._zm import zm_file, zm_file_content, zm_zip

__all__ = ["UnionPayFiles"]

_SETTLE_DATE_RE = re.compile(r"(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])", re.ASCII)


class UnionPayFiles(UnionPayBacks):
    """The reconciliation files."""

    #: serve a clearing day's file while the day is still running (for tests)
    bills_ready_immediately: bool = False

    def _file_transfer(
        self, fields: Mapping[str, str], merchant: UnionPayMerchant
    ) -> dict[str, str]:
        for name in ("txnTime", "settleDate", "fileType"):
            if not fields.get(name):
                raise AcpFailure("13", name)
        if fields["fileType"] != "00":
            raise AcpFailure("10", "fileType (只模拟 00)")
        match = _SETTLE_DATE_RE.fullmatch(fields["settleDate"])
        if match is None:
            raise AcpFailure("10", "settleDate须为MMDD")
        today = settle_date(self._clock.now())
        day = self._settle_day(today, int(match.group(1)), int(match.group(2)))
        if day is None or day > today or (day == today and not self.bills_ready_immediately):
            # the file of a clearing day exists once that day is over
            raise AcpFailure("98", "文件不存在")
        trades, refunds = self._store.bill_faults.apply(
            CHANNEL,
            merchant.mer_id,
            day,
            self._store.trades(CHANNEL),
            self._store.refunds(CHANNEL),
        )
        archive = zm_zip(merchant.mer_id, day, zm_file(merchant.mer_id, day, trades, refunds))
        return {
            "fileType": "00",
            "settleDate": fields["settleDate"],
            "fileName": f"{merchant.mer_id}_{day:%Y%m%d}.zip",
            "fileContent": zm_file_content(archive),
        }

    def zm_bill(self, mer_id: str, day: date) -> bytes:
        """The ZM file of ``mer_id`` for the clearing day ``day``, faults applied."""
        with self._lock:
            trades, refunds = self._store.bill_faults.apply(
                CHANNEL, mer_id, day, self._store.trades(CHANNEL), self._store.refunds(CHANNEL)
            )
            return zm_file(mer_id, day, trades, refunds)

    @staticmethod
    def _settle_day(today: date, month: int, day: int) -> date | None:
        """``MMDD`` read as the latest such day not after ``today``."""
        for year in (today.year, today.year - 1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if candidate <= today:
                return candidate
        return None
