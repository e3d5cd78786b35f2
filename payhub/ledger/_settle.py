"""Settlement runs: due pending money becomes available, in one batch per seller and cycle.

The candidates are one grouped query (party, currency, ``available_on``);
whole batches are then written a chunk per transaction (:func:`settle_chunk`):
the batch rows (a unique key), their members (``INSERT … SELECT``; an entry is
a member of one batch at most, by primary key) and one settlement entry per
batch, all of the chunk's entries in one set-based write. Memory holds the list
of groups, never the entries. Re-running finds no candidates; a crash leaves
whole batches only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from payhub.ledger._model import AccountKind
from payhub.ledger._rules import settlement_entry
from payhub.ledger._writer import write_entries
from payhub.money import Money
from payhub.store._engine import insert_ignore
from payhub.store._schema import (
    ledger_accounts,
    ledger_batch_members,
    ledger_batches,
    ledger_entries,
)

__all__ = ["BatchRecord", "SettleReport", "candidates", "settle_chunk"]

E, B, M = ledger_entries, ledger_batches, ledger_batch_members
_O = ledger_batches.alias("other")
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
    """(party, currency, available_on, first entry id, count, sum of ``pending_minor``)
    of every due, unbatched group."""
    query = (
        sa.select(
            E.c.party,
            E.c.currency,
            E.c.available_on,
            sa.func.min(E.c.id),
            sa.func.count(),
            sa.func.sum(E.c.pending_minor),
        )
        .where(E.c.available_on <= at, E.c.pending_minor.is_not(None), _unbatched())
        .group_by(E.c.party, E.c.currency, E.c.available_on)
        .order_by(E.c.available_on, E.c.party, E.c.currency)
    )
    if party is not None:
        query = query.where(E.c.party == party)
    return list(conn.execute(query).all())


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


def _batch_key(party: str, currency: str, available_on: datetime, first: int) -> str:
    return f"{party}:{currency}:{available_on.strftime('%Y%m%dT%H%M%S')}:{first}"


_LOCK_SELLERS = (
    sa.select(ledger_accounts.c.id)
    .where(
        ledger_accounts.c.party.in_(sa.bindparam("parties", expanding=True)),
        ledger_accounts.c.kind.in_([AccountKind.PENDING.value, AccountKind.AVAILABLE.value]),
    )
    .order_by(ledger_accounts.c.party, ledger_accounts.c.kind, ledger_accounts.c.currency)
    .with_for_update()
)
_NEW_BATCHES = sa.select(B.c.id, B.c.key, B.c.party, B.c.currency, B.c.available_on).where(
    B.c.key.in_(sa.bindparam("keys", expanding=True)), B.c.created_at == sa.bindparam("now")
)

def _members(fresh: bool) -> sa.Insert:
    """Every due entry of the batches' groups (``ids``) into their batches; but
    one already in a batch (unless ``fresh``: the groups have no other batch,
    so none of their entries can be in one)."""
    select = (
        sa.select(E.c.id, B.c.id)
        .select_from(
            E.join(
                B,
                sa.and_(
                    B.c.party == E.c.party,
                    B.c.currency == E.c.currency,
                    B.c.available_on == E.c.available_on,
                ),
            )
        )
        .where(B.c.id.in_(sa.bindparam("ids", expanding=True)), E.c.pending_minor.is_not(None))
    )
    if not fresh:
        select = select.where(_unbatched())
    return M.insert().from_select(["entry_id", "batch_id"], select)


_MEMBERS = {fresh: _members(fresh) for fresh in (True, False)}
#: the batches (of ``ids``) whose group (party, currency, cycle) has another
#: batch: only their entries may be members already (an entry joins a batch of
#: its own group only)
_SEEN = sa.select(B.c.id).where(
    B.c.id.in_(sa.bindparam("ids", expanding=True)),
    sa.exists().where(
        _O.c.party == B.c.party,
        _O.c.currency == B.c.currency,
        _O.c.available_on == B.c.available_on,
        _O.c.id != B.c.id,
    ),
)
_SUMS = (
    sa.select(M.c.batch_id, sa.func.sum(E.c.pending_minor), sa.func.count())
    .select_from(M.join(E, M.c.entry_id == E.c.id))
    .where(M.c.batch_id.in_(sa.bindparam("ids", expanding=True)))
    .group_by(M.c.batch_id)
)
_FINISH = (
    B.update()
    .where(B.c.id == sa.bindparam("b_id"))
    .values(
        amount_minor=sa.bindparam("b_amount"),
        entry_count=sa.bindparam("b_count"),
        entry_id=sa.bindparam("b_entry"),
    )
)


def _pg_members_and_sums(fresh: bool) -> sa.TextClause:
    """PostgreSQL: :func:`_members` and the sums of exactly the rows inserted,
    in one statement from one reading of the due entries."""
    unbatched = (
        ""
        if fresh
        else " AND NOT EXISTS (SELECT 1 FROM payhub_ledger_batch_members m WHERE m.entry_id = e.id)"
    )
    # only one of two constant texts is formatted in: every value is a parameter
    return sa.text(
        "WITH src AS MATERIALIZED (SELECT e.id AS entry_id, b.id AS batch_id, e.pending_minor"  # noqa: S608
        " FROM payhub_ledger_entries e JOIN payhub_ledger_batches b ON b.party = e.party"
        " AND b.currency = e.currency AND b.available_on = e.available_on"
        f" WHERE b.id IN :ids AND e.pending_minor IS NOT NULL{unbatched}),"
        " ins AS (INSERT INTO payhub_ledger_batch_members (entry_id, batch_id)"
        " SELECT entry_id, batch_id FROM src)"
        " SELECT batch_id, SUM(pending_minor), COUNT(*) FROM src GROUP BY batch_id"
    ).bindparams(sa.bindparam("ids", expanding=True))


_PG_MEMBERS_AND_SUMS = {fresh: _pg_members_and_sums(fresh) for fresh in (True, False)}


def probe_indexes(conn: Connection) -> None:
    """PostgreSQL: plan this transaction's statements with index probes.

    Every lookup settlement makes is by key (an entry in the members' primary
    key, a group in the entries' index); but the members table grows by a
    million rows in one run, faster than its statistics, and a planner that
    believes it empty scans it once per due entry, quadratic in the run. An
    index probe is right at every size."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")


