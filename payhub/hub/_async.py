""":class:`AsyncPayHub`, the asynchronous hub: the same job modules as
:class:`~payhub.hub.PayHub`, their ``*_async`` loops, driven by
``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

import httpx

from payhub.channels._base import Channel, Flow, HeadersInput, run_flow_async
from payhub.channels._bills import BillStream
from payhub.channels._fundflow import FundFlowStream
from payhub.hub import (
    _anomalies,
    _events,
    _notifications,
    _paying,
    _recovery,
    _refunds,
    _reviews,
    _splits,
)
from payhub.hub._base import BaseHub
from payhub.hub._network import DEFAULT_TIMEOUT, cap_timeout, deadline, map_network_errors
from payhub.hub._notifications import NotificationOutcome
from payhub.hub._recovery import SyncReport
from payhub.models import (
    BillRecord,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
)
from payhub.money import Money
from payhub.risk import RiskEngine
from payhub.routing import FailoverPolicy, InMemoryHealthStore, Router
from payhub.splits_models import ReceiverBinding, SplitReceiver, TransferRequest
from payhub.store import (
    DEFAULT_EVENT_LEASE,
    AnomalyKind,
    AnomalyRecord,
    AnomalyStatus,
    PaymentRecord,
    PayoutRecord,
    RefundRecord,
    ReviewRecord,
    ReviewStatus,
    SplitRecord,
    Store,
    TransitionCause,
)

__all__ = ["AsyncPayHub"]

T = TypeVar("T")
P = ParamSpec("P")


class AsyncPayHub(BaseHub):
    """The asynchronous hub; the same channel flows, driven by ``httpx.AsyncClient``.

    The store's database work is blocking (SQLAlchemy Core with sync drivers);
    the async hub runs each store transaction in a worker thread with
    :func:`asyncio.to_thread`, so the event loop never waits on the database.
    Event handlers may be plain functions or coroutine functions.

    The router is synchronous: with the in-memory health store the hub calls it
    directly; with another store (Redis) its calls run in a worker thread too.
    """

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        store: Store | None = None,
        router: Router | None = None,
        failover: FailoverPolicy | None = None,
        attempt_timeout: float | None = None,
        risk: RiskEngine | None = None,
    ) -> None:
        super().__init__(
            channels=channels,
            store=store,
            router=router,
            failover=failover,
            attempt_timeout=attempt_timeout,
            risk=risk,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    # -- the I/O primitives the job modules call ---------------------------------

    async def _run_flow(self, channel: Channel, flow: Flow[T], *, budget: float | None = None) -> T:
        """As :meth:`PayHub._run_flow`."""
        ends_at = deadline(budget)

        async def send(request: httpx.Request) -> httpx.Response:
            cap_timeout(request, self._http.timeout, ends_at)
            with map_network_errors(channel.name):
                response = await self._http.send(request)
                await response.aread()
                return response

        return await run_flow_async(flow, send)

    async def _call_store(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking work (the store): in a worker thread."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def _call_router(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A router call: in place with the in-memory health store, else in a
        worker thread (its health store does I/O)."""
        router = self.router
        if router is None or isinstance(router.health, InMemoryHealthStore):
            return fn(*args, **kwargs)
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def _dispatch_after_commit(self, out_trade_no: str) -> None:
        """After a commit: deliver that payment's pending events; never raises."""
        await _events.dispatch_after_commit_async(self, out_trade_no, DEFAULT_EVENT_LEASE)

    # -- operations ---------------------------------------------------------------

    async def handle_notification(  # type: ignore[override]  # async: the prerequisite does I/O
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """As :meth:`PayHub.handle_notification`."""
        return await _notifications.handle_async(self, channel, headers, body)

    async def pay(self, request: PaymentRequest) -> PaymentResult:
        """As :meth:`PayHub.pay`."""
        return await _paying.pay_async(self, request)

    async def query(self, channel: str, out_trade_no: str) -> PaymentQueryResult:
        """As :meth:`PayHub.query`."""
        return await _recovery.query_async(self, channel, out_trade_no)

    async def refund(self, channel: str | None, request: RefundRequest) -> RefundResult:
        """As :meth:`PayHub.refund`."""
        return await _refunds.refund_async(self, channel, request)

    async def refund_duplicate(
        self,
        anomaly: int | tuple[str, str],
        *,
        out_refund_no: str,
        amount: Money | None = None,
        reason: str | None = None,
    ) -> RefundResult:
        """As :meth:`PayHub.refund_duplicate`."""
        return await _refunds.refund_duplicate_async(self, anomaly, out_refund_no, amount, reason)

    async def anomalies(
        self,
        out_trade_no: str | None = None,
        *,
        status: AnomalyStatus | str | None = AnomalyStatus.OPEN,
        kind: AnomalyKind | str | None = None,
        limit: int | None = None,
    ) -> list[AnomalyRecord]:
        """As :meth:`PayHub.anomalies`."""
        return await _anomalies.anomalies_async(self, out_trade_no, status, kind, limit)

    async def resolve_anomaly(
        self, anomaly_id: int, *, operator: str, reason: str
    ) -> AnomalyRecord:
        """As :meth:`PayHub.resolve_anomaly`."""
        return await _anomalies.resolve_anomaly_async(self, anomaly_id, operator, reason)

    async def reviews(
        self, *, status: ReviewStatus | str | None = ReviewStatus.OPEN, limit: int | None = None
    ) -> list[ReviewRecord]:
        """As :meth:`PayHub.reviews`."""
        return await _reviews.reviews_async(self, status, limit)

    async def approve_review(
        self, out_trade_no: str, *, operator: str, note: str | None = None
    ) -> ReviewRecord:
        """As :meth:`PayHub.approve_review`."""
        return await _reviews.approve_async(self, out_trade_no, operator, note)

    async def decline_review(
        self,
        out_trade_no: str,
        *,
        operator: str,
        note: str | None = None,
        out_refund_no: str | None = None,
    ) -> tuple[ReviewRecord, RefundResult | None]:
        """As :meth:`PayHub.decline_review`."""
        return await _reviews.decline_async(self, out_trade_no, operator, note, out_refund_no)

    async def refund_query(self, channel: str, request: RefundQueryRequest) -> RefundResult:
        target = self.channel(channel)
        return await self._run_flow(target, target.refund_query(request))

    async def close_trade(self, channel: str, out_trade_no: str) -> None:
        await _recovery.close_trade_async(self, channel, out_trade_no)

    async def download_bill(self, channel: str, bill_date: date) -> list[BillRecord]:
        target = self.channel(channel)
        return await self._run_flow(target, target.download_bill(bill_date))

    async def stream_bill(self, channel: str, bill_date: date) -> BillStream:
        """The day's bill as a :class:`~payhub.channels.BillStream`: rows read one
        at a time from a temporary file (close it, or use ``with``)."""
        target = self.channel(channel)
        return await self._run_flow(target, target.stream_bill(bill_date))

    async def stream_fundflow_bill(self, channel: str, bill_date: date) -> FundFlowStream | None:
        """The day's fund-flow bill (资金账单) where the channel has one, else None:
        a :class:`~payhub.channels.FundFlowStream` (close it, or use ``with``)."""
        target = self.channel(channel)
        return await self._run_flow(target, target.stream_fundflow_bill(bill_date))

    # -- recovery and events (need a store) -------------------------------------

    async def sync_payment(self, out_trade_no: str) -> PaymentRecord | None:
        """As :meth:`PayHub.sync_payment`."""
        return (await _recovery.sync_payment_async(self, out_trade_no, TransitionCause.SYNC))[0]

    async def sync_pending(
        self,
        older_than: timedelta = timedelta(minutes=5),
        *,
        limit: int | None = None,
        progress: Callable[[PaymentRecord], None] | None = None,
        refunds: bool = True,
    ) -> SyncReport:
        """As :meth:`PayHub.sync_pending`."""
        return await _recovery.sync_pending_async(self, older_than, limit, progress, refunds)

    async def sync_refund(self, out_refund_no: str) -> RefundRecord:
        """As :meth:`PayHub.sync_refund`."""
        return await _recovery.sync_stored_refund_async(self, out_refund_no)

    # -- splits (分账) and payouts (need a store with its ledger) ------------------

    async def bind_receivers(
        self,
        channel: str,
        out_request_no: str,
        receivers: Sequence[ReceiverBinding],
        *,
        unbind: bool = False,
    ) -> None:
        """As :meth:`PayHub.bind_receivers`."""
        await _splits.bind_receivers_async(self, channel, out_request_no, receivers, unbind)

    async def split(
        self,
        out_trade_no: str,
        out_split_no: str,
        plan: _splits.Plan,
        receivers: Mapping[str, SplitReceiver],
        *,
        description: str = "分账",
        finish: bool = False,
    ) -> SplitRecord:
        """As :meth:`PayHub.split`."""
        return await _splits.split_async(
            self,
            out_trade_no,
            out_split_no,
            plan,
            receivers,
            description=description,
            finish=finish,
        )

    async def payout(
        self, channel: str, withdrawal_id: int, request: TransferRequest
    ) -> PayoutRecord:
        """As :meth:`PayHub.payout`."""
        return await _splits.payout_async(self, channel, withdrawal_id, request)

    async def sync_split(self, out_split_no: str) -> SplitRecord:
        """As :meth:`PayHub.sync_split`."""
        return await _splits.sync_stored_split_async(self, out_split_no)

    async def sync_payout(self, out_payout_no: str) -> PayoutRecord:
        """As :meth:`PayHub.sync_payout`."""
        return await _splits.sync_stored_payout_async(self, out_payout_no)

    async def check_return(self, channel: str, params: Mapping[str, str]) -> PaymentRecord | None:
        """As :meth:`PayHub.check_return`."""
        return await _recovery.check_return_async(self, channel, params)

    async def dispatch_events(
        self,
        *,
        out_trade_no: str | None = None,
        limit: int | None = None,
        lease: timedelta = DEFAULT_EVENT_LEASE,
    ) -> int:
        """As :meth:`PayHub.dispatch_events`; async handlers are awaited."""
        return await _events.dispatch_events_async(self, out_trade_no, limit, lease)

    # -- lifetime -----------------------------------------------------------------

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
        if self._owns_store and self._store is not None:
            self._store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
