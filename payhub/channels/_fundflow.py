"""A day's fund-flow bill (资金账单) as a stream of :class:`FundFlowLine` s.

The trade bill says what was sold; the fund-flow bill says what moved on the
merchant's account: a payment's money less the fee the channel kept, a
refund's money less the fee it gave back. Reconciliation holds the fees to it
where a channel has one (WeChat Pay's ``/v3/bill/fundflowbill``). Like a
:class:`~payhub.channels.BillStream` it is kept in a temporary file as served
and read one row at a time; a bill whose rows do not add up to its own
summary is refused with a :class:`~payhub.errors.ProtocolError` after the last
row (every row read is void then).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from types import TracebackType
from typing import IO, NamedTuple, Self

from payhub.models import BillRecordKind

__all__ = ["FundFlowLine", "FundFlowReader", "FundFlowStream"]

_CHUNK = 1024 * 1024


class FundFlowLine(NamedTuple):
    """One movement of the account, as the bill shows it.

    ``kind``: PAYMENT (money in for a payment), REFUND (money out for a
    refund) or None (anything else: a withdrawal, a fee charged apart...).
    ``amount_minor``: what moved, signed (in positive, out negative).
    ``reference``: the merchant's number the movement is for (the payment's
    ``out_trade_no`` or the refund's ``out_refund_no``: the bill's voucher).
    ``fee_minor``: the fee the movement shows, where the bill states it (a
    refund's fee given back); None where it must be derived (a payment's
    fee is its amount less what came in).
    """

    kind: BillRecordKind | None
    booked_at: str
    channel_id: str
    flow_no: str
    business: str
    amount_minor: int
    currency: str
    reference: str
    fee_minor: int | None
    #: the refund's total, where the bill states it (WeChat's note)
    total_minor: int | None


#: Reads the lines of the (rewound) file of a fund-flow bill.
FundFlowReader = Callable[[IO[bytes]], Iterator[FundFlowLine]]


class FundFlowStream:
    """The rows of one channel's fund-flow bill of one day, read on demand.

    Iterate :meth:`lines` (each time from the start); close it, or use it as
    a context manager, to delete the file.
    """

    def __init__(
        self,
        file: IO[bytes] | None,
        reader: FundFlowReader | None,
        *,
        channel: str,
        bill_date: date,
        lines: Iterable[FundFlowLine] = (),
    ) -> None:
        self._file = file
        self._reader = reader
        self._lines = list(lines) if file is None else []
        self.channel = channel
        self.bill_date = bill_date

    @classmethod
    def spool(
        cls, content: bytes, reader: FundFlowReader, *, channel: str, bill_date: date
    ) -> FundFlowStream:
        """A stream over ``content`` (the download as served), moved to a temporary file."""
        file = tempfile.TemporaryFile(prefix="payhub-fundflow-")  # noqa: SIM115 - owned
        view = memoryview(content)
        for start in range(0, len(view), _CHUNK):
            file.write(view[start : start + _CHUNK])
        file.flush()
        return cls(file, reader, channel=channel, bill_date=bill_date)

    @classmethod
    def of(
        cls, lines: Iterable[FundFlowLine], *, channel: str, bill_date: date
    ) -> FundFlowStream:
        """A stream over rows already in memory (a day without movements: none)."""
        return cls(None, None, channel=channel, bill_date=bill_date, lines=lines)

    @property
    def file(self) -> IO[bytes]:
        if self._file is None:
            raise ValueError("this fund-flow stream has no file")
        return self._file

    def lines(self) -> Iterator[FundFlowLine]:
        if self._file is None or self._reader is None:
            yield from self._lines
            return
        if self._file.closed:
            raise ValueError("the fund-flow stream is closed")
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
        return f"<FundFlowStream {self.channel} {self.bill_date}>"
