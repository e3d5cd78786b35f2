"""The store's poster: a :class:`~payhub.store._movements.Movement` becomes an entry.

Runs inside the transition's transaction (see ``docs/ledger.md``); it reads
only what the rule needs (a refund: the payment's entries and the seller's
balances, locked) and writes through :func:`write_entry`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.ledger._config import LedgerConfig
from payhub.ledger._holds import WithdrawalStatus, end_withdrawal
from payhub.ledger._model import PLATFORM, SHOP, Account, AccountKind, EntryCause
from payhub.ledger._rules import (
    PaymentHistory,
    duplicate_entry,
    duplicate_refund_entry,
    payment_entry,
    refund_entry,
    split_entry,
)
from payhub.ledger._writer import lock_accounts, write_entry
from payhub.money import Money
from payhub.store._movements import Movement, MovementKind
from payhub.store._schema import (
    ledger_accounts,
    ledger_batch_members,
    ledger_entries,
    ledger_lines,
    ledger_parties,
)

__all__ = ["LedgerPoster"]

K = AccountKind


class LedgerPoster:
    """Callable the store holds: ``poster(conn, movement)``."""

    def __init__(self, config: LedgerConfig) -> None:
        self.config = config
        self._plans_read = False

    def __call__(self, conn: Connection, movement: Movement) -> None:
        kind = movement.kind
        if not self._plans_read and kind is MovementKind.PAID:
            # once per process: the plans set through Ledger.set_plan by any process
            rows = conn.execute(
                sa.select(ledger_parties.c.name, ledger_parties.c.plan).where(
                    ledger_parties.c.plan.is_not(None)
                )
            ).all()
            for name, plan in rows:
                if name not in self.config.plans:
                    self.config.set_plan(name, plan)
            self._plans_read = True
        if kind is MovementKind.PAID:
            draft = payment_entry(
                self.config,
                out_trade_no=movement.out_trade_no,
                seller=movement.seller,
                channel=movement.channel,
                amount=movement.amount,
                paid_at=movement.at,
            )
        elif kind is MovementKind.REFUNDED:
            history = payment_history(conn, movement.out_trade_no, movement.seller, movement.amount)
            draft = refund_entry(
                self.config,
                history,
                out_trade_no=movement.out_trade_no,
                out_refund_no=movement.key,
                seller=movement.seller,
                channel=movement.channel,
                refund=movement.amount,
            )
        elif kind is MovementKind.SPLIT:
            total = sum((a for _, a in movement.parts), start=Money.zero(movement.amount.currency))
            history = payment_history(conn, movement.out_trade_no, movement.seller, total)
            draft = split_entry(
                history,
                out_trade_no=movement.out_trade_no,
                out_split_no=movement.key,
                seller=movement.seller,
                parts=movement.parts,
            )
        elif kind in (MovementKind.PAYOUT_PAID, MovementKind.PAYOUT_FAILED):
            status = (
                WithdrawalStatus.PAID
                if kind is MovementKind.PAYOUT_PAID
                else WithdrawalStatus.FAILED
            )
            end_withdrawal(conn, movement.now, int(movement.key), status, movement.note)
            return
        elif kind is MovementKind.UNATTRIBUTED:
            draft = duplicate_entry(
                anomaly_key=movement.key,
                out_trade_no=movement.out_trade_no,
                channel=movement.channel,
                amount=movement.amount,
            )
        else:
            draft = duplicate_refund_entry(
                key=movement.key,
                out_trade_no=movement.out_trade_no,
                channel=movement.channel,
                amount=movement.amount,
            )
        write_entry(conn, draft, movement.now)


def payment_history(
    conn: Connection, out_trade_no: str, seller: str | None, refund: Money
) -> PaymentHistory:
    """The payment's entries so far, and the seller's balances (locked first, so a
    settlement batch cannot take this payment's pending money meanwhile)."""
    party = SHOP if seller is None else seller
    cur = refund.currency
    pending = Account(party, K.PENDING, cur)
    available = Account(party, K.AVAILABLE, cur)
    balances = lock_accounts(conn, [pending, available])
    e, ln, a, m = ledger_entries, ledger_lines, ledger_accounts, ledger_batch_members
    entries = conn.execute(
        sa.select(
            e.c.id,
            e.c.cause,
            e.c.pending_minor,
            e.c.available_on,
            e.c.plan,
            sa.exists().where(m.c.entry_id == e.c.id).label("batched"),
        ).where(
            e.c.reference == out_trade_no,
            # a split's pending movement counts too: what is left of this payment
            e.c.cause.in_(
                [EntryCause.PAYMENT.value, EntryCause.REFUND.value, EntryCause.SPLIT.value]
            ),
        )
    ).all()
    zero = Money.zero(cur)
    payment = next((r for r in entries if r.cause == EntryCause.PAYMENT.value), None)
    if payment is None:
        return PaymentHistory(False, zero, zero, zero, zero, zero, zero, 0, 0, None, None)
    sums: dict[tuple[str, str, str], int] = {}
    rows: Any = conn.execute(
        sa.select(e.c.cause, a.c.party, a.c.kind, sa.func.sum(ln.c.amount_minor))
        .select_from(ln.join(e, ln.c.entry_id == e.c.id).join(a, ln.c.account_id == a.c.id))
        .where(e.c.id.in_([r.id for r in entries]), ln.c.currency == cur)
        .group_by(e.c.cause, a.c.party, a.c.kind)
    )
    for cause, who, kind, amount_sum in rows:
        if kind in (K.CLEARING.value, K.CHANNEL_FEES.value) or who == PLATFORM:
            key = (cause, kind, "")
            sums[key] = sums.get(key, 0) + int(amount_sum)

    def total(cause: EntryCause, kind: AccountKind) -> int:
        return sums.get((cause.value, kind.value, ""), 0)

    pay, ref = EntryCause.PAYMENT, EntryCause.REFUND
    gross = total(pay, K.CLEARING) + total(pay, K.CHANNEL_FEES)
    refunded = -(total(ref, K.CLEARING) + total(ref, K.CHANNEL_FEES))
    pending_left = sum(
        int(r.pending_minor or 0) for r in entries if not r.batched and r.pending_minor is not None
    )
    return PaymentHistory(
        posted=True,
        gross=Money(gross, cur),
        channel_fee=Money(total(pay, K.CHANNEL_FEES), cur),
        platform_fee=Money(-total(pay, K.REVENUE), cur),
        refunded=Money(max(refunded, 0), cur),
        channel_fee_returned=Money(-total(ref, K.CHANNEL_FEES), cur),
        platform_fee_returned=Money(total(ref, K.REVENUE), cur),
        pending_left=max(pending_left, 0),
        available=balances[available],
        available_on=_aware(payment.available_on),
        plan=payment.plan,
    )


def _aware(value: datetime | None) -> datetime | None:
    return value
