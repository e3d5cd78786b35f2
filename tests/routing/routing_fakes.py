"""Test doubles for routing: channel accounts that do no I/O, and a manual clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

import httpx

from payhub.channels._base import Channel, Flow
from payhub.models import (
    Ack,
    Notification,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
)


class FakeChannel(Channel):
    """A channel account with chosen methods and currencies; its flows are never run."""

    kind: ClassVar[str] = "fake"
    methods: ClassVar[frozenset[PayMethod]] = frozenset(PayMethod)

    def __init__(
        self,
        name: str,
        *,
        methods: Iterable[PayMethod] | None = None,
        currencies: Iterable[str] = ("CNY",),
    ) -> None:
        super().__init__(name)
        if methods is not None:
            self.methods = frozenset(methods)  # type: ignore[misc]
        self.currencies = frozenset(currencies)

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name)

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        raise NotImplementedError

    def query(self, out_trade_no: str) -> Flow[PaymentQueryResult]:
        raise NotImplementedError

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        raise NotImplementedError

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        raise NotImplementedError

    def close(self, out_trade_no: str) -> Flow[None]:
        raise NotImplementedError

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        raise NotImplementedError

    def ack(self, ok: bool, message: str = "") -> Ack:
        raise NotImplementedError


class ManualClock:
    """A clock that moves only when told to (POSIX seconds, like time.time)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01 08:00 +08:00
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
