"""Splits (分账) and payouts through the hub: ``hub.split``, ``hub.payout`` and
their recovery by ``payhub sync``.

Every decision is a plain function here (what to send, when to ask, what a
refusal means); :func:`split`, :func:`payout`, :func:`settle_split`,
:func:`settle_payout` and :func:`sync_processing` are the I/O loops, each
written twice (sync and async, kept in step by ``tests/test_hub_twins.py``).

The rules: the caller's number is kept in the store before anything is sent.
The same call again returns the stored record; one whose outcome is still
unknown is *queried* under its number, never sent under a new one. A channel
that refuses (a non-retryable error) changed nothing: the record is marked
``refused`` (it no longer counts; the same call may be made again) and the
typed error raised. A send whose answer was lost (a
retryable error: timeout, network, channel busy) is asked about at once; if
the channel knows nothing of it, the same request goes again under the same
number, once (:func:`resend_after`); otherwise it is left processing for
``payhub sync``, which only asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from payhub.channels._base import Channel
from payhub.channels._splitting import NoSplits, SplitOperations, not_supported
from payhub.errors import (
    ChannelTimeout,
    ErrorCode,
    InvalidRequestError,
    PayhubError,
    PaymentStateError,
    SplitError,
)
from payhub.ledger import SHOP
from payhub.splits import SplitPart
from payhub.splits import SplitResult as SplitPlan
from payhub.splits_models import (
    ReceiverBinding,
    SplitLine,
    SplitNotice,
    SplitReceiver,
    SplitRequest,
    SplitStatus,
    TransferRequest,
    TransferStatus,
)
from payhub.store import PayoutRecord, SplitLineRecord, SplitRecord
from payhub.store._splits import digest_of

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._base import BaseHub
    from payhub.hub._recovery import SyncReport
    from payhub.hub._sync import PayHub

#: A split plan: what :func:`payhub.splits.split` returns, or its parts.
Plan = SplitPlan | Iterable[SplitPart]
#: A prepared split: the stored record, the request (sent only as that record's
#: number), and whether the record existed before (the same call repeated).
PreparedSplit = tuple[SplitRecord, SplitRequest, bool]


def splitting_channel(hub: BaseHub, name: str, what: str) -> SplitOperations:
    """The channel account ``name`` if it offers splits and transfers, else the
    typed ``NOT_SUPPORTED`` refusal (UnionPay, plugin channels without them)."""
    target: Channel = hub.channel(name)
    if not isinstance(target, SplitOperations) or isinstance(target, NoSplits):
        raise not_supported(name, what)
    return target


def split_lines(
    payer: str, plan: Plan, receivers: Mapping[str, SplitReceiver], description: str
) -> list[tuple[SplitLineRecord, SplitReceiver]]:
    """The lines to send: every part of the plan but the payer's own (it stays
    with the payer) and zero parts; each receiver must have an account."""
    lines = []
    for receiver, amount in plan:
        if receiver == payer or amount.minor == 0:
            continue
        target = receivers.get(receiver)
        if target is None:
            raise SplitError(f"split receiver {receiver!r} has no account in receivers")
        line = SplitLineRecord(
            party=receiver,
            kind=target.kind.value,
            account=target.account,
            amount=amount,
            description=description,
        )
        lines.append((line, target))
    if not lines:
        raise SplitError("the split plan gives nothing to any receiver")
    return lines


def prepare_split(
    hub: BaseHub,
    out_trade_no: str,
    out_split_no: str,
    plan: Plan,
    receivers: Mapping[str, SplitReceiver],
    *,
    description: str,
    finish: bool,
) -> PreparedSplit:
    """Check and reserve (blocking). Nothing is written when anything is refused."""
    store = hub._require_store()
    stored = store.split(out_split_no)
    payment = store.payment(out_trade_no)
    if payment is None:
        raise PaymentStateError(
            f"no stored payment {out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
        )
    if payment.channel is None:
        raise PaymentStateError(
            f"payment {out_trade_no!r} was taken by no channel", code=ErrorCode.PAYMENT_STATE
        )
    if stored is None:
        splitting_channel(hub, payment.channel, "splits")
    payer = payment.seller or SHOP
    pairs = split_lines(payer, plan, receivers, description)
    lines = [line for line, _ in pairs]
    content = {
        "out_trade_no": out_trade_no,
        "finish": finish,
        "lines": [
            (ln.party, ln.kind, ln.account, ln.amount.minor, ln.amount.currency, ln.description)
            for ln in lines
        ],
    }
    record, existed = store.reserve_split(
        out_split_no=out_split_no,
        out_trade_no=out_trade_no,
        lines=lines,
        finish=finish,
        digest=digest_of(content),
    )
    request = SplitRequest(
        out_request_no=out_split_no,
        channel_trade_id=record.channel_trade_id,
        lines=tuple(
            SplitLine(
                kind=target.kind,
                account=target.account,
                amount=line.amount,
                description=line.description,
                name=target.name,
            )
            for line, target in pairs
        ),
        finish=finish,
    )
    return record, request, existed


def payout_digest(channel: str, withdrawal_id: int, request: TransferRequest) -> str:
    """The payout's content, without the payee's name (never stored, not even hashed)."""
    fields: dict[str, Any] = request.model_dump(mode="json", exclude={"name"})
    return digest_of({"channel": channel, "withdrawal": withdrawal_id, "request": fields})


def prepare_payout(
    hub: BaseHub, channel: str, withdrawal_id: int, request: TransferRequest
) -> tuple[PayoutRecord, bool]:
    """Check and reserve (blocking)."""
    store = hub._require_store()
    if store.payout(request.out_transfer_no) is None:
        splitting_channel(hub, channel, "transfers")
    digest = payout_digest(channel, withdrawal_id, request)
    return store.reserve_payout(channel, withdrawal_id, request, digest)


def parse_notice(target: Channel, headers: httpx.Headers, body: bytes) -> SplitNotice:
    """Verify and parse a split or transfer notification (see ``SplitOperations``)."""
    if not isinstance(target, SplitOperations):
        raise not_supported(target.name, "split notifications")
    return target.parse_split_notification(headers, body)


def unknown_number(what: str, number: str) -> InvalidRequestError:
    return InvalidRequestError(f"no stored {what} {number!r}")


def unknown(exc: PayhubError) -> bool:
    """The send's outcome is unknown (timeout, lost answer, channel busy): ask."""
    return exc.retryable


