"""Alipay's trade bill: a zip of GBK CSV files, parsed into :class:`BillRecord` s.

The archive holds ``<account>_<date>_业务明细.csv`` (one row per trade or
refund) and ``…_业务明细(汇总).csv`` (totals, ignored). The detail file opens
with ``#`` lines (title, account, period, a rule), then a header row of 25
columns, the data rows, and ``#`` footer lines with totals. Ids end with a tab
(so spreadsheets keep them as text); refund rows carry negative amounts.
``服务费（元）`` is printed negative on trades and positive on refunds;
:attr:`BillRecord.fee` is the opposite (positive: charged, negative: returned).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Final

from payhub.channels._bills import BillLine, decimal_minor
from payhub.errors import AmountError, ProtocolError
from payhub.models import BillRecord, BillRecordKind
from payhub.money import Money

from ._wire import parse_time

__all__ = ["BILL_COLUMNS", "iter_bill_archive", "parse_bill_archive", "parse_bill_csv"]

#: The 25 columns of the detail file, in Alipay's order.
BILL_COLUMNS: Final = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)
_DETAIL_SUFFIX: Final = "_业务明细.csv"
_KINDS: Final = {"交易": BillRecordKind.PAYMENT, "退款": BillRecordKind.REFUND}
_REQUIRED: Final = ("支付宝交易号", "商户订单号", "业务类型", "订单金额（元）")
_MAX_MEMBER_BYTES: Final = 512 * 1024 * 1024  # a zip bomb is not a bill
_UTF8_NAME_FLAG: Final = 0x800


def parse_bill_archive(
    content: bytes, *, channel: str, bill_date: date | None, max_minor: int
) -> list[BillRecord]:
    """Every trade and refund row of the detail file(s) in Alipay's bill zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError):
        raise ProtocolError("alipay: the bill download is not a zip archive") from None
    with archive:
        details = sorted(
            (info for info in archive.infolist() if _is_detail(_member_name(info))),
            key=lambda info: info.filename,
        )
        if not details:
            raise ProtocolError("alipay: the bill archive has no 业务明细 detail file")
        records: list[BillRecord] = []
        for info in details:
            if info.file_size > _MAX_MEMBER_BYTES:
                raise ProtocolError("alipay: the bill detail file is implausibly large")
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise ProtocolError(f"alipay: cannot unzip the bill ({exc})") from None
            try:
                text = data.decode("gb18030")  # a superset of GBK
            except UnicodeDecodeError:
                raise ProtocolError("alipay: the bill detail file is not GBK text") from None
            records.extend(
                parse_bill_csv(text, channel=channel, bill_date=bill_date, max_minor=max_minor)
            )
    return records


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's real name: Alipay stores GBK names without the UTF-8 flag,
    which :mod:`zipfile` then reads as CP437."""
    if info.flag_bits & _UTF8_NAME_FLAG:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _is_detail(name: str) -> bool:
    return name.rsplit("/", 1)[-1].endswith(_DETAIL_SUFFIX)


def parse_bill_csv(
    text: str, *, channel: str, bill_date: date | None, max_minor: int
) -> list[BillRecord]:
    """Parse the text of one ``…_业务明细.csv`` (already decoded)."""
    rows = csv.reader(_data_lines(text))
    header = next(rows, None)
    if header is None:
        raise ProtocolError("alipay: the bill detail file has no header row")
    index = {_column_key(name): i for i, name in enumerate(header)}
    missing = [name for name in _REQUIRED if _column_key(name) not in index]
    if missing:
        raise ProtocolError(f"alipay: the bill header lacks {', '.join(missing)}")
    records: list[BillRecord] = []
    for number, row in enumerate(rows, start=1):
        if len(row) < len(header):
            raise ProtocolError(
                f"alipay: bill row {number} has {len(row)} columns, not {len(header)}"
            )
        cells = {name: row[i].strip() for name, i in index.items()}
        kind = _KINDS.get(cells[_column_key("业务类型")])
        if kind is None:
            continue  # neither a trade nor a refund
        raw = {name.strip(): value.strip() for name, value in zip(header, row, strict=False)}
        try:
            records.append(
                _record(cells, raw, kind, channel=channel, bill_date=bill_date, max_minor=max_minor)
            )
        except (AmountError, ValueError) as exc:
            raise ProtocolError(f"alipay: bill row {number}: {exc}") from None
    return records


def _data_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def _column_key(name: str) -> str:
    """Header names compared loosely: no spaces, full-width parentheses."""
    return "".join(name.split()).replace("(", "（").replace(")", "）")


def _cell(cells: dict[str, str], name: str) -> str:
    return cells.get(_column_key(name), "")


def _record(
    cells: dict[str, str],
    raw: dict[str, str],
    kind: BillRecordKind,
    *,
    channel: str,
    bill_date: date | None,
    max_minor: int,
) -> BillRecord:
    amount = signed_amount(_cell(cells, "订单金额（元）"), max_minor)
    if kind is BillRecordKind.REFUND:
        # Refund rows come in two layouts: 订单金额 holding the negative refund,
        # or 订单金额 repeating the (positive) order total with the refund in
        # 商家实收. Only a negative 订单金额 is the refund itself.
        if amount.minor >= 0:
            amount = signed_amount(_cell(cells, "商家实收（元）"), max_minor)
        amount = -abs(amount)
    elif amount.minor < 0:
        raise ValueError("a trade row with a negative amount")
    # BillRecord.fee is what Alipay charged the merchant. Alipay's bill prints
    # it from the account's side: the fee taken on a trade negative (-0.53),
    # the fee given back with a refund positive (0.06). Both flip here.
    fee_text = _cell(cells, "服务费（元）")
    return BillRecord(
        channel=channel,
        bill_date=bill_date,
        kind=kind,
        channel_trade_id=_cell(cells, "支付宝交易号"),
        out_trade_no=_cell(cells, "商户订单号"),
        out_refund_no=(_cell(cells, "退款批次号/请求号") or None)
        if kind is BillRecordKind.REFUND
        else None,
        subject=_cell(cells, "商品名称") or None,
        amount=amount,
        fee=-signed_amount(fee_text, max_minor) if fee_text else None,
        created_at=_time(_cell(cells, "创建时间")),
        finished_at=_time(_cell(cells, "完成时间")),
        raw=raw,
    )


def signed_amount(text: str, max_minor: int) -> Money:
    """A bill amount such as ``-12.30``: the sign read here, the digits by
    :meth:`Money.parse` (which admits no sign)."""
    negative = text.startswith("-")
    money = Money.parse(text[1:] if negative else text, "CNY", max_minor=max_minor)
    return -money if negative else money


def _time(text: str) -> datetime | None:
    return parse_time(text) if text else None


# -- streaming (reconciliation) ---------------------------------------------------------

_SUMMARY_SUFFIX: Final = "_业务明细(汇总).csv"
_TRADE_TOTAL_RE: Final = re.compile(
    r"#交易合计：([0-9]+)笔，商家实收共：?(-?[0-9]+(?:\.[0-9]+)?)元"
)
_REFUND_TOTAL_RE: Final = re.compile(
    r"#退款合计：([0-9]+)笔，商家实收(?:退款)?共：?(-?[0-9]+(?:\.[0-9]+)?)元"
)


class _Totals:
    """What the rows add up to, and what the bill says they add up to."""

    def __init__(self) -> None:
        self.trades = 0
        self.trade_received = Decimal(0)
        self.refunds = 0
        self.refund_received = Decimal(0)
        self.footer: dict[str, tuple[int, Decimal]] = {}

    def add(self, kind: BillRecordKind, received: str, number: int) -> None:
        try:
            value = Decimal(received) if received else Decimal(0)
        except InvalidOperation:
            raise ProtocolError(f"alipay: bill row {number}: malformed 商家实收") from None
        if kind is BillRecordKind.PAYMENT:
            self.trades += 1
            self.trade_received += value
        else:
            self.refunds += 1
            self.refund_received += value

    def see(self, line: str) -> None:
        for name, pattern in (("trade", _TRADE_TOTAL_RE), ("refund", _REFUND_TOTAL_RE)):
            match = pattern.match(line.strip())
            if match is not None:
                self.footer[name] = (int(match.group(1)), Decimal(match.group(2)))

    def check(self) -> None:
        if set(self.footer) != {"trade", "refund"}:
            raise ProtocolError("alipay: the bill detail file has no 交易合计/退款合计 totals")
        mine = {
            "trade": (self.trades, self.trade_received),
            "refund": (self.refunds, self.refund_received),
        }
        for name, (count, total) in self.footer.items():
            rows, received = mine[name]
            if count != rows or abs(total) != abs(received):
                raise ProtocolError(
                    f"alipay: the bill's {name} rows ({rows}, {received}) do not add up to "
                    f"its totals ({count}, {total})"
                )

    def check_summary(self, text: str) -> None:
        """The 汇总 file's 合计 row, where it has one: the same counts, and the
        merchant's receipts net of refunds."""
        rows = csv.reader(_data_lines(text))
        header = next(rows, None)
        if header is None:
            return
        index = {_column_key(name): i for i, name in enumerate(header)}
        for row in rows:
            if not row or row[0].strip() != "合计":
                continue
            cells = {name: row[i].strip() for name, i in index.items() if i < len(row)}
            try:
                trades = int(cells.get(_column_key("交易订单总笔数"), self.trades))
                refunds = int(cells.get(_column_key("退款订单总笔数"), self.refunds))
                net = Decimal(cells.get(_column_key("商家实收（元）"), "") or "0")
            except (ValueError, InvalidOperation):
                raise ProtocolError("alipay: the bill summary file is malformed") from None
            if (trades, refunds) != (self.trades, self.refunds) or net != (
                self.trade_received - abs(self.refund_received)
            ):
                raise ProtocolError(
                    "alipay: the bill's rows do not add up to its summary file (汇总)"
                )


