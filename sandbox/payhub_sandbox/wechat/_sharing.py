"""WeChat Pay profit sharing (分账) and merchant transfers (商家转账), APIv3.

Profit sharing (``/v3/profitsharing/...``):

* ``receivers/add`` / ``receivers/delete``: who a merchant may split to
  (``MERCHANT_ID`` or ``PERSONAL_OPENID``; ``relation_type``, ``CUSTOM`` with
  ``custom_relation``). ``name`` (required for a merchant) is RSA-OAEP
  encrypted with the platform key the request names in ``Wechatpay-Serial``;
  the sandbox decrypts it with that key's private half.
* ``orders``: split a payment made with ``settle_info.profit_sharing = true``
  (others are refused), idempotent by ``out_order_no``; the receivers' total may
  not exceed what is unsplit (``NOT_ENOUGH``) nor 30 % of the payment (the
  default maximum ratio); a receiver not added is refused.
  ``unfreeze_unsplit = true`` gives the rest back to the merchant and ends
  splitting; so does ``orders/unfreeze``. ``GET orders/{out_order_no}``;
  ``GET transactions/{transaction_id}/amounts`` (``unsplit_amount``).
* ``return-orders`` (回退) from a merchant receiver, and their query.
* Each receiver that got money is notified (``PROFITSHARING.SUCCESS``, resource
  ``profitsharing``) at the payment's ``notify_url``, encrypted like payment
  notifications, through the delivery machinery.

Merchant transfers (``/v3/fund-app/mch-transfer/transfer-bills``, the current
API): a bill waits for the user to confirm (``WAIT_USER_CONFIRM`` with
``package_info``; :meth:`WechatSharing.confirm_transfer` is the user's tap;
unconfirmed for 24 hours, or cancelled by ``…/cancel``, it is ``CANCELLED``),
then ``TRANSFERING`` and ``SUCCESS`` / ``FAIL`` (notified
``MCHTRANSFER.BILL.FINISHED``, resource ``mch_payment``, to the bill's
``notify_url``). Bills draw on the merchant's balance (``NOT_ENOUGH``); a failed
or cancelled bill gives it back. A ``user_name`` that does not match the
openid's known name is refused.

Faults, balances and known names come from :class:`payhub_sandbox._splits.SplitBook`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payhub.money import Money
from payhub_sandbox._errors import InvalidInputError, TradeNotFoundError
from payhub_sandbox._splits import Outcome, SplitBook, SplitFault, SplitFaultMode
from payhub_sandbox._state import Trade, TradeState
from payhub_sandbox.wechat._api import (
    Answer,
    Call,
    body_param,
    fen_field,
    query_param,
    string_field,
    url_field,
)
from payhub_sandbox.wechat._core import CHANNEL, WechatCore
from payhub_sandbox.wechat._keys import WechatKeys
from payhub_sandbox.wechat._merchants import WechatMerchant
from payhub_sandbox.wechat._notifications import WechatNotifier
from payhub_sandbox.wechat._wire import WechatFailure, format_time

__all__ = ["MAX_RATIO", "ShareOrder", "SharingReceiver", "TransferBill", "WechatSharing"]

#: The default maximum share of a payment that may go to receivers (30 %).
MAX_RATIO: Final = Decimal("0.30")
_RECEIVER_TYPES: Final = frozenset({"MERCHANT_ID", "PERSONAL_OPENID"})
_RELATION_TYPES: Final = frozenset(
    {
        "SERVICE_PROVIDER",
        "STORE",
        "STAFF",
        "STORE_OWNER",
        "PARTNER",
        "HEADQUARTER",
        "BRAND",
        "DISTRIBUTOR",
        "USER",
        "SUPPLIER",
        "CUSTOM",
    }
)
_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}", re.ASCII)
_BILL_NO: Final = re.compile(r"[0-9A-Za-z]{5,32}", re.ASCII)
_MIN_TRANSFER: Final = 10  # fen
#: ``fail_reason`` of a receiver (or bill) that fails after "processing".
_SHARE_FAIL: Final = "ACCOUNT_ABNORMAL"
_TRANSFER_FAIL: Final = "ACCOUNT_FROZEN"
#: How long a transfer bill waits for the user to confirm before it is cancelled.
_CONFIRM_WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True)
class SharingReceiver:
    type: str
    account: str
    relation_type: str
    name: str | None = field(default=None, repr=False)
    custom_relation: str = ""


@dataclass(frozen=True)
class _Line:
    type: str
    account: str
    amount: int
    description: str
    detail_id: str
    #: the merchant's own line: the unfrozen rest (``description`` 解冻给分账方)
    unfreeze: bool = False


@dataclass(frozen=True)
class ShareOrder:
    mch_id: str
    transaction_id: str
    out_order_no: str
    order_id: str
    lines: tuple[_Line, ...]
    created_at: datetime
    outcome: Outcome
    content: str = field(repr=False)
    notified: bool = False

    def finished(self, now: datetime) -> bool:
        return self.outcome.settled(now)

    def moved(self, now: datetime) -> int:
        """Fen that left the unsplit amount (a failed receiver's share comes back)."""
        if self.finished(now) and not self.outcome.success:
            return sum(line.amount for line in self.lines if line.unfreeze)
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True)
class _Return:
    mch_id: str
    out_order_no: str
    order_id: str
    out_return_no: str
    return_id: str
    return_mchid: str
    amount: int
    description: str
    result: str
    fail_reason: str
    created_at: datetime
    content: str = field(repr=False)


