"""An EPay provider in memory: merchants, orders, refunds, notifications and their faults.

It speaks 彩虹易支付's classic protocol from the provider's side and builds and
parses that wire format itself (only ``payhub.signing``'s MD5 is shared), so
a misreading in the payhub-epay channel is not mirrored here.

Notifications follow 彩虹易支付: a GET of ``notify_url`` with the signed
fields appended as a query string (``POST`` form on request), acknowledged by
a body containing ``success``; resent after 1, 3, 20, 60 and 120 minutes
(divided by ``time_factor``).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from payhub.signing import constant_time_equals, md5_hex

__all__ = [
    "EPAY_RETRY_DELAYS",
    "EpayDelivery",
    "EpayFault",
    "EpayMerchant",
    "EpayOrder",
    "EpaySandboxError",
    "EpaySimulator",
    "php_money",
]

#: 彩虹易支付's resend schedule after a failed notification, in seconds.
EPAY_RETRY_DELAYS: tuple[float, ...] = (60, 180, 1200, 3600, 7200)
_SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_ORDER_NO = re.compile(r"[a-zA-Z0-9._\-|]+")
_MONEY = re.compile(r"[0-9.]+")
_NOTIFY_ORDER = ("pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status")

FaultKind = Literal[
    "drop",  # the first N attempts never reach the shop
    "duplicate",  # every attempt is sent N times
    "delay",  # the first attempt waits N seconds more
    "replay",  # after the acknowledgement, the same bytes again N seconds later
    "bad_sign",  # the sign is altered (one hex digit)
    "unsigned",  # sign and sign_type are removed
    "upper_sign",  # the sign is sent in capitals (a clone's habit; still valid)
    "tamper_money",  # money is changed after signing
    "other_pid",  # signed correctly by another merchant of the provider
    "no_param",  # param is left out (old versions never echo it)
]


class EpaySandboxError(Exception):
    """A request the provider refuses; ``code`` is the provider's JSON code."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class EpayMerchant:
    pid: str
    key: str
    refund_enabled: bool = True
    notify_method: Literal["GET", "POST"] = "GET"


@dataclass
class EpayOrder:
    trade_no: str
    pid: str
    out_trade_no: str
    type: str
    name: str
    money: Decimal
    notify_url: str
    return_url: str
    param: str
    clientip: str
    created_at: datetime
    status: int = 0  # 0 unpaid, 1 paid, 2 refunded
    paid_at: datetime | None = None
    refunded: Decimal = Decimal(0)
    buyer: str = ""

    def as_query_answer(self) -> dict[str, Any]:
        return {
            "code": 1,
            "msg": "succ",
            "trade_no": self.trade_no,
            "out_trade_no": self.out_trade_no,
            "api_trade_no": "",
            "type": self.type,
            "pid": int(self.pid),
            "addtime": _cst(self.created_at),
            "endtime": _cst(self.paid_at) if self.paid_at else None,
            "name": self.name,
            "money": f"{self.money:.2f}",
            "param": self.param,
            "buyer": self.buyer,
            "status": self.status,
        }


@dataclass
class EpayFault:
    kind: FaultKind
    count: int = 1
    seconds: float = 0.0
    out_trade_no: str | None = None  #: only this order's notifications; None: all
    used: int = 0


@dataclass
class EpayDelivery:
    """One attempt to deliver one notification (a copy of it, for duplicates)."""

    trade_no: str
    number: int
    method: str
    url: str
    body: bytes
    at: datetime
    status_code: int | None
    response: str
    acknowledged: bool
    effects: tuple[str, ...] = ()


@dataclass
class _Outbound:
    trade_no: str
    fields: dict[str, str]
    faults: list[EpayFault]
    next_at: datetime | None
    attempts: int = 0
    done: bool = False
    replay_at: datetime | None = None
    replayed: int = 0
    sent_bytes: list[tuple[str, bytes]] = field(default_factory=list)


