"""A day's bill as a stream of :class:`BillRecord` s read from a temporary file.

``Channel.download_bill`` returns a list: fine for a small shop, not for a day
of a million rows. ``Channel.stream_bill`` returns a :class:`BillStream`
instead: the download is written to a temporary file as it was served
(compressed: gzip for WeChat Pay, a zip for Alipay) and read back one row at a
time, so memory stays flat whatever the size of the day.

A stream checks the file as a whole where the channel lets it: WeChat's SHA1
before the first row, WeChat's summary row and Alipay's totals after the last
(a bill whose rows do not add up to its own summary is refused with a
:class:`~payhub.errors.ProtocolError`; a reader must treat every row it got as
void then).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from payhub.models import BillRecord

__all__ = ["BillReader", "BillStream"]

#: Reads records from the (rewound) file of a bill.
BillReader = Callable[[IO[bytes]], Iterator[BillRecord]]

_CHUNK = 1024 * 1024


class BillStream:
    """The rows of one channel's bill of one day, read from a file on demand.

    Iterate it (again and again: each iteration reads the file from the
    start); close it, or use it as a context manager, to delete the file.

    >>> with hub.stream_bill("wechat", date(2024, 3, 1)) as bill:  # doctest: +SKIP
    ...     for record in bill:
    ...         ...
    """

    def __init__(
        self,
        file: IO[bytes] | None,
        reader: BillReader | None,
        *,
        channel: str,
        bill_date: date,
        records: Iterable[BillRecord] = (),
    ) -> None:
        self._file = file
        self._reader = reader
        self._records = list(records) if file is None else []
        self.channel = channel
        self.bill_date = bill_date

    @classmethod
    def spool(
        cls, content: bytes, reader: BillReader, *, channel: str, bill_date: date
    ) -> BillStream:
        """A stream over ``content`` (the download as served), moved to a temporary file."""
        file = tempfile.TemporaryFile(prefix="payhub-bill-")  # noqa: SIM115 - owned by the stream
        view = memoryview(content)
        for start in range(0, len(view), _CHUNK):
            file.write(view[start : start + _CHUNK])
        file.flush()
        return cls(file, reader, channel=channel, bill_date=bill_date)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], reader: BillReader, *, channel: str, bill_date: date
    ) -> BillStream:
        """A stream over a bill file already on disk (kept when the stream closes)."""
        return cls(Path(path).open("rb"), reader, channel=channel, bill_date=bill_date)

    @classmethod
    def of(
        cls, records: Iterable[BillRecord], *, channel: str, bill_date: date
    ) -> BillStream:
        """A stream over records already in memory (a channel without a streaming reader)."""
        return cls(None, None, channel=channel, bill_date=bill_date, records=records)

    @property
    def file(self) -> IO[bytes]:
        """The file as downloaded (compressed as the channel served it)."""
        if self._file is None:
            raise ValueError("this bill stream has no file")
        return self._file

    def __iter__(self) -> Iterator[BillRecord]:
        if self._file is None or self._reader is None:
            yield from self._records
            return
        if self._file.closed:
            raise ValueError("the bill stream is closed")
        self._file.seek(0)
        yield from self._reader(self._file)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BillStream {self.channel} {self.bill_date}>"
