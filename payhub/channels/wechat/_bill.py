"""The WeChat Pay trade bill (``/v3/bill/tradebill``): gunzip, hash check, CSV.

The file is UTF-8 text, optionally with a BOM: a header row, one data row per
payment or refund with every field prefixed by a backtick (so that ids survive
spreadsheets), then a summary section (a header row starting ``总交易单数`` and
one row of totals). Amounts are yuan strings; the fee (``手续费``) has up to
five decimals and is rounded half-up to the fen; refund rows are negative.

Column names differ between bill versions (``订单金额`` is newer than
``应结订单金额``, which replaced ``总金额``); each value is looked up under
every name it has had.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from typing import IO, Final

from payhub.channels._bills import BillLine, currency_exponent, decimal_minor
from payhub.errors import AmountError, ProtocolError, SignatureError
from payhub.models import BillRecord, BillRecordKind
from payhub.money import Money
from payhub.signing import constant_time_equals, sha1_hex
from payhub.tz import SHANGHAI

__all__ = [
    "MAX_BILL_BYTES",
    "SHANGHAI",
    "gunzip_bill",
    "iter_trade_bill",
    "parse_trade_bill",
    "verify_bill_file_hash",
    "verify_bill_hash",
]

#: A decompressed bill larger than this is refused (a gzip bomb, not a bill).
MAX_BILL_BYTES: Final = 512 * 1024 * 1024

_SUMMARY_FIRST: Final = "总交易单数"
_FEE_RE: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_SHA1_RE: Final = re.compile(r"[0-9A-Fa-f]{40}", re.ASCII)

_TIME: Final = ("交易时间",)
_TRADE_ID: Final = ("微信订单号",)
_OUT_TRADE_NO: Final = ("商户订单号",)
_STATE: Final = ("交易状态",)
_CURRENCY: Final = ("货币种类",)
_ORDER_AMOUNT: Final = ("订单金额", "应结订单金额", "总金额")
_REFUND_AMOUNT: Final = ("申请退款金额", "退款金额")
_OUT_REFUND_NO: Final = ("商户退款单号",)
_SUBJECT: Final = ("商品名称",)
_FEE: Final = ("手续费",)


def gunzip_bill(data: bytes, *, already_decoded: bool = False) -> bytes:
    """Decompress a ``tar_type=GZIP`` bill, refusing anything over :data:`MAX_BILL_BYTES`.

    ``already_decoded`` accepts a plain file when the HTTP layer already removed
    a ``Content-Encoding: gzip``.
    """
    if not data.startswith(b"\x1f\x8b"):
        if already_decoded:
            return data
        raise ProtocolError("wechat: the bill download is not a gzip file", retryable=True)
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_BILL_BYTES)
    except zlib.error:
        raise ProtocolError("wechat: the bill download is a corrupt gzip file") from None
    if inflater.unconsumed_tail:
        raise ProtocolError("wechat: the decompressed bill exceeds the size limit")
    if not inflater.eof:
        raise ProtocolError("wechat: the bill download is a truncated gzip file", retryable=True)
    return out


def verify_bill_hash(content: bytes, hash_type: object, hash_value: object) -> None:
    """Check the SHA1 ``hash_value`` of the decompressed bill, in constant time."""
    if hash_type != "SHA1":
        raise ProtocolError(f"wechat: unsupported bill hash_type {str(hash_type)[:16]!r}")
    if not isinstance(hash_value, str) or _SHA1_RE.fullmatch(hash_value) is None:
        raise ProtocolError("wechat: the bill hash_value is not a SHA1 hex digest")
    if not constant_time_equals(sha1_hex(content), hash_value.lower()):
        raise SignatureError(
            "wechat: the downloaded bill does not match its SHA1 hash_value", retryable=True
        )


def _fields(line: str) -> list[str]:
    # Every field starts with a backtick: split on ",`" so commas inside a
    # field (a product name) survive.
    return line[1:].split(",`")


def _get(row: Mapping[str, str], names: Sequence[str], *, required: bool = True) -> str:
    for name in names:
        value = row.get(name)
        if value is not None:
            return value
    if required:
        raise ProtocolError(f"wechat: the bill has no column {names[0]}")
    return ""


def _fee(text: str, currency: str, max_minor: int | None) -> Money | None:
    if text == "":
        return None
    match = _FEE_RE.fullmatch(text)
    if match is None or len(text) > 24:
        raise AmountError(f"malformed fee {text[:24]!r}")
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or "0"
    exponent = Money.zero(currency).exponent
    value = Decimal(f"{whole}.{fraction}").scaleb(exponent).quantize(Decimal(1), ROUND_HALF_UP)
    minor = int(value)
    if max_minor is not None and minor > max_minor:
        raise AmountError(f"fee {text[:24]!r} exceeds the channel limit")
    return Money(-minor if sign else minor, currency)


def _time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise ProtocolError(f"wechat: malformed bill time {text[:24]!r}") from None


def _record(
    row: dict[str, str], channel: str, bill_date: date | None, max_minor: int | None
) -> BillRecord:
    currency = _get(row, _CURRENCY, required=False) or "CNY"
    is_refund = _get(row, _STATE) == "REFUND"
    if is_refund:
        amount = -Money.parse(_get(row, _REFUND_AMOUNT), currency, max_minor=max_minor)
    else:
        amount = Money.parse(_get(row, _ORDER_AMOUNT), currency, max_minor=max_minor)
    out_refund_no = _get(row, _OUT_REFUND_NO, required=False)
    return BillRecord(
        channel=channel,
        bill_date=bill_date,
        kind=BillRecordKind.REFUND if is_refund else BillRecordKind.PAYMENT,
        channel_trade_id=_get(row, _TRADE_ID),
        out_trade_no=_get(row, _OUT_TRADE_NO),
        out_refund_no=out_refund_no if is_refund and out_refund_no not in ("", "0") else None,
        subject=_get(row, _SUBJECT, required=False) or None,
        amount=amount,
        fee=_fee(_get(row, _FEE, required=False), currency, max_minor),
        created_at=_time(_get(row, _TIME)),
        raw=row,
    )


def parse_trade_bill(
    content: bytes, *, channel: str, bill_date: date | None = None, max_minor: int | None = None
) -> list[BillRecord]:
    """Parse a decompressed trade bill into records (refunds negative).

    ``fee`` keeps the bill's sign: positive on payments (charged), negative on
    refunds (the part WeChat Pay gives back). Amounts and fees above
    ``max_minor`` (WeChat's limit, when the channel parses) are refused.
    """
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("wechat: the bill is not UTF-8 text") from None
    lines = [line for line in text.removeprefix("\ufeff").splitlines() if line.strip()]
    if not lines or lines[0].startswith("`"):
        raise ProtocolError("wechat: the bill has no header row")
    header = [name.strip().lstrip("`") for name in lines[0].split(",")]
    records: list[BillRecord] = []
    index = 1
    while index < len(lines) and lines[index].startswith("`"):
        fields = _fields(lines[index])
        if len(fields) != len(header):
            raise ProtocolError(
                f"wechat: bill line {index + 1} has {len(fields)} fields, "
                f"the header {len(header)}"
            )
        try:
            records.append(
                _record(dict(zip(header, fields, strict=True)), channel, bill_date, max_minor)
            )
        except AmountError as exc:
            # The file matched its signed hash: fetching it again gives the same line.
            raise ProtocolError(
                f"wechat: bill line {index + 1}: {exc.message}", retryable=False
            ) from None
        index += 1
    _check_summary(lines[index:])
    return records


def _check_summary(lines: Sequence[str]) -> None:
    if len(lines) != 2 or not lines[0].startswith(_SUMMARY_FIRST) or not lines[1].startswith("`"):
        raise ProtocolError("wechat: the bill does not end with its summary section")
    names, values = lines[0].split(","), _fields(lines[1])
    if len(names) != len(values) or not values[0].isascii() or not values[0].isdigit():
        raise ProtocolError("wechat: the bill summary is malformed")


# -- streaming (reconciliation) ---------------------------------------------------------

#: summary column -> the row column it totals (``None``: the number of rows);
#: current names and the older ones (``总交易额``, ``总退款金额``…).
_SUMMARY_OF: Final[Mapping[str, str | None]] = {
    "总交易单数": None,
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
    "总交易额": "总金额",
    "总退款金额": "退款金额",
    "总代金券或立减优惠退款金额": "代金券或立减优惠退款金额",
}
_CHUNK: Final = 1024 * 1024


def _plain_stream(file: IO[bytes]) -> IO[bytes] | gzip.GzipFile:
    """The decompressed bill: gunzipped on the fly, or as is when not gzip
    (the HTTP layer already removed a ``Content-Encoding: gzip``)."""
    file.seek(0)
    magic = file.read(2)
    file.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=file, mode="rb")
    return file


def _chunks(file: IO[bytes] | gzip.GzipFile) -> Iterator[bytes]:
    total = 0
    try:
        while chunk := file.read(_CHUNK):
            total += len(chunk)
            if total > MAX_BILL_BYTES:
                raise ProtocolError("wechat: the decompressed bill exceeds the size limit")
            yield chunk
    except (OSError, EOFError, zlib.error):
        raise ProtocolError("wechat: the bill download is a corrupt gzip file") from None


def verify_bill_file_hash(file: IO[bytes], hash_type: object, hash_value: object) -> None:
    """:func:`verify_bill_hash` over a (possibly gzipped) file, read in chunks."""
    if hash_type != "SHA1":
        raise ProtocolError(f"wechat: unsupported bill hash_type {str(hash_type)[:16]!r}")
    if not isinstance(hash_value, str) or _SHA1_RE.fullmatch(hash_value) is None:
        raise ProtocolError("wechat: the bill hash_value is not a SHA1 hex digest")
    digest = hashlib.sha1(usedforsecurity=False)
    for chunk in _chunks(_plain_stream(file)):
        digest.update(chunk)
    if not constant_time_equals(digest.hexdigest(), hash_value.lower()):
        raise SignatureError(
            "wechat: the downloaded bill does not match its SHA1 hash_value", retryable=True
        )


def iter_trade_bill(
    file: IO[bytes], *, max_minor: int | None = None
) -> Iterator[BillLine]:
    """The rows of a trade bill file (gzipped or not), one at a time.

    Unlike :func:`parse_trade_bill`, the rows must add up to the bill's own
    summary (row count and every total the summary gives, fees to five
    decimals): after the last row a :class:`ProtocolError` refuses a bill
    that does not, and the rows already read must be thrown away.
    """
    text = io.TextIOWrapper(_plain_stream(file), encoding="utf-8", newline="")
    blocks = _text_blocks(text)
    first = next(blocks, [])
    header_line = next((line for line in first if line.strip()), None)
    while header_line is None and first:
        first = next(blocks, [])
        header_line = next((line for line in first if line.strip()), None)
    if header_line is None or header_line.lstrip("\ufeff").startswith("`"):
        raise ProtocolError("wechat: the bill has no header row")
    first = first[first.index(header_line) + 1 :]
    number = 1
    header = tuple(name.strip().lstrip("`") for name in header_line.lstrip("\ufeff").split(","))
    at = {name: i for i, name in enumerate(header)}

    def column(names: Sequence[str]) -> int | None:
        return next((at[name] for name in names if name in at), None)

    def needed(names: Sequence[str]) -> int:
        index = column(names)
        if index is None:
            raise ProtocolError(f"wechat: the bill has no column {names[0]}")
        return index

    i_time, i_trade = needed(_TIME), needed(_TRADE_ID)
    i_out, i_state = needed(_OUT_TRADE_NO), needed(_STATE)
    i_amount = needed(_ORDER_AMOUNT)
    i_refund, i_refund_no = column(_REFUND_AMOUNT), column(_OUT_REFUND_NO)
    i_currency, i_subject, i_fee = column(_CURRENCY), column(_SUBJECT), column(_FEE)
    totalled = [at[name] for name in _TOTALLED if name in at]
    # what each row keeps for the totals: only the totalled texts, as a plain
    # tuple (the collector stops tracking it at once; the row's list of fields
    # would be promoted, and enough of them make it walk the whole heap)
    keep = _keeper(totalled)
    counted: list[tuple[int, Counter[str]]] = [
        (place, Counter()) for place in range(len(totalled))
    ]
    # rows waiting to be counted, a block at a time (Counter counts in C)
    pending: list[tuple[str, ...]] = []
    # A day's bill repeats the same few prices and fees: each text is parsed
    # once, and the totals count texts, summed exactly at the end.
    parsed: dict[str, int] = {}
    exponents: dict[str, int] = {}
    width = len(header)
    rows = 0
    tail: list[str] = []
    # The hot loop: a million rows a run. Locals, no call per row but the split,
    # and each BillLine built as the tuple it is (no NamedTuple.__new__ frame).
    payment_kind, refund_kind = BillRecordKind.PAYMENT, BillRecordKind.REFUND
    new_line = tuple.__new__
    remember = pending.append
    known = parsed.get
    no_refund = ("", "0")
    for block in _chain_first(first, blocks):
        for line in block:
            number += 1
            if tail or line[:1] != "`":
                if line.strip():
                    tail.append(line.rstrip("\r\n"))
                continue
            fields = line[1:].rstrip("\r\n").split(",`")
            if len(fields) != width:
                raise ProtocolError(
                    f"wechat: bill line {number} has {len(fields)} fields, the header {width}"
                )
            currency = (fields[i_currency] if i_currency is not None else "") or "CNY"
            is_refund = fields[i_state] == "REFUND"
            if is_refund:
                if i_refund is None:
                    raise ProtocolError("wechat: the bill has no column 申请退款金额")
                amount_text = fields[i_refund]
            else:
                amount_text = fields[i_amount]
            fee_text = fields[i_fee] if i_fee is not None else ""
            if currency == "CNY" or exponents.get(currency) == 2:
                amount = known(amount_text)
                fee = known(fee_text) if fee_text else None
            else:
                amount = fee = None
            if amount is None or (fee is None and fee_text):
                try:
                    exponent = exponents.get(currency)
                    if exponent is None:
                        exponent = exponents[currency] = currency_exponent(currency)
                    if amount is None:
                        amount = decimal_minor(amount_text, exponent, max_minor=max_minor)
                        if exponent == 2 and len(parsed) < _MEMO_LIMIT:
                            parsed[amount_text] = amount
                    if fee is None and fee_text:
                        fee = decimal_minor(fee_text, exponent, max_minor=max_minor)
                        if exponent == 2 and len(parsed) < _MEMO_LIMIT:
                            parsed[fee_text] = fee
                except AmountError as exc:
                    raise ProtocolError(f"wechat: bill line {number}: {exc.message}") from None
            remember(keep(fields))
            if len(pending) >= _COUNT_BLOCK:
                _count(counted, pending)
            rows += 1
            if is_refund:
                refund_no = fields[i_refund_no] if i_refund_no is not None else ""
                yield new_line(
                    BillLine,
                    (
                        refund_kind,
                        fields[i_trade],
                        fields[i_out],
                        None if refund_no in no_refund else refund_no,
                        -amount,
                        currency,
                        fee,
                        fields[i_subject] if i_subject is not None else "",
                        fields[i_time],
                        "",
                        header,
                        fields,
                    ),
                )
            else:
                yield new_line(
                    BillLine,
                    (
                        payment_kind,
                        fields[i_trade],
                        fields[i_out],
                        None,
                        amount,
                        currency,
                        fee,
                        fields[i_subject] if i_subject is not None else "",
                        fields[i_time],
                        "",
                        header,
                        fields,
                    ),
                )
    _count(counted, pending)
    totals: dict[str, int] = {}
    for place, texts in counted:
        try:
            totals[header[totalled[place]]] = sum(
                decimal_minor(text or "0", _TOTAL_SCALE) * times for text, times in texts.items()
            )
        except AmountError as exc:
            raise ProtocolError(
                f"wechat: bill column {header[totalled[place]]}: {exc.message}"
            ) from None
    _check_summary(tail)
    _check_totals(tail, rows, totals)


def _keeper(indices: Sequence[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function picking ``indices`` out of a row's fields, as a tuple."""
    if len(indices) > 1:
        return itemgetter(*indices)
    if indices:
        (only,) = indices
        return lambda fields: (fields[only],)
    return lambda fields: ()


def _count(
    counted: Sequence[tuple[int, Counter[str]]], pending: list[tuple[str, ...]]
) -> None:
    for index, texts in counted:
        texts.update(map(itemgetter(index), pending))
    pending.clear()


_COUNT_BLOCK: Final = 1024
#: totals are compared exactly, in units of 10**-6 (fees have five decimals)
_TOTAL_SCALE: Final = 6
_MEMO_LIMIT: Final = 65_536
_TOTALLED: Final = frozenset(name for name in _SUMMARY_OF.values() if name is not None)


def _text_blocks(text: io.TextIOWrapper) -> Iterator[list[str]]:
    """The lines of the bill a block (about a megabyte) at a time."""
    try:
        while block := text.readlines(_CHUNK):
            yield block
    except UnicodeDecodeError:
        raise ProtocolError("wechat: the bill is not UTF-8 text") from None
    except (OSError, EOFError, zlib.error):
        raise ProtocolError("wechat: the bill download is a corrupt gzip file") from None


def _chain_first(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _check_totals(tail: Sequence[str], rows: int, totals: Mapping[str, int]) -> None:
    """Refuse a bill whose rows do not add up to its summary row."""
    names = [name.strip() for name in tail[0].split(",")]
    values = _fields(tail[1])
    for name, value in zip(names, values, strict=True):
        column = _SUMMARY_OF.get(name, "")
        if column is None:
            if int(value) != rows:
                raise ProtocolError(
                    f"wechat: the bill has {rows} rows, its summary says {value[:12]}"
                )
        elif column in totals and _summary_value(value) != totals[column]:
            raise ProtocolError(
                f"wechat: the bill's {column} do not add up to its summary's {name} "
                f"{value[:24]}"
            )


def _summary_value(text: str) -> int:
    try:
        return decimal_minor(text or "0", _TOTAL_SCALE)
    except AmountError:
        raise ProtocolError(f"wechat: malformed bill summary value {text[:24]!r}") from None
