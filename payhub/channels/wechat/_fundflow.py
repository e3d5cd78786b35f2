"""WeChat Pay's fund-flow bill (资金账单, ``GET /v3/bill/fundflowbill``), streamed.

The file (UTF-8, optionally with a BOM; gzip when asked with ``tar_type=GZIP``)
is an 11-column header, one backtick-prefixed row per movement of the
account, then a summary header and its row (long rows wrapped here)::

    记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),
        账户结余(元),资金变更提交申请人,备注,业务凭证号
    `2021-02-01 13:54:01,`5030080696...,`4200000920...,`退款,`退款,`支出,`0.01,
        `0.22,`1601959334API,`退款总金额0.01元;含手续费0.00元,`S20210201135356381941
    资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额
    `3,`1,`0.01,`2,`0.02

(a real bill: ``tests/fixtures/wechat/fundflowbill_basic_2021-02-01_gunsluo.csv.gz``;
the same columns in dromara/dax-pay's ``WxReconcileFundFlowDetail``). Amounts
are yuan, always positive; ``收支类型`` gives the side. A refund's note
states its total and the fee given back (``退款总金额X元;含手续费Y元``): what
left the account must be the total less that fee, or the row is refused. A
payment (``交易``) comes in less the fee WeChat Pay kept; its voucher
(``业务凭证号``) is the ``out_trade_no``. Every row must add up to the
summary: the count of rows, of each side, and each side's total.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, Final

from payhub.channels._bills import decimal_minor
from payhub.channels._fundflow import FundFlowLine
from payhub.errors import AmountError, ProtocolError
from payhub.models import BillRecordKind

from ._bill import _chunks, _plain_stream

__all__ = ["FUNDFLOW_COLUMNS", "iter_fundflow_bill"]

FUNDFLOW_COLUMNS: Final = (
    "记账时间",
    "微信支付业务单号",
    "资金流水单号",
    "业务名称",
    "业务类型",
    "收支类型",
    "收支金额(元)",
    "账户结余(元)",
    "资金变更提交申请人",
    "备注",
    "业务凭证号",
)
_SUMMARY: Final = ("资金流水总笔数", "收入笔数", "收入金额", "支出笔数", "支出金额")
_INCOME, _EXPENSE = "收入", "支出"
_NOTE_RE: Final = re.compile(r"退款总金额([0-9]+(?:\.[0-9]+)?)元;含手续费([0-9]+(?:\.[0-9]+)?)元")
_KINDS: Final = {"交易": BillRecordKind.PAYMENT, "退款": BillRecordKind.REFUND}


def iter_fundflow_bill(file: IO[bytes], *, max_minor: int | None = None) -> Iterator[FundFlowLine]:
    """The movements of a fund-flow bill file (gzipped or not), one at a time;
    a :class:`ProtocolError` after the last row when they do not add up to
    the bill's summary (the rows read are void then)."""
    raw = io.BufferedReader(_Chunked(_chunks(_plain_stream(file))))
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    lines = _lines(text)
    header = next((line for line in lines if line.strip()), None)
    if header is None:
        raise ProtocolError("wechat: the fund-flow bill has no header row")
    names = tuple(name.strip() for name in header.lstrip("\ufeff").rstrip("\r\n").split(","))
    if names != FUNDFLOW_COLUMNS:
        raise ProtocolError("wechat: the fund-flow bill's header is not the 11 known columns")
    counts = {_INCOME: 0, _EXPENSE: 0}
    totals = {_INCOME: 0, _EXPENSE: 0}
    number = 1
    tail: list[str] = []
    for line in lines:
        number += 1
        if tail or not line.startswith("`"):
            if line.strip():
                tail.append(line.rstrip("\r\n"))
            continue
        fields = line[1:].rstrip("\r\n").split(",`")
        if len(fields) != len(FUNDFLOW_COLUMNS):
            raise ProtocolError(
                f"wechat: fund-flow bill line {number} has {len(fields)} fields, not 11"
            )
        side = fields[5]
        if side not in counts:
            raise ProtocolError(f"wechat: fund-flow bill line {number}: unknown side {side[:8]!r}")
        try:
            moved = decimal_minor(fields[6], 2, max_minor=max_minor)
        except AmountError as exc:
            raise ProtocolError(f"wechat: fund-flow bill line {number}: {exc.message}") from None
        if moved < 0:
            raise ProtocolError(f"wechat: fund-flow bill line {number}: a negative amount")
        counts[side] += 1
        totals[side] += moved
        kind = _KINDS.get(fields[4])
        fee = total = None
        if kind is BillRecordKind.REFUND:
            total, fee = _refund_note(fields[9], moved, number)
        elif kind is BillRecordKind.PAYMENT and side != _INCOME:
            kind = None  # a payment's money only comes in; anything else is not one
        yield FundFlowLine(
            kind,
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            moved if side == _INCOME else -moved,
            "CNY",
            fields[10],
            fee,
            total,
        )
    _check_summary(tail, counts, totals)


def _refund_note(note: str, moved: int, number: int) -> tuple[int | None, int | None]:
    """A refund's total and the fee given back, from its note; None, None when
    the note does not say (then only what moved is known)."""
    match = _NOTE_RE.fullmatch(note.strip())
    if match is None:
        return None, None
    total, fee = decimal_minor(match.group(1), 2), decimal_minor(match.group(2), 2)
    if total - fee != moved:
        raise ProtocolError(
            f"wechat: fund-flow bill line {number}: the refund's total less its fee "
            "is not what left the account"
        )
    return total, fee


def _check_summary(tail: list[str], counts: dict[str, int], totals: dict[str, int]) -> None:
    if len(tail) != 2 or tuple(n.strip() for n in tail[0].split(",")) != _SUMMARY:
        raise ProtocolError("wechat: the fund-flow bill does not end with its summary")
    values = [v.strip().lstrip("`") for v in tail[1].split(",")]
    if len(values) != len(_SUMMARY) or not all(v.isascii() and v for v in values):
        raise ProtocolError("wechat: the fund-flow bill summary is malformed")
    try:
        said = (
            int(values[0]),
            int(values[1]),
            decimal_minor(values[2], 2),
            int(values[3]),
            decimal_minor(values[4], 2),
        )
    except (ValueError, AmountError):
        raise ProtocolError("wechat: the fund-flow bill summary is malformed") from None
    found = (
        counts[_INCOME] + counts[_EXPENSE],
        counts[_INCOME],
        totals[_INCOME],
        counts[_EXPENSE],
        totals[_EXPENSE],
    )
    for name, stated, counted in zip(_SUMMARY, said, found, strict=True):
        if stated != counted:
            raise ProtocolError(
                f"wechat: the fund-flow bill's rows do not add up to its summary's {name}"
            )


def _lines(text: io.TextIOWrapper) -> Iterator[str]:
    try:
        yield from text
    except UnicodeDecodeError:
        raise ProtocolError("wechat: the fund-flow bill is not UTF-8 text") from None


class _Chunked(io.RawIOBase):
    """The decompressed bytes of :func:`_chunks` as a raw stream (the size
    limit and the corrupt-gzip check apply as they do to the trade bill)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._at >= len(self._chunk):
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self._chunk, self._at = memoryview(chunk), 0
        size = min(len(buffer), len(self._chunk) - self._at)
        buffer[:size] = self._chunk[self._at : self._at + size]
        self._at += size
        return size
