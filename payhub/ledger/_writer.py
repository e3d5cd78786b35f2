"""Writing an entry inside an open transaction: the entry, its accounts' balances, its lines.

The entry is linked into the audit chain (:mod:`payhub.store._chain`): its
head is locked first. Then one statement on PostgreSQL (data-modifying CTEs,
the chain head's advance among them); three on SQLite, four on MySQL/MariaDB
(no RETURNING), and the head's advance: the entry (skipped, with nothing
else, if its idempotency key was posted before), one upsert of every account
it touches (created by their first line; balance and version changed in
place, rows locked in a fixed order so two postings never deadlock), and the
lines in one multi-row INSERT. An account that may not go negative and would
is refused by raising :class:`LedgerError`: the caller's transaction rolls
back, nothing is written.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from payhub.errors import ErrorCode, LedgerError
from payhub.ledger._model import Account, AccountKind, EntryDraft
from payhub.money import Money
from payhub.store._chain import (
    advance,
    canonical_around_seq,
    lock_head,
    next_link,
    next_links,
)
from payhub.store._engine import is_duplicate_key
from payhub.store._schema import CHAINED, ledger_accounts, ledger_entries, ledger_lines

__all__ = ["Posted", "lock_accounts", "write_entries", "write_entry"]

A = ledger_accounts
E = ledger_entries


@dataclass(frozen=True)
class Posted:
    """What :func:`write_entry` did: the entry's id, and whether it was new."""

    entry_id: int
    created: bool
    #: the normal-side balances of the entry's accounts after it (new entries only)
    balances: dict[Account, int]


@functools.cache
def _entry_insert(dialect: str) -> sa.Insert:
    if dialect == "postgresql":
        return (
            postgresql.insert(E)
            .on_conflict_do_nothing(index_elements=[E.c.idempotency_key])
            .returning(E.c.id)
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(E)
            .on_conflict_do_nothing(index_elements=[E.c.idempotency_key])
            .returning(E.c.id)
        )
    return E.insert()


@functools.cache
def _account_upsert(dialect: str) -> sa.Insert:
    columns = (A.c.id, A.c.party, A.c.kind, A.c.currency, A.c.balance_minor)
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        insert = module.insert(A)
        upsert: sa.Insert = insert.on_conflict_do_update(
            index_elements=[A.c.party, A.c.kind, A.c.currency],
            set_={
                "balance_minor": A.c.balance_minor + insert.excluded.balance_minor,
                "version": A.c.version + 1,
            },
        )
        return upsert.returning(*columns, sort_by_parameter_order=True)
    raise AssertionError(dialect)  # pragma: no cover - MySQL: _mysql_upsert


def _mysql_upsert(params: list[dict[str, Any]], *, counted: bool = False) -> sa.Insert:
    """One multi-row statement (PyMySQL cannot executemany an ON DUPLICATE KEY UPDATE).
    ``counted``: each row's ``version`` is the number of lines it adds."""
    insert = mysql.insert(A).values(params)
    return insert.on_duplicate_key_update(
        balance_minor=A.c.balance_minor + insert.inserted.balance_minor,
        version=A.c.version + (insert.inserted.version if counted else 1),
    )


