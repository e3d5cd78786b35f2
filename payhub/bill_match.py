"""Reconciliation's decisions, pure: one bill row against what the store holds.

:func:`classify_payment` and :func:`classify_refund` take a row of a channel's
bill and the stored payment or refund it names (or None) and return the
differences, none when the row matches. :func:`missing_at_channel` judges a
stored payment or refund the bill did not have. No I/O here: the runner
(:mod:`payhub.recon`) streams the bill, looks the rows up in batches and
records what these functions say.

The classes (:class:`DiffKind`) follow Hyperswitch Recon's: a row the store
never recorded (``missing_in_store``: a lost notification, or a trade the
shop never heard of); a stored payment the bill does not have
(``missing_at_channel``, only once ``sla_days`` have passed since the bill's
day: bills lag); amounts over or under; a fee other than the fee schedule's;
a status the bill contradicts; a currency mismatch; a row the bill repeats.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Final, NamedTuple

__all__ = [
    "DiffKind",
    "Difference",
    "Repair",
    "StoredPayment",
    "StoredRefund",
    "classify_payment",
    "classify_refund",
    "day_window",
    "duplicate_row",
    "missing_at_channel",
]


class DiffKind(enum.StrEnum):
    MISSING_IN_STORE = "missing_in_store"
    MISSING_AT_CHANNEL = "missing_at_channel"
    AMOUNT_OVER = "amount_over"  #: the bill's amount is larger than the stored one
    AMOUNT_UNDER = "amount_under"
    FEE_MISMATCH = "fee_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    DUPLICATE_ROW = "duplicate_row"
    #: billed and stored alike, but the ledger has no entry for the payment
    MISSING_IN_LEDGER = "missing_in_ledger"


class Repair(enum.StrEnum):
    """How a difference may be repaired.

    ``SYNC`` is the one automatic repair: ask the channel (a query) and apply
    its answer through the store's normal transition path, as ``payhub sync``
    does. The others are a person's decision.
    """

    SYNC = "sync"
    IGNORE = "ignore"
    ADJUST = "adjust"
    CREATE = "create"
    REPLACE = "replace"


#: Stored payment states in which the channel has the money.
_PAID_STATES: Final = frozenset({"paid", "partially_refunded", "refunded"})


class StoredPayment(NamedTuple):
    """A stored payment, as reconciliation reads it (a tuple: a million a run)."""

    id: int
    out_trade_no: str
    amount_minor: int
    currency: str
    status: str
    channel: str | None
    channel_trade_id: str | None
    paid_at: datetime | None = None


class StoredRefund(NamedTuple):
    id: int
    out_refund_no: str
    out_trade_no: str
    amount_minor: int
    currency: str
    status: str
    channel: str


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference between a bill and the store, keyed so that finding it
    again (a re-run) is the same difference."""

    kind: DiffKind
    key: str
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    channel_trade_id: str | None = None
    bill_amount_minor: int | None = None
    store_amount_minor: int | None = None
    currency: str | None = None
    bill_fee_minor: int | None = None
    expected_fee_minor: int | None = None
    #: what a person may do; SYNC first when a channel query can prove it
    repairs: tuple[Repair, ...] = (Repair.IGNORE,)
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def automatic(self) -> bool:
        return Repair.SYNC in self.repairs


def payment_key(out_trade_no: str) -> str:
    return f"payment:{out_trade_no}"


def refund_key(out_refund_no: str) -> str:
    return f"refund:{out_refund_no}"


def classify_payment(
    *,
    channel: str,
    out_trade_no: str,
    channel_trade_id: str,
    amount_minor: int,
    currency: str,
    fee_minor: int | None,
    stored: StoredPayment | None,
    expected_fee_minor: int | None = None,
    in_ledger: bool | None = None,
) -> list[Difference]:
    """The differences of one payment row of ``channel``'s bill (none: matched).

    ``expected_fee_minor``: the fee the books expect (the ledger's channel-fee
    line, else the fee schedule's), or None when nothing prices this channel
    (then fees are not compared). ``in_ledger``: whether the ledger holds the
    payment's entry (None: not checked).
    """
    key = payment_key(out_trade_no)
    common: dict[str, Any] = {
        "key": key,
        "out_trade_no": out_trade_no,
        "channel_trade_id": channel_trade_id,
        "bill_amount_minor": amount_minor,
        "currency": currency,
    }
    if stored is None:
        # A trade the shop never heard of: nothing to apply a query's answer to.
        return [
            Difference(
                DiffKind.MISSING_IN_STORE,
                repairs=(Repair.CREATE, Repair.IGNORE),
                detail={"why": "no payment with this out_trade_no"},
                **common,
            )
        ]
    common["store_amount_minor"] = stored.amount_minor
    if stored.currency != currency:
        return [Difference(DiffKind.CURRENCY_MISMATCH, detail={"store": stored.currency}, **common)]
    if stored.status not in _PAID_STATES or stored.channel != channel:
        if stored.status == "pending":
            # Paid at the channel, still pending here: a lost notification.
            return [
                Difference(
                    DiffKind.MISSING_IN_STORE,
                    repairs=(Repair.SYNC, Repair.IGNORE),
                    detail={"why": "stored as pending", "store_status": stored.status},
                    **common,
                )
            ]
        return [
            Difference(
                DiffKind.STATUS_MISMATCH,
                repairs=(Repair.SYNC, Repair.IGNORE, Repair.REPLACE),
                detail={"store_status": stored.status, "store_channel": stored.channel},
                **common,
            )
        ]
    found: list[Difference] = []
    if amount_minor != stored.amount_minor:
        kind = DiffKind.AMOUNT_OVER if amount_minor > stored.amount_minor else DiffKind.AMOUNT_UNDER
        found.append(Difference(kind, repairs=(Repair.ADJUST, Repair.IGNORE), **common))
    if expected_fee_minor is not None and fee_minor is not None and fee_minor != expected_fee_minor:
        found.append(
            Difference(
                DiffKind.FEE_MISMATCH,
                bill_fee_minor=fee_minor,
                expected_fee_minor=expected_fee_minor,
                repairs=(Repair.ADJUST, Repair.IGNORE),
                **common,
            )
        )
    if in_ledger is False:
        found.append(
            Difference(
                DiffKind.MISSING_IN_LEDGER,
                repairs=(Repair.ADJUST, Repair.IGNORE),
                detail={"why": "no ledger entry for this payment"},
                **common,
            )
        )
    return found