def iter_bill_archive(file: IO[bytes], *, max_minor: int) -> Iterator[BillLine]:
    """The records of Alipay's bill zip, read one row at a time from ``file``.

    Unlike :func:`parse_bill_archive`, the rows must add up: each detail
    file's ``#交易合计`` / ``#退款合计`` lines and the summary file's ``合计``
    row (counts and 商家实收). After the last row a :class:`ProtocolError`
    refuses a bill that does not; the records already read must be thrown away.
    """
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, ValueError):
        raise ProtocolError("alipay: the bill download is not a zip archive") from None
    with archive:
        members = {_member_name(info): info for info in archive.infolist()}
        details = sorted(name for name in members if _is_detail(name))
        if not details:
            raise ProtocolError("alipay: the bill archive has no 业务明细 detail file")
        totals = _Totals()
        for name in details:
            info = members[name]
            if info.file_size > _MAX_MEMBER_BYTES:
                raise ProtocolError("alipay: the bill detail file is implausibly large")
            with archive.open(info) as raw:
                text = io.TextIOWrapper(raw, encoding="gb18030", newline="")
                yield from _iter_detail(_gbk_lines(text, totals), totals, max_minor)
        totals.check()
        for name in sorted(n for n in members if n.rsplit("/", 1)[-1].endswith(_SUMMARY_SUFFIX)):
            info = members[name]
            if info.file_size > _MAX_MEMBER_BYTES:
                raise ProtocolError("alipay: the bill summary file is implausibly large")
            try:
                totals.check_summary(archive.read(info).decode("gb18030"))
            except UnicodeDecodeError:
                raise ProtocolError("alipay: the bill summary file is not GBK text") from None