@functools.cache
def _counted_upsert(dialect: str, *, returning: bool = True) -> sa.Insert:
    """:func:`_account_upsert` where each row's ``version`` is the number of
    lines it adds (an account's version counts its lines)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    insert = module.insert(A)
    upsert: sa.Insert = insert.on_conflict_do_update(
        index_elements=[A.c.party, A.c.kind, A.c.currency],
        set_={
            "balance_minor": A.c.balance_minor + insert.excluded.balance_minor,
            "version": A.c.version + insert.excluded.version,
        },
    )
    if not returning:
        return upsert
    return upsert.returning(
        A.c.id, A.c.party, A.c.kind, A.c.currency, A.c.balance_minor, sort_by_parameter_order=True
    )


def write_entry(conn: Connection, draft: EntryDraft, now: datetime) -> Posted:
    """Post ``draft`` in ``conn``'s transaction (see the module docstring)."""
    dialect = conn.dialect.name
    row = _entry_row(draft, now)
    digest = row["digest"]
    if dialect == "postgresql":
        posted = _write_postgres(conn, draft, row, now)
        if posted is None:
            # no head row (an emptied store): write the genesis head, then post
            lock_head(conn)
            posted = _write_postgres(conn, draft, row, now)
            assert posted is not None
        return posted
    # The entry's place in the audit chain: the head is locked before any
    # account, in every posting (a fixed lock order), and advanced only if the
    # entry is new.
    new = next_link(conn, E, row)
    entry_id = _insert_entry(conn, dialect, {**row, **new.columns()})
    if entry_id is None:
        return _replayed(conn, draft, digest)
    advance(conn, new)
    ids, balances = _apply_balances(conn, dialect, draft, now)
    conn.execute(
        ledger_lines.insert(),
        [
            {
                "entry_id": entry_id,
                "account_id": ids[line.account],
                "amount_minor": line.signed_minor,
                "currency": line.amount.currency,
                "created_at": now,
            }
            for line in draft.lines
        ],
    )
    return Posted(entry_id, True, balances)


def _entry_row(draft: EntryDraft, now: datetime) -> dict[str, Any]:
    pending = draft.pending
    return {
        "idempotency_key": draft.idempotency_key,
        "cause": draft.cause.value,
        "reference": draft.reference,
        "party": draft.party,
        "plan": draft.plan,
        "available_on": draft.available_on,
        "currency": None if pending is None else pending[0].currency,
        "pending_minor": None if pending is None else pending[1],
        "digest": draft.digest(),
        "created_at": now,
    }


_EXISTING = sa.select(E.c.idempotency_key, E.c.id, E.c.digest).where(
    E.c.idempotency_key.in_(sa.bindparam("keys", expanding=True))
)
_IDS_BY_SEQ = sa.select(E.c.chain_seq, E.c.id).where(
    E.c.chain_seq.between(sa.bindparam("lo"), sa.bindparam("hi"))
)
_ACCOUNTS_OF = sa.select(A.c.id, A.c.party, A.c.kind, A.c.currency, A.c.balance_minor).where(
    A.c.party.in_(sa.bindparam("parties", expanding=True))
)


def write_entries(conn: Connection, drafts: Sequence[EntryDraft], now: datetime) -> list[Posted]:
    """Post several drafts in ``conn``'s transaction, set-based: what
    :func:`write_entry` does for each, in a handful of statements for all.

    Keys posted before are replays (same content: not written again; other
    content: :class:`LedgerError`). The chain head is locked once and the new
    entries' links computed in order; the entries go in one multi-row INSERT,
    every account they touch is upserted once with the sum of its lines (in the
    fixed lock order), the lines in one multi-row INSERT, and the head advanced
    once. Each entry's balances are those after it, in ``drafts`` order, and an
    account that may not go negative is refused if it would after any of them
    (nothing written: the caller's transaction rolls back)."""
    if not drafts:
        return []
    dialect = conn.dialect.name
    rows = [_entry_row(d, now) for d in drafts]
    keys = [r["idempotency_key"] for r in rows]
    if len(set(keys)) != len(keys):
        raise LedgerError(
            "ledger: one idempotency key twice in one posting; nothing written",
            code=ErrorCode.INVALID_REQUEST,
        )
    known = {r.idempotency_key: r for r in conn.execute(_EXISTING, {"keys": keys})}
    posted: dict[int, Posted] = {}
    fresh: list[int] = []
    for i, row in enumerate(rows):
        found = known.get(row["idempotency_key"])
        if found is None:
            fresh.append(i)
        elif found.digest != row["digest"]:
            raise LedgerError(
                f"ledger: idempotency key {row['idempotency_key']!r} was posted before with "
                "different content; nothing written",
                code=ErrorCode.LEDGER_IDEMPOTENCY_CONFLICT,
            )
        else:
            posted[i] = Posted(int(found.id), False, {})
    if fresh:
        new_rows = [rows[i] for i in fresh]
        links = next_links(conn, E, new_rows)
        values = [{**r, **ln.columns()} for r, ln in zip(new_rows, links, strict=True)]
        # a plain INSERT: a key another transaction posted meanwhile fails the
        # whole posting rather than leave a gap in the chain
        if dialect == "postgresql":
            ids = _pg_insert_entries(conn, values)
        else:
            # executemany of a plain INSERT; the ids by the rows' places in the chain
            conn.execute(E.insert(), values)
            by_seq = {
                int(seq): int(entry_id)
                for seq, entry_id in conn.execute(
                    _IDS_BY_SEQ, {"lo": links[0].seq, "hi": links[-1].seq}
                )
            }
            ids = [by_seq[ln.seq] for ln in links]
        advance(conn, links[-1])
        new_drafts = [drafts[i] for i in fresh]
        account_ids, balances = _apply_many(conn, dialect, new_drafts, now)
        lines = [
            (entry_id, account_ids[line.account], line.signed_minor, line.amount.currency)
            for entry_id, draft in zip(ids, new_drafts, strict=True)
            for line in draft.lines
        ]
        if dialect == "postgresql":
            entry_col, account_col, amount_col, currency_col = zip(*lines, strict=True)
            conn.execute(
                _PG_LINES,
                {
                    "entry": list(entry_col),
                    "account": list(account_col),
                    "amount": list(amount_col),
                    "currency": list(currency_col),
                    "now": _naive(now),
                },
            )
        else:
            conn.execute(
                ledger_lines.insert(),
                [
                    {
                        "entry_id": entry_id,
                        "account_id": account_id,
                        "amount_minor": amount,
                        "currency": currency,
                        "created_at": now,
                    }
                    for entry_id, account_id, amount, currency in lines
                ],
            )
        for i, entry_id, after in zip(fresh, ids, balances, strict=True):
            posted[i] = Posted(entry_id, True, after)
    return [posted[i] for i in range(len(drafts))]


