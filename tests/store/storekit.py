"""A toy channel and an in-memory bank for the store tests.

The toy channel speaks a small JSON protocol signed with HMAC-SHA256 (header
``X-Toy-Signature``); the bank answers it through ``httpx.MockTransport`` and can
be told to fail (busy, time out, refuse). Everything here is importable from a
spawned process, so the multi-process tests use it too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import httpx

from payhub import (
    Ack,
    ChannelError,
    ErrorCode,
    Money,
    Notification,
    NotificationKind,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    PayMethod,
    ProtocolError,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ResultKind,
    ReturnInfo,
    SignatureError,
    hookimpl,
)
from payhub.channels import Channel, Flow

SECRET = b"toy-secret"


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def notification(
    out_trade_no: str,
    *,
    channel: str = "toy-a",
    kind: str = "payment",
    amount: int = 1000,
    currency: str = "CNY",
    trade_id: str | None = None,
    event_key: str | None = None,
    refund_amount: int | None = None,
    refunded_total: int | None = None,
    out_refund_no: str | None = None,
    paid_at: datetime | None = None,
    secret: bytes = SECRET,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a signed toy notification."""
    status = {
        "payment": "paid",
        "refund": "paid",
        "refund_failed": "paid",
        "closed": "closed",
        "finished": "finished",
        "pending": "pending",
    }[kind]
    body = json.dumps(
        {
            "channel": channel,
            "kind": kind,
            "status": status,
            "out_trade_no": out_trade_no,
            "trade_id": trade_id or f"{channel}-T-{out_trade_no}",
            "amount": amount,
            "currency": currency,
            "event_key": event_key or f"{kind}-{out_trade_no}-{out_refund_no or ''}",
            "refund_amount": refund_amount,
            "refunded_total": refunded_total,
            "out_refund_no": out_refund_no,
            "paid_at": None if paid_at is None else paid_at.isoformat(),
        },
        sort_keys=True,
    ).encode()
    return {"X-Toy-Signature": sign(body, secret), "Content-Type": "application/json"}, body


