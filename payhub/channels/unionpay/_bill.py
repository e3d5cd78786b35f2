"""UnionPay ACP merchant reconciliation files (全渠道商户对账文件, the ``ZM`` file).

``fileTransfer`` (txnType 76, bizType 000000, fileType 00) answers with
``fileContent``: the day's zip, DEFLATE-compressed and base64-encoded. The zip
holds ``INN<yyMMdd>88ZM_<merId>`` (every transaction the day settled) next to
other files (``ZME``: errors and adjustments, not read here).

A ``ZM`` line is fixed width in bytes (GBK), its 42 fields separated by one
space, numbers zero-padded, text space-padded, lines ending in ``\\n`` or
``\\r\\n``. The widths are those of the ACP file interface specification (part
3, 6.1), the same the public ACP SDKs parse with; the real file under
``tests/fixtures/unionpay/`` has them. The fields reconciliation reads:

- 0 交易代码 (``S22`` a consume, ``S30`` a refund, ``S31`` a cancel …),
- 4 交易传输时间 ``MMDDhhmmss`` (no year: the bill's day gives it),
- 6 交易金额 in fen, 9 查询流水号 (``queryId``), 11 商户订单号 (``orderId``),
- 15 商户手续费 and 16 结算金额: ``D``/``C`` then 12 digits in fen (``D``: the
  merchant is debited, so a fee ``D…24`` is 0.24 charged and ``C`` returned),
- 19 交易类型 (``01`` consume, ``04`` refund, ``31`` cancel), 26 原交易查询流水号.

The file has no summary row: every line is checked for its width and its
numbers, a line that is not a ``ZM`` line refuses the bill.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date
from typing import IO, Final

from payhub.channels._bills import BillLine
from payhub.errors import ProtocolError
from payhub.models import BillRecord, BillRecordKind

__all__ = [
    "ZM_HEADER",
    "ZM_WIDTHS",
    "decode_file_content",
    "iter_zm_bill", "parse_zm_bill", "zm_fields"]

#: field widths of a ZM line, in bytes (GBK)
ZM_WIDTHS: Final = (
    3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2,
    6, 2, 4, 32, 1, 21, 15, 1, 15, 32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98,
)
_SLICES: Final = tuple(
    slice(start, start + width)
    for start, width in zip(
        [sum(ZM_WIDTHS[:i]) + i for i in range(len(ZM_WIDTHS))], ZM_WIDTHS, strict=True
    )
)
_LINE_BYTES: Final = sum(ZM_WIDTHS) + len(ZM_WIDTHS) - 1
#: column names (ACP file interface, 6.1), for ``BillRecord.raw``
ZM_HEADER: Final = (
    "交易代码", "代理机构标识码", "发送机构标识码", "系统跟踪号", "交易传输时间", "帐号",
    "交易金额", "商户类别", "终端类型", "查询流水号", "支付方式(旧)", "商户订单号",
    "支付卡类型", "原始交易的系统跟踪号", "原始交易日期时间", "商户手续费", "结算金额",
    "支付方式", "集团商户代码", "交易类型", "交易子类", "业务类型", "帐号类型", "账单类型",
    "账单号码", "交互方式", "原交易查询流水号", "商户代码", "分账入账方式", "二级商户代码",
    "二级商户简称", "二级商户分账入账金额", "清算净额", "终端号", "商户自定义域", "优惠金额",
    "发票金额", "分期付款附加手续费", "分期付款期数", "交易介质", "原始交易订单号", "保留使用",
)
_PAYMENT_TYPES: Final = frozenset({"01"})
#: refund (退货) and same-day cancel (消费撤销)
_REFUND_TYPES: Final = frozenset({"04", "31"})
#: a ZM file inside the zip: INN<yyMMdd>88ZM_<merId>
_ZM_MARK: Final = "ZM_"
MAX_ZM_BYTES: Final = 512 * 1024 * 1024


def decode_file_content(text: str) -> bytes:
    """``fileContent`` of a ``fileTransfer`` answer: base64 of the zip, DEFLATE
    (zlib) compressed. The zip, refused past :data:`MAX_ZM_BYTES`."""
    if not text:
        raise ProtocolError("unionpay fileTransfer: the answer holds no fileContent")
    try:
        packed = base64.b64decode(text, validate=True)
        inflater = zlib.decompressobj()
        content = inflater.decompress(packed, MAX_ZM_BYTES)
    except (binascii.Error, ValueError, zlib.error):
        raise ProtocolError(
            "unionpay fileTransfer: fileContent is not base64 DEFLATE data"
        ) from None
    if inflater.unconsumed_tail:
        raise ProtocolError("unionpay fileTransfer: the file exceeds the size limit")
    return content


def zm_fields(line: bytes, number: int = 0) -> list[str]:
    """The 42 fields of one ZM line (GBK bytes, line end removed), stripped."""
    if len(line) != _LINE_BYTES:
        raise ProtocolError(
            f"unionpay: bill line {number} is {len(line)} bytes, a ZM line {_LINE_BYTES}"
        )
    try:
        return [line[part].decode("gbk").strip() for part in _SLICES]
    except UnicodeDecodeError:
        raise ProtocolError(f"unionpay: bill line {number} is not GBK text") from None


def _fen(text: str, what: str, number: int) -> int:
    if not text.isdigit() or not text.isascii():
        raise ProtocolError(f"unionpay: bill line {number}: malformed {what} {text[:16]!r}")
    return int(text)


def _signed_fen(text: str, what: str, number: int) -> int:
    """``D000000000024`` → 24 (debited from the merchant), ``C…`` → negative."""
    if text[:1] not in ("C", "D"):
        raise ProtocolError(f"unionpay: bill line {number}: malformed {what} {text[:16]!r}")
    value = _fen(text[1:], what, number)
    return value if text[0] == "D" else -value


def _time_text(mmddhhmmss: str, bill_date: date, number: int) -> str:
    """``MMDDhhmmss`` as ``yyyy-MM-dd HH:mm:ss``: the year of the bill's day, or
    the year before for a December transaction settled in January."""
    text = mmddhhmmss
    if len(text) != 10 or not text.isdigit() or not text.isascii():
        raise ProtocolError(f"unionpay: bill line {number}: malformed time {text[:16]!r}")
    year = bill_date.year - 1 if text[:2] == "12" and bill_date.month == 1 else bill_date.year
    return f"{year}-{text[0:2]}-{text[2:4]} {text[4:6]}:{text[6:8]}:{text[8:10]}"


def _zm_member(file: IO[bytes]) -> IO[bytes]:
    """The ZM file: the file itself, or the ``…ZM_…`` member of a zip."""
    file.seek(0)
    magic = file.read(4)
    file.seek(0)
    if magic != b"PK\x03\x04":
        return file
    try:
        archive = zipfile.ZipFile(file)
        names = [
            info for info in archive.infolist()
            if _ZM_MARK in info.filename.rsplit("/", 1)[-1]
            and "ZME_" not in info.filename.rsplit("/", 1)[-1]
        ]
        if len(names) != 1:
            raise ProtocolError(
                f"unionpay: the bill zip holds {len(names)} ZM files, expected one"
            )
        if names[0].file_size > MAX_ZM_BYTES:
            raise ProtocolError("unionpay: the ZM file exceeds the size limit")
        return archive.open(names[0])
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ProtocolError("unionpay: the bill download is a corrupt zip file") from None


def iter_zm_bill(
    file: IO[bytes], *, bill_date: date, max_minor: int | None = None
) -> Iterator[BillLine]:
    """The consumes, refunds and cancels of a ZM file (or of the zip holding
    it), one :class:`BillLine` at a time; other transaction types (pre-auth …)
    are not payments payhub makes and are passed over."""
    member = _zm_member(file)
    header = ZM_HEADER
    number = 0
    try:
        for raw in member:
            number += 1
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            fields = zm_fields(line, number)
            txn_type = fields[19]
            if txn_type in _PAYMENT_TYPES:
                kind = BillRecordKind.PAYMENT
            elif txn_type in _REFUND_TYPES:
                kind = BillRecordKind.REFUND
            else:
                continue
            amount = _fen(fields[6], "交易金额", number)
            if max_minor is not None and amount > max_minor:
                raise ProtocolError(f"unionpay: bill line {number}: amount exceeds the limit")
            fee = _signed_fen(fields[15], "商户手续费", number)
            refund = kind is BillRecordKind.REFUND
            yield BillLine(
                kind,
                fields[9],
                # a refund's own orderId is the shop's refund number; the trade is
                # known by the original queryId (field 26) only
                fields[40] if refund and fields[40] else fields[11],
                fields[11] if refund else None,
                -amount if refund else amount,
                "CNY",
                fee,
                "",
                _time_text(fields[4], bill_date, number),
                "",
                header,
                fields,
            )
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ProtocolError("unionpay: the bill download is a corrupt zip file") from None


def parse_zm_bill(
    content: bytes, *, channel: str, bill_date: date, max_minor: int | None = None
) -> list[BillRecord]:
    """:func:`iter_zm_bill` over bytes in memory, as :class:`BillRecord` s."""
    return [
        line.record(channel, bill_date)
        for line in iter_zm_bill(io.BytesIO(content), bill_date=bill_date, max_minor=max_minor)
    ]