# PostgreSQL: each column one array parameter, so a statement's text (and its
# parsing) stays the same whatever the number of rows
_PG_ENTRIES = sa.text(
    "INSERT INTO payhub_ledger_entries (idempotency_key, cause, reference, party, plan,"
    " available_on, currency, pending_minor, digest, created_at, chain_seq, chain_hash)"
    " SELECT k, c, r, p, pl, ao, cur, pm, d, :now, s, h FROM unnest(CAST(:key AS VARCHAR[]),"
    " CAST(:cause AS VARCHAR[]), CAST(:reference AS VARCHAR[]), CAST(:party AS VARCHAR[]),"
    " CAST(:plan AS VARCHAR[]), CAST(:available_on AS TIMESTAMP[]), CAST(:currency AS VARCHAR[]),"
    " CAST(:pending AS BIGINT[]), CAST(:digest AS VARCHAR[]), CAST(:seq AS BIGINT[]),"
    " CAST(:hash AS VARCHAR[])) AS v(k, c, r, p, pl, ao, cur, pm, d, s, h) ORDER BY s"
    " RETURNING id, idempotency_key"
)
_PG_ACCOUNTS = sa.text(
    "INSERT INTO payhub_ledger_accounts (party, kind, currency, balance_minor, version,"
    " created_at) SELECT p, k, c, d, n, :now FROM unnest(CAST(:party AS VARCHAR[]),"
    " CAST(:kind AS VARCHAR[]), CAST(:currency AS VARCHAR[]), CAST(:delta AS BIGINT[]),"
    " CAST(:lines AS BIGINT[])) WITH ORDINALITY AS v(p, k, c, d, n, o) ORDER BY o"
    " ON CONFLICT (party, kind, currency) DO UPDATE SET balance_minor ="
    " payhub_ledger_accounts.balance_minor + excluded.balance_minor,"
    " version = payhub_ledger_accounts.version + excluded.version"
    " RETURNING id, party, kind, currency, balance_minor"
)
_PG_LINES = sa.text(
    "INSERT INTO payhub_ledger_lines (entry_id, account_id, amount_minor, currency, created_at)"
    " SELECT e, a, m, c, :now FROM unnest(CAST(:entry AS BIGINT[]), CAST(:account AS BIGINT[]),"
    " CAST(:amount AS BIGINT[]), CAST(:currency AS VARCHAR[])) AS v(e, a, m, c)"
)