#: what a query's NOT_FOUND answer means for a processing record
NOT_FOUND_YET = "the channel does not know it (yet): it stays processing"


def query_problem(status: SplitStatus | TransferStatus) -> str | None:
    """Why a query's answer settles nothing yet, or None."""
    if status in (SplitStatus.NOT_FOUND, TransferStatus.NOT_FOUND):
        return NOT_FOUND_YET
    return None


def resend_after(why: str | None) -> bool:
    """After a send whose outcome was unknown, the channel says it knows no such
    request: the same request goes again under the same number (the channel takes
    a repeat of a number as the same operation), once. Never a new number."""
    return why == NOT_FOUND_YET


# -- the I/O loops, twice ------------------------------------------------------------


def bind_receivers(
    hub: PayHub,
    channel: str,
    out_request_no: str,
    receivers: Sequence[ReceiverBinding],
    unbind: bool,
) -> None:
    target = splitting_channel(hub, channel, "split receivers")
    if unbind:
        flow = target.unbind_receiver(out_request_no, receivers)
    else:
        flow = target.bind_receiver(out_request_no, receivers)
    hub._run_flow(hub.channel(channel), flow)


async def bind_receivers_async(
    hub: AsyncPayHub,
    channel: str,
    out_request_no: str,
    receivers: Sequence[ReceiverBinding],
    unbind: bool,
) -> None:
    target = splitting_channel(hub, channel, "split receivers")
    if unbind:
        flow = target.unbind_receiver(out_request_no, receivers)
    else:
        flow = target.bind_receiver(out_request_no, receivers)
    await hub._run_flow(hub.channel(channel), flow)


