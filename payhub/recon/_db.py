"""Reconciliation's reads and writes: batch look-ups, runs, differences, repairs.

Each function takes a :class:`~sqlalchemy.engine.Connection` inside one of the
store's transactions (``store.run``), so a batch of differences and the run's
progress commit together or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.bill_match import Difference, StoredRefund
from payhub.store._schema import payments, recon_items, recon_repairs, recon_runs, refunds

__all__ = [
    "ItemRecord",
    "RunRecord",
    "finish_run",
    "lookup_payments",
    "lookup_refunds",
    "record_differences",
    "start_run",
]

OPEN = "open"
#: a server-side cursor where the driver has one, for this statement only
_STREAM: Final = {"stream_results": True, "yield_per": 5000}

# Plain SQL on purpose: a run looks up a million rows, and the typed columns'
# result processing (ExactString, BigId) would cost more than the query. The
# selected columns are plain integers and text on every backend. The statements
# go to the driver as they are, with one placeholder per key (``{keys}``): an
# expanding bind parameter would have SQLAlchemy render and name 5,000
# parameters again for every batch, a fifth of a big run's time.
_FIND_PAYMENTS = (
    "SELECT id, out_trade_no, amount_minor, currency, status, channel, channel_trade_id "
    "FROM payhub_payments WHERE out_trade_no IN ({keys})"
)
_FIND_REFUNDS = (
    "SELECT r.id, r.out_refund_no, p.out_trade_no, r.amount_minor, r.currency, r.status, "
    "r.channel FROM payhub_refunds r JOIN payhub_payments p ON p.id = r.payment_id "
    "WHERE r.out_refund_no IN ({keys})"
)
# A payment's ledger entry and its channel-fee line (none when the fee was zero).
_FIND_LEDGER = (
    "SELECT e.reference, l.amount_minor FROM payhub_ledger_entries e "
    "LEFT JOIN (payhub_ledger_lines l JOIN payhub_ledger_accounts a "
    "ON a.id = l.account_id AND a.kind = 'channel_fees') ON l.entry_id = e.id "
    "WHERE e.cause = 'payment' AND e.reference IN ({keys})"
)


@functools.lru_cache(maxsize=32)
def _statement(template: str, mark: str, count: int) -> str:
    """``template`` with ``count`` placeholders: every full batch reuses one string."""
    return template.format(keys=",".join([mark] * count))


def _find(conn: Connection, template: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows as the driver gives them (plain tuples): SQLAlchemy's result rows,
    5,000 at a time, outlive a few young collections and get promoted, and
    enough of them make the collector walk the whole heap again and again.

    The statement runs on a cursor of the connection's own DBAPI connection
    (``Connection.connection``, SQLAlchemy's documented way to the driver:
    "Working with Driver SQL and Raw DBAPI Connections"), inside the
    transaction ``conn`` is in."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = _statement(template, mark, len(keys))
    params = tuple(keys)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement, params)
        rows: list[tuple[Any, ...]] = list(cursor.fetchall())
    except dbapi_error as exc:
        # as SQLAlchemy would have raised it (the store turns it into a StoreError)
        raise sa.exc.DBAPIError.instance(statement, params, exc, dbapi_error) from exc
    finally:
        cursor.close()
    return rows


class RunRecord(dict[str, Any]):
    """A run as stored: id, channel, bill_date, status, started_at,
    finished_at, rows_read, counts, error."""


class ItemRecord(dict[str, Any]):
    """A difference as stored (the columns of ``payhub_recon_items``)."""


def lookup_payments(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """The stored payments of these numbers, as plain tuples in the order of
    :class:`StoredPayment`'s fields (without ``paid_at``). Plain on purpose:
    the garbage collector stops tracking a tuple of numbers and text the first
    time it sees one, while a result row held through a batch is walked by
    every collection (and promoted until a full one runs)."""
    if not keys:
        return {}
    return {row[1]: row for row in _find(conn, _FIND_PAYMENTS, keys)}


def lookup_refunds(conn: Connection, keys: Sequence[str]) -> dict[str, StoredRefund]:
    if not keys:
        return {}
    return {row[1]: StoredRefund(*row) for row in _find(conn, _FIND_REFUNDS, keys)}


def lookup_ledger(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    """The payments among ``keys`` the ledger posted, with the channel fee it booked."""
    if not keys:
        return {}
    return {row[0]: row[1] or 0 for row in _find(conn, _FIND_LEDGER, keys)}


def start_run(conn: Connection, channel: str, bill_date: date, now: datetime) -> RunRecord:
    """The run to carry on: one a crash left ``running`` (resumed), else a new one."""
    row = (
        conn.execute(
            sa.select(recon_runs)
            .where(
                recon_runs.c.channel == channel,
                recon_runs.c.bill_date == bill_date,
                recon_runs.c.status == "running",
            )
            .order_by(recon_runs.c.id.desc())
            .limit(1)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if row is not None:
        return RunRecord(row, resumed=True)
    inserted = conn.execute(
        recon_runs.insert().values(
            channel=channel, bill_date=bill_date, status="running", started_at=now, counts={}
        )
    ).inserted_primary_key
    assert inserted is not None
    return run(conn, int(inserted[0])) or RunRecord()


def run(conn: Connection, run_id: int) -> RunRecord | None:
    row = conn.execute(sa.select(recon_runs).where(recon_runs.c.id == run_id)).mappings().first()
    return None if row is None else RunRecord(row, resumed=False)


def runs(
    conn: Connection, channel: str | None = None, bill_date: date | None = None, limit: int = 50
) -> list[RunRecord]:
    query = sa.select(recon_runs).order_by(recon_runs.c.id.desc()).limit(limit)
    if channel is not None:
        query = query.where(recon_runs.c.channel == channel)
    if bill_date is not None:
        query = query.where(recon_runs.c.bill_date == bill_date)
    return [RunRecord(row) for row in conn.execute(query).mappings()]


def progress(conn: Connection, run_id: int, rows_read: int) -> None:
    conn.execute(
        recon_runs.update().where(recon_runs.c.id == run_id).values(rows_read=rows_read)
    )


def finish_run(
    conn: Connection,
    run_id: int,
    *,
    status: str,
    counts: Mapping[str, int],
    rows_read: int,
    now: datetime,
    error: str | None = None,
) -> None:
    conn.execute(
        recon_runs.update()
        .where(recon_runs.c.id == run_id)
        .values(
            status=status,
            counts=dict(counts),
            rows_read=rows_read,
            finished_at=now,
            error=None if error is None else error[:500],
        )
    )


def record_differences(
    conn: Connection,
    channel: str,
    bill_date: date,
    run_id: int,
    found: Sequence[Difference],
    *,
    now: datetime,
) -> None:
    """Insert the differences not recorded yet for this day; mark the others
    as seen again by this run. Never a second row for one difference."""
    if not found:
        return
    unique = {(d.kind.value, d.key): d for d in found}
    existing = {
        (row.kind, row.key): row.id
        for row in conn.execute(
            sa.select(recon_items.c.id, recon_items.c.kind, recon_items.c.key).where(
                recon_items.c.channel == channel,
                recon_items.c.bill_date == bill_date,
                recon_items.c.key.in_(sorted({d.key for d in found})),
            )
        )
    }
    new = [
        {
            "channel": channel,
            "bill_date": bill_date,
            "kind": d.kind.value,
            "key": d.key,
            "out_trade_no": d.out_trade_no,
            "out_refund_no": d.out_refund_no,
            "channel_trade_id": d.channel_trade_id,
            "bill_amount_minor": d.bill_amount_minor,
            "store_amount_minor": d.store_amount_minor,
            "currency": d.currency,
            "bill_fee_minor": d.bill_fee_minor,
            "expected_fee_minor": d.expected_fee_minor,
            "detail": {**d.detail, "repairs": [r.value for r in d.repairs]},
            "status": OPEN,
            "first_run_id": run_id,
            "last_run_id": run_id,
            "created_at": now,
        }
        for ident, d in unique.items()
        if ident not in existing
    ]
    if new:
        conn.execute(recon_items.insert(), new)
    seen = [existing[ident] for ident in unique if ident in existing]
    if seen:
        conn.execute(
            recon_items.update().where(recon_items.c.id.in_(seen)).values(last_run_id=run_id)
        )


def clear_unseen(
    conn: Connection, channel: str, bill_date: date, run_id: int, now: datetime
) -> int:
    """Open differences of the day this run did not find again: cleared (auto)."""
    result = conn.execute(
        recon_items.update()
        .where(
            recon_items.c.channel == channel,
            recon_items.c.bill_date == bill_date,
            recon_items.c.status == OPEN,
            recon_items.c.last_run_id != run_id,
        )
        .values(
            status="cleared",
            resolved_at=now,
            resolved_by="auto",
            resolution=f"not found again by run {run_id}",
        )
    )
    return int(result.rowcount or 0)


def drop_run_items(conn: Connection, run_id: int) -> None:
    """A refused bill: the differences only it showed are void."""
    conn.execute(
        recon_items.delete().where(
            recon_items.c.first_run_id == run_id, recon_items.c.status == OPEN
        )
    )


def items(
    conn: Connection,
    *,
    channel: str | None = None,
    bill_date: date | None = None,
    status: str | None = OPEN,
    kinds: Iterable[str] = (),
    limit: int | None = None,
) -> Iterator[ItemRecord]:
    query = sa.select(recon_items).order_by(recon_items.c.id)
    if channel is not None:
        query = query.where(recon_items.c.channel == channel)
    if bill_date is not None:
        query = query.where(recon_items.c.bill_date == bill_date)
    if status is not None:
        query = query.where(recon_items.c.status == status)
    wanted = list(kinds)
    if wanted:
        query = query.where(recon_items.c.kind.in_(wanted))
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execute(query).mappings():
        yield ItemRecord(row)


def item(conn: Connection, item_id: int, *, lock: bool = False) -> ItemRecord | None:
    query = sa.select(recon_items).where(recon_items.c.id == item_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return None if row is None else ItemRecord(row)


def repairs(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    query = sa.select(recon_repairs).where(recon_repairs.c.item_id == item_id)
    return [dict(row) for row in conn.execute(query.order_by(recon_repairs.c.id)).mappings()]


def resolve(
    conn: Connection,
    item_id: int,
    *,
    status: str,
    action: str,
    operator: str,
    reason: str,
    outcome: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Close an open difference and audit it; False if it was no longer open
    (another operator or run got there first: nothing written)."""
    changed = conn.execute(
        recon_items.update()
        .where(recon_items.c.id == item_id, recon_items.c.status == OPEN)
        .values(status=status, resolved_at=now, resolved_by=operator, resolution=reason)
    ).rowcount
    if not changed:
        return False
    conn.execute(
        recon_repairs.insert().values(
            item_id=item_id,
            action=action,
            operator=operator,
            reason=reason,
            outcome=dict(outcome),
            at=now,
        )
    )
    return True


