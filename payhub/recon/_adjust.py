"""The Adjust repair: a ledger adjustment entry that makes the books agree with
the channel's bill, decided by a person (``payhub reconcile resolve --action
adjust``).

=====================  ==========================================================
difference             entry (``d`` = what the bill says minus what the books say)
=====================  ==========================================================
fee_mismatch           ``d`` = bill fee - booked fee: debit the channel's fees,
                       credit its clearing account (it paid us ``d`` less)
amount_over / _under,  ``d`` = bill amount - stored amount: debit the channel's
missing_at_channel     clearing account (it owes us ``d`` more), credit the
                       platform's suspense account (money not yet attributed);
                       for a negative ``d`` the other way round
missing_in_ledger      the payment's own entry, posted by the ledger's posting
                       rules under their idempotency key (so never twice)
=====================  ==========================================================

Each entry's idempotency key is ``recon:<difference id>``: resolving again, or
after a crash between posting and closing the difference, posts nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payhub.errors import InvalidRequestError
from payhub.money import Money

if TYPE_CHECKING:
    from payhub.ledger import EntryDraft, Ledger
    from payhub.store import Store

__all__ = ["adjustment_draft"]


def adjustment_draft(item: Mapping[str, Any], ledger: Ledger, store: Store) -> EntryDraft:
    """The entry that adjusts the books for one difference."""
    from payhub.ledger import (  # noqa: PLC0415 - the ledger only when adjusting
        PLATFORM,
        Account,
        EntryCause,
        EntryDraft,
        credit,
        debit,
    )
    from payhub.ledger import AccountKind as K  # noqa: PLC0415
    from payhub.ledger._model import entry_key  # noqa: PLC0415
    from payhub.ledger._rules import payment_entry  # noqa: PLC0415

    kind, channel = item["kind"], item["channel"]
    currency = item["currency"] or "CNY"
    if kind == "missing_in_ledger":
        payment = store.payment(item["out_trade_no"])
        if payment is None or payment.paid_at is None:
            raise InvalidRequestError(f"difference {item['id']}: the payment is not paid here")
        return payment_entry(
            ledger.config,
            out_trade_no=payment.out_trade_no,
            seller=payment.seller,
            channel=payment.channel,
            amount=payment.amount,
            paid_at=payment.paid_at,
        )
    if kind == "fee_mismatch":
        delta = (item["bill_fee_minor"] or 0) - (item["expected_fee_minor"] or 0)
        first, second = K.CHANNEL_FEES, K.CLEARING
        accounts = (Account(channel, first, currency), Account(channel, second, currency))
    elif kind in ("amount_over", "amount_under", "missing_at_channel"):
        delta = (item["bill_amount_minor"] or 0) - (item["store_amount_minor"] or 0)
        accounts = (
            Account(channel, K.CLEARING, currency),
            Account(PLATFORM, K.SUSPENSE, currency),
        )
    else:
        raise InvalidRequestError(f"a {kind} difference has no ledger adjustment")
    if delta == 0:
        raise InvalidRequestError(f"difference {item['id']}: nothing to adjust")
    amount = Money(abs(delta), currency)
    debited, credited = accounts if delta > 0 else accounts[::-1]
    return EntryDraft(
        idempotency_key=entry_key("recon", str(item["id"])),
        cause=EntryCause.ADJUSTMENT,
        reference=f"recon:{item['id']}",
        lines=[debit(debited, amount), credit(credited, amount)],
    )