def split(
    hub: PayHub,
    out_trade_no: str,
    out_split_no: str,
    plan: Plan,
    receivers: Mapping[str, SplitReceiver],
    *,
    description: str,
    finish: bool,
) -> SplitRecord:
    record, request, existed = hub._call_store(
        prepare_split,
        hub,
        out_trade_no,
        out_split_no,
        plan,
        receivers,
        description=description,
        finish=finish,
    )
    if existed:
        if record.status.final:
            return record
        asked, why = settle_split(hub, record)
        if not resend_after(why):
            return asked
    return send_split(hub, record, request)


async def split_async(
    hub: AsyncPayHub,
    out_trade_no: str,
    out_split_no: str,
    plan: Plan,
    receivers: Mapping[str, SplitReceiver],
    *,
    description: str,
    finish: bool,
) -> SplitRecord:
    record, request, existed = await hub._call_store(
        prepare_split,
        hub,
        out_trade_no,
        out_split_no,
        plan,
        receivers,
        description=description,
        finish=finish,
    )
    if existed:
        if record.status.final:
            return record
        asked, why = await settle_split_async(hub, record)
        if not resend_after(why):
            return asked
    return await send_split_async(hub, record, request)


def send_split(hub: PayHub, record: SplitRecord, request: SplitRequest) -> SplitRecord:
    """Send a reserved split under its own number and apply the answer; an unknown
    outcome is asked about, and sent again (same number) only if the channel
    knows nothing of it; a refusal marks it refused and is raised."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "splits")
    try:
        answer = hub._run_flow(hub.channel(record.channel), target.split(request))
    except PayhubError as exc:
        if not unknown(exc):
            hub._call_store(store.refuse_split, record.out_split_no, exc.code.name)
            raise
        asked, why = settle_split(hub, record)
        if not resend_after(why):
            return asked
        try:  # the channel never got it: the same request, under the same number, once
            answer = hub._run_flow(hub.channel(record.channel), target.split(request))
        except PayhubError as again:
            if unknown(again):
                return asked
            hub._call_store(store.refuse_split, record.out_split_no, again.code.name)
            raise
    stored = hub._call_store(store.apply_split_result, record.out_split_no, answer)
    if stored.status.final:
        return stored
    return settle_split(hub, stored)[0]


async def send_split_async(
    hub: AsyncPayHub, record: SplitRecord, request: SplitRequest
) -> SplitRecord:
    """Send a reserved split under its own number and apply the answer; an unknown
    outcome is asked about, and sent again (same number) only if the channel
    knows nothing of it; a refusal marks it refused and is raised."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "splits")
    try:
        answer = await hub._run_flow(hub.channel(record.channel), target.split(request))
    except PayhubError as exc:
        if not unknown(exc):
            await hub._call_store(store.refuse_split, record.out_split_no, exc.code.name)
            raise
        asked, why = await settle_split_async(hub, record)
        if not resend_after(why):
            return asked
        try:  # the channel never got it: the same request, under the same number, once
            answer = await hub._run_flow(hub.channel(record.channel), target.split(request))
        except PayhubError as again:
            if unknown(again):
                return asked
            await hub._call_store(store.refuse_split, record.out_split_no, again.code.name)
            raise
    stored = await hub._call_store(store.apply_split_result, record.out_split_no, answer)
    if stored.status.final:
        return stored
    return (await settle_split_async(hub, stored))[0]


def settle_split(hub: PayHub, record: SplitRecord) -> tuple[SplitRecord, str | None]:
    """Ask the channel where a processing split stands, under its own number, and
    apply the answer; (the split as stored afterwards, why it stays processing)."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "splits")
    flow = target.split_query(record.out_split_no, record.channel_trade_id)
    try:
        answer = hub._run_flow(hub.channel(record.channel), flow)
    except PayhubError as exc:
        return record, f"{record.channel}: {exc.message}"
    why = query_problem(answer.status)
    if why is not None:
        return record, why
    return hub._call_store(store.apply_split_result, record.out_split_no, answer), None


async def settle_split_async(
    hub: AsyncPayHub, record: SplitRecord
) -> tuple[SplitRecord, str | None]:
    """Ask the channel where a processing split stands, under its own number, and
    apply the answer; (the split as stored afterwards, why it stays processing)."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "splits")
    flow = target.split_query(record.out_split_no, record.channel_trade_id)
    try:
        answer = await hub._run_flow(hub.channel(record.channel), flow)
    except PayhubError as exc:
        return record, f"{record.channel}: {exc.message}"
    why = query_problem(answer.status)
    if why is not None:
        return record, why
    return await hub._call_store(store.apply_split_result, record.out_split_no, answer), None


