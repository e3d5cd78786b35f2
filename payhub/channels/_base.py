"""What every channel implements: sans-I/O flows and pure notification parsing.

A *flow* is a generator that yields :class:`httpx.Request` objects and receives
the matching :class:`httpx.Response` objects, returning its result (the pattern
of httpx's auth flows). ``PayHub`` drives flows with an ``httpx.Client`` and
``AsyncPayHub`` with an ``httpx.AsyncClient``; the channel code is the same.
A flow that needs no I/O (building a page-pay form) returns without yielding.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Self, TypeAlias, TypeVar

import httpx

from payhub.channels._bills import BillStream
from payhub.channels._fundflow import FundFlowStream
from payhub.errors import InvalidRequestError
from payhub.models import (
    Ack,
    BillRecord,
    Notification,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    ReturnInfo,
)

__all__ = [
    "Channel",
    "Flow",
    "HeadersInput",
    "as_headers",
    "run_flow_async",
    "run_flow_sync",
]

T = TypeVar("T")
Flow: TypeAlias = Generator[httpx.Request, httpx.Response, T]
HeadersInput: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]] | httpx.Headers


def as_headers(headers: HeadersInput) -> httpx.Headers:
    """Normalise headers, keeping repeated ones (a channel may need to reject them)."""
    if isinstance(headers, httpx.Headers):
        return headers
    items = headers.items() if isinstance(headers, Mapping) else headers
    # Encoded here, as UTF-8: a forged header with non-ASCII text must reach the
    # channel's checks (and be refused there), not crash the hub.
    return httpx.Headers(
        [
            (
                k.encode("utf-8", "surrogateescape") if isinstance(k, str) else k,
                v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v,
            )
            for k, v in items
        ]
    )


class Channel(abc.ABC):
    """One configured account of one channel (e.g. the Alipay app ``2021…``).

    Subclasses set ``kind`` (the channel type registered by a plugin) and
    ``methods``; ``name`` is the account name the shop chose in configuration.
    """

    kind: ClassVar[str]
    methods: ClassVar[frozenset[PayMethod]]
    currencies: frozenset[str] = frozenset({"CNY"})

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @classmethod
    @abc.abstractmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        """Build the channel account from a plain configuration mapping."""

    def supports(self, method: PayMethod, currency: str) -> bool:
        return method in self.methods and currency in self.currencies

    def max_amount_minor(self) -> int:
        """The largest amount, in minor units, one payment of this account may carry.

        The channel's own limit (or a lower one the account is configured with).
        Amounts parsed from the channel's messages above it are refused, and
        :meth:`request_problem` refuses requests above it. Subclasses override;
        the default is the largest amount a store column holds.
        """
        return 2**63 - 1

    def order_number_problem(self, out_trade_no: str) -> str | None:
        """Why the channel's order-number rules refuse ``out_trade_no``, or None.

        :class:`PaymentRequest` already holds numbers to payhub's own grammar
        (1-64 of ``A-Za-z0-9_-``); a channel with narrower rules (WeChat Pay:
        6-32 characters) says so here.
        """
        return None

    def request_problem(self, request: PaymentRequest) -> str | None:
        """Why this account cannot take ``request`` as it stands, or None.

        The one acceptance check routing and the hub use for every candidate:
        method and currency, the amount against :meth:`max_amount_minor`, and
        :meth:`order_number_problem`. The reason names no secret.
        """
        if request.method not in self.methods:
            return f"{self.name!r} does not offer {request.method.value!r} payments"
        if request.amount.currency not in self.currencies:
            return f"{self.name!r} does not take {request.amount.currency}"
        limit = self.max_amount_minor()
        if request.amount.minor > limit:
            return (
                f"amount {request.amount} is above {self.name!r}'s limit of "
                f"{type(request.amount)(limit, request.amount.currency)}"
            )
        return self.order_number_problem(request.out_trade_no)

    # -- flows --------------------------------------------------------------

    @abc.abstractmethod
    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]: ...

    @abc.abstractmethod
    def query(
        self, out_trade_no: str, *, context: Mapping[str, str] | None = None
    ) -> Flow[PaymentQueryResult]:
        """Query a payment by the shop's ``out_trade_no``.

        ``context`` is the ``PaymentResult.channel_context`` the channel's own
        ``pay`` returned, as the store kept it: what it needs to find the trade
        again in another process (UnionPay: ``txnTime``). The hub passes it
        only when it has a non-empty one, so a channel whose ``query`` takes
        no ``context`` keeps working.
        """

    @abc.abstractmethod
    def refund(self, request: RefundRequest) -> Flow[RefundResult]: ...

    @abc.abstractmethod
    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]: ...

    def refund_context(self, request: RefundRequest) -> dict[str, str]:
        """What this channel will need to find the refund again, fixed before it
        is first sent; the hub keeps it with the refund and passes it back as
        ``RefundRequest.refund_context`` (every retry) and
        ``RefundQueryRequest.refund_context``. Most channels find a refund by
        its number alone: the default is ``{}``.
        """
        return {}

    @abc.abstractmethod
    def close(self, out_trade_no: str) -> Flow[None]: ...

    def download_bill(self, bill_date: date) -> Flow[list[BillRecord]]:
        raise InvalidRequestError(f"channel {self.kind!r} offers no bill download")

    def stream_bill(self, bill_date: date) -> Flow[BillStream]:
        """The day's bill as a :class:`BillStream` (rows read from a temporary
        file, one at a time). A channel without a streaming reader gets its
        :meth:`download_bill` list wrapped."""
        records = yield from self.download_bill(bill_date)
        return BillStream.of(records, channel=self.name, bill_date=bill_date)

    def stream_fundflow_bill(self, bill_date: date) -> Flow[FundFlowStream | None]:
        """The day's fund-flow bill (资金账单: what moved on the merchant's
        account), or None when the channel has none (the default). Fees are
        reconciled against it where it exists."""
        return None
        yield  # a flow that asks nothing

    # -- notifications (pure) -----------------------------------------------

    def notification_prerequisite(self, headers: httpx.Headers) -> Flow[None] | None:
        """A flow the hub must run before :meth:`parse_notification`, or None.

        For a channel that cannot verify some notification without I/O first,
        e.g. fetching new platform certificates when the notification names an
        unknown serial. Most channels need nothing: the default is None, and
        :meth:`parse_notification` stays a pure function of (headers, body).
        """
        return None

    @abc.abstractmethod
    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        """Verify and parse one asynchronous notification; raise a PayhubError if bad."""

    @abc.abstractmethod
    def ack(self, ok: bool, message: str = "") -> Ack:
        """The exact answer the channel expects: success, or failure so it resends."""

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo:
        raise InvalidRequestError(f"channel {self.kind!r} has no signed browser return")


def run_flow_sync(flow: Flow[T], send: Callable[[httpx.Request], httpx.Response]) -> T:
    """Drive a flow with a synchronous transport function."""
    try:
        request = next(flow)
        while True:
            request = flow.send(send(request))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def run_flow_async(
    flow: Flow[T], send: Callable[[httpx.Request], Awaitable[httpx.Response]]
) -> T:
    """Drive a flow with an asynchronous transport function."""
    try:
        request = next(flow)
        while True:
            request = flow.send(await send(request))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()