@dataclass(frozen=True)
class TransferBill:
    mch_id: str
    appid: str
    out_bill_no: str
    transfer_bill_no: str
    openid: str
    amount: int
    remark: str
    notify_url: str
    created_at: datetime
    scene_id: str
    content: str = field(repr=False)
    state: str = "WAIT_USER_CONFIRM"
    fault: SplitFault | None = None
    outcome: Outcome | None = None
    updated_at: datetime | None = None
    fail_reason: str = ""
    package_info: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def to_json(self) -> dict[str, Any]:
        return {
            "mch_id": self.mch_id,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "openid": self.openid,
            "transfer_amount": self.amount,
            "state": self.state,
            "fail_reason": self.fail_reason or None,
        }


class WechatSharing:
    """Profit sharing and merchant transfers (see the module); the core's lock guards it."""

    def __init__(
        self, core: WechatCore, keys: WechatKeys, notifier: WechatNotifier, splits: SplitBook
    ) -> None:
        self._core = core
        self._keys = keys
        self._notifier = notifier
        self.splits = splits
        self._receivers: dict[str, dict[tuple[str, str], SharingReceiver]] = {}
        self._orders: dict[tuple[str, str], ShareOrder] = {}
        self._unfrozen: set[str] = set()
        self._returns: dict[tuple[str, str], _Return] = {}
        self._bills: dict[tuple[str, str], TransferBill] = {}

    # -- encrypted fields -------------------------------------------------------------

    def _decrypt(self, call: Call, ciphertext: str, where: str) -> str:
        """A field encrypted with the platform key ``Wechatpay-Serial`` names."""
        if not call.serial:
            raise WechatFailure(
                "PARAM_ERROR", "请求包含加密的敏感信息，但HTTP头缺少Wechatpay-Serial"
            )
        key = self._platform_private_key(call.merchant, call.serial)
        if key is None:
            raise WechatFailure("PARAM_ERROR", "Wechatpay-Serial对应的平台证书或公钥不存在")
        try:
            plain = key.decrypt(
                base64.b64decode(ciphertext, validate=True),
                padding.OAEP(
                    mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303 - WeChat's wire
                    algorithm=hashes.SHA1(),  # noqa: S303
                    label=None,
                ),
            )
            return plain.decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise body_param(
                where, None, "解密失败，请使用Wechatpay-Serial对应的公钥加密"
            ) from None

    def _platform_private_key(
        self, merchant: WechatMerchant, serial: str
    ) -> rsa.RSAPrivateKey | None:
        if serial == self._keys.public_key_id:
            return self._keys.wechatpay_key()
        for cert in self._keys.certificates():
            if cert.serial_no == serial.upper():
                return cert.key
        return None

    # -- receivers ---------------------------------------------------------------------

    def receivers(self, mch_id: str) -> list[SharingReceiver]:
        with self._core.lock:
            return list(self._receivers.get(mch_id, {}).values())

    def _appid(self, call: Call, data: dict[str, Any]) -> None:
        appid = string_field(data, "appid", "", max_len=32)
        if appid != call.merchant.app_id:
            raise WechatFailure("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")

    def add_receiver(self, call: Call) -> Answer:
        data = call.json()
        self._appid(call, data)
        kind = string_field(data, "type", "", max_len=32)
        if kind not in _RECEIVER_TYPES:
            raise body_param("/type", kind, "只能是MERCHANT_ID或PERSONAL_OPENID")
        account = string_field(data, "account", "", max_len=64)
        relation = string_field(data, "relation_type", "", max_len=32)
        if relation not in _RELATION_TYPES:
            raise body_param("/relation_type", relation, "不是有效的分账关系类型")
        custom = string_field(data, "custom_relation", "", required=False, max_len=10)
        if relation == "CUSTOM" and not custom:
            raise body_param("/custom_relation", None, "relation_type为CUSTOM时必填")
        encrypted = string_field(data, "name", "", required=kind == "MERCHANT_ID", max_len=1024)
        name = self._decrypt(call, encrypted, "/name") if encrypted else None
        if not self.splits.name_matches(CHANNEL, account, name):
            raise WechatFailure("INVALID_REQUEST", "分账接收方全称或姓名与账号不匹配")
        receiver = SharingReceiver(kind, account, relation, name, custom)
        self._receivers.setdefault(call.merchant.mch_id, {})[(kind, account)] = receiver
        answer: dict[str, Any] = {"type": kind, "account": account, "relation_type": relation}
        if custom:
            answer["custom_relation"] = custom
        return Answer(data=answer)

    def delete_receiver(self, call: Call) -> Answer:
        data = call.json()
        self._appid(call, data)
        kind = string_field(data, "type", "", max_len=32)
        if kind not in _RECEIVER_TYPES:
            raise body_param("/type", kind, "只能是MERCHANT_ID或PERSONAL_OPENID")
        account = string_field(data, "account", "", max_len=64)
        self._receivers.setdefault(call.merchant.mch_id, {}).pop((kind, account), None)
        return Answer(data={"type": kind, "account": account})

    # -- orders ------------------------------------------------------------------------

    def _trade(self, mch_id: str, transaction_id: str) -> Trade:
        trade = self._core.store.find(CHANNEL, mch_id, trade_no=transaction_id)
        if trade is None:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "订单不存在")
        return trade

    def unsplit(self, trade: Trade) -> int:
        """Fen of ``trade`` not yet split nor unfrozen (0 once splitting ended)."""
        if trade.trade_no in self._unfrozen:
            return 0
        now = self._core.now()
        taken = sum(
            o.moved(now) for o in self._orders.values() if o.transaction_id == trade.trade_no
        )
        return max(0, trade.amount.minor - trade.refunded.minor - taken)

    def create_order(self, call: Call) -> Answer:
        data = call.json()
        self._appid(call, data)
        mch_id = call.merchant.mch_id
        transaction_id = string_field(data, "transaction_id", "", max_len=32)
        out_order_no = string_field(data, "out_order_no", "", max_len=64)
        if not _NO.fullmatch(out_order_no):
            raise body_param("/out_order_no", out_order_no, "只能是数字、大小写字母_-|*@")
        unfreeze = data.get("unfreeze_unsplit")
        if not isinstance(unfreeze, bool):
            raise body_param("/unfreeze_unsplit", None, "字段缺失或不是布尔值")
        items = data.get("receivers")
        if not isinstance(items, list) or not 1 <= len(items) <= 50:
            raise body_param("/receivers", None, "必须是1到50个分账接收方")
        trade = self._trade(mch_id, transaction_id)
        content = json.dumps(
            [transaction_id, unfreeze, [_line_key(i) for i in items]], ensure_ascii=False
        )
        earlier = self._orders.get((mch_id, out_order_no))
        if earlier is not None:
            if earlier.content != content:
                raise WechatFailure("INVALID_REQUEST", "商户分账单号重复，且请求参数与原请求不一致")
            return Answer(data=self.order_json(earlier))
        if trade.state is not TradeState.PAID:
            raise WechatFailure("INVALID_REQUEST", "订单未支付成功，不能分账")
        if trade.extra.get("profit_sharing") != "true":
            raise WechatFailure(
                "INVALID_REQUEST",
                "该笔订单不支持分账，请在下单时传入settle_info.profit_sharing为true",
            )
        if trade.trade_no in self._unfrozen:
            raise WechatFailure("INVALID_REQUEST", "该笔订单已完成分账，剩余资金已解冻")
        bound = self._receivers.get(mch_id, {})
        now = self._core.now()
        lines = []
        for index, item in enumerate(items):
            where = f"/receivers/{index}"
            if not isinstance(item, dict):
                raise body_param(where, None, "必须是JSON对象")
            kind = string_field(item, "type", where, max_len=32)
            account = string_field(item, "account", where, max_len=64)
            amount = fen_field(item, "amount", where)
            description = string_field(item, "description", where, max_len=80)
            encrypted = string_field(item, "name", where, required=False, max_len=1024)
            name = self._decrypt(call, encrypted, f"{where}/name") if encrypted else None
            receiver = bound.get((kind, account))
            if receiver is None:
                raise WechatFailure("INVALID_REQUEST", "分账接收方不存在，请先添加分账接收方")
            if name is not None and receiver.name is not None and name != receiver.name:
                raise WechatFailure("INVALID_REQUEST", "分账接收方全称或姓名与账号不匹配")
            lines.append(_Line(kind, account, amount, description, self._core.number("3600", 8)))
        total = sum(line.amount for line in lines)
        left = self.unsplit(trade)
        if total > left:
            raise WechatFailure("NOT_ENOUGH", "分账金额超出可分账金额")
        cap = int(Decimal(trade.amount.minor) * MAX_RATIO)  # fen, toward zero: a cap
        already = trade.amount.minor - trade.refunded.minor - left
        if already + total > cap:
            raise WechatFailure("INVALID_REQUEST", "分账金额超出最大分账比例")
        fault = self.splits.faults.take(CHANNEL, mch_id, "split")
        if fault is not None and fault.mode is SplitFaultMode.RECEIVER_NOT_BOUND:
            raise WechatFailure("INVALID_REQUEST", "分账接收方不存在，请先添加分账接收方")
        if unfreeze and left - total > 0:
            lines.append(self._rest_line(mch_id, left - total))
        order = ShareOrder(
            mch_id=mch_id,
            transaction_id=transaction_id,
            out_order_no=out_order_no,
            order_id=self._core.number("3008", 10),
            lines=tuple(lines),
            created_at=now,
            outcome=self.splits.outcome(fault, now),
            content=content,
        )
        self._orders[(mch_id, out_order_no)] = order
        if unfreeze:
            self._unfrozen.add(transaction_id)
        self._notify_due()
        return Answer(data=self.order_json(self._orders[(mch_id, out_order_no)]))

    def _rest_line(self, mch_id: str, amount: int) -> _Line:
        return _Line(
            "MERCHANT_ID", mch_id, amount, "解冻给分账方", self._core.number("3600", 8), True
        )

    def unfreeze(self, call: Call) -> Answer:
        data = call.json()
        mch_id = call.merchant.mch_id
        transaction_id = string_field(data, "transaction_id", "", max_len=32)
        out_order_no = string_field(data, "out_order_no", "", max_len=64)
        description = string_field(data, "description", "", max_len=80)
        if not _NO.fullmatch(out_order_no):
            raise body_param("/out_order_no", out_order_no, "只能是数字、大小写字母_-|*@")
        trade = self._trade(mch_id, transaction_id)
        content = json.dumps(["unfreeze", transaction_id, description], ensure_ascii=False)
        earlier = self._orders.get((mch_id, out_order_no))
        if earlier is not None:
            if earlier.content != content:
                raise WechatFailure("INVALID_REQUEST", "商户分账单号重复，且请求参数与原请求不一致")
            return Answer(data=self.order_json(earlier))
        if trade.extra.get("profit_sharing") != "true":
            raise WechatFailure("INVALID_REQUEST", "该笔订单不支持分账")
        left = self.unsplit(trade)
        if left == 0:
            raise WechatFailure("INVALID_REQUEST", "该笔订单已完成分账，剩余资金已解冻")
        now = self._core.now()
        order = ShareOrder(
            mch_id=mch_id,
            transaction_id=transaction_id,
            out_order_no=out_order_no,
            order_id=self._core.number("3008", 10),
            lines=(self._rest_line(mch_id, left),),
            created_at=now,
            outcome=Outcome(),
            content=content,
        )
        self._orders[(mch_id, out_order_no)] = order
        self._unfrozen.add(transaction_id)
        return Answer(data=self.order_json(order))

    def query_order(self, call: Call) -> Answer:
        out_order_no = call.groups[0]
        transaction_id = call.query.get("transaction_id", "")
        if not transaction_id:
            raise query_param("transaction_id", "", "字段缺失")
        order = self._orders.get((call.merchant.mch_id, out_order_no))
        if order is None or order.transaction_id != transaction_id:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "记录不存在")
        self._notify_due()
        return Answer(data=self.order_json(self._orders[(call.merchant.mch_id, out_order_no)]))

    def amounts(self, call: Call) -> Answer:
        trade = self._trade(call.merchant.mch_id, call.groups[0])
        return Answer(
            data={"transaction_id": trade.trade_no, "unsplit_amount": self.unsplit(trade)}
        )

    def order_json(self, order: ShareOrder) -> dict[str, Any]:
        now = self._core.now()
        done = order.finished(now)
        receivers = []
        for line in order.lines:
            result = (
                "SUCCESS"
                if line.unfreeze or (done and order.outcome.success)
                else ("CLOSED" if done else "PENDING")
            )
            item: dict[str, Any] = {
                "amount": line.amount,
                "description": line.description,
                "type": line.type,
                "account": line.account,
                "result": result,
                "detail_id": line.detail_id,
                "create_time": format_time(order.created_at),
            }
            if result != "PENDING":
                item["finish_time"] = format_time(order.outcome.due_at or order.created_at)
            if result == "CLOSED":
                item["fail_reason"] = _SHARE_FAIL
            receivers.append(item)
        return {
            "transaction_id": order.transaction_id,
            "out_order_no": order.out_order_no,
            "order_id": order.order_id,
            "state": "FINISHED" if done else "PROCESSING",
            "receivers": receivers,
        }

    def orders(self) -> list[dict[str, Any]]:
        with self._core.lock:
            return [{"mch_id": o.mch_id, **self.order_json(o)} for o in self._orders.values()]

    # -- returns (回退) ----------------------------------------------------------------

    def create_return(self, call: Call) -> Answer:
        data = call.json()
        mch_id = call.merchant.mch_id
        out_order_no = string_field(data, "out_order_no", "", required=False, max_len=64)
        order_id = string_field(data, "order_id", "", required=False, max_len=64)
        out_return_no = string_field(data, "out_return_no", "", max_len=64)
        if not _NO.fullmatch(out_return_no):
            raise body_param("/out_return_no", out_return_no, "只能是数字、大小写字母_-|*@")
        return_mchid = string_field(data, "return_mchid", "", max_len=32)
        amount = fen_field(data, "amount", "")
        description = string_field(data, "description", "", max_len=80)
        if not out_order_no and not order_id:
            raise body_param("/out_order_no", None, "out_order_no和order_id必须填一个")
        order = (
            self._orders.get((mch_id, out_order_no))
            if out_order_no
            else next(
                (o for o in self._orders.values() if o.mch_id == mch_id and o.order_id == order_id),
                None,
            )
        )
        if order is None:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "分账单不存在")
        content = json.dumps([order.out_order_no, return_mchid, amount], ensure_ascii=False)
        earlier = self._returns.get((mch_id, out_return_no))
        if earlier is not None:
            if earlier.content != content:
                raise WechatFailure("INVALID_REQUEST", "商户回退单号重复，且请求参数与原请求不一致")
            return Answer(data=_return_json(earlier))
        now = self._core.now()
        if not order.finished(now) or not order.outcome.success:
            raise WechatFailure("INVALID_REQUEST", "分账单未分账成功，不能回退")
        got = sum(
            line.amount
            for line in order.lines
            if line.type == "MERCHANT_ID" and line.account == return_mchid and not line.unfreeze
        )
        if got == 0:
            raise WechatFailure("INVALID_REQUEST", "回退方不是该分账单的分账接收方")
        returned = sum(
            r.amount
            for r in self._returns.values()
            if r.mch_id == mch_id
            and r.out_order_no == order.out_order_no
            and r.return_mchid == return_mchid
            and r.result != "FAILED"
        )
        if amount > got - returned:
            raise WechatFailure("INVALID_REQUEST", "回退金额超出该接收方分得的金额")
        money = Money(amount)
        ok = self.splits.draw(CHANNEL, return_mchid, money)
        if ok:
            self.splits.credit(CHANNEL, mch_id, money)
        record = _Return(
            mch_id=mch_id,
            out_order_no=order.out_order_no,
            order_id=order.order_id,
            out_return_no=out_return_no,
            return_id=self._core.number("3008", 10),
            return_mchid=return_mchid,
            amount=amount,
            description=description,
            result="SUCCESS" if ok else "FAILED",
            fail_reason="" if ok else "BALANCE_NOT_ENOUGH",
            created_at=now,
            content=content,
        )
        self._returns[(mch_id, out_return_no)] = record
        return Answer(data=_return_json(record))

    def query_return(self, call: Call) -> Answer:
        out_return_no = call.groups[0]
        out_order_no = call.query.get("out_order_no", "")
        if not out_order_no:
            raise query_param("out_order_no", "", "字段缺失")
        found = self._returns.get((call.merchant.mch_id, out_return_no))
        if found is None or found.out_order_no != out_order_no:
            raise WechatFailure("RESOURCE_NOT_EXISTS", "记录不存在")
        return Answer(data=_return_json(found))

    # -- merchant transfers --------------------------------------------------------------

    def create_transfer(self, call: Call) -> Answer:
        data = call.json()
        self._appid(call, data)
        merchant = call.merchant
        out_bill_no = string_field(data, "out_bill_no", "", max_len=32)
        if not _BILL_NO.fullmatch(out_bill_no):
            raise body_param("/out_bill_no", out_bill_no, "只能是5到32位数字和大小写字母")
        scene = string_field(data, "transfer_scene_id", "", max_len=36)
        openid = string_field(data, "openid", "", max_len=64)
        amount = fen_field(data, "transfer_amount", "")
        remark = string_field(data, "transfer_remark", "", max_len=32)
        notify_url = url_field(data, "notify_url", "", required=False)
        infos = data.get("transfer_scene_report_infos")
        if not isinstance(infos, list) or not infos:
            raise body_param("/transfer_scene_report_infos", None, "转账场景报备信息必填")
        for index, info in enumerate(infos):
            where = f"/transfer_scene_report_infos/{index}"
            if not isinstance(info, dict):
                raise body_param(where, None, "必须是JSON对象")
            string_field(info, "info_type", where, max_len=15)
            string_field(info, "info_content", where, max_len=32)
        encrypted = string_field(data, "user_name", "", required=False, max_len=1024)
        content = json.dumps(
            [scene, openid, amount, remark, notify_url, bool(encrypted)], ensure_ascii=False
        )
        key = (merchant.mch_id, out_bill_no)
        earlier = self._bills.get(key)
        if earlier is not None:
            if earlier.content != content:
                raise WechatFailure("INVALID_REQUEST", "商户单号重复，且请求参数与原单不一致")
            return Answer(data=_bill_answer(self._advance(earlier)))
        if amount < _MIN_TRANSFER:
            raise body_param("/transfer_amount", amount, "单笔转账金额不能低于0.1元")
        if amount >= 200_000 and not encrypted:
            raise WechatFailure("PARAM_ERROR", "转账金额大于等于2000元时，收款用户姓名必填")
        name = self._decrypt(call, encrypted, "/user_name") if encrypted else None
        fault = self.splits.faults.take(CHANNEL, merchant.mch_id, "transfer")
        mode = fault.mode if fault is not None else None
        if mode is SplitFaultMode.UNVERIFIED_NAME or not self.splits.name_matches(
            CHANNEL, openid, name
        ):
            raise WechatFailure("INVALID_REQUEST", "收款用户姓名校验不通过，请核实收款用户姓名")
        if mode is SplitFaultMode.INSUFFICIENT_BALANCE or not self.splits.draw(
            CHANNEL, merchant.mch_id, Money(amount)
        ):
            raise WechatFailure("NOT_ENOUGH", "商户运营账户资金不足")
        now = self._core.now()
        bill = TransferBill(
            mch_id=merchant.mch_id,
            appid=merchant.app_id,
            out_bill_no=out_bill_no,
            transfer_bill_no=self._core.number("1330", 12),
            openid=openid,
            amount=amount,
            remark=remark,
            notify_url=notify_url,
            created_at=now,
            scene_id=scene,
            content=content,
            fault=fault,
            updated_at=now,
        )
        self._bills[key] = bill
        return Answer(data=_bill_answer(bill))

    def query_transfer(self, call: Call) -> Answer:
        bill = self._bills.get((call.merchant.mch_id, call.groups[0]))
        if bill is None:
            raise WechatFailure("NOT_FOUND", "记录不存在")
        bill = self._advance(bill)
        return Answer(data=_bill_json(bill))

    def bill(self, mch_id: str, out_bill_no: str) -> TransferBill:
        with self._core.lock:
            bill = self._bills.get((mch_id, out_bill_no))
            if bill is None:
                raise TradeNotFoundError(f"no WeChat transfer bill {out_bill_no!r}")
            return self._advance(bill)

    def bills(self) -> list[TransferBill]:
        with self._core.lock:
            return [self._advance(b) for b in list(self._bills.values())]

    def confirm_transfer(self, mch_id: str, out_bill_no: str) -> TransferBill:
        """The user confirms the bill in WeChat: ``TRANSFERING``, then its outcome
        (at once, or after the ``processing_*`` fault the bill took)."""
        with self._core.lock:
            bill = self.bill(mch_id, out_bill_no)
            if bill.state != "WAIT_USER_CONFIRM":
                raise InvalidInputError(f"transfer bill {out_bill_no} is {bill.state}")
            now = self._core.now()
            outcome = self.splits.outcome(bill.fault, now)
            bill = replace(bill, state="TRANSFERING", outcome=outcome, updated_at=now)
            self._bills[(mch_id, out_bill_no)] = bill
            return self._advance(bill)

    def cancel_transfer(self, call: Call) -> Answer:
        """``POST …/out-bill-no/{out_bill_no}/cancel``: only before the user confirmed;
        the bill is ``CANCELING`` in the answer, then ``CANCELLED`` (notified,
        the amount given back)."""
        key = (call.merchant.mch_id, call.groups[0])
        bill = self._bills.get(key)
        if bill is None:
            raise WechatFailure("NOT_FOUND", "记录不存在")
        bill = self._advance(bill)
        if bill.state not in ("WAIT_USER_CONFIRM", "CANCELLED"):
            raise WechatFailure("INVALID_REQUEST", f"转账单据状态为{bill.state}，不能撤销")
        now = self._core.now()
        if bill.state == "WAIT_USER_CONFIRM":
            bill = self._end(bill, "CANCELLED", now, "")
        return Answer(
            data={
                "out_bill_no": bill.out_bill_no,
                "transfer_bill_no": bill.transfer_bill_no,
                "state": "CANCELING",
                "update_time": format_time(bill.updated_at or now),
            }
        )

    def _advance(self, bill: TransferBill) -> TransferBill:
        """Settle a ``TRANSFERING`` bill whose time has come, or cancel one the user
        left unconfirmed for 24 hours (divided by the time factor) (notified; a
        failure gives the amount back)."""
        now = self._core.now()
        if bill.state == "WAIT_USER_CONFIRM":
            expires = bill.created_at + _CONFIRM_WINDOW / self._core.time_factor
            if now >= expires:
                return self._end(bill, "CANCELLED", expires, "")
            return bill
        if bill.state != "TRANSFERING" or bill.outcome is None:
            return bill
        if not bill.outcome.settled(now):
            return bill
        when = bill.outcome.due_at or now
        if bill.outcome.success:
            return self._end(bill, "SUCCESS", when, "")
        return self._end(bill, "FAIL", when, _TRANSFER_FAIL)

    def _end(self, bill: TransferBill, state: str, when: datetime, reason: str) -> TransferBill:
        """A bill reaches its final ``state``: stored, the amount given back unless it
        succeeded, ``MCHTRANSFER.BILL.FINISHED`` scheduled."""
        bill = replace(bill, state=state, fail_reason=reason, updated_at=when)
        if state != "SUCCESS":
            self.splits.credit(CHANNEL, bill.mch_id, Money(bill.amount))
        self._bills[(bill.mch_id, bill.out_bill_no)] = bill
        if bill.notify_url:
            self._notifier.event(
                self._core.merchant(bill.mch_id),
                bill.transfer_bill_no,
                url=bill.notify_url,
                event_type="MCHTRANSFER.BILL.FINISHED",
                summary="商家转账单据终态通知",
                original_type="mch_payment",
                resource=_bill_notice(bill),
                neutral_type="transfer",
            )
        return bill

    # -- time passing --------------------------------------------------------------------

    def settle_due(self) -> None:
        """Finish what is due: transfer bills, and notify split receivers."""
        with self._core.lock:
            for bill in list(self._bills.values()):
                self._advance(bill)
            self._notify_due()

    def _notify_due(self) -> None:
        now = self._core.now()
        for key, order in list(self._orders.items()):
            if order.notified or not order.finished(now):
                continue
            self._orders[key] = replace(order, notified=True)
            if not order.outcome.success:
                continue
            trade = self._core.store.find(CHANNEL, order.mch_id, trade_no=order.transaction_id)
            if trade is None or not trade.notify_url:
                continue
            merchant = self._core.merchant(order.mch_id)
            for line in order.lines:
                if line.unfreeze:
                    continue
                self._notifier.event(
                    merchant,
                    order.transaction_id,
                    url=trade.notify_url,
                    event_type="PROFITSHARING.SUCCESS",
                    summary="分账动账成功",
                    original_type="profitsharing",
                    neutral_type="split",
                    resource={
                        "mchid": order.mch_id,
                        "transaction_id": order.transaction_id,
                        "order_id": order.order_id,
                        "out_order_no": order.out_order_no,
                        "receiver": {
                            "type": line.type,
                            "account": line.account,
                            "amount": line.amount,
                            "description": line.description,
                        },
                        "success_time": format_time(order.outcome.due_at or order.created_at),
                    },
                )


