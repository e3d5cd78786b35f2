"""The posting rules: what entry each fact posts (the table in ``docs/ledger.md``). Pure.

Each function returns an :class:`EntryDraft` (already checked to balance);
the writer (:mod:`payhub.ledger._writer`) puts it in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payhub.fees import fee_to_return
from payhub.ledger._config import LedgerConfig
from payhub.ledger._model import (
    PLATFORM,
    SHOP,
    Account,
    AccountKind,
    EntryCause,
    EntryDraft,
    Line,
    credit,
    debit,
    entry_key,
)
from payhub.money import Money

__all__ = [
    "PaymentHistory",
    "duplicate_entry",
    "duplicate_refund_entry",
    "payment_entry",
    "refund_entry",
    "settlement_entry",
    "split_entry",
]

K = AccountKind


def _seller(seller: str | None) -> str:
    return SHOP if seller is None else seller


def payment_entry(
    config: LedgerConfig,
    *,
    out_trade_no: str,
    seller: str | None,
    channel: str | None,
    amount: Money,
    paid_at: datetime,
) -> EntryDraft:
    """A payment succeeded: clearing and channel fee; the seller's share; fees to revenue."""
    party = _seller(seller)
    cur = amount.currency
    channel_party = channel or "unknown-channel"
    fee_c = config.channel_fee(channel, amount)
    fee_s = config.seller_fee(party, amount)
    plan = config.plan_of(party)
    fee_i = config.instant_fee(amount) if plan.instant else Money.zero(cur)
    fee_platform = min(fee_s + fee_i, amount)
    share = amount - fee_platform
    target = K.AVAILABLE if plan.instant else K.PENDING
    lines = [
        debit(Account(channel_party, K.CLEARING, cur), amount - fee_c),
        debit(Account(channel_party, K.CHANNEL_FEES, cur), fee_c),
        credit(Account(party, target, cur), share),
        credit(Account(PLATFORM, K.REVENUE, cur), fee_platform),
    ]
    return EntryDraft(
        idempotency_key=entry_key("payment", out_trade_no),
        cause=EntryCause.PAYMENT,
        reference=out_trade_no,
        lines=lines,
        party=party,
        plan=plan.code,
        available_on=None if plan.instant else plan.available_on(paid_at),
    )


@dataclass(frozen=True)
class PaymentHistory:
    """What the ledger already holds about one payment (for a refund)."""

    #: the payment entry was found (a payment credited before the ledger existed has none)
    posted: bool
    gross: Money
    channel_fee: Money
    #: seller fee plus instant fee: what went to revenue
    platform_fee: Money
    refunded: Money
    channel_fee_returned: Money
    platform_fee_returned: Money
    #: this payment's pending money not yet in a settlement batch (normal side)
    pending_left: int
    #: the seller's available balance now (locked)
    available: int
    available_on: datetime | None
    plan: str | None


def refund_entry(
    config: LedgerConfig,
    history: PaymentHistory,
    *,
    out_trade_no: str,
    out_refund_no: str,
    seller: str | None,
    channel: str,
    refund: Money,
) -> EntryDraft:
    """A refund succeeded: the channel gives back its fee share; the seller pays the rest,
    from this payment's unsettled pending first, then available, then owing it."""
    party = _seller(seller)
    cur = refund.currency
    key = entry_key("refund", out_refund_no)
    if not history.posted:
        # Credited before the ledger existed: nothing to take it from but suspense.
        lines: list[Line] = [
            credit(Account(channel, K.CLEARING, cur), refund),
            debit(Account(PLATFORM, K.SUSPENSE, cur), refund),
        ]
        return EntryDraft(key, EntryCause.REFUND, out_trade_no, lines, party=party)
    refunded = min(history.refunded, history.gross)
    room = history.gross - refunded
    counted = min(refund, room)  # a channel never refunds more; if it says so, no fee back
    fc_back = Money.zero(cur)
    fs_back = Money.zero(cur)
    if counted.minor > 0:
        fc_back = fee_to_return(
            config.refund_fee_policy,
            amount=history.gross,
            fee=history.channel_fee,
            refunded=refunded,
            fee_returned=history.channel_fee_returned,
            refund=counted,
            rounding=config.rounding,
        )
        fs_back = fee_to_return(
            config.seller_refund_fee_policy,
            amount=history.gross,
            fee=history.platform_fee,
            refunded=refunded,
            fee_returned=history.platform_fee_returned,
            refund=counted,
            rounding=config.rounding,
        )
    take = refund.minor - fs_back.minor
    from_pending = max(0, min(take, history.pending_left))
    from_available = max(0, min(take - from_pending, history.available))
    owed = take - from_pending - from_available
    lines = [
        credit(Account(channel, K.CLEARING, cur), refund - fc_back),
        credit(Account(channel, K.CHANNEL_FEES, cur), fc_back),
        debit(Account(PLATFORM, K.REVENUE, cur), fs_back),
        debit(Account(party, K.PENDING, cur), Money(from_pending, cur)),
        debit(Account(party, K.AVAILABLE, cur), Money(from_available, cur)),
        debit(Account(party, K.RECEIVABLE, cur), Money(owed, cur)),
    ]
    return EntryDraft(
        key,
        EntryCause.REFUND,
        out_trade_no,
        lines,
        party=party,
        plan=history.plan,
        # nets in the same settlement batch as the payment, if still pending
        available_on=history.available_on if from_pending else None,
    )