def payout(
    hub: PayHub, channel: str, withdrawal_id: int, request: TransferRequest
) -> PayoutRecord:
    record, existed = hub._call_store(prepare_payout, hub, channel, withdrawal_id, request)
    if existed:
        if record.status.final:
            return record
        asked, why = settle_payout(hub, record)
        if not resend_after(why):
            return asked
    return send_payout(hub, record, request)


async def payout_async(
    hub: AsyncPayHub, channel: str, withdrawal_id: int, request: TransferRequest
) -> PayoutRecord:
    record, existed = await hub._call_store(prepare_payout, hub, channel, withdrawal_id, request)
    if existed:
        if record.status.final:
            return record
        asked, why = await settle_payout_async(hub, record)
        if not resend_after(why):
            return asked
    return await send_payout_async(hub, record, request)


def send_payout(hub: PayHub, record: PayoutRecord, request: TransferRequest) -> PayoutRecord:
    """As :func:`send_split`, for a payout's transfer."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "transfers")
    try:
        answer = hub._run_flow(hub.channel(record.channel), target.transfer(request))
    except PayhubError as exc:
        if not unknown(exc):
            hub._call_store(store.refuse_payout, record.out_payout_no, exc.code.name)
            raise
        asked, why = settle_payout(hub, record)
        if not resend_after(why):
            return asked
        try:  # the channel never got it: the same request, under the same number, once
            answer = hub._run_flow(hub.channel(record.channel), target.transfer(request))
        except PayhubError as again:
            if unknown(again):
                return asked
            hub._call_store(store.refuse_payout, record.out_payout_no, again.code.name)
            raise
    return hub._call_store(store.apply_payout_result, record.out_payout_no, answer)


async def send_payout_async(
    hub: AsyncPayHub, record: PayoutRecord, request: TransferRequest
) -> PayoutRecord:
    """As :func:`send_split`, for a payout's transfer."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "transfers")
    try:
        answer = await hub._run_flow(hub.channel(record.channel), target.transfer(request))
    except PayhubError as exc:
        if not unknown(exc):
            await hub._call_store(store.refuse_payout, record.out_payout_no, exc.code.name)
            raise
        asked, why = await settle_payout_async(hub, record)
        if not resend_after(why):
            return asked
        try:  # the channel never got it: the same request, under the same number, once
            answer = await hub._run_flow(hub.channel(record.channel), target.transfer(request))
        except PayhubError as again:
            if unknown(again):
                return asked
            await hub._call_store(store.refuse_payout, record.out_payout_no, again.code.name)
            raise
    return await hub._call_store(store.apply_payout_result, record.out_payout_no, answer)