def _line_key(item: object) -> object:
    """A receiver line as it counts for idempotency (the name's ciphertext differs
    on every encryption, so only whether one was given)."""
    if not isinstance(item, dict):
        return item
    return {k: (bool(v) if k == "name" else v) for k, v in sorted(item.items())}


def _return_json(record: _Return) -> dict[str, Any]:
    data: dict[str, Any] = {
        "order_id": record.order_id,
        "out_order_no": record.out_order_no,
        "out_return_no": record.out_return_no,
        "return_id": record.return_id,
        "return_mchid": record.return_mchid,
        "amount": record.amount,
        "description": record.description,
        "result": record.result,
        "create_time": format_time(record.created_at),
        "finish_time": format_time(record.created_at),
    }
    if record.fail_reason:
        data["fail_reason"] = record.fail_reason
    return data


def _bill_answer(bill: TransferBill) -> dict[str, Any]:
    data: dict[str, Any] = {
        "out_bill_no": bill.out_bill_no,
        "transfer_bill_no": bill.transfer_bill_no,
        "create_time": format_time(bill.created_at),
        "state": bill.state,
    }
    if bill.state == "WAIT_USER_CONFIRM":
        data["package_info"] = bill.package_info
    if bill.fail_reason:
        data["fail_reason"] = bill.fail_reason
    return data