def duplicate_entry(
    *, anomaly_key: str, out_trade_no: str, channel: str, amount: Money
) -> EntryDraft:
    """Money we cannot attribute (a duplicate or late payment, a mismatch): suspense."""
    cur = amount.currency
    return EntryDraft(
        entry_key("duplicate", anomaly_key),
        EntryCause.DUPLICATE,
        out_trade_no,
        [
            debit(Account(channel, K.CLEARING, cur), amount),
            credit(Account(PLATFORM, K.SUSPENSE, cur), amount),
        ],
    )


def duplicate_refund_entry(
    *, key: str, out_trade_no: str, channel: str, amount: Money
) -> EntryDraft:
    """A duplicate or late payment refunded: out of suspense, back to the channel."""
    cur = amount.currency
    return EntryDraft(
        entry_key("duplicate_refund", key),
        EntryCause.DUPLICATE_REFUND,
        out_trade_no,
        [
            debit(Account(PLATFORM, K.SUSPENSE, cur), amount),
            credit(Account(channel, K.CLEARING, cur), amount),
        ],
    )


def settlement_entry(
    *, batch_key: str, party: str, amount: Money, available_on: datetime
) -> EntryDraft:
    """A settlement batch: the members' pending sum becomes available (may be negative)."""
    cur = amount.currency
    pending = Account(party, K.PENDING, cur)
    available = Account(party, K.AVAILABLE, cur)
    if amount.minor >= 0:
        lines = [debit(pending, amount), credit(available, amount)]
    else:
        lines = [credit(pending, -amount), debit(available, -amount)]
    return EntryDraft(
        entry_key("settlement", batch_key),
        EntryCause.SETTLEMENT,
        batch_key,
        lines,
        party=party,
        available_on=available_on,
    )


def split_entry(
    history: PaymentHistory,
    *,
    out_trade_no: str,
    out_split_no: str,
    seller: str | None,
    parts: tuple[tuple[str, Money], ...],
) -> EntryDraft:
    """A split (分账) the channel confirmed: each receiver's part leaves the payer
    (the payment's seller, or the shop) — from this payment's unsettled pending
    first, then available, then owing it — to the receiver's ``paid_out``: the
    channel moved it to the receiver's own account, outside these books.
    Receivers' parts are credited only for the lines that succeeded."""
    party = _seller(seller)
    cur = parts[0][1].currency
    total = sum((amount for _, amount in parts), start=Money.zero(cur))
    take = total.minor
    from_pending = max(0, min(take, history.pending_left))
    from_available = max(0, min(take - from_pending, history.available))
    owed = take - from_pending - from_available
    lines = [
        debit(Account(party, K.PENDING, cur), Money(from_pending, cur)),
        debit(Account(party, K.AVAILABLE, cur), Money(from_available, cur)),
        debit(Account(party, K.RECEIVABLE, cur), Money(owed, cur)),
    ]
    lines += [credit(Account(receiver, K.PAID_OUT, cur), amount) for receiver, amount in parts]
    return EntryDraft(
        entry_key("split", out_split_no),
        EntryCause.SPLIT,
        out_trade_no,
        lines,
        party=party,
        plan=history.plan,
        # nets in the same settlement batch as the payment, if still pending
        available_on=history.available_on if from_pending else None,
    )