def _pg_insert_entries(conn: Connection, values: list[dict[str, Any]]) -> list[int]:
    """The entries' ids, in ``values`` order."""

    def column(name: str) -> list[Any]:
        return [v[name] for v in values]

    found = conn.execute(
        _PG_ENTRIES,
        {
            "key": column("idempotency_key"),
            "cause": column("cause"),
            "reference": column("reference"),
            "party": column("party"),
            "plan": column("plan"),
            "available_on": [_naive(v["available_on"]) for v in values],
            "currency": column("currency"),
            "pending": column("pending_minor"),
            "digest": column("digest"),
            "seq": column("chain_seq"),
            "hash": column("chain_hash"),
            # one time for the whole posting, as every entry here has
            "now": _naive(values[0]["created_at"]),
        },
    )
    by_key = {key: int(entry_id) for entry_id, key in found}
    return [by_key[v["idempotency_key"]] for v in values]


def _apply_many(
    conn: Connection, dialect: str, drafts: Sequence[EntryDraft], now: datetime
) -> tuple[dict[Account, int], list[dict[Account, int]]]:
    """Every account's id, and each draft's balances after it: one upsert of
    each account with the sum of its lines; the balances between drafts are the
    final ones less what the later drafts added, each checked."""
    delta: dict[Account, int] = {}
    lines: dict[Account, int] = {}
    for draft in drafts:
        for line in draft.lines:
            delta[line.account] = delta.get(line.account, 0) + line.normal_minor
            lines[line.account] = lines.get(line.account, 0) + 1
    ordered = sorted(delta)  # a fixed lock order
    params = [
        {
            "party": a.party,
            "kind": a.kind.value,
            "currency": a.currency,
            "balance_minor": delta[a],
            "version": lines[a],
            "created_at": now,
        }
        for a in ordered
    ]
    by_key = {(a.party, a.kind.value, a.currency): a for a in ordered}
    if dialect == "postgresql":
        found = conn.execute(
            _PG_ACCOUNTS,
            {
                "party": [a.party for a in ordered],
                "kind": [a.kind.value for a in ordered],
                "currency": [a.currency for a in ordered],
                "delta": [delta[a] for a in ordered],
                "lines": [lines[a] for a in ordered],
                "now": _naive(now),
            },
        ).all()
    elif dialect == "sqlite":
        # executemany without RETURNING (one C loop), then the parties' accounts
        conn.execute(_counted_upsert(dialect, returning=False), params)
        parties = sorted({a.party for a in ordered})
        found = [
            r
            for r in conn.execute(_ACCOUNTS_OF, {"parties": parties})
            if (r.party, r.kind, r.currency) in by_key
        ]
    else:
        conn.execute(_mysql_upsert(params, counted=True))
        found = conn.execute(
            sa.select(A.c.id, A.c.party, A.c.kind, A.c.currency, A.c.balance_minor).where(
                sa.tuple_(A.c.party, A.c.kind, A.c.currency).in_(list(by_key))
            )
        ).all()
    ids: dict[Account, int] = {}
    balance: dict[Account, int] = {}
    for r in found:
        account = by_key[(r.party, r.kind, r.currency)]
        ids[account] = int(r.id)
        balance[account] = int(r.balance_minor)
    after: list[dict[Account, int]] = []
    for draft in reversed(drafts):
        mine = {}
        for line in draft.lines:
            mine[line.account] = balance[line.account]
            _check_balance(line.account, balance[line.account])
            balance[line.account] -= line.normal_minor
        after.append(mine)
    after.reverse()
    return ids, after


