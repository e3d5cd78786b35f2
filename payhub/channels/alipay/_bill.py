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
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import Final

from payhub.errors import AmountError, ProtocolError
from payhub.models import BillRecord, BillRecordKind
from payhub.money import Money

from ._wire import parse_time

__all__ = ["BILL_COLUMNS", "parse_bill_archive", "parse_bill_csv"]

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
