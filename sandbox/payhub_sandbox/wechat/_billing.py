"""WeChat Pay bills: ``GET /v3/bill/tradebill`` (trade bill) and ``GET
/v3/bill/fundflowbill`` (fund-flow bill) answer a ``download_url``; the signed ``GET
/v3/billdownload/file`` serves the file (unsigned), valid 30 seconds."""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox.wechat._api import Answer, Call, query_param
from payhub_sandbox.wechat._bills import WECHAT_BILL_TYPES, wechat_bill_csv
from payhub_sandbox.wechat._core import CHANNEL, WechatCore
from payhub_sandbox.wechat._fundflow import WECHAT_ACCOUNT_TYPES, wechat_fundflow_csv
from payhub_sandbox.wechat._merchants import WechatMerchant
from payhub_sandbox.wechat._wire import WechatFailure

__all__ = ["WechatBilling"]

DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
BILL_LINK_TTL: Final = timedelta(seconds=30)
BILL_READY_AT: Final = time(10)


@dataclass(frozen=True)
class BillLink:
    mch_id: str
    data: bytes
    expires_at: datetime


class WechatBilling:
    """Bills of one sandbox; callers hold the core's lock around the API handlers."""

    def __init__(self, core: WechatCore, *, ready_immediately: bool = False) -> None:
        self._core = core
        self._ready_immediately = ready_immediately
        self._links: dict[str, BillLink] = {}

    def tradebill(self, call: Call) -> Answer:
        """``GET /v3/bill/tradebill?bill_date=…&bill_type=ALL|SUCCESS|REFUND&tar_type=GZIP``."""
        day = self._day(call)
        bill_type = call.query.get("bill_type", "") or "ALL"
        if bill_type not in WECHAT_BILL_TYPES:
            raise query_param("bill_type", bill_type, "必须是ALL、SUCCESS或REFUND")
        tar_type = self._tar_type(call)
        text, rows = self._bill_text(call.merchant, day, bill_type)
        return self._link(call, text, rows, tar_type)

    def fundflowbill(self, call: Call) -> Answer:
        """``GET /v3/bill/fundflowbill?bill_date=…&account_type=BASIC|OPERATION|FEES``."""
        day = self._day(call)
        account_type = call.query.get("account_type", "") or "BASIC"
        if account_type not in WECHAT_ACCOUNT_TYPES:
            raise query_param("account_type", account_type, "必须是BASIC、OPERATION或FEES")
        tar_type = self._tar_type(call)
        text, rows = self._fundflow_text(call.merchant, day, account_type)
        return self._link(call, text, rows, tar_type)

    def _day(self, call: Call) -> date:
        bill_date = call.query.get("bill_date", "")
        if not DATE_RE.fullmatch(bill_date):
            raise query_param("bill_date", bill_date, "必须是yyyy-MM-dd格式的日期")
        try:
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise query_param("bill_date", bill_date, "必须是yyyy-MM-dd格式的日期") from None
        now = self._core.now().astimezone(CHINA_TZ)
        if day > now.date():
            raise WechatFailure("INVALID_REQUEST", "账单日期bill_date不能晚于当前日期")
        if not self._bill_ready(day, now):
            raise WechatFailure("STATEMENT_CREATING", "账单生成中，请稍后再试")
        return day

    @staticmethod
    def _tar_type(call: Call) -> str:
        tar_type = call.query.get("tar_type", "")
        if tar_type not in ("", "GZIP"):
            raise query_param("tar_type", tar_type, "仅支持GZIP")
        return tar_type

    def _link(self, call: Call, text: str, rows: int, tar_type: str) -> Answer:
        """The answer naming a 30-second download link of the bill (a 64-character
        token, as WeChat's): its SHA1 is of the uncompressed file."""
        if rows == 0:
            raise WechatFailure("NO_STATEMENT_EXIST", "账单文件不存在：当日无交易")
        plain = self._bill_bytes(call.merchant, text)
        digest = hashlib.sha1(plain, usedforsecurity=False).hexdigest()
        data = gzip.compress(plain, mtime=0) if tar_type == "GZIP" else plain
        token = secrets.token_urlsafe(48)
        now = self._core.now()
        self._links[token] = BillLink(call.merchant.mch_id, data, now + BILL_LINK_TTL)
        for stale in [t for t, link in self._links.items() if link.expires_at < now]:
            del self._links[stale]
        return Answer(
            data={
                "hash_type": "SHA1",
                "hash_value": digest,
                "download_url": f"{call.base_url}/v3/billdownload/file?token={token}",
            }
        )

    def _bill_ready(self, day: date, now: datetime) -> bool:
        if self._ready_immediately:
            return True
        return now >= datetime.combine(day + timedelta(days=1), BILL_READY_AT, CHINA_TZ)

    def _bill_text(self, merchant: WechatMerchant, day: date, bill_type: str) -> tuple[str, int]:
        store = self._core.store
        trades, refunds = store.bill_faults.apply(
            CHANNEL, merchant.mch_id, day, store.trades(CHANNEL), store.refunds(CHANNEL)
        )
        text = wechat_bill_csv(
            mch_id=merchant.mch_id,
            bill_date=day,
            trades=trades,
            refunds=refunds,
            fee_rate=merchant.fee_rate,
            bill_type=bill_type,
        )
        return text, text.count("\r\n") - 3

    def _fundflow_text(
        self, merchant: WechatMerchant, day: date, account_type: str
    ) -> tuple[str, int]:
        # The planted differences show in the fund-flow bill too (a wrong fee is
        # what came in less; a left-out trade or refund moved nothing).
        store = self._core.store
        trades, refunds = store.bill_faults.apply(
            CHANNEL, merchant.mch_id, day, store.trades(CHANNEL), store.refunds(CHANNEL)
        )
        return wechat_fundflow_csv(
            mch_id=merchant.mch_id,
            bill_date=day,
            trades=trades,
            refunds=refunds,
            account_type=account_type,
        )

    @staticmethod
    def _bill_bytes(merchant: WechatMerchant, text: str) -> bytes:
        return ("\ufeff" if merchant.bill_bom else "").encode("utf-8") + text.encode("utf-8")

    def download(self, call: Call) -> Answer:
        token = call.query.get("token", "")
        link = self._links.get(token)
        if link is None or self._core.now() > link.expires_at:
            raise WechatFailure("INVALID_REQUEST", "账单下载链接无效或已过期（有效期30秒）")
        if link.mch_id != call.merchant.mch_id:
            raise WechatFailure("NO_AUTH", "无权下载其他商户的账单")
        return Answer(raw=link.data)

    def bill(self, mch_id: str, bill_date: date, bill_type: str = "ALL") -> bytes:
        """A day's bill file (uncompressed, BOM per merchant), whatever the time."""
        if bill_type not in WECHAT_BILL_TYPES:
            raise InvalidInputError("bill_type must be ALL, SUCCESS or REFUND")
        merchant = self._core.merchant(mch_id)
        with self._core.lock:
            text, _ = self._bill_text(merchant, bill_date, bill_type)
        return self._bill_bytes(merchant, text)

    def fundflow_bill(self, mch_id: str, bill_date: date, account_type: str = "BASIC") -> bytes:
        """A day's fund-flow bill file (uncompressed, BOM per merchant), whatever the time."""
        if account_type not in WECHAT_ACCOUNT_TYPES:
            raise InvalidInputError("account_type must be BASIC, OPERATION or FEES")
        merchant = self._core.merchant(mch_id)
        with self._core.lock:
            text, _ = self._fundflow_text(merchant, bill_date, account_type)
        return self._bill_bytes(merchant, text)