class ToyChannel(Channel):
    kind: ClassVar[str] = "toy"
    methods: ClassVar[frozenset[PayMethod]] = frozenset({PayMethod.QR, PayMethod.PAGE})

    def __init__(self, name: str, secret: bytes = SECRET) -> None:
        super().__init__(name)
        self._secret = secret
        self.base = f"https://{name}.toy.test"
        #: (out_trade_no, context) of every query, as the hub passed it (None: not passed)
        self.queried: list[tuple[str, dict[str, str] | None]] = []

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name, str(config.get("secret", SECRET.decode())).encode())

    def _post(self, path: str, payload: dict[str, Any]) -> httpx.Request:
        return httpx.Request("POST", f"{self.base}{path}", json=payload)

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 500:
            raise ChannelError(
                f"{self.name}: busy", channel=self.name, code=ErrorCode.CHANNEL_UNAVAILABLE
            )
        try:
            data: dict[str, Any] = response.json()
        except ValueError:
            raise ProtocolError(f"{self.name}: not JSON") from None
        if response.status_code >= 400:
            code = ErrorCode[data.get("code", "CHANNEL_ERROR")]
            raise ChannelError(
                f"{self.name}: {data.get('message', 'refused')}",
                channel=self.name,
                channel_code=data.get("code"),
                code=code,
            )
        return data

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        data = self._answer(
            (
                yield self._post(
                    "/pay",
                    {
                        "out_trade_no": request.out_trade_no,
                        "amount": request.amount.minor,
                        "currency": request.amount.currency,
                    },
                )
            )
        )
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.QR,
            qr_code=data["qr"],
            channel_trade_id=data["trade_id"],
            channel_context={"opened_by": self.name},
        )

    def query(
        self, out_trade_no: str, *, context: Mapping[str, str] | None = None
    ) -> Flow[PaymentQueryResult]:
        self.queried.append((out_trade_no, None if context is None else dict(context)))
        data = self._answer((yield self._post("/query", {"out_trade_no": out_trade_no})))
        return PaymentQueryResult(
            channel=self.name,
            out_trade_no=out_trade_no,
            status=PaymentStatus(data["status"]),
            amount=Money(data["amount"], data["currency"]),
            channel_trade_id=data["trade_id"],
        )

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        data = self._answer(
            (
                yield self._post(
                    "/refund",
                    {
                        "out_trade_no": request.out_trade_no,
                        "out_refund_no": request.out_refund_no,
                        "amount": request.amount.minor,
                        "context": request.refund_context,
                    },
                )
            )
        )
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=RefundStatus(data["status"]),
            amount=request.amount,
            channel_refund_id=data.get("refund_id"),
        )

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        data = self._answer(
            (
                yield self._post(
                    "/refund_query",
                    {
                        "out_trade_no": request.out_trade_no,
                        "out_refund_no": request.out_refund_no,
                        "context": request.refund_context,
                    },
                )
            )
        )
        amount = data.get("amount")
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=RefundStatus(data["status"]),
            amount=None if amount is None else Money(amount, data["currency"]),
            channel_refund_id=data.get("refund_id"),
        )

    def close(self, out_trade_no: str) -> Flow[None]:
        self._answer((yield self._post("/close", {"out_trade_no": out_trade_no})))

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        given = headers.get("X-Toy-Signature", "")
        if not hmac.compare_digest(given, sign(body, self._secret)):
            raise SignatureError(f"{self.name}: signature does not verify")
        data = json.loads(body)
        refund = data.get("refund_amount")
        total = data.get("refunded_total")
        paid_at = data.get("paid_at")
        return Notification(
            channel=self.name,
            kind=NotificationKind(data["kind"]),
            out_trade_no=data["out_trade_no"],
            channel_trade_id=data["trade_id"],
            amount=Money(data["amount"], data["currency"]),
            status=PaymentStatus(data["status"]),
            event_key=data["event_key"],
            refund_amount=None if refund is None else Money(refund, data["currency"]),
            refunded_total=None if total is None else Money(total, data["currency"]),
            out_refund_no=data.get("out_refund_no"),
            occurred_at=None if paid_at is None else datetime.fromisoformat(paid_at),
            raw=data,
            raw_body=body,
        )

    def ack(self, ok: bool, message: str = "") -> Ack:
        return Ack(
            status_code=200 if ok else 500,
            body=b"success" if ok else b"fail",
            content_type="text/plain",
            ok=ok,
        )

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo:
        text = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
        if not hmac.compare_digest(params.get("sign", ""), sign(text.encode(), self._secret)):
            raise SignatureError(f"{self.name}: return signature does not verify")
        return ReturnInfo(channel=self.name, out_trade_no=params["out_trade_no"], raw=dict(params))


def return_params(out_trade_no: str, secret: bytes = SECRET) -> dict[str, str]:
    params = {"out_trade_no": out_trade_no}
    text = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "sign": sign(text.encode(), secret)}


def paid(hub: Any, bank: ToyBank, out_trade_no: str, amount: int = 1000) -> None:
    """A QR payment through the hub, paid by the buyer at toy-a, its notification applied."""
    hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no, amount=Money(amount), subject="card", method=PayMethod.QR
        )
    )
    assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", out_trade_no)).ack.ok


@hookimpl
def register_channels(register: Any) -> None:
    register(ToyChannel)


@dataclass
class Trade:
    out_trade_no: str
    amount: int
    currency: str
    trade_id: str
    status: str = "pending"
    refunded: int = 0