def classify_refund(
    *,
    channel: str,
    out_trade_no: str,
    out_refund_no: str,
    channel_trade_id: str,
    amount_minor: int,
    currency: str,
    stored: StoredRefund | None,
) -> list[Difference]:
    """The differences of one refund row (``amount_minor`` negative, as billed)."""
    common: dict[str, Any] = {
        "key": refund_key(out_refund_no),
        "out_trade_no": out_trade_no,
        "out_refund_no": out_refund_no,
        "channel_trade_id": channel_trade_id,
        "bill_amount_minor": amount_minor,
        "currency": currency,
    }
    if stored is None:
        return [
            Difference(
                DiffKind.MISSING_IN_STORE,
                repairs=(Repair.CREATE, Repair.IGNORE),
                detail={"why": "no refund with this out_refund_no"},
                **common,
            )
        ]
    common["store_amount_minor"] = -stored.amount_minor
    if stored.currency != currency:
        return [Difference(DiffKind.CURRENCY_MISMATCH, detail={"store": stored.currency}, **common)]
    if stored.status == "pending":
        # Refunded at the channel, the answer lost here: a query proves it.
        return [
            Difference(
                DiffKind.MISSING_IN_STORE,
                repairs=(Repair.SYNC, Repair.IGNORE),
                detail={"why": "stored as pending", "store_status": stored.status},
                **common,
            )
        ]
    if stored.status != "succeeded" or stored.channel != channel:
        return [
            Difference(
                DiffKind.STATUS_MISMATCH,
                repairs=(Repair.IGNORE, Repair.REPLACE),
                detail={"store_status": stored.status, "store_channel": stored.channel},
                **common,
            )
        ]
    if -amount_minor != stored.amount_minor:
        kind = (
            DiffKind.AMOUNT_OVER if -amount_minor > stored.amount_minor else DiffKind.AMOUNT_UNDER
        )
        return [Difference(kind, repairs=(Repair.ADJUST, Repair.IGNORE), **common)]
    return []


def duplicate_row(
    key: str,
    *,
    out_trade_no: str,
    out_refund_no: str | None,
    amount_minor: int,
    currency: str,
    seen: int,
) -> Difference:
    """A row the bill repeats (``seen``: how many times so far)."""
    return Difference(
        DiffKind.DUPLICATE_ROW,
        key=key,
        out_trade_no=out_trade_no,
        out_refund_no=out_refund_no,
        bill_amount_minor=amount_minor,
        currency=currency,
        repairs=(Repair.IGNORE,),
        detail={"times": seen},
    )


def missing_at_channel(
    *,
    key: str,
    out_trade_no: str,
    out_refund_no: str | None,
    amount_minor: int,
    currency: str,
    bill_date: date,
    now: datetime,
    sla_days: int,
    window_end: datetime,
) -> Difference | None:
    """A stored payment or refund of the bill's day that the bill does not have:
    a difference once ``sla_days`` have passed since the day ended, else None
    (still expected: bills lag)."""
    if now < window_end + timedelta(days=sla_days):
        return None
    return Difference(
        DiffKind.MISSING_AT_CHANNEL,
        key=key,
        out_trade_no=out_trade_no,
        out_refund_no=out_refund_no,
        store_amount_minor=amount_minor,
        currency=currency,
        repairs=(Repair.IGNORE, Repair.ADJUST),
        detail={"sla_days": sla_days, "bill_date": bill_date.isoformat()},
    )


def day_window(bill_date: date, cutoff: time, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants a channel's bill of ``bill_date`` covers: from the cut-off
    of the day before to the cut-off of the day, in the channel's zone.

    Alipay and WeChat Pay cut at midnight (Asia/Shanghai); a channel that
    settles at 23:00 passes ``time(23)``.
    """
    if cutoff == time(0):
        start = datetime.combine(bill_date, cutoff, zone)
    else:
        start = datetime.combine(bill_date - timedelta(days=1), cutoff, zone)
    return start, start + timedelta(days=1)
