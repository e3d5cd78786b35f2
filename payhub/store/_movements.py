"""What the transition path tells the ledger: money that moved, inside the transaction.

The store does not import the ledger: it calls the :data:`Poster` it was built
with (``payhub.ledger``'s, by default) with a :class:`Movement`, inside the
transaction that carries the decision out. A poster that raises rolls the
whole transaction back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from payhub.money import Money

__all__ = ["Movement", "MovementKind", "Poster"]


class MovementKind(enum.StrEnum):
    #: a payment was credited (paid, finished)
    PAID = "paid"
    #: a refund of a credited payment succeeded
    REFUNDED = "refunded"
    #: money arrived that is not credited: a duplicate or late payment, an amount mismatch
    UNATTRIBUTED = "unattributed"
    #: such money was refunded
    UNATTRIBUTED_REFUNDED = "unattributed_refunded"
    #: a split (分账) the channel confirmed (``parts``: each receiver's party and amount)
    SPLIT = "split"
    #: a payout of a withdrawal the channel confirmed (``key``: the withdrawal id)
    PAYOUT_PAID = "payout_paid"
    #: a payout the channel refused or returned: the withdrawal goes back
    PAYOUT_FAILED = "payout_failed"


@dataclass(frozen=True)
class Movement:
    kind: MovementKind
    #: unique per movement: the out_trade_no, out_refund_no or anomaly key
    key: str
    out_trade_no: str
    seller: str | None
    channel: str
    amount: Money
    #: when it happened at the channel (the paid time), else when we learnt it
    at: datetime
    #: the transaction's time
    now: datetime
    #: a split's receivers (ledger party, amount), only the lines that succeeded
    parts: tuple[tuple[str, Money], ...] = ()
    #: a payout's reference or failure reason (the withdrawal's note)
    note: str | None = None


#: ``poster(conn, movement)``: post the movement's entry in ``conn``'s transaction.
Poster = Callable[[Connection, Movement], None]
