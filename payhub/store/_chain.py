"""The audit chain: every audit row (and ledger entry) linked by SHA-256.

One chain over every chained table (:data:`CHAINED`): each row carries its
place in it (``chain_seq``, 1, 2, 3… with no gap across all the tables) and
its link (``chain_hash``)::

    link(n) = SHA-256( link(n-1) as 32 raw bytes || canonical(row n) )
    link(0) = 32 zero bytes

The head (``payhub_chain_head``: one row, the last sequence number and link)
is locked, read and advanced in the transaction that inserts the row, so two
writers queue on it and the chain stays linear on every database.

``canonical(row)`` is the UTF-8 encoding of one JSON array, no whitespace::

    ["payhub-chain/1", <table name>, <chain_seq>, <field 1>, …, <field n>]

with the table's fields in the order :data:`CHAINED` names them (never the
row id: it is not known before the insert, and the sequence number identifies
the row). A string is a JSON string (non-ASCII characters as themselves, not
escaped), an integer (amounts are integer minor units) a JSON integer, NULL
``null``, a boolean ``true``/``false``, a time the string
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (always six fraction digits), a JSON
column's value the JSON value with object keys sorted by code point.
``docs/audit.md`` states the same for an auditor re-implementing it.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.store._engine import insert_ignore
from payhub.store._schema import CHAINED, chain_head

__all__ = [
    "GENESIS",
    "ChainBreak",
    "ChainHead",
    "ChainLink",
    "ChainReport",
    "advance",
    "canonical",
    "canonical_around_seq",
    "chain_insert",
    "link",
    "lock_head",
    "next_link",
    "next_links",
    "read_head",
    "walk",
]

#: the version tag that opens every canonical form
TAG = "payhub-chain/1"
GENESIS = bytes(32)
_HEAD_ID = 1


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("the audit chain needs timezone-aware times")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Mapping | list | tuple):
        # as the database hands it back: keys are strings, tuples are lists
        return json.loads(json.dumps(value, allow_nan=False))
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("binary columns are not chained")
    return value


def canonical(table: str, seq: int, fields: Sequence[Any]) -> bytes:
    """The bytes hashed for row ``seq`` of ``table`` (fields in :data:`CHAINED` order)."""
    doc = [TAG, table, seq, *(_value(v) for v in fields)]
    return json.dumps(
        doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode("utf-8")


def link(previous: bytes, table: str, seq: int, fields: Sequence[Any]) -> bytes:
    """The link of row ``seq``: SHA-256 over the previous link and the row's canonical form."""
    return hashlib.sha256(previous + canonical(table, seq, fields)).digest()


@dataclass(frozen=True)
class ChainHead:
    """The last link: its sequence number (0 for an empty chain) and hash (hex)."""

    seq: int
    hash: str


_HEAD_READ = sa.select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == _HEAD_ID)
#: built once: every chained write reads the head with this
_HEAD_LOCK = _HEAD_READ.with_for_update()


def read_head(conn: Connection, *, lock: bool = False) -> ChainHead | None:
    row = conn.execute(_HEAD_LOCK if lock else _HEAD_READ).first()
    return None if row is None else ChainHead(int(row[0]), str(row[1]))


def lock_head(conn: Connection) -> ChainHead:
    """Lock the head (``FOR UPDATE``) and read it; an empty store gets the genesis head."""
    head = read_head(conn, lock=True)
    if head is None:
        # An empty store (the migration writes the head; a test may empty the
        # tables): start at the genesis link. Two writers: one inserts, the
        # other waits for it and then locks the same row.
        insert_ignore(conn, chain_head, {"id": _HEAD_ID, "seq": 0, "hash": GENESIS.hex()})
        head = read_head(conn, lock=True)
        assert head is not None
    return head


_HEAD_UPDATE = chain_head.update().where(chain_head.c.id == _HEAD_ID)


@dataclass(frozen=True)
class ChainLink:
    """The next row's place and link: its values get ``chain_seq`` and ``chain_hash``."""

    seq: int
    hash: str

    def columns(self) -> dict[str, Any]:
        return {"chain_seq": self.seq, "chain_hash": self.hash}


