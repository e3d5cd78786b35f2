"""The risk review queue: list the payments a risk rule held, approve them
(``payment.succeeded`` is written: delivery released) or decline them (the
payment is refunded through the normal refund path: ``hub.refund``).

Decisions are the store's (:class:`~payhub.store.Store`'s ``approve_review``,
``decline_review``); the I/O loops are written twice (sync and async).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from payhub.hub import _refunds
from payhub.models import RefundRequest, RefundResult
from payhub.store import ReviewRecord, ReviewStatus

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._sync import PayHub


def decline_refund_no(out_trade_no: str) -> str:
    """The refund number a decline uses by default: derived from the order, so a
    second decline resends the same refund; letters and digits only, 32 long
    (within every channel's refund-number grammar)."""
    return "RV" + hashlib.sha256(out_trade_no.encode("utf-8")).hexdigest()[:30].upper()


def refund_of(review: ReviewRecord) -> RefundRequest | None:
    """What a decline refunds: what is left of the payment (None: nothing)."""
    left = review.amount - review.refunded
    if left.minor <= 0 or review.out_refund_no is None:
        return None
    return RefundRequest(
        out_trade_no=review.out_trade_no,
        out_refund_no=review.out_refund_no,
        amount=left,
        reason="declined in risk review",
    )


# -- the I/O loops, twice ------------------------------------------------------------


def reviews(
    hub: PayHub, status: ReviewStatus | str | None, limit: int | None
) -> list[ReviewRecord]:
    store = hub._require_store()
    return hub._call_store(store.reviews, status=status, limit=limit)


async def reviews_async(
    hub: AsyncPayHub, status: ReviewStatus | str | None, limit: int | None
) -> list[ReviewRecord]:
    store = hub._require_store()
    return await hub._call_store(store.reviews, status=status, limit=limit)


def approve(hub: PayHub, out_trade_no: str, operator: str, note: str | None) -> ReviewRecord:
    store = hub._require_store()
    review, _ = hub._call_store(store.approve_review, out_trade_no, operator=operator, note=note)
    hub._dispatch_after_commit(out_trade_no)
    return review


async def approve_async(
    hub: AsyncPayHub, out_trade_no: str, operator: str, note: str | None
) -> ReviewRecord:
    store = hub._require_store()
    review, _ = await hub._call_store(
        store.approve_review, out_trade_no, operator=operator, note=note
    )
    await hub._dispatch_after_commit(out_trade_no)
    return review


def decline(
    hub: PayHub, out_trade_no: str, operator: str, note: str | None, out_refund_no: str | None
) -> tuple[ReviewRecord, RefundResult | None]:
    store = hub._require_store()
    number = out_refund_no or decline_refund_no(out_trade_no)
    review = hub._call_store(
        store.decline_review, out_trade_no, operator=operator, note=note, out_refund_no=number
    )
    request = refund_of(review)
    if request is None:
        return review, None
    return review, _refunds.refund(hub, None, request)


async def decline_async(
    hub: AsyncPayHub,
    out_trade_no: str,
    operator: str,
    note: str | None,
    out_refund_no: str | None,
) -> tuple[ReviewRecord, RefundResult | None]:
    store = hub._require_store()
    number = out_refund_no or decline_refund_no(out_trade_no)
    review = await hub._call_store(
        store.decline_review, out_trade_no, operator=operator, note=note, out_refund_no=number
    )
    request = refund_of(review)
    if request is None:
        return review, None
    return review, await _refunds.refund_async(hub, None, request)