def _gbk_lines(text: io.TextIOWrapper, totals: _Totals) -> Iterator[str]:
    """The data lines of a detail file; the ``#`` lines go to ``totals``."""
    try:
        for line in text:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                totals.see(stripped)
                continue
            yield line
    except UnicodeDecodeError:
        raise ProtocolError("alipay: the bill detail file is not GBK text") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ProtocolError(f"alipay: cannot unzip the bill ({type(exc).__name__})") from None


def _iter_detail(lines: Iterator[str], totals: _Totals, max_minor: int) -> Iterator[BillLine]:
    rows = csv.reader(lines)
    first = next(rows, None)
    if first is None:
        raise ProtocolError("alipay: the bill detail file has no header row")
    header = tuple(name.strip() for name in first)
    index = {_column_key(name): i for i, name in enumerate(header)}
    missing = [name for name in _REQUIRED if _column_key(name) not in index]
    if missing:
        raise ProtocolError(f"alipay: the bill header lacks {', '.join(missing)}")

    def at(name: str) -> int:
        return index.get(_column_key(name), -1)

    i_kind, i_trade, i_out = at("业务类型"), at("支付宝交易号"), at("商户订单号")
    i_amount, i_received, i_fee = at("订单金额（元）"), at("商家实收（元）"), at("服务费（元）")
    i_refund_no, i_subject = at("退款批次号/请求号"), at("商品名称")
    i_created, i_finished = at("创建时间"), at("完成时间")
    width = len(header)
    for number, row in enumerate(rows, start=1):
        if len(row) < width:
            raise ProtocolError(f"alipay: bill row {number} has {len(row)} columns, not {width}")
        kind = _KINDS.get(row[i_kind].strip())
        if kind is None:
            continue  # neither a trade nor a refund
        fields = [value.strip() for value in row[:width]]

        def cell(i: int, fields: list[str] = fields) -> str:
            return fields[i] if i >= 0 else ""

        received = cell(i_received)
        try:
            amount = _signed_minor(fields[i_amount], max_minor)
            if kind is BillRecordKind.REFUND:
                # see _record: only a negative 订单金额 is the refund itself
                if amount >= 0:
                    amount = _signed_minor(received, max_minor)
                amount = -abs(amount)
            elif amount < 0:
                raise ValueError("a trade row with a negative amount")
            fee_text = cell(i_fee)
            fee = -_signed_minor(fee_text, max_minor) if fee_text else None
        except (AmountError, ValueError) as exc:
            raise ProtocolError(f"alipay: bill row {number}: {exc}") from None
        totals.add(kind, received, number)
        yield BillLine(
            kind,
            cell(i_trade),
            cell(i_out),
            (cell(i_refund_no) or None) if kind is BillRecordKind.REFUND else None,
            amount,
            "CNY",
            fee,
            cell(i_subject),
            cell(i_created),
            cell(i_finished),
            header,
            fields,
        )


def _signed_minor(text: str, max_minor: int) -> int:
    """A bill amount such as ``-12.30`` in fen; at most two decimals."""
    if "." in text and len(text) - text.index(".") > 3:
        raise AmountError(f"amount {text[:24]!r} has more than 2 decimals for CNY")
    return decimal_minor(text, 2, max_minor=max_minor)
