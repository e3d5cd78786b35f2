"""Settlement runs: due pending money becomes available, in one batch per seller and cycle.

The candidates are one grouped query (party, currency, ``available_on``); each
batch is then its own transaction: the batch row (a unique key), its members
(``INSERT … SELECT``; an entry is a member of one batch at most, by primary
key) and the settlement entry. Memory holds the list of groups, never the
entries. Re-running finds no candidates; a crash leaves whole batches only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.ledger._model import Account, AccountKind
from payhub.ledger._rules import settlement_entry
from payhub.ledger._writer import lock_accounts, write_entry
from payhub.money import Money
from payhub.store._engine import insert_ignore
from payhub.store._schema import ledger_batch_members, ledger_batches, ledger_entries

__all__ = ["BatchRecord", "SettleReport", "candidates", "settle_group"]

E, B, M = ledger_entries, ledger_batches, ledger_batch_members
#: ``progress(done, total)`` after each batch
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchRecord:
    id: int
    key: str
    party: str
    available_on: datetime
    #: what became available (may be zero when refunds netted it out)
    amount: Money
    entry_count: int
    #: the settlement entry (None when the amount is zero)
    entry_id: int | None
    created_at: datetime
    #: the member entries' ids (only from ``Ledger.batch``)
    members: tuple[int, ...] = ()


@dataclass(frozen=True)
class SettleReport:
    at: datetime
    batches: int
    entries: int
    #: per currency, what became available
    amounts: dict[str, Money]
    batch_ids: tuple[int, ...]


def _unbatched() -> Any:
    return ~sa.exists().where(M.c.entry_id == E.c.id)


def candidates(conn: Connection, at: datetime, party: str | None = None) -> list[Any]:
    """(party, currency, available_on, first entry id, count) of every due, unbatched group."""
    query = (
        sa.select(
            E.c.party,
            E.c.currency,
            E.c.available_on,
            sa.func.min(E.c.id),
            sa.func.count(),
        )
        .where(E.c.available_on <= at, E.c.pending_minor.is_not(None), _unbatched())
        .group_by(E.c.party, E.c.currency, E.c.available_on)
        .order_by(E.c.available_on, E.c.party, E.c.currency)
    )
    if party is not None:
        query = query.where(E.c.party == party)
    return list(conn.execute(query).all())


def settle_group(
    conn: Connection,
    *,
    party: str,
    currency: str,
    available_on: datetime,
    first: int,
    now: datetime,
) -> BatchRecord | None:
    """One batch, in ``conn``'s transaction; None if another run made it."""
    key = f"{party}:{currency}:{available_on.strftime('%Y%m%dT%H%M%S')}:{first}"
    # the seller's accounts first: a refund of a pending payment waits, and sees
    # its payment batched (or not) consistently
    lock_accounts(
        conn,
        [
            Account(party, AccountKind.PENDING, currency),
            Account(party, AccountKind.AVAILABLE, currency),
        ],
    )
    inserted = insert_ignore(
        conn,
        B,
        {
            "key": key,
            "party": party,
            "currency": currency,
            "available_on": available_on,
            "amount_minor": 0,
            "entry_count": 0,
            "entry_id": None,
            "created_at": now,
        },
    )
    if not inserted:
        return None
    batch_id = int(conn.execute(sa.select(B.c.id).where(B.c.key == key)).scalar_one())
    members = sa.select(E.c.id, sa.literal(batch_id, B.c.id.type)).where(
        E.c.party == party,
        E.c.currency == currency,
        E.c.available_on == available_on,
        E.c.pending_minor.is_not(None),
        _unbatched(),
    )
    conn.execute(M.insert().from_select(["entry_id", "batch_id"], members))
    total, count = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(E.c.pending_minor), 0), sa.func.count())
        .select_from(M.join(E, M.c.entry_id == E.c.id))
        .where(M.c.batch_id == batch_id)
    ).one()
    amount = Money(int(total), currency)
    entry_id = None
    if amount.minor != 0:
        draft = settlement_entry(
            batch_key=key, party=party, amount=amount, available_on=available_on
        )
        entry_id = write_entry(conn, draft, now).entry_id
    conn.execute(
        B.update()
        .where(B.c.id == batch_id)
        .values(amount_minor=amount.minor, entry_count=int(count), entry_id=entry_id)
    )
    return BatchRecord(batch_id, key, party, available_on, amount, int(count), entry_id, now)


def batch_record(row: Any, members: tuple[int, ...] = ()) -> BatchRecord:
    return BatchRecord(
        id=int(row["id"]),
        key=row["key"],
        party=row["party"],
        available_on=row["available_on"],
        amount=Money(int(row["amount_minor"]), row["currency"]),
        entry_count=int(row["entry_count"]),
        entry_id=None if row["entry_id"] is None else int(row["entry_id"]),
        created_at=row["created_at"],
        members=members,
    )