def next_link(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> ChainLink:
    """Lock the head and compute the link of ``values`` as the chain's next row
    of ``table``. The caller inserts the row with :meth:`ChainLink.columns` and
    then :func:`advance`, in this transaction (or inserts nothing, and the head
    stays)."""
    fields = CHAINED[table.name]
    head = lock_head(conn)
    seq = head.seq + 1
    digest = link(bytes.fromhex(head.hash), table.name, seq, [values[f] for f in fields])
    return ChainLink(seq, digest.hex())


def next_links(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> list[ChainLink]:
    """:func:`next_link` for several rows of ``table`` at once: the head locked
    once, the links computed in order (row ``i`` links to row ``i - 1``). The
    caller inserts every row, each with its link's :meth:`ChainLink.columns`,
    then :func:`advance` to the last link, in this transaction (or inserts none
    of them)."""
    if not rows:
        return []
    fields = CHAINED[table.name]
    head = lock_head(conn)
    previous = bytes.fromhex(head.hash)
    links = []
    for seq, values in enumerate(rows, start=head.seq + 1):
        previous = link(previous, table.name, seq, [values[f] for f in fields])
        links.append(ChainLink(seq, previous.hex()))
    return links


def advance(conn: Connection, new: ChainLink) -> None:
    """Move the (locked) head to the row just inserted."""
    conn.execute(_HEAD_UPDATE, {"seq": new.seq, "hash": new.hash})


def chain_insert(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> int:
    """Insert ``values`` into chained ``table`` as the chain's next row, and
    advance the head, in the caller's transaction. Returns the row's sequence number.

    On PostgreSQL this is one statement (:func:`_linked_insert_statement`);
    elsewhere three: lock and read the head, insert, advance."""
    if conn.dialect.name == "postgresql":
        seq = _linked_insert_postgres(conn, table, values)
        if seq is not None:
            return seq
        # no head row (an emptied store): the usual path writes the genesis head
    new = next_link(conn, table, values)
    conn.execute(table.insert(), {**values, **new.columns()})
    advance(conn, new)
    return new.seq


def canonical_around_seq(table: str, fields: Sequence[Any]) -> tuple[str, str]:
    """``canonical(table, seq, fields)`` as the text before and after ``seq``:
    the database puts the sequence number it reads from the locked head between them."""
    whole = canonical(table, 0, fields).decode("utf-8")
    before = json.dumps([TAG, table], ensure_ascii=False, separators=(",", ":"))[:-1] + ","
    assert whole.startswith(before + "0")
    return before, whole[len(before) + 1 :]


@functools.cache
def _linked_insert_statement(table: sa.Table) -> sa.Update:
    """One PostgreSQL statement doing :func:`next_link`, the insert and :func:`advance`.

    The head row is locked (``FOR UPDATE``, as :func:`read_head`), the link
    computed by the server with the same definition (``sha256`` of the previous
    link's 32 bytes and the UTF-8 canonical form, whose text payhub sends
    around the sequence number), the row inserted and the head advanced: the
    same locks in the same order, one round trip instead of three. No head
    row: nothing is written and no row is returned.
    """
    fields = CHAINED[table.name]
    head = (
        sa.select((chain_head.c.seq + 1).label("seq"), chain_head.c.hash)
        .where(chain_head.c.id == _HEAD_ID)
        .with_for_update()
        .cte("head")
    )
    text = (
        sa.bindparam("c_before", type_=sa.Text)
        + sa.cast(head.c.seq, sa.Text)
        + sa.bindparam("c_after", type_=sa.Text)
    )
    digest = sa.func.encode(
        sa.func.sha256(
            sa.func.decode(head.c.hash, "hex").op("||")(sa.func.convert_to(text, "UTF8"))
        ),
        "hex",
    )
    row = sa.select(
        *(sa.bindparam(f"v_{f}", type_=table.c[f].type) for f in fields), head.c.seq, digest
    )
    inserted = (
        table.insert()
        .from_select([*fields, "chain_seq", "chain_hash"], row)
        .returning(table.c.chain_seq, table.c.chain_hash)
        .cte("inserted")
    )
    return (
        chain_head.update()
        .where(chain_head.c.id == _HEAD_ID, sa.exists(sa.select(inserted.c.chain_seq)))
        .values(
            seq=sa.select(inserted.c.chain_seq).scalar_subquery(),
            hash=sa.select(inserted.c.chain_hash).scalar_subquery(),
        )
        .returning(chain_head.c.seq)
    )


def _linked_insert_postgres(
    conn: Connection, table: sa.Table, values: Mapping[str, Any]
) -> int | None:
    fields = CHAINED[table.name]
    if set(values) != set(fields):  # other columns too: the usual path inserts them
        return None
    before, after = canonical_around_seq(table.name, [values[f] for f in fields])
    params = {f"v_{f}": values[f] for f in fields}
    params["c_before"], params["c_after"] = before, after
    seq = conn.execute(_linked_insert_statement(table), params).scalar()
    return None if seq is None else int(seq)


# -- verification --------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain stops being trustworthy: the first broken sequence number, and why."""

    seq: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """What :func:`walk` found: rows checked, the head, and the first break (None if sound)."""

    rows: int
    head: ChainHead
    broken: ChainBreak | None
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None


_PAGE = 2000


def _pages(
    connect: Any, table: sa.Table, upto: int
) -> Iterator[tuple[int, str, str, tuple[Any, ...]]]:
    """(seq, table, hash, fields) of ``table`` in sequence order, a page at a time."""
    fields = CHAINED[table.name]
    cols = [table.c.chain_seq, table.c.chain_hash, *(table.c[f] for f in fields)]
    last = 0
    while True:
        stmt = (
            sa.select(*cols)
            .where(table.c.chain_seq > last, table.c.chain_seq <= upto)
            .order_by(table.c.chain_seq)
            .limit(_PAGE)
        )
        with connect() as conn:
            rows = conn.execute(stmt).all()
        for r in rows:
            yield int(r[0]), table.name, str(r[1]), tuple(r[2:])
        if len(rows) < _PAGE:
            return
        last = int(rows[-1][0])


def walk(
    connect: Any,
    tables: Sequence[sa.Table],
    *,
    checkpoints: Mapping[int, str] | None = None,
) -> ChainReport:
    """Walk the chain from its first row to its head, a page at a time (memory
    stays constant), and report the first broken sequence number.

    ``connect()`` opens a read transaction (a context manager yielding a
    connection). The head is read after each table's highest sequence number:
    a writer advances both in one transaction, so a row past the head can only
    be one written around it. ``checkpoints`` (sequence number → hex link,
    from signed checkpoints) must each match the chain; one beyond its end
    means the chain was cut short.
    """
    expected_at = dict(checkpoints or {})
    with connect() as conn:
        top = 0
        for table in tables:
            value = conn.execute(sa.select(sa.func.max(table.c.chain_seq))).scalar()
            top = max(top, int(value or 0))
        head = read_head(conn) or ChainHead(0, GENESIS.hex())
    streams = [_pages(connect, t, max(top, head.seq)) for t in tables]
    previous = GENESIS
    seq = 0
    rows = 0

    def report(broken: ChainBreak | None) -> ChainReport:
        return ChainReport(rows, head, broken, len(checkpoints or {}))

    for row_seq, name, stored, fields in heapq.merge(*streams, key=lambda r: r[0]):
        rows += 1
        if row_seq != seq + 1:
            why = (
                f"sequence number {row_seq} appears twice"
                if row_seq == seq
                else f"rows {seq + 1}..{row_seq - 1} are missing"
            )
            return report(ChainBreak(seq + 1 if row_seq > seq else row_seq, why))
        seq = row_seq
        digest = link(previous, name, seq, fields)
        if digest.hex() != stored:
            return report(
                ChainBreak(seq, f"{name} row {seq} does not match its link (changed, "
                           "moved, or written outside payhub)")
            )
        want = expected_at.pop(seq, None)
        if want is not None and want != stored:
            return report(ChainBreak(seq, f"row {seq} differs from its signed checkpoint"))
        previous = digest
        if seq > head.seq:
            return report(ChainBreak(seq, f"row {seq} lies beyond the chain head {head.seq}"))
    if seq < head.seq:
        return report(ChainBreak(seq + 1, f"the chain ends at {seq} but its head is {head.seq}"))
    if previous.hex() != head.hash:
        return report(ChainBreak(seq, f"the head's link differs from row {seq}'s"))
    if expected_at:
        first = min(expected_at)
        return report(
            ChainBreak(seq + 1, f"a signed checkpoint names row {first}; the chain ends at {seq}")
        )
    return report(None)