@functools.cache
def _postgres_statement(lines: int) -> sa.TextClause:
    """The whole posting as one statement (PostgreSQL): one round trip.

    The chain head is locked first (``FOR UPDATE``, as every chained write
    does: the head before any account, a fixed lock order) and the entry's
    link computed by the server from it, with the same definition as
    :func:`payhub.store._chain.link` (payhub sends the canonical form's text
    around the sequence number, as :func:`payhub.store._chain.chain_insert`
    does for audit rows). The entry is inserted unless its key exists; only
    then is the head advanced, the accounts upserted (in the draft's order)
    and the lines inserted with the ids both return. The result has one row
    per account, or one row with no account when the key was posted before
    (or, ``headed`` 0, when the store has no head row yet)."""
    values = ", ".join(
        f"(CAST(:party{i} AS VARCHAR), CAST(:kind{i} AS VARCHAR), CAST(:cur{i} AS VARCHAR),"
        f" CAST(:delta{i} AS BIGINT), CAST(:signed{i} AS BIGINT), {i})"
        for i in range(lines)
    )
    # only placeholders and integers are formatted in: every value is a parameter
    return sa.text(
        "WITH hd AS (SELECT seq + 1 AS seq, hash FROM payhub_chain_head WHERE id = 1"  # noqa: S608
        " FOR UPDATE),"
        f" v(party, kind, currency, delta, signed, ord) AS (VALUES {values}),"
        " e AS (INSERT INTO payhub_ledger_entries (idempotency_key, cause, reference, party,"
        " plan, available_on, currency, pending_minor, digest, created_at, chain_seq,"
        " chain_hash) SELECT"
        " :key, :cause, :reference, :eparty, :plan, CAST(:available_on AS TIMESTAMP),"
        " :ecur, CAST(:pending AS BIGINT), :digest, :now, hd.seq,"
        " encode(sha256(decode(hd.hash, 'hex') || convert_to(CAST(:c_before AS TEXT)"
        " || CAST(hd.seq AS TEXT) || CAST(:c_after AS TEXT), 'UTF8')), 'hex') FROM hd"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, chain_seq, chain_hash),"
        " h AS (UPDATE payhub_chain_head SET seq = (SELECT chain_seq FROM e),"
        " hash = (SELECT chain_hash FROM e) WHERE id = 1 AND EXISTS (SELECT 1 FROM e)),"
        " a AS (INSERT INTO payhub_ledger_accounts (party, kind, currency, balance_minor,"
        " version, created_at) SELECT party, kind, currency, delta, 1, :now FROM v"
        " WHERE EXISTS (SELECT 1 FROM e) ORDER BY ord"
        " ON CONFLICT (party, kind, currency) DO UPDATE SET balance_minor ="
        " payhub_ledger_accounts.balance_minor + excluded.balance_minor,"
        " version = payhub_ledger_accounts.version + 1"
        " RETURNING id, party, kind, currency, balance_minor),"
        " l AS (INSERT INTO payhub_ledger_lines (entry_id, account_id, amount_minor, currency,"
        " created_at) SELECT e.id, a.id, v.signed, v.currency, :now FROM e CROSS JOIN a"
        " JOIN v ON v.party = a.party AND v.kind = a.kind AND v.currency = a.currency"
        " RETURNING 1)"
        " SELECT (SELECT id FROM e) AS entry_id, a.party, a.kind, a.currency, a.balance_minor,"
        " (SELECT count(*) FROM l) AS written, 1 AS headed FROM a"
        " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, 0, (SELECT count(*) FROM hd)"
        " WHERE NOT EXISTS (SELECT 1 FROM e)"
    )


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _write_postgres(
    conn: Connection, draft: EntryDraft, row: dict[str, Any], now: datetime
) -> Posted | None:
    """:func:`write_entry` on PostgreSQL in one statement; None (nothing
    written) when the store has no chain head row yet."""
    before, after = canonical_around_seq(E.name, [row[f] for f in CHAINED[E.name]])
    params: dict[str, Any] = {
        "c_before": before,
        "c_after": after,
        "key": row["idempotency_key"],
        "cause": row["cause"],
        "reference": row["reference"],
        "eparty": row["party"],
        "plan": row["plan"],
        "available_on": _naive(row["available_on"]),
        "ecur": row["currency"],
        "pending": row["pending_minor"],
        "digest": row["digest"],
        "now": _naive(now),
    }
    accounts = {}
    for i, line in enumerate(draft.lines):
        account = line.account
        accounts[(account.party, account.kind.value, account.currency)] = account
        params[f"party{i}"] = account.party
        params[f"kind{i}"] = account.kind.value
        params[f"cur{i}"] = account.currency
        params[f"delta{i}"] = line.normal_minor
        params[f"signed{i}"] = line.signed_minor
    rows = conn.execute(_postgres_statement(len(draft.lines)), params).all()
    if rows and rows[0].entry_id is None:
        if not rows[0].headed:
            return None
        return _replayed(conn, draft, row["digest"])
    balances: dict[Account, int] = {}
    for r in rows:
        account = accounts[(r.party, r.kind, r.currency)]
        balances[account] = int(r.balance_minor)
        _check_balance(account, balances[account])
    assert len(rows) == len(draft.lines)
    return Posted(int(rows[0].entry_id), True, balances)


