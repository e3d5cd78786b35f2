"""WeChat Pay orders: ``POST /v3/pay/transactions/{native|jsapi|app|h5}``, the two
queries, the close, and what the buyer does (pay on the sandbox's page, let the
order expire)."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._errors import TradeNotFoundError, TradeStateError
from payhub_sandbox._state import Trade, TradeState
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
from payhub_sandbox.wechat._notifications import WechatNotifier
from payhub_sandbox.wechat._wire import WechatFailure, format_time, parse_time

__all__ = ["DEFAULT_OPENID", "STATE_DESC", "WechatOrders", "wechat_trade_state"]

DEFAULT_OPENID: Final = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

TRADE_TYPES: Final = {"native": "NATIVE", "jsapi": "JSAPI", "app": "APP", "h5": "MWEB"}
OUT_TRADE_NO_RE: Final = re.compile(r"[0-9A-Za-z_\-*|]{6,32}", re.ASCII)
STATE_DESC: Final = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "订单未支付",
    "CLOSED": "订单已关闭",
}


def wechat_trade_state(trade: Trade) -> str:
    """The WeChat ``trade_state`` of a trade: ``NOTPAY``, ``SUCCESS``, ``REFUND``, ``CLOSED``."""
    if trade.state is TradeState.PENDING:
        return "NOTPAY"
    if trade.state is TradeState.CLOSED:
        return "CLOSED"
    return "REFUND" if trade.extra.get("refund_requested") else "SUCCESS"


class WechatOrders:
    """Orders of one sandbox; callers hold the core's lock around the API handlers."""

    def __init__(self, core: WechatCore, notifier: WechatNotifier) -> None:
        self._core = core
        self._notifier = notifier
        self._tokens: dict[str, str] = {}

    # -- the API ----------------------------------------------------------------------

    def create(self, call: Call) -> Answer:
        product = call.groups[0]
        data = call.json()
        merchant = call.merchant
        appid = string_field(data, "appid", "", max_len=32)
        mchid = string_field(data, "mchid", "", max_len=32)
        description = string_field(data, "description", "", max_len=127)
        out_trade_no = string_field(data, "out_trade_no", "", max_len=32)
        if not OUT_TRADE_NO_RE.fullmatch(out_trade_no):
            raise body_param("/out_trade_no", out_trade_no, "只能是6到32位数字、大小写字母_-*|")
        notify_url = url_field(data, "notify_url", "", required=True)
        attach = string_field(data, "attach", "", required=False, max_len=128)
        expire_text = string_field(data, "time_expire", "", required=False, max_len=64)
        amount = object_field(data, "amount", "")
        total = fen_field(amount, "total", "/amount")
        currency = currency_field(amount, "/amount", required=False)
        openid = ""
        if product == "jsapi":
            openid = string_field(object_field(data, "payer", ""), "openid", "/payer", max_len=128)
        if product == "h5":
            scene = object_field(data, "scene_info", "")
            string_field(scene, "payer_client_ip", "/scene_info", max_len=45)
            string_field(
                object_field(scene, "h5_info", "/scene_info"), "type", "/scene_info/h5_info"
            )
        settle_info = object_field(data, "settle_info", "", required=False)
        profit_sharing = settle_info.get("profit_sharing", False)
        if not isinstance(profit_sharing, bool):
            raise body_param("/settle_info/profit_sharing", None, "必须是布尔值")
        expires_at: datetime | None = None
        if expire_text:
            expires_at = parse_time(expire_text)
            if expires_at is None:
                raise body_param("/time_expire", expire_text, "必须是RFC3339格式的时间")
        if mchid != merchant.mch_id:
            raise WechatFailure("INVALID_REQUEST", "请求体中的mchid与请求签名的商户号不一致")
        if appid != merchant.app_id:
            raise WechatFailure("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        now = self._core.now()
        if expires_at is not None and expires_at <= now:
            raise WechatFailure("INVALID_REQUEST", "订单过期时间time_expire必须晚于当前时间")
        fingerprint = json.dumps(
            [product, appid, description, total, currency, notify_url, attach, openid]
            + ([True] if profit_sharing else []),
            ensure_ascii=False,
        )
        existing = self._core.store.find(CHANNEL, merchant.mch_id, out_trade_no=out_trade_no)
        if existing is not None:
            if existing.state is TradeState.PAID:
                raise WechatFailure("ORDERPAID", "该订单已支付")
            if existing.state is not TradeState.PENDING:
                raise WechatFailure("ORDER_CLOSED", "订单已关闭")
            if existing.extra.get("fingerprint") != fingerprint:
                raise WechatFailure(
                    "OUT_TRADE_NO_USED", "商户订单号重复：同一笔交易不能以不同参数多次提交"
                )
            return Answer(data=self._created(existing, call.base_url))
        trade = Trade(
            channel=CHANNEL,
            merchant_id=merchant.mch_id,
            trade_no=self._core.number("4200", 10),
            out_trade_no=out_trade_no,
            amount=Money(total, currency),
            subject=description,
            state=TradeState.PENDING,
            created_at=now,
            product=product,
            notify_url=notify_url,
            buyer_id=openid or None,
            expires_at=expires_at,
            extra={
                "appid": appid,
                "attach": attach,
                "fingerprint": fingerprint,
                "pay_token": secrets.token_urlsafe(12),
                "prepay_id": f"wx{now.astimezone(CHINA_TZ):%d%H%M%S}{secrets.token_hex(13)}00",
                "trade_type": TRADE_TYPES[product],
                "profit_sharing": "true" if profit_sharing else "",
            },
        )
        self._core.store.add_trade(trade)
        self._tokens[trade.extra["pay_token"]] = trade.trade_no
        return Answer(data=self._created(trade, call.base_url))

    def _created(self, trade: Trade, base_url: str) -> dict[str, Any]:
        if trade.product == "native":
            return {"code_url": self.pay_url(trade, base_url)}
        if trade.product == "h5":
            return {"h5_url": self.pay_url(trade, base_url)}
        return {"prepay_id": trade.extra["prepay_id"]}

    def pay_url(self, trade: Trade, base_url: str) -> str:
        """The sandbox page showing the QR content and a Pay button."""
        return f"{base_url.rstrip('/')}/wechat/pay/{trade.extra['pay_token']}"

    def _query_mchid(self, call: Call) -> None:
        mchid = call.query.get("mchid", "")
        if not mchid:
            raise WechatFailure(
                "PARAM_ERROR",
                "输入源“/query/mchid”映射到字段校验失败：字段缺失",
                {"location": "query", "field": "mchid", "issue": "字段缺失"},
            )
        if mchid != call.merchant.mch_id:
            raise WechatFailure("INVALID_REQUEST", "查询参数mchid与请求签名的商户号不一致")

    def query_by_out_no(self, call: Call) -> Answer:
        self._query_mchid(call)
        trade = self._core.store.find(CHANNEL, call.merchant.mch_id, out_trade_no=call.groups[0])
        if trade is None:
            raise WechatFailure("ORDER_NOT_EXIST", "订单不存在")
        return Answer(data=self.transaction_json(trade))

    def query_by_id(self, call: Call) -> Answer:
        self._query_mchid(call)
        trade = self._core.store.find(CHANNEL, call.merchant.mch_id, trade_no=call.groups[0])
        if trade is None or trade.paid_at is None:
            # A transaction id exists only once the buyer has paid.
            raise WechatFailure("ORDER_NOT_EXIST", "订单不存在")
        return Answer(data=self.transaction_json(trade))

    def transaction_json(self, trade: Trade) -> dict[str, Any]:
        """The query answer (and, for a payment, the notification's resource)."""
        state = wechat_trade_state(trade)
        currency = trade.amount.currency
        data: dict[str, Any] = {
            "appid": trade.extra.get("appid", ""),
            "mchid": trade.merchant_id,
            "out_trade_no": trade.out_trade_no,
        }
        if trade.paid_at is not None:
            data["transaction_id"] = trade.trade_no
            data["trade_type"] = trade.extra.get("trade_type", "")
        data["trade_state"] = state
        data["trade_state_desc"] = STATE_DESC[state]
        if trade.paid_at is not None:
            data["bank_type"] = trade.extra.get("bank_type", "OTHERS")
        data["attach"] = trade.extra.get("attach", "")
        if trade.paid_at is not None:
            data["success_time"] = format_time(trade.paid_at)
            data["payer"] = {"openid": trade.buyer_id or DEFAULT_OPENID}
            data["amount"] = {
                "total": trade.amount.minor,
                "payer_total": trade.amount.minor,
                "currency": currency,
                "payer_currency": currency,
            }
        else:
            data["amount"] = {
                "total": trade.amount.minor,
                "currency": currency,
                "payer_currency": currency,
            }
        data["promotion_detail"] = []
        return data

    def close_api(self, call: Call) -> Answer:
        data = call.json()
        mchid = string_field(data, "mchid", "", max_len=32)
        if mchid != call.merchant.mch_id:
            raise WechatFailure("INVALID_REQUEST", "请求体中的mchid与请求签名的商户号不一致")
        trade = self._core.store.find(CHANNEL, call.merchant.mch_id, out_trade_no=call.groups[0])
        if trade is None:
            raise WechatFailure("ORDER_NOT_EXIST", "订单不存在")
        if trade.state is TradeState.PAID:
            raise WechatFailure("ORDERPAID", "订单已支付，不能关闭")
        if trade.state is TradeState.PENDING:
            self._close_trade(trade, "merchant")
        return Answer(status=204)

    def _close_trade(self, trade: Trade, reason: str) -> Trade:
        closed = replace(
            trade, state=TradeState.CLOSED, closed_at=self._core.now(), close_reason=reason
        )
        self._core.store.replace_trade(closed)
        return closed

    def _notified(self, trade: Trade) -> dict[str, Any]:
        """The resource of ``TRANSACTION.SUCCESS``: the paid transaction."""
        resource = self.transaction_json(trade)
        resource.pop("promotion_detail", None)
        resource["trade_state"] = "SUCCESS"
        resource["trade_state_desc"] = STATE_DESC["SUCCESS"]
        return resource

    # -- what the buyer, the control API and the Python API do -------------------------

    def trade(self, mch_id: str, out_trade_no: str) -> Trade:
        trade = self._core.store.find(CHANNEL, mch_id, out_trade_no=out_trade_no)
        if trade is None:
            raise TradeNotFoundError(f"no WeChat Pay trade {out_trade_no!r} of {mch_id!r}")
        return trade

    def trade_by_token(self, token: str) -> Trade:
        with self._core.lock:
            number = self._tokens.get(token)
            trade = None if number is None else self._core.store.get(number)
        if trade is None:
            raise TradeNotFoundError("no WeChat Pay trade has that payment page")
        return trade

    def pay(self, trade: Trade, *, openid: str | None = None) -> Trade:
        """The buyer pays: ``NOTPAY`` → ``SUCCESS``; ``TRANSACTION.SUCCESS`` is scheduled."""
        with self._core.lock:
            self.close_expired()
            current = self._core.store.get(trade.trade_no)
            if current is None or current.channel != CHANNEL:
                raise TradeNotFoundError(f"no WeChat Pay trade {trade.trade_no!r}")
            if current.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"trade {current.out_trade_no} is {wechat_trade_state(current)}, not NOTPAY"
                )
            merchant = self._core.merchant(current.merchant_id)
            if current.product == "jsapi" and current.buyer_id:
                if openid and openid != current.buyer_id:
                    raise TradeStateError("a JSAPI trade is paid by the payer.openid it names")
                openid = current.buyer_id
            buyer = openid or DEFAULT_OPENID
            fee = (Decimal(current.amount.minor) * merchant.fee_rate).quantize(
                Decimal(1), ROUND_HALF_UP
            )
            paid = replace(
                current,
                state=TradeState.PAID,
                paid_at=self._core.now(),
                buyer_id=buyer,
                fee=Money(int(fee), current.amount.currency),
                extra={**current.extra, "bank_type": "OTHERS"},
            )
            self._core.store.replace_trade(paid)
            self._notifier.transaction(paid, merchant, self._notified(paid))
            return paid

    def close(self, trade: Trade) -> Trade:
        """Close an unpaid trade (as the merchant's close API would; not notified)."""
        with self._core.lock:
            current = self._core.store.get(trade.trade_no)
            if current is None or current.state is not TradeState.PENDING:
                state = "unknown" if current is None else wechat_trade_state(current)
                raise TradeStateError(f"trade {trade.out_trade_no} is {state}, not NOTPAY")
            return self._close_trade(current, "merchant")

    def close_expired(self) -> list[Trade]:
        """Close every unpaid trade whose ``time_expire`` has passed (WeChat notifies nothing)."""
        now = self._core.now()
        with self._core.lock:
            due = self._core.store.expired(CHANNEL, now)
            return [self._close_trade(t, "timeout") for t in due]
