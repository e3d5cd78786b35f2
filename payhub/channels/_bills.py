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
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Final, NamedTuple, Self

from payhub.errors import AmountError, ProtocolError
from payhub.models import BillRecord, BillRecordKind
from payhub.money import CURRENCY_EXPONENTS, Money

__all__ = ["BillLine", "BillReader", "BillStream", "currency_exponent", "decimal_minor"]

_CHUNK = 1024 * 1024
#: Asia/Shanghai as a fixed offset (no daylight saving since 1991): what the bills print.
_CHINA: Final = timezone(timedelta(hours=8))
_DECIMAL_RE: Final = re.compile(r"(-?)([0-9]{1,18})(?:\.([0-9]{0,12}))?", re.ASCII)


class BillLine(NamedTuple):
    """One bill row as read, before it becomes a :class:`BillRecord`: plain
    values, cheap enough for a million rows a run. Amounts are minor units
    (refunds negative, ``fee_minor`` as :attr:`BillRecord.fee`); times are the
    bill's own text (Asia/Shanghai)."""

    kind: BillRecordKind
    channel_trade_id: str
    out_trade_no: str
    out_refund_no: str | None
    amount_minor: int
    currency: str
    fee_minor: int | None
    subject: str
    created_at: str
    finished_at: str
    header: Sequence[str]
    fields: Sequence[str]

    def record(self, channel: str, bill_date: date | None) -> BillRecord:
        try:
            created, finished = _bill_time(self.created_at), _bill_time(self.finished_at)
        except ValueError as exc:
            raise ProtocolError(f"{channel}: {exc}") from None
        return BillRecord(
            channel=channel,
            bill_date=bill_date,
            kind=self.kind,
            channel_trade_id=self.channel_trade_id,
            out_trade_no=self.out_trade_no,
            out_refund_no=self.out_refund_no,
            subject=self.subject or None,
            amount=Money(self.amount_minor, self.currency),
            fee=None if self.fee_minor is None else Money(self.fee_minor, self.currency),
            created_at=created,
            finished_at=finished,
            raw=dict(zip(self.header, self.fields, strict=False)),
        )


def _bill_time(text: str) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai, or None when empty."""
    if not text:
        return None
    if len(text) != 19 or text[4] + text[7] + text[10] + text[13] + text[16] != "-- ::":
        raise ValueError(f"malformed bill time {text[:24]!r}")
    return datetime.fromisoformat(text).replace(tzinfo=_CHINA)


def decimal_minor(text: str, exponent: int, *, max_minor: int | None = None) -> int:
    """A bill's decimal text (``-12.30``, ``0.04000``) in units of ``10**-exponent``,
    extra digits rounded half-up (away from zero on a tie), as integers only."""
    match = _DECIMAL_RE.fullmatch(text)
    if match is None:
        raise AmountError(f"malformed amount {text[:24]!r}")
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    scale: int = 10**exponent
    value = int(whole) * scale + int(fraction[:exponent].ljust(exponent, "0") or "0")
    if fraction[exponent : exponent + 1] >= "5":
        value += 1
    if max_minor is not None and value > max_minor:
        raise AmountError(f"amount {text[:24]!r} exceeds the channel limit")
    return -value if sign else value


def currency_exponent(currency: str) -> int:
    if currency not in CURRENCY_EXPONENTS:
        raise AmountError(f"unknown currency {currency[:8]!r}")
    return CURRENCY_EXPONENTS[currency]


#: Reads the lines of the (rewound) file of a bill.
BillReader = Callable[[IO[bytes]], Iterator[BillLine]]


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
        for line in self.lines():
            yield line.record(self.channel, self.bill_date)

    def lines(self) -> Iterator[BillLine]:
        """The rows as :class:`BillLine` s (what reconciliation reads: no model per row)."""
        if self._file is None or self._reader is None:
            for record in self._records:
                yield _line_of(record)
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


def _line_of(record: BillRecord) -> BillLine:
    def text(moment: datetime | None) -> str:
        return "" if moment is None else f"{moment.astimezone(_CHINA):%Y-%m-%d %H:%M:%S}"

    return BillLine(
        record.kind,
        record.channel_trade_id,
        record.out_trade_no,
        record.out_refund_no,
        record.amount.minor,
        record.amount.currency,
        None if record.fee is None else record.fee.minor,
        record.subject or "",
        text(record.created_at),
        text(record.finished_at),
        tuple(record.raw),
        tuple(record.raw.values()),
    )