def settle_payout(hub: PayHub, record: PayoutRecord) -> tuple[PayoutRecord, str | None]:
    """Ask the channel where a processing payout stands, under its own number, and
    apply the answer; (the payout as stored afterwards, why it stays processing)."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "transfers")
    try:
        answer = hub._run_flow(
            hub.channel(record.channel), target.transfer_query(record.out_payout_no)
        )
    except PayhubError as exc:
        return record, f"{record.channel}: {exc.message}"
    why = query_problem(answer.status)
    if why is not None:
        return record, why
    return hub._call_store(store.apply_payout_result, record.out_payout_no, answer), None


async def settle_payout_async(
    hub: AsyncPayHub, record: PayoutRecord
) -> tuple[PayoutRecord, str | None]:
    """Ask the channel where a processing payout stands, under its own number, and
    apply the answer; (the payout as stored afterwards, why it stays processing)."""
    store = hub._require_store()
    target = splitting_channel(hub, record.channel, "transfers")
    try:
        answer = await hub._run_flow(
            hub.channel(record.channel), target.transfer_query(record.out_payout_no)
        )
    except PayhubError as exc:
        return record, f"{record.channel}: {exc.message}"
    why = query_problem(answer.status)
    if why is not None:
        return record, why
    return await hub._call_store(store.apply_payout_result, record.out_payout_no, answer), None


def sync_stored_split(hub: PayHub, out_split_no: str) -> SplitRecord:
    record = hub._call_store(hub._require_store().split, out_split_no)
    if record is None:
        raise unknown_number("split", out_split_no)
    if record.status.final:
        return record
    return settle_split(hub, record)[0]


async def sync_stored_split_async(hub: AsyncPayHub, out_split_no: str) -> SplitRecord:
    record = await hub._call_store(hub._require_store().split, out_split_no)
    if record is None:
        raise unknown_number("split", out_split_no)
    if record.status.final:
        return record
    return (await settle_split_async(hub, record))[0]


def sync_stored_payout(hub: PayHub, out_payout_no: str) -> PayoutRecord:
    record = hub._call_store(hub._require_store().payout, out_payout_no)
    if record is None:
        raise unknown_number("payout", out_payout_no)
    if record.status.final:
        return record
    return settle_payout(hub, record)[0]


async def sync_stored_payout_async(hub: AsyncPayHub, out_payout_no: str) -> PayoutRecord:
    record = await hub._call_store(hub._require_store().payout, out_payout_no)
    if record is None:
        raise unknown_number("payout", out_payout_no)
    if record.status.final:
        return record
    return (await settle_payout_async(hub, record))[0]


def apply_notice(hub: PayHub, notice: SplitNotice) -> None:
    """Apply a verified notice: a transfer's final state as the payout's answer, a
    split's by asking the channel. A number the store does not know (a split
    or transfer made outside the hub) is acknowledged and left alone."""
    store = hub._require_store()
    if notice.transfer is not None:
        if hub._call_store(store.payout, notice.number) is not None:
            hub._call_store(store.apply_payout_result, notice.number, notice.transfer)
        return
    record = hub._call_store(store.split, notice.number)
    if record is not None and not record.status.final:
        _, why = settle_split(hub, record)
        if why is not None and why != NOT_FOUND_YET:
            raise ChannelTimeout(f"split {notice.number} could not be asked: {why}")


async def apply_notice_async(hub: AsyncPayHub, notice: SplitNotice) -> None:
    """Apply a verified notice: a transfer's final state as the payout's answer, a
    split's by asking the channel. A number the store does not know (a split
    or transfer made outside the hub) is acknowledged and left alone."""
    store = hub._require_store()
    if notice.transfer is not None:
        if await hub._call_store(store.payout, notice.number) is not None:
            await hub._call_store(store.apply_payout_result, notice.number, notice.transfer)
        return
    record = await hub._call_store(store.split, notice.number)
    if record is not None and not record.status.final:
        _, why = await settle_split_async(hub, record)
        if why is not None and why != NOT_FOUND_YET:
            raise ChannelTimeout(f"split {notice.number} could not be asked: {why}")


def sync_processing(hub: PayHub, report: SyncReport, limit: int | None) -> None:
    """``payhub sync``: settle every processing split and payout by query."""
    store = hub._require_store()
    for record in hub._call_store(store.splits, status="processing", limit=limit):
        try:
            report._add_split(*settle_split(hub, record))
        except PayhubError as exc:
            report._add_split(record, exc.message)
    for payout_record in hub._call_store(store.payouts, status="processing", limit=limit):
        try:
            report._add_payout(*settle_payout(hub, payout_record))
        except PayhubError as exc:
            report._add_payout(payout_record, exc.message)


async def sync_processing_async(hub: AsyncPayHub, report: SyncReport, limit: int | None) -> None:
    """``payhub sync``: settle every processing split and payout by query."""
    store = hub._require_store()
    for record in await hub._call_store(store.splits, status="processing", limit=limit):
        try:
            report._add_split(*await settle_split_async(hub, record))
        except PayhubError as exc:
            report._add_split(record, exc.message)
    for payout_record in await hub._call_store(store.payouts, status="processing", limit=limit):
        try:
            report._add_payout(*await settle_payout_async(hub, payout_record))
        except PayhubError as exc:
            report._add_payout(payout_record, exc.message)
