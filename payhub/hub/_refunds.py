"""Refunds: reserving the amount before the channel is asked, refunds of
duplicate payments, and what a channel's answer or refusal means for the
reservation.

:func:`refund`, :func:`refund_duplicate` and :func:`send_refund` are the I/O
loops, each written twice (sync and async, kept in step by
``tests/test_hub_twins.py``); everything they decide is a plain function here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from payhub.errors import InvalidRequestError, PayhubError
from payhub.hub import _anomalies as anomalies
from payhub.hub import _recovery as recovery
from payhub.lifecycle import RefundAnswer, refund_send
from payhub.models import RefundRequest, RefundResult, RefundStatus
from payhub.money import Money
from payhub.store import RefundRecord, RefundState

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._base import BaseHub
    from payhub.hub._sync import PayHub

logger = logging.getLogger("payhub.hub")

#: A refund reserved and the request to send: (refund, request, existed before).
Reserved = tuple[RefundRecord, RefundRequest, bool]

_STATE_OF_ANSWER = {
    RefundStatus.SUCCEEDED: RefundState.SUCCEEDED,
    RefundStatus.FAILED: RefundState.FAILED,
    RefundStatus.CLOSED: RefundState.FAILED,
}


def refund_result(refund: RefundRecord) -> RefundResult:
    """A stored refund as a result (an idempotent repeat of ``hub.refund``)."""
    status = {
        RefundState.PENDING: RefundStatus.PENDING,
        RefundState.SUCCEEDED: RefundStatus.SUCCEEDED,
        RefundState.FAILED: RefundStatus.FAILED,
    }[refund.status]
    return RefundResult(
        channel=refund.channel,
        out_trade_no=refund.out_trade_no,
        out_refund_no=refund.out_refund_no,
        status=status,
        amount=refund.amount,
        channel_refund_id=refund.channel_refund_id,
    )


def as_stored(answer: RefundResult, stored: RefundRecord | None) -> RefundResult:
    """The channel's answer, corrected to what the store recorded of the refund
    (an answer the store could not apply leaves the refund as it was)."""
    if stored is None:
        return answer
    if _STATE_OF_ANSWER.get(answer.status, RefundState.PENDING) is stored.status:
        return answer
    return refund_result(stored).model_copy(
        update={"channel_trade_id": answer.channel_trade_id, "raw": answer.raw}
    )


def reserve_refund(
    hub: BaseHub, channel: str | None, request: RefundRequest
) -> Reserved | RefundResult:
    """Reserve under lock (blocking); a stored final result is returned as is.

    Returns the refund, the request to send (the payment's total and context
    filled in, and the refund's stored ``refund_context``, so that a retry
    is the same transaction at the channel) and whether it existed before.
    """
    store = hub._require_store()
    payment = store.payment(request.out_trade_no)
    if not request.refund_context:
        name = channel or (payment.channel if payment is not None else None)
        target = hub._channels.get(name) if name else None
        if target is not None:
            context = target.refund_context(request)
            if context:
                request = request.model_copy(update={"refund_context": context})
    refund, existed = store.reserve_refund(channel, request)
    if existed and refund.status is not RefundState.PENDING:
        return refund_result(refund)
    update: dict[str, Any] = {"refund_context": dict(refund.channel_context)}
    if payment is not None:
        if request.total is None:
            update["total"] = payment.amount
        if not request.payment_context and payment.channel == refund.channel:
            update["payment_context"] = dict(payment.channel_context)
    return refund, request.model_copy(update=update), existed


def reserve_duplicate_refund(
    hub: BaseHub,
    anomaly: int | tuple[str, str],
    out_refund_no: str,
    amount: Money | None,
    reason: str | None,
) -> Reserved | RefundResult:
    """As :func:`reserve_refund`, for a refund of a duplicate payment (blocking)."""
    store = hub._require_store()
    record = anomalies.find_anomaly(hub, anomaly)
    target = hub.channel(record.channel)
    total = record.amount
    if total is None:
        raise InvalidRequestError(f"anomaly {record.id} names no amount to refund")
    request = RefundRequest(
        out_trade_no=record.out_trade_no,
        out_refund_no=out_refund_no,
        amount=total if amount is None else amount,
        total=total,
        reason=reason,
    )
    refund, existed = store.reserve_duplicate_refund(
        record.id,
        out_refund_no,
        amount,
        reason=reason,
        refund_context=target.refund_context(request),
    )
    if existed and refund.status is not RefundState.PENDING:
        return refund_result(refund)
    update = {"amount": refund.amount, "refund_context": dict(refund.channel_context)}
    return refund, request.model_copy(update=update), existed


def answer_of(answer: RefundResult | PayhubError) -> RefundAnswer:
    """The channel's answer to a refund send, as the lifecycle's rules name it."""
    if isinstance(answer, PayhubError):
        return RefundAnswer.UNKNOWN if answer.retryable else RefundAnswer.REFUSED
    return RefundAnswer.PENDING if answer.status is RefundStatus.PENDING else RefundAnswer.FINAL


def release_refused(hub: BaseHub, refund: RefundRecord, exc: PayhubError, *, retried: bool) -> None:
    """Carry out :func:`payhub.lifecycle.refund_send`'s ``release`` for a refusal
    (blocking): only a first send's refusal releases the reservation."""
    if hub._store is None or not refund_send(answer_of(exc), resend=retried).release:
        return
    hub._store.fail_refund(refund.out_refund_no, exc.code.name)


