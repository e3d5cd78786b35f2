"""Rows of one SELECT from a server-side cursor, for every report type.

``stream_results`` with ``yield_per``: PostgreSQL and MySQL/MariaDB send rows
as they are read (``yield_per`` a fetch), SQLite's cursor already steps row
by row. The fetched rows are made into Row objects a short list at a time
(:data:`ROWS_AT_ONCE`) and iterated as a plain list, not one ``fetchone()``
through the result's machinery per row.

Why short: rows alive when the garbage collector runs are moved to an older
generation, and enough of them set off a full collection of the whole heap.
With a list of 2,000 rows at once, a 200,000-row balance-detail export ran
five full collections and spent about a tenth of its CPU time collecting;
with 100 at once, one (``benchmarks/bench_reports.py``, docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["ROWS_AT_ONCE", "stream_batches", "stream_rows"]

#: rows made into Row objects at once: well below the collector's first threshold (700)
ROWS_AT_ONCE: Final = 100


def stream_batches(
    conn: Connection, stmt: sa.Select[Any], yield_per: int
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of ``stmt``, :data:`ROWS_AT_ONCE` at a time; ``yield_per`` a fetch."""
    result = conn.execution_options(stream_results=True, yield_per=yield_per).execute(stmt)
    try:
        yield from result.partitions(ROWS_AT_ONCE)
    finally:
        result.close()


def stream_rows(conn: Connection, stmt: sa.Select[Any], yield_per: int) -> Iterator[Sequence[Any]]:
    """The rows of ``stmt`` one by one (see :func:`stream_batches`)."""
    for batch in stream_batches(conn, stmt, yield_per):
        yield from batch
