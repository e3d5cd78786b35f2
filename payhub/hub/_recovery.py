"""Recovery by query: ``sync_payment``, ``sync_pending``, ``sync_refund`` and
``check_return`` ask the channels where a payment or refund stands and apply
the answers through the store's transition path; ``query`` and ``close_trade``
are the single calls they build on.

The decisions are plain functions here; the I/O loops are written twice (sync
and async), kept in step by ``tests/test_hub_twins.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from payhub.channels._base import Channel, Flow
from payhub.errors import ChannelError, ErrorCode, PayhubError, PaymentStateError
from payhub.hub import _splits as splitting
from payhub.models import PaymentQueryResult, RefundQueryRequest, RefundResult, RefundStatus
from payhub.store import (
    ApplyResult,
    PaymentRecord,
    PaymentState,
    PayoutRecord,
    PayoutState,
    RefundRecord,
    RefundState,
    SplitRecord,
    SplitState,
    TransitionCause,
)

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._base import BaseHub
    from payhub.hub._sync import PayHub


@dataclass
class SyncReport:
    """What :meth:`PayHub.sync_pending` found."""

    #: pending payments whose channels were queried
    checked: int = 0
    #: out_trade_no -> the state a channel's answer moved it to
    changed: dict[str, PaymentState] = field(default_factory=dict)
    #: out_trade_no -> why a query or the store failed (it stays pending)
    errors: dict[str, str] = field(default_factory=dict)
    #: pending refunds whose channels were asked
    refunds_checked: int = 0
    #: out_refund_no -> the state a channel's answer moved the refund to
    refunds_changed: dict[str, RefundState] = field(default_factory=dict)
    #: out_refund_no -> why it stays pending: the channel does not know it, its
    #: answer disagrees with the reservation, or the query or the store failed
    refund_errors: dict[str, str] = field(default_factory=dict)
    #: processing splits (分账) whose channels were asked
    splits_checked: int = 0
    #: out_split_no -> the state the channel's answer moved the split to
    splits_changed: dict[str, SplitState] = field(default_factory=dict)
    #: out_split_no -> why it stays processing
    split_errors: dict[str, str] = field(default_factory=dict)
    #: processing payouts whose channels were asked
    payouts_checked: int = 0
    #: out_payout_no -> the state the channel's answer moved the payout to
    payouts_changed: dict[str, PayoutState] = field(default_factory=dict)
    #: out_payout_no -> why it stays processing
    payout_errors: dict[str, str] = field(default_factory=dict)

    def _add_split(self, record: SplitRecord, error: str | None) -> None:
        self.splits_checked += 1
        if record.status.final:
            self.splits_changed[record.out_split_no] = record.status
        if error:
            self.split_errors[record.out_split_no] = error

    def _add_payout(self, record: PayoutRecord, error: str | None) -> None:
        self.payouts_checked += 1
        if record.status.final:
            self.payouts_changed[record.out_payout_no] = record.status
        if error:
            self.payout_errors[record.out_payout_no] = error

    def _add_payment(
        self, payment: PaymentRecord, record: PaymentRecord | None, errors: list[str]
    ) -> None:
        self.checked += 1
        if record is not None and record.status is not PaymentState.PENDING:
            self.changed[payment.out_trade_no] = record.status
        if errors:
            self.errors[payment.out_trade_no] = "; ".join(errors)

    def _add_refund(self, refund: RefundRecord, error: str | None) -> None:
        self.refunds_checked += 1
        if refund.status is not RefundState.PENDING:
            self.refunds_changed[refund.out_refund_no] = refund.status
        if error is not None:
            self.refund_errors[refund.out_refund_no] = error


def unknown_refund(out_refund_no: str) -> PaymentStateError:
    return PaymentStateError(f"no stored refund {out_refund_no!r}", code=ErrorCode.UNKNOWN_REFUND)


def query_flow(hub: BaseHub, target: Channel, out_trade_no: str) -> Flow[PaymentQueryResult]:
    """``target.query``, with the stored ``channel_context`` of the payment when
    ``target`` took it (blocking: reads the store). Without a context the
    channel is called as ``query(out_trade_no)``, so a channel written
    before ``context`` existed keeps working."""
    context: dict[str, str] = {}
    if hub._store is not None:
        payment = hub._store.payment(out_trade_no)
        if payment is not None and payment.channel == target.name:
            context = dict(payment.channel_context)
    if context:
        return target.query(out_trade_no, context=context)
    return target.query(out_trade_no)


def query_error(name: str, exc: PayhubError) -> str | None:
    """What a failed query of one channel says about a payment: None when the
    channel does not know the trade (nothing to apply, nothing wrong)."""
    if isinstance(exc, ChannelError) and exc.code is ErrorCode.TRADE_NOT_FOUND:
        return None
    return f"{name}: {exc.message}"


def apply_answers(
    hub: BaseHub, answers: list[tuple[str, PaymentQueryResult]], cause: TransitionCause
) -> list[ApplyResult]:
    """Apply query answers (blocking), "paid" before "closed": a trade closed at
    one channel must not close a payment that another channel took."""
    store = hub._require_store()
    ordered = sorted(answers, key=lambda a: a[1].status.value != "paid")
    return [store.apply_query(name, answer, cause=cause) for name, answer in ordered]


def refund_query_for(hub: BaseHub, refund: RefundRecord) -> RefundQueryRequest | str | None:
    """What to ask the channel about a stored refund: the query, or why not
    (a string: it stays pending), or None when it is no longer pending."""
    if refund.status is not RefundState.PENDING:
        return None
    if refund.channel not in hub._channels:
        return f"{refund.channel}: not configured"
    return RefundQueryRequest(
        out_trade_no=refund.out_trade_no,
        out_refund_no=refund.out_refund_no,
        refund_context=dict(refund.channel_context),
    )


def refund_not_applied(refund: RefundRecord, answer: RefundResult) -> str | None:
    """Why a channel's answer about a pending refund is not applied; None: apply it.

    Neither case releases the reservation: a refund the channel does not know
    may still arrive there (and UnionPay cannot find a refund stored before its
    ``txnTime`` was kept), and an amount that disagrees needs a person.
    """
    if answer.status is RefundStatus.NOT_FOUND:
        return (
            f"{refund.channel}: the channel knows no such refund (the request may never "
            "have reached it); it stays reserved: repeat hub.refund with the same "
            "out_refund_no and amount, or release it with store.fail_refund"
        )
    if answer.amount is not None and answer.amount != refund.amount:
        return (
            f"{refund.channel}: the channel's refund is {answer.amount}, but "
            f"{refund.amount} was reserved; left pending for a person to check"
        )
    return None


# -- the I/O loops, twice ------------------------------------------------------------


def query(hub: PayHub, channel: str, out_trade_no: str) -> PaymentQueryResult:
    target = hub.channel(channel)
    flow = hub._call_store(query_flow, hub, target, out_trade_no)
    return hub._run_flow(target, flow)


async def query_async(hub: AsyncPayHub, channel: str, out_trade_no: str) -> PaymentQueryResult:
    target = hub.channel(channel)
    flow = await hub._call_store(query_flow, hub, target, out_trade_no)
    return await hub._run_flow(target, flow)


def never_opened(exc: PayhubError) -> bool:
    """A close the channel refused because it never opened the trade: Alipay
    answers ``ACQ.TRADE_NOT_EXIST`` for a QR code nobody scanned. Nothing can be
    paid there that a close would stop, so the stored payment is closed all the
    same; a buyer who scans the code later pays a closed payment, which is
    recorded as a late payment (an anomaly, for refund) like any other."""
    return isinstance(exc, ChannelError) and exc.code is ErrorCode.TRADE_NOT_FOUND


def close_trade(hub: PayHub, channel: str, out_trade_no: str) -> None:
    target = hub.channel(channel)
    try:
        hub._run_flow(target, target.close(out_trade_no))
    except PayhubError as exc:
        if not never_opened(exc):
            raise
    store = hub._store
    if store is not None and hub._call_store(store.payment, out_trade_no) is not None:
        hub._call_store(store.close_payment, channel, out_trade_no)
        hub._dispatch_after_commit(out_trade_no)


async def close_trade_async(hub: AsyncPayHub, channel: str, out_trade_no: str) -> None:
    target = hub.channel(channel)
    try:
        await hub._run_flow(target, target.close(out_trade_no))
    except PayhubError as exc:
        if not never_opened(exc):
            raise
    store = hub._store
    if store is not None and await hub._call_store(store.payment, out_trade_no) is not None:
        await hub._call_store(store.close_payment, channel, out_trade_no)
        await hub._dispatch_after_commit(out_trade_no)


def sync_payment(
    hub: PayHub, out_trade_no: str, cause: TransitionCause
) -> tuple[PaymentRecord | None, list[str]]:
    """Query every channel where the payment may exist and apply the answers;
    (the payment as stored afterwards, what could not be asked)."""
    store = hub._require_store()
    answers: list[tuple[str, PaymentQueryResult]] = []
    errors: list[str] = []
    for name in hub._call_store(store.sync_channels, out_trade_no):
        if name not in hub._channels:
            errors.append(f"{name}: not configured")
            continue
        try:
            answers.append((name, query(hub, name, out_trade_no)))
        except PayhubError as exc:
            error = query_error(name, exc)
            if error is not None:
                errors.append(error)
    hub._call_store(apply_answers, hub, answers, cause)
    hub._dispatch_after_commit(out_trade_no)
    return hub._call_store(store.payment, out_trade_no), errors


async def sync_payment_async(
    hub: AsyncPayHub, out_trade_no: str, cause: TransitionCause
) -> tuple[PaymentRecord | None, list[str]]:
    """Query every channel where the payment may exist and apply the answers;
    (the payment as stored afterwards, what could not be asked)."""
    store = hub._require_store()
    answers: list[tuple[str, PaymentQueryResult]] = []
    errors: list[str] = []
    for name in await hub._call_store(store.sync_channels, out_trade_no):
        if name not in hub._channels:
            errors.append(f"{name}: not configured")
            continue
        try:
            answers.append((name, await query_async(hub, name, out_trade_no)))
        except PayhubError as exc:
            error = query_error(name, exc)
            if error is not None:
                errors.append(error)
    await hub._call_store(apply_answers, hub, answers, cause)
    await hub._dispatch_after_commit(out_trade_no)
    return await hub._call_store(store.payment, out_trade_no), errors


def sync_pending(
    hub: PayHub,
    older_than: timedelta,
    limit: int | None,
    progress: Callable[[PaymentRecord], None] | None,
    refunds: bool,
) -> SyncReport:
    store = hub._require_store()
    report = SyncReport()
    for payment in hub._call_store(store.pending_payments, older_than, limit=limit):
        try:
            record, errors = sync_payment(hub, payment.out_trade_no, TransitionCause.SYNC)
        except PayhubError as exc:
            record, errors = None, [exc.message]
        report._add_payment(payment, record, errors)
        if progress is not None:
            progress(payment)
    if refunds:
        for refund in hub._call_store(store.pending_refunds, older_than, limit=limit):
            try:
                report._add_refund(*sync_refund(hub, refund))
            except PayhubError as exc:
                report._add_refund(refund, exc.message)
        splitting.sync_processing(hub, report, limit)
    return report


async def sync_pending_async(
    hub: AsyncPayHub,
    older_than: timedelta,
    limit: int | None,
    progress: Callable[[PaymentRecord], None] | None,
    refunds: bool,
) -> SyncReport:
    store = hub._require_store()
    report = SyncReport()
    for payment in await hub._call_store(store.pending_payments, older_than, limit=limit):
        try:
            record, errors = await sync_payment_async(
                hub, payment.out_trade_no, TransitionCause.SYNC
            )
        except PayhubError as exc:
            record, errors = None, [exc.message]
        report._add_payment(payment, record, errors)
        if progress is not None:
            progress(payment)
    if refunds:
        for refund in await hub._call_store(store.pending_refunds, older_than, limit=limit):
            try:
                report._add_refund(*await sync_refund_async(hub, refund))
            except PayhubError as exc:
                report._add_refund(refund, exc.message)
        await splitting.sync_processing_async(hub, report, limit)
    return report


def sync_stored_refund(hub: PayHub, out_refund_no: str) -> RefundRecord:
    refund = hub._call_store(hub._require_store().refund, out_refund_no)
    if refund is None:
        raise unknown_refund(out_refund_no)
    return sync_refund(hub, refund)[0]


async def sync_stored_refund_async(hub: AsyncPayHub, out_refund_no: str) -> RefundRecord:
    refund = await hub._call_store(hub._require_store().refund, out_refund_no)
    if refund is None:
        raise unknown_refund(out_refund_no)
    return (await sync_refund_async(hub, refund))[0]


def sync_refund(hub: PayHub, refund: RefundRecord) -> tuple[RefundRecord, str | None]:
    """Ask the channel about a pending refund and apply its answer; (the refund
    as stored afterwards, why it stays pending or None)."""
    store = hub._require_store()
    request = refund_query_for(hub, refund)
    if not isinstance(request, RefundQueryRequest):
        return refund, request
    target = hub.channel(refund.channel)
    try:
        answer = hub._run_flow(target, target.refund_query(request))
    except PayhubError as exc:
        return refund, f"{refund.channel}: {exc.message}"
    why = refund_not_applied(refund, answer)
    if why is None:
        hub._call_store(store.apply_refund_result, refund, answer)
        hub._dispatch_after_commit(refund.out_trade_no)
    return hub._call_store(store.refund, refund.out_refund_no) or refund, why


async def sync_refund_async(
    hub: AsyncPayHub, refund: RefundRecord
) -> tuple[RefundRecord, str | None]:
    """Ask the channel about a pending refund and apply its answer; (the refund
    as stored afterwards, why it stays pending or None)."""
    store = hub._require_store()
    request = refund_query_for(hub, refund)
    if not isinstance(request, RefundQueryRequest):
        return refund, request
    target = hub.channel(refund.channel)
    try:
        answer = await hub._run_flow(target, target.refund_query(request))
    except PayhubError as exc:
        return refund, f"{refund.channel}: {exc.message}"
    why = refund_not_applied(refund, answer)
    if why is None:
        await hub._call_store(store.apply_refund_result, refund, answer)
        await hub._dispatch_after_commit(refund.out_trade_no)
    return await hub._call_store(store.refund, refund.out_refund_no) or refund, why


def check_return(hub: PayHub, channel: str, params: Mapping[str, str]) -> PaymentRecord | None:
    info = hub.verify_return(channel, params)
    store = hub._require_store()
    answer = query(hub, channel, info.out_trade_no)
    hub._call_store(apply_answers, hub, [(channel, answer)], TransitionCause.RETURN)
    hub._dispatch_after_commit(info.out_trade_no)
    return hub._call_store(store.payment, info.out_trade_no)


async def check_return_async(
    hub: AsyncPayHub, channel: str, params: Mapping[str, str]
) -> PaymentRecord | None:
    info = hub.verify_return(channel, params)
    store = hub._require_store()
    answer = await query_async(hub, channel, info.out_trade_no)
    await hub._call_store(apply_answers, hub, [(channel, answer)], TransitionCause.RETURN)
    await hub._dispatch_after_commit(info.out_trade_no)
    return await hub._call_store(store.payment, info.out_trade_no)