def php_money(amount: Decimal) -> str:
    """The amount as 彩虹易支付 prints it in notifications: PHP's ``(float)``
    cast, so ``1.50`` is ``1.5`` and ``2.00`` is ``2``."""
    text = f"{amount:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def _cst(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(_SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _to_sign(params: Mapping[str, str]) -> str:
    pairs = sorted(
        (k, v) for k, v in params.items() if k not in ("sign", "sign_type") and v.strip() != ""
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


class EpaySimulator:
    """The provider: thread-safe, driven by ``clock`` (any object with ``now()``)."""

    def __init__(
        self,
        *,
        clock: Any = None,
        time_factor: float = 1.0,
        notify_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._now: Callable[[], datetime] = (
            clock.now if clock is not None else (lambda: datetime.now(UTC))
        )
        self.time_factor = float(time_factor)
        self._transport = notify_transport
        self._lock = threading.RLock()
        self._merchants: dict[str, EpayMerchant] = {}
        self._orders: dict[str, EpayOrder] = {}
        self._by_out: dict[tuple[str, str], str] = {}
        self._outbound: list[_Outbound] = []
        self._faults: list[EpayFault] = []
        self.deliveries: list[EpayDelivery] = []
        self._serial = itertools.count(10001)

    # -- merchants and faults ---------------------------------------------

    def add_merchant(
        self,
        pid: str,
        key: str,
        *,
        refund_enabled: bool = True,
        notify_method: Literal["GET", "POST"] = "GET",
    ) -> EpayMerchant:
        merchant = EpayMerchant(pid, key, refund_enabled, notify_method)
        with self._lock:
            self._merchants[pid] = merchant
        return merchant

    def add_fault(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        seconds: float = 0.0,
        out_trade_no: str | None = None,
    ) -> EpayFault:
        fault = EpayFault(kind, count, seconds, out_trade_no)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- signing ----------------------------------------------------------

    def _merchant(self, pid: str) -> EpayMerchant:
        merchant = self._merchants.get(pid)
        if merchant is None:
            raise EpaySandboxError("商户不存在！", -3)
        return merchant

    def sign(self, pid: str, params: Mapping[str, str]) -> str:
        return md5_hex((_to_sign(params) + self._merchant(pid).key).encode("utf-8"))

    def _check_sign(self, params: Mapping[str, str]) -> EpayMerchant:
        merchant = self._merchant(params.get("pid", ""))
        if params.get("sign_type", "MD5") != "MD5":
            raise EpaySandboxError("该商户只能使用MD5签名类型", -3)
        sign = params.get("sign", "")
        if not sign or not constant_time_equals(sign, self.sign(merchant.pid, params)):
            raise EpaySandboxError("MD5签名校验失败", -3)
        return merchant

    def _check_key(self, pid: str, key: str) -> EpayMerchant:
        merchant = self._merchant(pid)
        if not constant_time_equals(key, merchant.key):
            raise EpaySandboxError("商户密钥错误", -3)
        return merchant

    # -- orders -----------------------------------------------------------

    def create_order(self, params: Mapping[str, str], *, api: bool) -> EpayOrder:
        """``submit.php`` (``api=False``) or ``mapi.php`` (``api=True``)."""
        merchant = self._check_sign(params)
        out_trade_no = params.get("out_trade_no", "")
        money_text = params.get("money", "")
        required = ["out_trade_no", "notify_url", "name", "money", "type"]
        required += ["clientip"] if api else ["return_url"]
        for name in required:
            if not params.get(name):
                raise EpaySandboxError(f"{name}不能为空")
        if not _ORDER_NO.fullmatch(out_trade_no):
            raise EpaySandboxError("订单号(out_trade_no)格式不正确")
        try:
            money = Decimal(money_text) if _MONEY.fullmatch(money_text) else Decimal(0)
        except InvalidOperation:
            money = Decimal(0)
        if money <= 0:
            raise EpaySandboxError("金额不合法")
        name = params["name"].encode("utf-8")[:127].decode("utf-8", "ignore")
        with self._lock:
            existing = self._by_out.get((merchant.pid, out_trade_no))
            if existing is not None:
                old = self._orders[existing]
                if old.status > 0:
                    raise EpaySandboxError(f"该订单({out_trade_no})已完成支付，请勿重复发起支付")
                same = (
                    old.money == money
                    and old.name == name
                    and old.notify_url == params["notify_url"]
                    and old.return_url == params.get("return_url", "")
                    and old.param == params.get("param", "")
                )
                if not same:
                    raise EpaySandboxError(
                        f"该订单({out_trade_no})支付参数有变化，请更换订单号重新发起支付"
                    )
                return old
            now = self._now()
            trade_no = now.astimezone(_SHANGHAI).strftime("%Y%m%d%H%M%S") + str(next(self._serial))
            order = EpayOrder(
                trade_no=trade_no,
                pid=merchant.pid,
                out_trade_no=out_trade_no,
                type=params["type"],
                name=name,
                money=money,
                notify_url=params["notify_url"],
                return_url=params.get("return_url", ""),
                param=params.get("param", ""),
                clientip=params.get("clientip", ""),
                created_at=now,
            )
            self._orders[trade_no] = order
            self._by_out[(merchant.pid, out_trade_no)] = trade_no
            return order

    def order(self, trade_no: str) -> EpayOrder:
        with self._lock:
            found = self._orders.get(trade_no)
        if found is None:
            raise EpaySandboxError("订单号不存在")
        return found

    def order_by_out(self, pid: str, out_trade_no: str) -> EpayOrder:
        with self._lock:
            trade_no = self._by_out.get((pid, out_trade_no))
        if trade_no is None:
            raise EpaySandboxError("订单号不存在")
        return self.order(trade_no)

    def orders(self) -> list[EpayOrder]:
        with self._lock:
            return list(self._orders.values())

    def pay(self, trade_no: str, *, buyer: str = "2088000000000001") -> EpayOrder:
        """The buyer pays at the cashier: the order is paid and notified."""
        with self._lock:
            order = self.order(trade_no)
            if order.status == 0:
                order.status = 1
                order.paid_at = self._now()
                order.buyer = buyer
                self._schedule(order)
            return order

    def notify_again(self, trade_no: str) -> None:
        """The merchant's "补单" (resend) button: a fresh delivery of the same event."""
        with self._lock:
            order = self.order(trade_no)
            if order.status < 1:
                raise EpaySandboxError("订单未支付")
            self._schedule(order)

    def query(self, pid: str, key: str, out_trade_no: str | None, trade_no: str | None) -> Any:
        merchant = self._check_key(pid, key)
        if trade_no:
            order = self.order(trade_no)
            if order.pid != merchant.pid:
                raise EpaySandboxError("订单号不存在")
        elif out_trade_no:
            order = self.order_by_out(merchant.pid, out_trade_no)
        else:
            raise EpaySandboxError("订单号不能为空", -4)
        return order.as_query_answer()

    def refund(self, pid: str, key: str, out_trade_no: str, money_text: str) -> dict[str, Any]:
        merchant = self._check_key(pid, key)
        if not merchant.refund_enabled:
            raise EpaySandboxError("商户未开启订单退款API接口", -2)
        if not _MONEY.fullmatch(money_text or ""):
            raise EpaySandboxError("金额输入错误")
        money = Decimal(money_text)
        with self._lock:
            order = self.order_by_out(merchant.pid, out_trade_no)
            if order.status != 1:
                raise EpaySandboxError("当前订单不是已支付状态")
            if money <= 0 or order.refunded + money > order.money:
                raise EpaySandboxError("退款金额不能大于订单金额")
            order.refunded += money
            if order.refunded == order.money:
                order.status = 2
        return {"code": 0, "msg": f"退款成功！退款金额￥{money:.2f}", "money": f"{money:.2f}"}

    # -- notifications ----------------------------------------------------

    def notification_fields(self, order: EpayOrder, *, pid: str | None = None) -> dict[str, str]:
        """The signed fields of ``order``'s notification (signed by ``pid``'s key)."""
        fields = {
            "pid": order.pid if pid is None else pid,
            "trade_no": order.trade_no,
            "out_trade_no": order.out_trade_no,
            "type": order.type,
            "name": order.name,
            "money": php_money(order.money),
            "trade_status": "TRADE_SUCCESS",
        }
        if order.param:
            fields["param"] = order.param
        fields["sign"] = self.sign(fields["pid"], fields)
        fields["sign_type"] = "MD5"
        return fields

    def return_url_for(self, order: EpayOrder) -> str:
        query = urlencode(self.notification_fields(order))
        joiner = "&" if "?" in order.return_url else "?"
        return f"{order.return_url}{joiner}{query}"

    def _schedule(self, order: EpayOrder) -> None:
        faults = [
            f
            for f in self._faults
            if f.used < max(f.count, 1) and f.out_trade_no in (None, order.out_trade_no)
        ]
        fields = self.notification_fields(order)
        effects_now = []
        for fault in faults:
            if fault.kind == "other_pid":
                other = next((p for p in self._merchants if p != order.pid), None)
                if other is not None:
                    fields = self.notification_fields(order, pid=other)
                    effects_now.append(fault)
        for fault in effects_now:
            fault.used += 1
            faults.remove(fault)
        delay = sum(f.seconds for f in faults if f.kind == "delay")
        self._outbound.append(
            _Outbound(
                trade_no=order.trade_no,
                fields=fields,
                faults=faults,
                next_at=self._now() + timedelta(seconds=delay),
            )
        )

    def _wire(self, out: _Outbound, effects: list[str]) -> dict[str, str]:
        fields = dict(out.fields)
        for fault in out.faults:
            if fault.used >= fault.count:
                continue
            if fault.kind == "bad_sign":
                sign = fields["sign"]
                fields["sign"] = ("0" if sign[0] != "0" else "1") + sign[1:]
            elif fault.kind == "unsigned":
                fields.pop("sign", None)
                fields.pop("sign_type", None)
            elif fault.kind == "upper_sign":
                fields["sign"] = fields["sign"].upper()
            elif fault.kind == "tamper_money":
                fields["money"] = php_money(Decimal(fields["money"]) + Decimal("0.01"))
            elif fault.kind == "no_param":
                fields.pop("param", None)
            else:
                continue
            fault.used += 1
            effects.append(fault.kind)
        return fields

    def _http(self) -> httpx.Client:
        return httpx.Client(transport=self._transport, timeout=10.0, follow_redirects=False)

    def deliver_due(self, *, force: bool = False) -> list[EpayDelivery]:
        """Send every notification due on the clock (every pending one with ``force``)."""
        made: list[EpayDelivery] = []
        now = self._now()
        with self._lock:
            due = [
                o
                for o in self._outbound
                if (not o.done and o.next_at is not None and (force or o.next_at <= now))
                or (o.replay_at is not None and (force or o.replay_at <= now))
            ]
        with self._http() as client:
            for out in due:
                made.extend(self._attempt(client, out, now))
        with self._lock:
            self.deliveries.extend(made)
        return made

    def _attempt(self, client: httpx.Client, out: _Outbound, now: datetime) -> list[EpayDelivery]:
        order = self.order(out.trade_no)
        merchant = self._merchant(order.pid)
        replay = out.done and out.replay_at is not None
        effects: list[str] = ["replay"] if replay else []
        with self._lock:
            if replay:
                method, body = out.sent_bytes[-1]
                out.replay_at = None
                out.replayed += 1
            else:
                method = merchant.notify_method
                body = urlencode(self._wire(out, effects)).encode("ascii")
                out.sent_bytes.append((method, body))
            drop = next(
                (f for f in out.faults if f.kind == "drop" and f.used < f.count and not replay),
                None,
            )
            copies = 1
            for fault in out.faults:
                if fault.kind == "duplicate" and not replay:
                    copies = max(copies, fault.count + 1)
            if drop is not None:
                drop.used += 1
                effects.append("dropped")
            out.attempts += 0 if replay else 1
            number = out.attempts
        results: list[EpayDelivery] = []
        for _ in range(0 if drop is not None else copies):
            results.append(self._send(client, order, method, body, number, now, effects))
        if drop is not None:
            results.append(
                EpayDelivery(
                    order.trade_no,
                    number,
                    method,
                    order.notify_url,
                    body,
                    now,
                    None,
                    "",
                    False,
                    tuple(effects),
                )
            )
        acknowledged = any(r.acknowledged for r in results)
        with self._lock:
            if replay:
                return results
            if acknowledged:
                out.done = True
                replay_fault = next(
                    (f for f in out.faults if f.kind == "replay" and f.used < f.count), None
                )
                if replay_fault is not None:
                    replay_fault.used += 1
                    out.replay_at = now + timedelta(seconds=replay_fault.seconds)
            elif out.attempts > len(EPAY_RETRY_DELAYS):
                out.done = True
            else:
                wait = EPAY_RETRY_DELAYS[out.attempts - 1] / self.time_factor
                out.next_at = now + timedelta(seconds=wait)
        return results

    def _send(  # noqa: PLR0917 - one attempt's whole context, private
        self,
        client: httpx.Client,
        order: EpayOrder,
        method: str,
        body: bytes,
        number: int,
        now: datetime,
        effects: list[str],
    ) -> EpayDelivery:
        url = order.notify_url
        try:
            if method == "GET":
                url = f"{url}{'&' if '?' in url else '?'}{body.decode('ascii')}"
                response = client.get(url)
            else:
                response = client.post(
                    url,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            text = response.text[:2000]
            # 彩虹易支付's do_notify(): "success" in any of three spellings, anywhere.
            acknowledged = any(word in text for word in ("success", "SUCCESS", "Success"))
            status: int | None = response.status_code
        except httpx.HTTPError as exc:
            text, acknowledged, status = f"{type(exc).__name__}: {exc}", False, None
        return EpayDelivery(
            order.trade_no,
            number,
            method,
            url,
            body,
            now,
            status,
            text,
            acknowledged,
            tuple(effects),
        )

    def pending(self) -> int:
        with self._lock:
            return sum(1 for o in self._outbound if not o.done or o.replay_at is not None)
