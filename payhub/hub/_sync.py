""":class:`PayHub`, the synchronous hub: each operation is one call into the
module of its job (``_paying``, ``_refunds``, ``_notifications``,
``_recovery``, ``_events``, ``_anomalies``), which holds its decisions and its
short I/O loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

import httpx

from payhub.channels._base import Channel, Flow, HeadersInput, run_flow_sync
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
from payhub.routing import FailoverPolicy, Router
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

T = TypeVar("T")
P = ParamSpec("P")


class PayHub(BaseHub):
    """The synchronous hub.

    >>> with PayHub.from_config(config) as hub:  # doctest: +SKIP
    ...     hub.pay(request)

    ``router``, ``failover`` and ``attempt_timeout``: see :meth:`pay` and
    ``docs/routing.md``.
    """

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        http_client: httpx.Client | None = None,
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
        self._http = http_client or httpx.Client(timeout=timeout)

    # -- the I/O primitives the job modules call ---------------------------------

    def _run_flow(self, channel: Channel, flow: Flow[T], *, budget: float | None = None) -> T:
        """Drive ``flow`` over the HTTP client; with ``budget`` (seconds), every
        request's timeouts are capped to what is left of it."""
        ends_at = deadline(budget)

        def send(request: httpx.Request) -> httpx.Response:
            cap_timeout(request, self._http.timeout, ends_at)
            with map_network_errors(channel.name):
                response = self._http.send(request)
                response.read()
                return response

        return run_flow_sync(flow, send)

    def _call_store(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Blocking work (the store): in place."""
        return fn(*args, **kwargs)

    def _call_router(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A router call (it may block on a remote health store): in place."""
        return fn(*args, **kwargs)

    def _dispatch_after_commit(self, out_trade_no: str) -> None:
        """After a commit: deliver that payment's pending events; never raises."""
        _events.dispatch_after_commit(self, out_trade_no, DEFAULT_EVENT_LEASE)

    # -- operations ---------------------------------------------------------------

    def handle_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """As :meth:`BaseHub.handle_notification`, first running the channel's
        :meth:`~Channel.notification_prerequisite` flow if it has one (I/O: e.g.
        fetching new platform certificates; its failure is a failure ack); with a
        store, the notification is then applied in one transaction (inbox, lock,
        checks, transition, outbox), its events delivered, and the ack returned."""
        return _notifications.handle(self, channel, headers, body)

    def pay(self, request: PaymentRequest) -> PaymentResult:
        """Take a payment: the first candidate channel, the next on a retryable failure.

        With a router, the candidates are its ranked decision, tried within the
        failover policy (``max_attempts``, ``deadline``), each attempt within
        ``min(attempt_timeout, time left)``; each outcome is recorded with the
        router (health, volume). A business error (bad parameter, already
        paid) is raised at once; when every attempt failed, the last failure
        is raised. ``result.channel`` is the account that took the payment and
        ``result.attempts`` every attempt with its outcome (a timed-out one
        with ``may_exist``: the trade may exist there).

        With a store the payment and every attempt are stored first; paying an
        out_trade_no that is already paid raises :class:`PaymentStateError`.
        """
        return _paying.pay(self, request)

    def query(self, channel: str, out_trade_no: str) -> PaymentQueryResult:
        """Query a payment; with a store, the channel gets the payment's stored
        ``channel_context`` when it took the payment (UnionPay's ``txnTime``)."""
        return _recovery.query(self, channel, out_trade_no)

    def refund(self, channel: str | None, request: RefundRequest) -> RefundResult:
        """Refund (part of) a payment.

        With a store, idempotent on ``out_refund_no`` (the same number and amount
        gives the stored result; another amount raises InvalidRequestError), and
        the amount is reserved under the payment's lock before the channel is
        asked, so refunds never exceed what was paid, also when two race.
        ``channel`` may then be None: the channel that took the payment.

        A refund still pending (its answer was lost) is retried as the same
        transaction (its stored ``refund_context``). When the channel answers
        the retry "pending" (Alipay's ``fund_change`` N) or refuses it (UnionPay
        calls a resent refund a duplicate), the hub asks where the refund stands
        and returns that; a refused retry of a refund the channel cannot find
        raises the refusal and leaves the refund pending and reserved (the
        earlier send's outcome is unknown): ``sync_pending`` reports it.
        """
        return _refunds.refund(self, channel, request)

    def refund_duplicate(
        self,
        anomaly: int | tuple[str, str],
        *,
        out_refund_no: str,
        amount: Money | None = None,
        reason: str | None = None,
    ) -> RefundResult:
        """Refund a duplicate or late payment on the channel that took it.

        ``anomaly`` is the anomaly's id (:meth:`anomalies`), or ``(channel,
        out_trade_no)`` when that payment has one open duplicate there.
        ``amount`` defaults to all of the duplicate not yet refunded. The
        payment itself is untouched (what it delivered stands); the anomaly is
        resolved (by ``"payhub"``) once the duplicate is refunded in full, and
        a ``payment.duplicate_refunded`` event is written.

        The same rules as :meth:`refund`: idempotent on ``out_refund_no``, the
        amount reserved before the channel is asked, a lost answer leaves the
        refund pending (``sync_refund``/``sync_pending`` settle it by query).
        """
        return _refunds.refund_duplicate(self, anomaly, out_refund_no, amount, reason)

    def anomalies(
        self,
        out_trade_no: str | None = None,
        *,
        status: AnomalyStatus | str | None = AnomalyStatus.OPEN,
        kind: AnomalyKind | str | None = None,
        limit: int | None = None,
    ) -> list[AnomalyRecord]:
        """Recorded anomalies, oldest first (by default the open ones)."""
        return _anomalies.anomalies(self, out_trade_no, status, kind, limit)

    def resolve_anomaly(self, anomaly_id: int, *, operator: str, reason: str) -> AnomalyRecord:
        """Close an anomaly by hand, saying who and why (see :meth:`Store.resolve_anomaly`)."""
        return _anomalies.resolve_anomaly(self, anomaly_id, operator, reason)

    def reviews(
        self, *, status: ReviewStatus | str | None = ReviewStatus.OPEN, limit: int | None = None
    ) -> list[ReviewRecord]:
        """Payments a risk rule held for review, oldest first (by default the open
        ones; ``record.waiting``: paid, goods not delivered)."""
        return _reviews.reviews(self, status, limit)

    def approve_review(
        self, out_trade_no: str, *, operator: str, note: str | None = None
    ) -> ReviewRecord:
        """Approve a held, paid payment: ``payment.succeeded`` is written and
        dispatched (the goods are delivered). Audited with ``operator``."""
        return _reviews.approve(self, out_trade_no, operator, note)

    def decline_review(
        self,
        out_trade_no: str,
        *,
        operator: str,
        note: str | None = None,
        out_refund_no: str | None = None,
    ) -> tuple[ReviewRecord, RefundResult | None]:
        """Decline a held, paid payment and refund what is left of it through
        :meth:`refund` (``out_refund_no`` defaults to one derived from the order,
        so declining again resends the same refund). Audited with ``operator``."""
        return _reviews.decline(self, out_trade_no, operator, note, out_refund_no)

    def refund_query(self, channel: str, request: RefundQueryRequest) -> RefundResult:
        target = self.channel(channel)
        return self._run_flow(target, target.refund_query(request))

    def close_trade(self, channel: str, out_trade_no: str) -> None:
        _recovery.close_trade(self, channel, out_trade_no)

    def download_bill(self, channel: str, bill_date: date) -> list[BillRecord]:
        target = self.channel(channel)
        return self._run_flow(target, target.download_bill(bill_date))

    def stream_bill(self, channel: str, bill_date: date) -> BillStream:
        """The day's bill as a :class:`~payhub.channels.BillStream`: rows read one
        at a time from a temporary file (close it, or use ``with``)."""
        target = self.channel(channel)
        return self._run_flow(target, target.stream_bill(bill_date))

    def stream_fundflow_bill(self, channel: str, bill_date: date) -> FundFlowStream | None:
        """The day's fund-flow bill (资金账单) where the channel has one, else None:
        a :class:`~payhub.channels.FundFlowStream` (close it, or use ``with``)."""
        target = self.channel(channel)
        return self._run_flow(target, target.stream_fundflow_bill(bill_date))

    # -- recovery and events (need a store) -------------------------------------

    def sync_payment(self, out_trade_no: str) -> PaymentRecord | None:
        """Query the channels where the payment may exist and apply their answers
        through the same transition path as notifications (cause "sync")."""
        return _recovery.sync_payment(self, out_trade_no, TransitionCause.SYNC)[0]

    def sync_pending(
        self,
        older_than: timedelta = timedelta(minutes=5),
        *,
        limit: int | None = None,
        progress: Callable[[PaymentRecord], None] | None = None,
        refunds: bool = True,
    ) -> SyncReport:
        """Recover lost notifications (防掉单): query every payment still pending
        after ``older_than`` and apply the answers (cause "sync").

        With ``refunds`` (the default), then ask the channels about every refund
        still pending after ``older_than`` (its answer was lost: a timeout) and
        apply their answers, as :meth:`sync_refund`. ``limit`` caps each of the
        two sweeps; ``progress`` is called once per payment.
        """
        return _recovery.sync_pending(self, older_than, limit, progress, refunds)

    def sync_refund(self, out_refund_no: str) -> RefundRecord:
        """Ask the channel where a pending refund stands and apply its answer.

        For a refund whose answer was lost (``hub.refund`` timed out): the
        channel's "succeeded" completes it (a ``payment.refunded`` event),
        "failed" or "closed" releases its reservation (``refund.failed``), and
        anything else leaves it pending and reserved. A refund that is no longer
        pending is returned as stored, without asking. Returns the stored refund.
        """
        return _recovery.sync_stored_refund(self, out_refund_no)

    # -- splits (分账) and payouts (need a store with its ledger) ------------------

    def bind_receivers(
        self,
        channel: str,
        out_request_no: str,
        receivers: Sequence[ReceiverBinding],
        *,
        unbind: bool = False,
    ) -> None:
        """Bind (or, with ``unbind``, remove) split receivers at ``channel``: splits
        go only to bound receivers (Alipay royalty relations, WeChat Pay profit-sharing
        receivers). ``NOT_SUPPORTED`` for a channel without splits."""
        _splits.bind_receivers(self, channel, out_request_no, receivers, unbind)

    def split(
        self,
        out_trade_no: str,
        out_split_no: str,
        plan: _splits.Plan,
        receivers: Mapping[str, SplitReceiver],
        *,
        description: str = "分账",
        finish: bool = False,
    ) -> SplitRecord:
        """Split a paid payment at its channel (Alipay royalty, WeChat Pay profit
        sharing) as ``plan`` says (:func:`payhub.splits.split`'s result, or its
        parts): each part goes to ``receivers[part.receiver]``, except the part of
        the payment's own seller (or ``shop``), which stays.

        ``out_split_no`` is the caller's idempotency number (the channel's
        ``out_request_no`` / ``out_order_no``): kept in the store before anything
        is sent; the same call again returns the stored split, and a split still
        processing is queried under its number, never sent under another. Refused
        with a typed error, nothing stored or posted: the same number with other
        content (``ORDER_NUMBER_USED``), a split above what is left of the payment
        (paid, less refunded, less earlier splits: ``INVALID_SPLIT``), a payment
        not paid, a channel without splits (``NOT_SUPPORTED``), and the channel's
        own refusals (a receiver not bound: ``RECEIVER_NOT_BOUND``). The ledger
        moves the succeeded lines from the payer's balance to each receiver's
        ``paid_out`` only when the channel confirms. ``finish`` unfreezes the rest
        to the merchant (no further split of this payment).
        """
        return _splits.split(
            self,
            out_trade_no,
            out_split_no,
            plan,
            receivers,
            description=description,
            finish=finish,
        )

    def payout(self, channel: str, withdrawal_id: int, request: TransferRequest) -> PayoutRecord:
        """Pay a pending ledger withdrawal (``ledger.withdraw``) out through
        ``channel``'s transfer (Alipay ``alipay.fund.trans.uni.transfer``, WeChat
        Pay's merchant transfer bills) to ``request``'s account.

        ``request.out_transfer_no`` is the idempotency number (kept as the
        payout's ``out_payout_no``), ``request.amount`` must be what the
        withdrawal holds (its amount less its fee). The channel's success marks
        the withdrawal paid; its failure marks it failed (the money back to
        available); a refusal (an unverified or wrong name:
        ``PAYEE_NAME_MISMATCH``, a payout above the withdrawal: ``INVALID_AMOUNT``)
        changes nothing. An unknown outcome is queried, never resent under a new
        number; ``payhub sync`` settles what stays processing.
        """
        return _splits.payout(self, channel, withdrawal_id, request)

    def sync_split(self, out_split_no: str) -> SplitRecord:
        """Ask the channel where a processing split stands and apply its answer."""
        return _splits.sync_stored_split(self, out_split_no)

    def sync_payout(self, out_payout_no: str) -> PayoutRecord:
        """Ask the channel where a processing payout stands and apply its answer."""
        return _splits.sync_stored_payout(self, out_payout_no)

    def check_return(self, channel: str, params: Mapping[str, str]) -> PaymentRecord | None:
        """Verify a browser return, then *query* the channel and apply its answer
        (cause "return"). The return parameters alone are never proof of payment."""
        return _recovery.check_return(self, channel, params)

    def dispatch_events(
        self,
        *,
        out_trade_no: str | None = None,
        limit: int | None = None,
        lease: timedelta = DEFAULT_EVENT_LEASE,
    ) -> int:
        """Deliver undispatched outbox events to the subscribers; the number delivered.

        Each event is claimed for ``lease`` first, so two dispatchers (processes)
        rarely deliver the same one; a handler failure releases it for a retry.
        """
        return _events.dispatch_events(self, out_trade_no, limit, lease)

    # -- lifetime -----------------------------------------------------------------

    def close(self) -> None:
        """Release the HTTP client and the store if the hub created them."""
        if self._owns_http:
            self._http.close()
        if self._owns_store and self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["PayHub"]