def open_count(conn: Connection, channel: str | None = None, bill_date: date | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(recon_items).where(recon_items.c.status == OPEN)
    if channel is not None:
        query = query.where(recon_items.c.channel == channel)
    if bill_date is not None:
        query = query.where(recon_items.c.bill_date == bill_date)
    return int(conn.execute(query).scalar_one())


def day_payment_ids(
    conn: Connection, channel: str, start: datetime, end: datetime
) -> Iterator[int]:
    """The ids of the channel's payments paid in ``[start, end)``, streamed
    (ids only: a day may hold a million)."""
    query = sa.select(payments.c.id).where(
        payments.c.channel == channel, payments.c.paid_at >= start, payments.c.paid_at < end
    )
    for part in conn.execute(query, execution_options=_STREAM).scalars().partitions():
        yield from part


def payments_by_id(
    conn: Connection, ids: Sequence[int]
) -> list[tuple[int, str, int, str]]:
    """(id, out_trade_no, amount_minor, currency) of these payments."""
    query = sa.select(
        payments.c.id, payments.c.out_trade_no, payments.c.amount_minor, payments.c.currency
    ).where(payments.c.id.in_(list(ids)))
    return [(row[0], row[1], row[2], row[3]) for row in conn.execute(query)]


def day_refunds(
    conn: Connection, channel: str, start: datetime, end: datetime
) -> Iterator[tuple[int, str, str, int, str]]:
    """The channel's refunds that succeeded in ``[start, end)``: by the channel's
    success time (``succeeded_at``), the day its bill lists them on; by when
    they last changed only for a row without one (written by an older payhub)."""
    query = (
        sa.select(
            refunds.c.id,
            refunds.c.out_refund_no,
            payments.c.out_trade_no,
            refunds.c.amount_minor,
            refunds.c.currency,
        )
        .join(payments, payments.c.id == refunds.c.payment_id)
        .where(
            refunds.c.channel == channel,
            refunds.c.status == "succeeded",
            sa.or_(
                sa.and_(refunds.c.succeeded_at >= start, refunds.c.succeeded_at < end),
                sa.and_(
                    refunds.c.succeeded_at.is_(None),
                    refunds.c.updated_at >= start,
                    refunds.c.updated_at < end,
                ),
            ),
        )
    )
    result = conn.execute(query, execution_options=_STREAM)
    for row in result:
        yield row[0], row[1], row[2], row[3], row[4]