def _insert_or_skip(dialect: str) -> sa.Insert:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    insert: sa.Insert = module.insert(B).on_conflict_do_nothing(index_elements=[B.c.key])
    return insert


def settle_chunk(conn: Connection, groups: list[Any], now: datetime) -> list[BatchRecord]:
    """Several whole batches in ``conn``'s transaction, set-based: the sellers' accounts
    locked in one statement, the batch rows in one, every member in one ``INSERT …
    SELECT`` (with the sums on PostgreSQL; from the candidate rows on SQLite when
    they still hold, else one query), then the settlement entries of every batch
    in one :func:`write_entries`. Batches another run made meanwhile (their key
    exists) are skipped. ``groups``: rows of :func:`candidates`."""
    if not groups:
        return []
    conn.execute(_LOCK_SELLERS, {"parties": sorted({g[0] for g in groups})}).all()
    rows = [
        {
            "key": _batch_key(party, cur, on, int(first)),
            "party": party,
            "currency": cur,
            "available_on": on,
            "amount_minor": 0,
            "entry_count": 0,
            "entry_id": None,
            "created_at": now,
        }
        for party, cur, on, first, *_ in groups
    ]
    #: what the candidate query saw of each group: (count, sum)
    seen_then = {
        row["key"]: (int(g[4]), int(g[5]))
        for row, g in zip(rows, groups, strict=True)
        if len(g) > 5
    }
    if conn.dialect.name in ("postgresql", "sqlite"):
        # one multi-row statement; a key another run made is skipped
        conn.execute(_insert_or_skip(conn.dialect.name), rows)
    else:
        for row in rows:
            insert_ignore(conn, B, row)
    made = conn.execute(_NEW_BATCHES, {"keys": [r["key"] for r in rows], "now": now}).all()
    if not made:
        return []
    ids = [int(r.id) for r in made]
    by_id = {int(r.id): r for r in made}
    dialect = conn.dialect.name
    probe_indexes(conn)
    # The sellers' accounts are locked: a run that made a batch of these groups
    # has committed it (or waits). Groups with no other batch need no check of
    # their entries against the members (the common case, and the costly check).
    seen = (
        set(ids)
        if dialect not in ("postgresql", "sqlite")
        else {int(i) for i in conn.execute(_SEEN, {"ids": ids}).scalars()}
    )
    sums: dict[int, tuple[int, int]] = {}
    for fresh, part in ((True, [i for i in ids if i not in seen]), (False, sorted(seen))):
        if not part:
            continue
        if dialect == "postgresql":
            found = conn.execute(_PG_MEMBERS_AND_SUMS[fresh], {"ids": part})
            sums.update({int(b): (int(t), int(c)) for b, t, c in found})
            continue
        inserted = conn.execute(_MEMBERS[fresh], {"ids": part}).rowcount
        if fresh:
            # A fresh group's entries were all unbatched, and entries are only
            # ever added: as many members as the candidate query counted means
            # the very entries it summed (the common case: no sums query).
            then = [seen_then.get(by_id[i].key) for i in part]
            if all(t is not None for t in then) and inserted == sum(
                t[0] for t in then if t is not None
            ):
                sums.update({i: (t[1], t[0]) for i, t in zip(part, then, strict=True) if t})
                continue
        found = conn.execute(_SUMS, {"ids": part})
        sums.update({int(b): (int(t), int(c)) for b, t, c in found})
    # the settlement entries of the whole chunk in one set-based write (the
    # chain head locked once, each account upserted once)
    drafts = {
        int(r.id): settlement_entry(
            batch_key=r.key,
            party=r.party,
            amount=Money(sums[int(r.id)][0], r.currency),
            available_on=r.available_on,
        )
        for r in made
        if sums.get(int(r.id), (0, 0))[0] != 0
    }
    written = write_entries(conn, list(drafts.values()), now)
    entry_ids = {b: p.entry_id for b, p in zip(drafts, written, strict=True)}
    records = []
    finish = []
    for r in made:
        total, count = sums.get(int(r.id), (0, 0))
        entry_id = entry_ids.get(int(r.id))
        finish.append({"b_id": int(r.id), "b_amount": total, "b_count": count, "b_entry": entry_id})
        records.append(
            BatchRecord(
                int(r.id), r.key, r.party, r.available_on, Money(total, r.currency), count,
                entry_id, now,
            )
        )
    conn.execute(_FINISH, finish)
    return records