def ask_after(answer: RefundResult | PayhubError, existed: bool) -> bool:
    """Whether to ask the channel where the refund stands (the lifecycle's rule)."""
    return refund_send(answer_of(answer), resend=existed).ask


# -- the I/O loops, twice ------------------------------------------------------------


def refund(hub: PayHub, channel: str | None, request: RefundRequest) -> RefundResult:
    if hub._store is None:
        if channel is None:
            raise InvalidRequestError("without a store, name the channel to refund through")
        target = hub.channel(channel)
        return hub._run_flow(target, target.refund(request))
    reserved = hub._call_store(reserve_refund, hub, channel, request)
    if isinstance(reserved, RefundResult):
        return reserved
    return send_refund(hub, *reserved)


async def refund_async(
    hub: AsyncPayHub, channel: str | None, request: RefundRequest
) -> RefundResult:
    if hub._store is None:
        if channel is None:
            raise InvalidRequestError("without a store, name the channel to refund through")
        target = hub.channel(channel)
        return await hub._run_flow(target, target.refund(request))
    reserved = await hub._call_store(reserve_refund, hub, channel, request)
    if isinstance(reserved, RefundResult):
        return reserved
    return await send_refund_async(hub, *reserved)


def refund_duplicate(
    hub: PayHub,
    anomaly: int | tuple[str, str],
    out_refund_no: str,
    amount: Money | None,
    reason: str | None,
) -> RefundResult:
    reserved = hub._call_store(
        reserve_duplicate_refund, hub, anomaly, out_refund_no, amount, reason
    )
    if isinstance(reserved, RefundResult):
        return reserved
    return send_refund(hub, *reserved)


async def refund_duplicate_async(
    hub: AsyncPayHub,
    anomaly: int | tuple[str, str],
    out_refund_no: str,
    amount: Money | None,
    reason: str | None,
) -> RefundResult:
    reserved = await hub._call_store(
        reserve_duplicate_refund, hub, anomaly, out_refund_no, amount, reason
    )
    if isinstance(reserved, RefundResult):
        return reserved
    return await send_refund_async(hub, *reserved)


def send_refund(
    hub: PayHub, refund: RefundRecord, request: RefundRequest, existed: bool
) -> RefundResult:
    """Send a reserved refund to its channel and apply the answer (see ``hub.refund``)."""
    store = hub._require_store()
    target = hub.channel(refund.channel)
    try:
        result = hub._run_flow(target, target.refund(request))
    except PayhubError as exc:
        hub._call_store(release_refused, hub, refund, exc, retried=existed)
        if ask_after(exc, existed):
            record, why = recovery.sync_refund(hub, refund)
            if why is None:
                return refund_result(record)
        raise
    hub._call_store(store.apply_refund_result, refund, result)
    if ask_after(result, existed):
        record, why = recovery.sync_refund(hub, refund)
        if why is None and record.status is not RefundState.PENDING:
            return refund_result(record)
    hub._dispatch_after_commit(refund.out_trade_no)
    stored = hub._call_store(store.refund, refund.out_refund_no)
    return as_stored(result, stored)


async def send_refund_async(
    hub: AsyncPayHub, refund: RefundRecord, request: RefundRequest, existed: bool
) -> RefundResult:
    """Send a reserved refund to its channel and apply the answer (see ``hub.refund``)."""
    store = hub._require_store()
    target = hub.channel(refund.channel)
    try:
        result = await hub._run_flow(target, target.refund(request))
    except PayhubError as exc:
        await hub._call_store(release_refused, hub, refund, exc, retried=existed)
        if ask_after(exc, existed):
            record, why = await recovery.sync_refund_async(hub, refund)
            if why is None:
                return refund_result(record)
        raise
    await hub._call_store(store.apply_refund_result, refund, result)
    if ask_after(result, existed):
        record, why = await recovery.sync_refund_async(hub, refund)
        if why is None and record.status is not RefundState.PENDING:
            return refund_result(record)
    await hub._dispatch_after_commit(refund.out_trade_no)
    stored = await hub._call_store(store.refund, refund.out_refund_no)
    return as_stored(result, stored)
