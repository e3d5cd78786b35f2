"""Alipay royalty (分账) and transfers (转账).

* ``alipay.trade.royalty.relation.bind`` / ``unbind`` / ``batchquery``: the
  receivers an app may split to (``type`` ``userId``, ``loginName`` (with
  ``name``), ``openId``); at most 20 a call.
* ``alipay.trade.order.settle``: split a paid trade (``trade_no``) among bound
  receivers (``royalty_parameters``), idempotent by ``out_request_no`` (the same
  content answers the same ``settle_no``; other content is
  ``ACQ.DISCORDANT_REPEAT_REQUEST``). The lines may not exceed what is left of
  the trade (its amount less refunds and earlier splits):
  ``ACQ.ALLOC_AMOUNT_VALIDATE_ERROR``. ``extend_params.royalty_finish = "true"``
  ends the trade's splitting (for a trade created with
  ``extend_params.royalty_freeze = "true"`` the frozen rest goes to the seller);
  it may come alone, without ``royalty_parameters`` (分账完结 only: its query
  lists no detail).
  A receiver not bound is ``ACQ.ROYALTY_RECEIVER_INVALID``.
* ``alipay.trade.order.settle.query``: ``royalty_detail_list`` with each line's
  ``state`` (``SUCCESS``, ``PROCESSING``, ``FAIL`` with ``error_code``).
* ``alipay.fund.trans.uni.transfer`` (``TRANS_ACCOUNT_NO_PWD`` /
  ``DIRECT_TRANSFER``) and ``alipay.fund.trans.common.query``: certificate mode
  only (the gateway refuses them otherwise); idempotent by ``out_biz_no``
  (other content: ``PAYMENT_INFO_INCONSISTENCY``); drawn on the app's balance
  (``PAYER_BALANCE_NOT_ENOUGH``); a name that does not match the account is
  ``PAYEE_USER_INFO_ERROR``; ``status`` ``SUCCESS``, ``DEALING`` or ``FAIL``.

Failure modes come from :class:`payhub_sandbox._splits.SplitBook` (faults,
balances, known payees).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._splits import Outcome, SplitFaultMode
from payhub_sandbox._state import TradeState
from payhub_sandbox.alipay._answers import (
    AlipayFailure,
    GatewayRequest,
    bad_param,
    biz_amount,
    biz_text,
    business_error,
)
from payhub_sandbox.alipay._merchants import CHANNEL
from payhub_sandbox.alipay._refunds import AlipayRefunds
from payhub_sandbox.alipay._wire import amount_text, format_time

__all__ = ["AlipayRoyalty", "RoyaltyReceiver", "Settle", "SettleLine", "TransferOrder"]

_REQUEST_NO: Final = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)
_USER_ID: Final = re.compile(r"2088[0-9]{12}", re.ASCII)
_RECEIVER_TYPES: Final = frozenset({"userId", "loginName", "openId"})
_PAYEE_TYPES: Final = {
    "ALIPAY_USER_ID": "userId",
    "ALIPAY_LOGON_ID": "loginName",
    "ALIPAY_OPEN_ID": "openId",
}
_MAX_RECEIVERS: Final = 20
_MIN_TRANSFER: Final = Money(10)
#: What a line or transfer that fails after "processing" says.
_SETTLE_FAIL: Final = ("TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH", "分账余额不足")
_TRANSFER_FAIL: Final = ("PAYEE_ACCOUNT_STATUS_ERROR", "收款方账户状态异常")
_NAME_MISMATCH: Final = "支付宝账号和姓名不匹配，请确认姓名是否正确"


@dataclass(frozen=True)
class RoyaltyReceiver:
    type: str
    account: str
    name: str | None = field(default=None, repr=False)
    memo: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "account": self.account, "memo": self.memo}


@dataclass(frozen=True)
class SettleLine:
    trans_in_type: str
    trans_in: str
    amount: Money
    desc: str
    detail_id: str


@dataclass(frozen=True)
class Settle:
    """One ``alipay.trade.order.settle`` request as Alipay keeps it."""

    app_id: str
    out_request_no: str
    trade_no: str
    settle_no: str
    lines: tuple[SettleLine, ...]
    finish: bool
    created_at: datetime
    outcome: Outcome
    content: str = field(repr=False)

    def state(self, now: datetime) -> str:
        if not self.outcome.settled(now):
            return "PROCESSING"
        return "SUCCESS" if self.outcome.success else "FAIL"

    def moved(self, now: datetime) -> Money:
        """What the split takes from the trade: all of it unless it failed."""
        if self.state(now) == "FAIL":
            return Money.zero()
        return sum((line.amount for line in self.lines), Money.zero())

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "out_request_no": self.out_request_no,
            "trade_no": self.trade_no,
            "settle_no": self.settle_no,
            "state": self.state(now),
            "finish": self.finish,
            "lines": [
                {
                    "trans_in_type": line.trans_in_type,
                    "trans_in": line.trans_in,
                    "amount": line.amount.to_decimal_string(),
                    "detail_id": line.detail_id,
                }
                for line in self.lines
            ],
        }


@dataclass(frozen=True)
class TransferOrder:
    """One ``alipay.fund.trans.uni.transfer`` as Alipay keeps it."""

    app_id: str
    out_biz_no: str
    order_id: str
    pay_fund_order_id: str
    amount: Money
    identity_type: str
    identity: str
    created_at: datetime
    outcome: Outcome
    content: str = field(repr=False)
    #: The amount went back to the balance (a transfer that failed).
    returned: bool = False

    def status(self, now: datetime) -> str:
        if not self.outcome.settled(now):
            return "DEALING"
        return "SUCCESS" if self.outcome.success else "FAIL"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "out_biz_no": self.out_biz_no,
            "order_id": self.order_id,
            "amount": self.amount.to_decimal_string(),
            "identity_type": self.identity_type,
            "identity": self.identity,
            "status": self.status(now),
        }


class AlipayRoyalty(AlipayRefunds):
    """Royalty relations, settles and transfers (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receivers: dict[str, dict[tuple[str, str], RoyaltyReceiver]] = {}
        self._settles: dict[tuple[str, str, str], Settle] = {}
        self._royalty_finished: set[str] = set()
        self._transfers: dict[tuple[str, str], TransferOrder] = {}

    # -- inspection (control API, tests) --------------------------------------

    def royalty_receivers(self, app_id: str) -> list[RoyaltyReceiver]:
        with self._lock:
            return list(self._receivers.get(app_id, {}).values())

    def settles(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self._clock.now()
            return [s.to_json(now) for s in self._settles.values()]

    def transfers(self) -> list[dict[str, Any]]:
        with self._lock:
            self.settle_due_transfers()
            now = self._clock.now()
            return [t.to_json(now) for t in self._transfers.values()]

    def royalty_trades(self, app_id: str) -> list[dict[str, Any]]:
        """The app's paid trades made for royalty (``royalty_freeze``) or split: what is
        left to split, and what is still frozen (0 once finished)."""
        with self._lock:
            now = self._clock.now()
            split = {s.trade_no for s in self._settles.values() if s.app_id == app_id}
            found = []
            for trade in self._store.trades(CHANNEL):
                frozen = trade.extra.get("royalty_freeze") == "true"
                if trade.merchant_id != app_id or not (frozen or trade.trade_no in split):
                    continue
                left = self._splittable(trade.trade_no, trade.amount - trade.refunded, now)
                found.append(
                    {
                        "trade_no": trade.trade_no,
                        "out_trade_no": trade.out_trade_no,
                        "royalty_freeze": frozen,
                        "finished": trade.trade_no in self._royalty_finished,
                        "splittable": amount_text(max(left, Money.zero())),
                        "frozen": amount_text(max(left, Money.zero()) if frozen else Money.zero()),
                    }
                )
            return found

    def settle_due_transfers(self) -> None:
        """Give back the amount of transfers that failed after processing."""
        with self._lock:
            now = self._clock.now()
            for key, order in list(self._transfers.items()):
                if not order.returned and order.status(now) == "FAIL":
                    self.splits.credit(CHANNEL, order.app_id, order.amount)
                    self._transfers[key] = replace(order, returned=True)

    # -- relations ------------------------------------------------------------

    def _receiver_list(self, request: GatewayRequest, *, bind: bool) -> list[RoyaltyReceiver]:
        _request_no(request.biz, "out_request_no")
        items = request.biz.get("receiver_list")
        if not isinstance(items, list) or not items:
            raise bad_param("receiver_list不能为空")
        if len(items) > _MAX_RECEIVERS:
            raise bad_param(f"receiver_list最多{_MAX_RECEIVERS}个")
        found = []
        for item in items:
            if not isinstance(item, dict):
                raise bad_param("receiver_list格式错误")
            kind = biz_text(item, "type")
            account = biz_text(item, "account")
            if kind not in _RECEIVER_TYPES:
                raise bad_param("type只能是userId、loginName或openId")
            if not account or (kind == "userId" and not _USER_ID.fullmatch(account)):
                raise business_error("ACQ.USER_NOT_EXIST", "用户不存在")
            name = biz_text(item, "name") or None
            if bind and kind == "loginName" and not name:
                raise bad_param("type为loginName时name不能为空")
            if bind and not self.splits.name_matches(CHANNEL, account, name):
                raise business_error("ACQ.ROYALTY_RECEIVER_INVALID", "分账接收方姓名与账号不匹配")
            found.append(RoyaltyReceiver(kind, account, name, biz_text(item, "memo") or None))
        return found

    def _royalty_bind(self, request: GatewayRequest) -> dict[str, Any]:
        bound = self._receivers.setdefault(request.merchant.app_id, {})
        for receiver in self._receiver_list(request, bind=True):
            bound[(receiver.type, receiver.account)] = receiver
        return {"result_code": "SUCCESS"}

    def _royalty_unbind(self, request: GatewayRequest) -> dict[str, Any]:
        bound = self._receivers.setdefault(request.merchant.app_id, {})
        for receiver in self._receiver_list(request, bind=False):
            bound.pop((receiver.type, receiver.account), None)
        return {"result_code": "SUCCESS"}

    def _royalty_query(self, request: GatewayRequest) -> dict[str, Any]:
        _request_no(request.biz, "out_request_no")
        page = _positive(request.biz, "page_num", 1)
        size = _positive(request.biz, "page_size", 20)
        if size > 100:
            raise bad_param("page_size不能超过100")
        bound = list(self._receivers.get(request.merchant.app_id, {}).values())
        chunk = bound[(page - 1) * size : page * size]
        return {
            "result_code": "SUCCESS",
            "receiver_list": [r.to_json() for r in chunk],
            "total_page_num": (len(bound) + size - 1) // size,
            "total_record_num": len(bound),
            "current_page_num": page,
            "current_page_size": len(chunk),
        }

    # -- settle ---------------------------------------------------------------

    def _settle(self, request: GatewayRequest) -> dict[str, Any]:
        biz = request.biz
        app_id = request.merchant.app_id
        out_request_no = _request_no(biz, "out_request_no")
        trade_no = biz_text(biz, "trade_no")
        if not trade_no:
            raise bad_param("trade_no不能为空")
        extend = biz.get("extend_params")
        finish = isinstance(extend, dict) and extend.get("royalty_finish") == "true"
        params = biz.get("royalty_parameters")
        if params is None and finish:
            params = []  # 分账完结 alone: "也可不传入分账条款，只传入分账完结标识"
        if not isinstance(params, list) or not (params or finish):
            raise bad_param("royalty_parameters不能为空")
        trade = self._store.find(CHANNEL, app_id, trade_no=trade_no)
        if trade is None:
            raise business_error("ACQ.TRADE_NOT_EXIST", "交易不存在")
        content = _content(biz, ("royalty_parameters", "extend_params"))
        earlier = self._settles.get((app_id, trade_no, out_request_no))
        if earlier is not None:
            if earlier.content != content:
                raise business_error(
                    "ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求: 该分账请求号已用于另一请求"
                )
            return {"trade_no": trade_no, "settle_no": earlier.settle_no}
        if trade.state is not TradeState.PAID:
            raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        bound = self._receivers.get(app_id, {})
        now = self._clock.now()
        lines = []
        for index, item in enumerate(params, start=1):
            if not isinstance(item, dict):
                raise bad_param("royalty_parameters格式错误")
            royalty_type = biz_text(item, "royalty_type") or "transfer"
            if royalty_type != "transfer":
                raise bad_param("royalty_type只支持transfer")
            kind = biz_text(item, "trans_in_type") or "userId"
            account = biz_text(item, "trans_in")
            if kind not in _RECEIVER_TYPES or not account:
                raise bad_param("trans_in_type或trans_in无效")
            amount = biz_amount(item, "amount")
            if amount.is_zero():
                raise bad_param("amount必须大于0")
            receiver = bound.get((kind, account))
            name = biz_text(item, "trans_in_name") or None
            if (
                receiver is None
                or (name is not None and receiver.name is not None and name != receiver.name)
                or not self.splits.name_matches(CHANNEL, account, name)
            ):
                raise business_error(
                    "ACQ.ROYALTY_RECEIVER_INVALID", "分账接收方无效: 未绑定分账关系或信息不匹配"
                )
            detail_id = (
                f"{now.astimezone(CHINA_TZ):%Y%m%d}0{self._prefix}{self._serial:08d}{index:03d}"
            )
            lines.append(SettleLine(kind, account, amount, biz_text(item, "desc"), detail_id))
        total = sum((line.amount for line in lines), Money.zero())
        if total > self._splittable(trade.trade_no, trade.amount - trade.refunded, now):
            raise business_error("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", "分账金额超过可分账金额")
        fault = self.splits.faults.take(CHANNEL, app_id, "split")
        if fault is not None and fault.mode is SplitFaultMode.RECEIVER_NOT_BOUND:
            raise business_error(
                "ACQ.ROYALTY_RECEIVER_INVALID", "分账接收方无效: 未绑定分账关系或信息不匹配"
            )
        if finish and not lines and trade.trade_no in self._royalty_finished:
            raise business_error("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", "分账已完结，可分账金额为0")
        self._serial += 1
        settle = Settle(
            app_id=app_id,
            out_request_no=out_request_no,
            trade_no=trade_no,
            settle_no=f"{now.astimezone(CHINA_TZ):%Y%m%d}53{self._prefix}{self._serial:010d}",
            lines=tuple(lines),
            finish=finish,
            created_at=now,
            outcome=self.splits.outcome(fault, now),
            content=content,
        )
        self._settles[(app_id, trade_no, out_request_no)] = settle
        if finish:
            self._royalty_finished.add(trade_no)
        return {"trade_no": trade_no, "settle_no": settle.settle_no}

    def _splittable(self, trade_no: str, left: Money, now: datetime) -> Money:
        if trade_no in self._royalty_finished:
            return Money.zero()
        taken = sum(
            (s.moved(now) for s in self._settles.values() if s.trade_no == trade_no),
            Money.zero(),
        )
        return left - taken

    def _settle_query(self, request: GatewayRequest) -> dict[str, Any]:
        biz = request.biz
        app_id = request.merchant.app_id
        settle_no = biz_text(biz, "settle_no")
        out_request_no = biz_text(biz, "out_request_no")
        trade_no = biz_text(biz, "trade_no")
        if not settle_no and not (out_request_no and trade_no):
            raise bad_param("settle_no或out_request_no和trade_no不能同时为空")
        if settle_no:
            found = next(
                (
                    s
                    for s in self._settles.values()
                    if s.app_id == app_id and s.settle_no == settle_no
                ),
                None,
            )
        else:
            if self._store.find(CHANNEL, app_id, trade_no=trade_no) is None:
                raise business_error("ACQ.TRADE_NOT_EXIST", "交易不存在")
            found = self._settles.get((app_id, trade_no, out_request_no))
        if found is None:
            raise business_error("ACQ.SETTLE_NOT_EXIST", "分账请求不存在")
        now = self._clock.now()
        state = found.state(now)
        merchant = request.merchant
        details = []
        for line in found.lines:
            detail: dict[str, Any] = {
                "operation_type": "transfer",
                "execute_dt": format_time(found.created_at),
                "trans_out": merchant.seller_id,
                "trans_out_type": "userId",
                "trans_in": line.trans_in,
                "trans_in_type": line.trans_in_type,
                "amount": amount_text(line.amount),
                "state": state,
                "detail_id": line.detail_id,
            }
            if state == "FAIL":
                detail["error_code"], detail["error_desc"] = _SETTLE_FAIL
            details.append(detail)
        return {
            "out_request_no": found.out_request_no,
            "operation_dt": format_time(found.created_at),
            "royalty_detail_list": details,
        }

    # -- transfers ------------------------------------------------------------

    def _transfer(self, request: GatewayRequest) -> dict[str, Any]:
        biz = request.biz
        app_id = request.merchant.app_id
        out_biz_no = _request_no(biz, "out_biz_no")
        if biz_text(biz, "product_code") != "TRANS_ACCOUNT_NO_PWD":
            raise business_error("INVALID_PARAMETER", "参数有误: product_code")
        if biz_text(biz, "biz_scene") != "DIRECT_TRANSFER":
            raise business_error("INVALID_PARAMETER", "参数有误: biz_scene")
        amount = _fund_amount(biz, "trans_amount")
        payee = biz.get("payee_info")
        if not isinstance(payee, dict):
            raise business_error("INVALID_PARAMETER", "参数有误: payee_info不能为空")
        identity_type = biz_text(payee, "identity_type")
        identity = biz_text(payee, "identity")
        name = biz_text(payee, "name") or None
        if identity_type not in _PAYEE_TYPES or not identity:
            raise business_error("INVALID_PARAMETER", "参数有误: payee_info")
        content = _content(biz, ("trans_amount", "payee_info", "product_code", "biz_scene"))
        earlier = self._transfers.get((app_id, out_biz_no))
        if earlier is not None:
            if earlier.content != content:
                raise business_error(
                    "PAYMENT_INFO_INCONSISTENCY", "两次请求商户单号一样，但是参数不一致"
                )
            return self._transfer_answer(earlier)
        if amount < _MIN_TRANSFER:
            raise business_error("EXCEED_LIMIT_SM_MIN_AMOUNT", "单笔最低转账金额0.1元")
        if identity_type == "ALIPAY_USER_ID" and not _USER_ID.fullmatch(identity):
            raise business_error("PAYEE_NOT_EXIST", "收款账号不存在")
        if identity_type == "ALIPAY_LOGON_ID" and not name:
            raise business_error("PAYEE_USER_INFO_ERROR", _NAME_MISMATCH)
        fault = self.splits.faults.take(CHANNEL, app_id, "transfer")
        mode = fault.mode if fault is not None else None
        if mode is SplitFaultMode.UNVERIFIED_NAME or not self.splits.name_matches(
            CHANNEL, identity, name
        ):
            raise business_error("PAYEE_USER_INFO_ERROR", _NAME_MISMATCH)
        if mode is SplitFaultMode.INSUFFICIENT_BALANCE or not self.splits.draw(
            CHANNEL, app_id, amount
        ):
            raise business_error("PAYER_BALANCE_NOT_ENOUGH", "付款方余额不足")
        now = self._clock.now()
        self._serial += 1
        day = f"{now.astimezone(CHINA_TZ):%Y%m%d}"
        order = TransferOrder(
            app_id=app_id,
            out_biz_no=out_biz_no,
            order_id=f"{day}11{self._prefix}{self._serial:010d}",
            pay_fund_order_id=f"{day}12{self._prefix}{self._serial:010d}",
            amount=amount,
            identity_type=identity_type,
            identity=identity,
            created_at=now,
            outcome=self.splits.outcome(fault, now),
            content=content,
        )
        self._transfers[(app_id, out_biz_no)] = order
        return self._transfer_answer(order)

    def _transfer_answer(self, order: TransferOrder) -> dict[str, Any]:
        self.settle_due_transfers()
        status = order.status(self._clock.now())
        fields: dict[str, Any] = {
            "out_biz_no": order.out_biz_no,
            "order_id": order.order_id,
            "pay_fund_order_id": order.pay_fund_order_id,
            "status": status,
        }
        if status == "SUCCESS":
            fields["trans_date"] = format_time(order.outcome.due_at or order.created_at)
        return fields

    def _transfer_query(self, request: GatewayRequest) -> dict[str, Any]:
        biz = request.biz
        app_id = request.merchant.app_id
        out_biz_no = biz_text(biz, "out_biz_no")
        order_id = biz_text(biz, "order_id") or biz_text(biz, "pay_fund_order_id")
        if not out_biz_no and not order_id:
            raise business_error("INVALID_PARAMETER", "参数有误: out_biz_no和order_id不能同时为空")
        if out_biz_no:
            order = self._transfers.get((app_id, out_biz_no))
        else:
            order = next(
                (
                    t
                    for t in self._transfers.values()
                    if t.app_id == app_id and order_id in (t.order_id, t.pay_fund_order_id)
                ),
                None,
            )
        if order is None:
            raise business_error("ORDER_NOT_EXIST", "转账订单不存在")
        self.settle_due_transfers()
        order = self._transfers[(app_id, order.out_biz_no)]
        status = order.status(self._clock.now())
        fields: dict[str, Any] = {
            "order_id": order.order_id,
            "pay_fund_order_id": order.pay_fund_order_id,
            "out_biz_no": order.out_biz_no,
            "trans_amount": amount_text(order.amount),
            "status": status,
            "order_fee": "0.00",
        }
        if status == "SUCCESS":
            fields["pay_date"] = format_time(order.outcome.due_at or order.created_at)
        elif status == "FAIL":
            fields["error_code"], fields["fail_reason"] = _TRANSFER_FAIL
        return fields


def _request_no(biz: Mapping[str, object], name: str) -> str:
    value = biz_text(biz, name)
    if not value:
        raise bad_param(f"{name}不能为空")
    if not _REQUEST_NO.fullmatch(value):
        raise bad_param(f"{name}只能是32位以内的字母、数字或下划线")
    return value


def _positive(biz: Mapping[str, object], name: str, default: int) -> int:
    value = biz.get(name)
    if value is None:
        return default
    text = str(value)
    if not text.isdigit() or int(text) < 1:
        raise bad_param(f"{name}必须是正整数")
    return int(text)


def _fund_amount(biz: Mapping[str, object], name: str) -> Money:
    """Fund APIs answer bad amounts with their own (un-prefixed) codes."""
    try:
        return biz_amount(biz, name)
    except AlipayFailure:
        raise business_error("INVALID_PARAMETER", f"参数有误: {name}") from None


def _content(biz: Mapping[str, object], names: tuple[str, ...]) -> str:
    """What must match for a repeated request number to be the same request."""
    return json.dumps([biz.get(n) for n in names], sort_keys=True, ensure_ascii=False)