def _check_balance(account: Account, balance: int) -> None:
    if balance < 0 and account.kind.non_negative:
        raise LedgerError(
            f"ledger: {account} would go to {Money(balance, account.currency)}; "
            f"a {account.kind.value} account may not go negative, nothing written",
            code=ErrorCode.LEDGER_INSUFFICIENT_FUNDS,
        )


def _insert_entry(conn: Connection, dialect: str, row: dict[str, Any]) -> int | None:
    if dialect in ("postgresql", "sqlite"):
        found = conn.execute(_entry_insert(dialect), row).first()
        return None if found is None else int(found[0])
    try:
        result = conn.execute(_entry_insert(dialect), row)
    except IntegrityError as exc:
        if is_duplicate_key(exc):
            return None
        raise
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _replayed(conn: Connection, draft: EntryDraft, digest: str) -> Posted:
    found = conn.execute(
        sa.select(E.c.id, E.c.digest).where(E.c.idempotency_key == draft.idempotency_key)
    ).one()
    if found.digest != digest:
        raise LedgerError(
            f"ledger: idempotency key {draft.idempotency_key!r} was posted before with "
            "different content; nothing written",
            code=ErrorCode.LEDGER_IDEMPOTENCY_CONFLICT,
        )
    return Posted(int(found.id), False, {})


def _apply_balances(
    conn: Connection, dialect: str, draft: EntryDraft, now: datetime
) -> tuple[dict[Account, int], dict[Account, int]]:
    """Each account's id and its balance after the entry; refuses a forbidden negative."""
    params = [
        {
            "party": line.account.party,
            "kind": line.account.kind.value,
            "currency": line.account.currency,
            "balance_minor": line.normal_minor,
            "version": 1,
            "created_at": now,
        }
        for line in draft.lines  # sorted by account: a fixed lock order
    ]
    accounts = {(a.party, a.kind.value, a.currency): a for a in (ln.account for ln in draft.lines)}
    if dialect in ("postgresql", "sqlite"):
        rows = conn.execute(_account_upsert(dialect), params).all()
    else:
        conn.execute(_mysql_upsert(params))
        rows = conn.execute(
            sa.select(A.c.id, A.c.party, A.c.kind, A.c.currency, A.c.balance_minor).where(
                sa.tuple_(A.c.party, A.c.kind, A.c.currency).in_(list(accounts))
            )
        ).all()
    balances: dict[Account, int] = {}
    ids: dict[Account, int] = {}
    for r in rows:
        account = accounts[(r.party, r.kind, r.currency)]
        ids[account] = int(r.id)
        balances[account] = int(r.balance_minor)
        _check_balance(account, balances[account])
    return ids, balances


def lock_accounts(conn: Connection, accounts: list[Account]) -> dict[Account, int]:
    """The normal-side balances of ``accounts``, rows locked until the transaction ends
    (0 for an account with no line yet). Locked in the writer's order."""
    ordered = sorted(set(accounts))
    if not ordered:
        return {}
    rows = conn.execute(
        sa.select(A.c.party, A.c.kind, A.c.currency, A.c.balance_minor)
        .where(
            sa.tuple_(A.c.party, A.c.kind, A.c.currency).in_(
                [(a.party, a.kind.value, a.currency) for a in ordered]
            )
        )
        .order_by(A.c.party, A.c.kind, A.c.currency)
        .with_for_update()
    ).all()
    found = {(r.party, r.kind, r.currency): int(r.balance_minor) for r in rows}
    return {a: found.get((a.party, a.kind.value, a.currency), 0) for a in ordered}


def kind_of(value: str) -> AccountKind:
    return AccountKind(value)
