"""Rows of one SELECT from a server-side cursor, for every report type.

``stream_results`` with ``yield_per``: PostgreSQL and MySQL/MariaDB send rows
as they are read, ``yield_per`` a fetch; SQLite has no server-side cursor, its
cursor steps through the result in process.

How the rows come out of the result matters for garbage collection: rows
alive when the collector runs are moved to an older generation, and enough of
them set off a full collection of the whole heap. Lists of 2,000 Row objects
at once (``partitions()``) made a 200,000-row balance-detail export run five
full collections, about a tenth of its CPU time (``benchmarks/bench_reports.py``,
docs/reports.md). So:

* with a server-side cursor, the result is iterated row by row: SQLAlchemy
  keeps the fetched ``yield_per`` rows as the driver returned them and makes
  one Row at a time (``fetchmany(n)`` would fetch only ``n`` from the server,
  a round trip per ``n`` rows);
* without one (SQLite), rows are made :data:`ROWS_AT_ONCE` at a time and
  iterated as a plain list, cheaper per row than the result's own iteration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["ROWS_AT_ONCE", "stream_batches", "stream_rows"]

#: rows made into Row objects at once without a server-side cursor: well below
#: the collector's first threshold (700 new objects)
ROWS_AT_ONCE: Final = 100


def stream_batches(
    conn: Connection, stmt: sa.Select[Any], yield_per: int
) -> Iterator[Iterable[Sequence[Any]]]:
    """The rows of ``stmt`` as iterables to loop over (see the module's text)."""
    result = conn.execution_options(stream_results=True, yield_per=yield_per).execute(stmt)
    try:
        if conn.dialect.supports_server_side_cursors:
            yield result
        else:
            yield from result.partitions(min(yield_per, ROWS_AT_ONCE))
    finally:
        result.close()


def stream_rows(conn: Connection, stmt: sa.Select[Any], yield_per: int) -> Iterator[Sequence[Any]]:
    """The rows of ``stmt`` one by one (see :func:`stream_batches`)."""
    for batch in stream_batches(conn, stmt, yield_per):
        yield from batch