def _bill_notice(bill: TransferBill) -> dict[str, Any]:
    """The resource of ``MCHTRANSFER.BILL.FINISHED`` (``mchid``, unlike the query's ``mch_id``)."""
    data: dict[str, Any] = {
        "mchid": bill.mch_id,
        "appid": bill.appid,
        "out_bill_no": bill.out_bill_no,
        "transfer_bill_no": bill.transfer_bill_no,
        "transfer_scene_id": bill.scene_id,
        "openid": bill.openid,
        "transfer_amount": bill.amount,
        "transfer_remark": bill.remark,
        "state": bill.state,
        "create_time": format_time(bill.created_at),
        "update_time": format_time(bill.updated_at or bill.created_at),
    }
    if bill.fail_reason:
        data["fail_reason"] = bill.fail_reason
    return data


def _bill_json(bill: TransferBill) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mch_id": bill.mch_id,
        "out_bill_no": bill.out_bill_no,
        "transfer_bill_no": bill.transfer_bill_no,
        "appid": bill.appid,
        "state": bill.state,
        "transfer_amount": bill.amount,
        "transfer_remark": bill.remark,
        "openid": bill.openid,
        "create_time": format_time(bill.created_at),
        "update_time": format_time(bill.updated_at or bill.created_at),
    }
    if bill.fail_reason:
        data["fail_reason"] = bill.fail_reason
    return data