@dataclass
class ToyBank:
    """The channels' side: trades per channel, and faults to inject.

    ``fail_pay[channel]`` is "busy" (503), "timeout" (read timeout after the
    trade was created), "refuse" (a business error) or "connect" (never sent).
    ``fail_refund[channel]`` is "timeout" (read timeout, the refund never made),
    "lost" (read timeout after the refund was made), "refuse" or "used" (the
    number belongs to another transaction there).
    ``refund_states[out_refund_no]`` overrides what a refund query answers
    ("pending", "failed", "closed"); ``refund_query_amount`` what amount it gives.
    With ``reused_refund_numbers_refused`` a refund number already made answers
    ORDER_NUMBER_USED, as UnionPay does (else the stored refund, as Alipay and
    WeChat Pay do); with ``repeats_answer_pending`` a repeat answers "pending",
    as Alipay's fund_change N does. ``contexts_seen`` records (path,
    out_refund_no, context).
    """

    trades: dict[tuple[str, str], Trade] = field(default_factory=dict)
    fail_pay: dict[str, str] = field(default_factory=dict)
    fail_refund: dict[str, str] = field(default_factory=dict)
    refunds: list[tuple[str, str, int]] = field(default_factory=list)
    refund_states: dict[str, str] = field(default_factory=dict)
    refund_query_amount: dict[str, int] = field(default_factory=dict)
    reused_refund_numbers_refused: bool = False
    repeats_answer_pending: bool = False
    contexts_seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport())

    def handle(self, request: httpx.Request) -> httpx.Response:
        channel = request.url.host.split(".")[0]
        data = json.loads(request.content)
        with self.lock:
            return getattr(self, "_" + request.url.path.strip("/"))(request, channel, data)

    def _pay(self, request: httpx.Request, channel: str, data: dict[str, Any]) -> httpx.Response:
        fault = self.fail_pay.get(channel)
        if fault == "connect":
            raise httpx.ConnectError("refused", request=request)
        if fault == "busy":
            return httpx.Response(503, text="busy")
        if fault == "refuse":
            return httpx.Response(400, json={"code": "BUYER_ERROR", "message": "buyer blocked"})
        key = (channel, data["out_trade_no"])
        trade = self.trades.setdefault(
            key,
            Trade(data["out_trade_no"], data["amount"], data["currency"], f"{channel}-T-{key[1]}"),
        )
        if fault == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"trade_id": trade.trade_id, "qr": f"toy://{key[1]}"})

    def _query(self, request: httpx.Request, channel: str, data: dict[str, Any]) -> httpx.Response:
        trade = self.trades.get((channel, data["out_trade_no"]))
        if trade is None:
            return httpx.Response(404, json={"code": "TRADE_NOT_FOUND", "message": "no trade"})
        return httpx.Response(
            200,
            json={
                "status": trade.status,
                "amount": trade.amount,
                "currency": trade.currency,
                "trade_id": trade.trade_id,
            },
        )

    def _refund(self, request: httpx.Request, channel: str, data: dict[str, Any]) -> httpx.Response:
        self.contexts_seen.append(("/refund", data["out_refund_no"], data["context"]))
        fault = self.fail_refund.get(channel)
        if fault == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if fault == "refuse":
            return httpx.Response(
                400, json={"code": "INSUFFICIENT_BALANCE", "message": "no balance"}
            )
        if fault == "used":
            return httpx.Response(
                400, json={"code": "ORDER_NUMBER_USED", "message": "number used elsewhere"}
            )
        trade = self.trades[(channel, data["out_trade_no"])]
        made = any(r[1] == data["out_refund_no"] for r in self.refunds)
        if made and self.reused_refund_numbers_refused:
            return httpx.Response(
                400, json={"code": "ORDER_NUMBER_USED", "message": "duplicate transaction"}
            )
        if not made:
            trade.refunded += data["amount"]
            self.refunds.append((channel, data["out_refund_no"], data["amount"]))
        if fault == "lost":
            raise httpx.ReadTimeout("no answer", request=request)
        status = "pending" if made and self.repeats_answer_pending else "succeeded"
        return httpx.Response(
            200, json={"status": status, "refund_id": f"R-{data['out_refund_no']}"}
        )

    def _refund_query(
        self, request: httpx.Request, channel: str, data: dict[str, Any]
    ) -> httpx.Response:
        number = data["out_refund_no"]
        self.contexts_seen.append(("/refund_query", number, data["context"]))
        trade = self.trades[(channel, data["out_trade_no"])]
        made = [r for r in self.refunds if r[0] == channel and r[1] == number]
        if number in self.refund_states:
            state = self.refund_states[number]
        else:
            state = "succeeded" if made else "not_found"
        if not made and state == "not_found":
            return httpx.Response(200, json={"status": state})
        amount = self.refund_query_amount.get(number, made[0][2] if made else None)
        return httpx.Response(
            200,
            json={
                "status": state,
                "amount": amount,
                "currency": trade.currency,
                "refund_id": f"R-{number}",
            },
        )

    def _close(self, request: httpx.Request, channel: str, data: dict[str, Any]) -> httpx.Response:
        trade = self.trades.get((channel, data["out_trade_no"]))
        if trade is None:  # as Alipay answers for a QR code nobody scanned
            return httpx.Response(404, json={"code": "TRADE_NOT_FOUND", "message": "no trade"})
        if trade.status == "pending":
            trade.status = "closed"
        return httpx.Response(200, json={})

    def buyer_pays(self, channel: str, out_trade_no: str) -> tuple[dict[str, str], bytes]:
        """The buyer pays the trade; returns the channel's notification."""
        with self.lock:
            trade = self.trades[(channel, out_trade_no)]
            trade.status = "paid"
        return notification(
            out_trade_no,
            channel=channel,
            amount=trade.amount,
            currency=trade.currency,
            trade_id=trade.trade_id,
        )


def now() -> datetime:
    return datetime.now(UTC)


# -- helpers for spawned processes -------------------------------------------

CRASH_EXIT = 77


class EventLog:
    """A handler that appends each delivered event to a file (shared by processes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, event: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(f"{event.id} {event.type} {event.out_trade_no}\n")

    @staticmethod
    def read(path: str) -> list[tuple[str, str, str]]:
        try:
            with open(path, encoding="utf-8") as log:
                return [tuple(line.split()) for line in log if line.strip()]  # type: ignore[misc]
        except FileNotFoundError:
            return []


def make_hub(url: str, log_path: str | None = None, hub_class: type[Any] | None = None) -> Any:
    from payhub import PayHub
    from payhub.store import Store

    cls = hub_class or PayHub
    hub = cls(
        channels=[ToyChannel("toy-a"), ToyChannel("toy-b")],
        store=Store(url),
        http_client=ToyBank().client(),
    )
    hub._owns_store = True
    if log_path is not None:
        hub.subscribe("*", EventLog(log_path))
    return hub


def deliver_worker(
    url: str,
    headers: dict[str, str],
    body: bytes,
    count: int,
    barrier: Any,
    results: Any,
    log_path: str,
) -> None:
    """Deliver one notification ``count`` times at once (threads), after all workers are ready."""
    from concurrent.futures import ThreadPoolExecutor

    hub = make_hub(url, log_path)
    try:
        with ThreadPoolExecutor(count) as pool:
            barrier.wait(timeout=60)
            futures = [
                pool.submit(hub.handle_notification, "toy-a", headers, body) for _ in range(count)
            ]
            outcomes = [f.result() for f in futures]
        results.put(
            [(o.ack.ok, o.applied.outcome.value if o.applied else repr(o.error)) for o in outcomes]
        )
    finally:
        hub.close()


def crash_worker(url: str, point: str, headers: dict[str, str], body: bytes, log_path: str) -> None:
    """Handle a notification and die (os._exit) at the named step boundary."""
    import os

    from payhub import PayHub

    class CrashingHub(PayHub):
        def _checkpoint(self, name: str, conn: Any = None) -> None:
            if name == point:
                os._exit(CRASH_EXIT)

    hub = make_hub(url, log_path, CrashingHub)
    hub.handle_notification("toy-a", headers, body)
    hub.close()


def head_revision() -> str:
    """The newest migration: a store created or upgraded to "head" is at it."""
    from alembic.script import ScriptDirectory

    from payhub.store._migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
