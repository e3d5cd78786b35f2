"""Writing rows: CSV (UTF-8 with BOM, RFC 4180) and XLSX (XlsxWriter, constant memory).

The same rules for every report:

* amounts are numbers in major units with the currency's decimals, exact
  (``12345`` fen is ``123.45``; never through a float in the CSV, and in the
  XLSX the cell's text is the exact decimal);
* identifiers stay text: in the CSV a long all-digit id ends with a tab, the
  way Alipay's own bills keep Excel from turning it into ``2.0881E+15``; in
  the XLSX they are string cells with the text format;
* text that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  is escaped against formula injection (OWASP, "CSV Injection"): the CSV cell
  gets a leading ``'``; the XLSX cell is a string cell (never a formula) with
  Excel's quote-prefix style, so that editing it cannot turn it into one.
  Amounts are numbers, never escaped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from itertools import count, islice
from pathlib import Path
from typing import Any, Final, Protocol

from payhub.money import CURRENCY_EXPONENTS
from payhub.reports._types import Field, FieldKind

__all__ = [
    "CSV_BOM",
    "XLSX_MAX_ROWS",
    "Column",
    "CsvPart",
    "XlsxPart",
    "amount_text",
    "csv_row_function",
    "escape_cell",
    "needs_escape",
]

#: Excel's sheet: 1,048,576 rows, one of them the header
XLSX_MAX_ROWS: Final = 1_048_575
CSV_BOM: Final = "\ufeff"
_DANGEROUS: Final = ("=", "+", "-", "@", "\t", "\r")
_TIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"


def needs_escape(text: str) -> bool:
    """Does a spreadsheet read this cell as a formula (OWASP's list of first characters)?"""
    return text.startswith(_DANGEROUS)


def escape_cell(text: str) -> str:
    """``=1+2`` -> ``'=1+2``: shown as text, never evaluated. Other text unchanged."""
    return "'" + text if text.startswith(_DANGEROUS) else text


def amount_text(minor: int, exponent: int) -> str:
    """Exact major units: ``amount_text(-12345, 2) == "-123.45"`` (no float, no rounding)."""
    if exponent == 0:
        return str(minor)
    whole, fraction = divmod(-minor if minor < 0 else minor, 10**exponent)
    sign = "-" if minor < 0 else ""
    return f"{sign}{whole}.{fraction:0{exponent}d}"


@dataclass(frozen=True)
class Column:
    """A column of the file: the row's ``index``, its field, and the header shown."""

    index: int
    field: Field
    header: str


def _excel_text_id(text: str) -> str:
    # An all-digit id of 12 digits or more becomes a rounded number in Excel;
    # a trailing tab keeps it text (Alipay's bills do the same).
    return text + "\t" if len(text) > 11 and text.isdigit() else text


_DANGER_SET: Final = frozenset(_DANGEROUS)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY: Final = date(1970, 1, 1)
#: "HH:MM:" of each minute of a day, and "SS" of each second of a minute
_HOURS_MINUTES: Final = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SECONDS: Final = tuple(f"{s:02d}" for s in range(60))
#: first characters of an id that is neither escaped nor all digits: printable ASCII
#: but digits and the dangerous ones (other first characters take the full check)
_ID_START: Final = frozenset(map(chr, range(0x20, 0x7F))) - frozenset("0123456789") - _DANGER_SET
#: ids below this have at most 11 digits: Excel keeps them exact, no trailing tab
_SHORT_ID: Final = 10**11


def fixed_offset(tz: tzinfo, start: datetime, end: datetime) -> timedelta | None:
    """``tz``'s UTC offset if it is the same all through ``[start, end]`` (Asia/Shanghai
    always; a zone with summer time only between its changes), else None.

    Sampled every half hour (offsets change on the hour or half hour); ranges
    over two years are not sampled (None: each time converted on its own).
    """
    if end - start > timedelta(days=731):
        return None
    offset = start.astimezone(tz).utcoffset()
    moment = start
    while moment < end:
        moment = min(moment + timedelta(minutes=30), end)
        if moment.astimezone(tz).utcoffset() != offset:
            return None
    return offset


def _text_cell(value: Any) -> str:
    """A TEXT cell the inline expression left over: None, not a ``str``, or escaped."""
    if value is None:
        return ""
    text = value if value.__class__ is str else str(value)
    return "'" + text if text[:1] in _DANGER_SET else text


def _id_cell(value: Any) -> str:
    """An ID cell the inline expression left over (see :func:`_excel_text_id`)."""
    if value is None:
        return ""
    return escape_cell(_excel_text_id(value if value.__class__ is str else str(value)))


def _amount_cell(value: Any, currency: Any) -> str:
    """An AMOUNT cell the inline expression left over (small, other exponents, None)."""
    return "" if value is None else amount_text(value, CURRENCY_EXPONENTS[currency])


def _time_cell(tz: tzinfo) -> Callable[[Any], str]:
    """A TIME cell converted on its own (no known offset, not UTC, outside the range)."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        text: str = value.astimezone(tz).isoformat(" ", "seconds")
        return text[:19]

    return cell


def _day_prefix(days: dict[int, str]) -> Callable[[int], str]:
    """``"YYYY-MM-DD "`` of the local day ``n`` days after 1970-01-01, remembered."""

    def prefix(n: int) -> str:
        text = days[n] = (_EPOCH_DAY + timedelta(days=n)).isoformat() + " "
        return text

    return prefix


def _csv_cell_source(column: Column, currency_index: int, window: str | None = None) -> str:
    """The expression that formats one CSV cell of ``row`` (see :func:`csv_row_function`).

    Each is written so that the common value takes the shortest way (a ``str``
    that needs no escaping, an id that Excel keeps, a whole number of fen, a
    UTC time inside the range) and everything else goes to the one function
    that handles every case, so that the output is the same either way.
    """
    i = column.index
    kind = column.field.kind
    if kind is FieldKind.AMOUNT:
        # the digits of a whole number of minor units (|x| >= 100 when the currency
        # has two decimals, its exponent ``e`` looked up once per row), sliced
        return (
            f"(s[:-2] + '.' + s[-2:] if e == 2 and (x := row[{i}]).__class__ is int "
            f"and (x >= 100 or x <= -100) and (s := str(x)) "
            f"else amount_cell(row[{i}], row[{currency_index}]))"
        )
    if kind is FieldKind.TIME:
        if window is None:
            return f"time_cell(row[{i}])"
        # local time = UTC + the range's one offset: whole local days since 1970 and
        # the second of that day from one timedelta, then three strings from tables
        return (
            f"((DAY.get((d := x - LOCAL_EPOCH).days) or day(d.days)) "
            f"+ HM[(s := d.seconds) // 60] + SS[s % 60] "
            f"if (x := row[{i}]) is not None and x.tzinfo is UTC{window} "
            f"else time_cell(x))"
        )
    if kind is FieldKind.INTEGER:
        return f'("" if (x := row[{i}]) is None else str(x))'
    if kind is FieldKind.ID:
        # a str that needs neither escaping nor a tab (at once when it starts with
        # an ASCII letter or harmless sign: then it is not all digits), or a short
        # non-negative int
        return (
            f"(x if (x := row[{i}]).__class__ is str and (x[:1] in ID_START or "
            f"x[:1] not in DANGER and (len(x) < 12 or not x.isdigit())) "
            f"else str(x) if x.__class__ is int and 0 <= x < SHORT_ID else id_cell(x))"
        )
    return f"(x if (x := row[{i}]).__class__ is str and x[:1] not in DANGER else text_cell(x))"


class RowCells(Protocol):
    """A row formatted as CSV cells; the second argument (a row number) is ignored."""

    def __call__(self, row: Sequence[Any], number: int | None = None, /) -> list[str]: ...


def csv_row_function(
    columns: Sequence[Column],
    fields: Sequence[Field],
    tz: tzinfo,
    span: tuple[datetime, datetime] | None = None,
) -> RowCells:
    """One function formatting a whole row, built once per file from the columns.

    The same rules as :func:`escape_cell`, :func:`amount_text` and the time
    format, written out as a single list expression: a million rows then cost
    one Python call each instead of one per cell. ``span``: the range the
    rows' times fall in, when known. Times are converted with one offset,
    without a zone lookup, where that offset is known to hold: everywhere for
    a fixed-offset zone (``datetime.timezone``, as Asia/Shanghai is), inside
    ``span`` for another zone that keeps one offset there (see
    :func:`fixed_offset`); any other time is converted on its own.
    """
    currency = _currency_index(fields)
    # the fast conversion's condition: always (a fixed zone), inside the range, or never
    window: str | None = None
    low = high = None
    if isinstance(tz, timezone):
        offset: timedelta | None = tz.utcoffset(None)
        window = ""
    elif span is not None and (offset := fixed_offset(tz, *span)) is not None:
        low, high = span[0].astimezone(UTC), span[1].astimezone(UTC)
        window = " and LOW <= x < HIGH"
    else:
        offset = None
    days: dict[int, str] = {}
    cells = ",\n        ".join(_csv_cell_source(c, currency, window) for c in columns)
    head = ""
    if any(c.field.kind is FieldKind.AMOUNT for c in columns):
        head = f"    e = EXP.get(row[{currency}])\n"
    source = f"def cells(row, _number=None):\n{head}    return [\n        {cells},\n    ]\n"
    namespace: dict[str, Any] = {
        "EXP": CURRENCY_EXPONENTS,
        "UTC": UTC,
        "DANGER": _DANGER_SET,
        "SHORT_ID": _SHORT_ID,
        "ID_START": _ID_START,
        "LOCAL_EPOCH": None if offset is None else _EPOCH - offset,
        "LOW": low,
        "HIGH": high,
        "DAY": days,
        "day": _day_prefix(days),
        "HM": _HOURS_MINUTES,
        "SS": _SECONDS,
        "amount_cell": _amount_cell,
        "text_cell": _text_cell,
        "id_cell": _id_cell,
        "time_cell": _time_cell(tz),
    }
    exec(compile(source, "<payhub.reports csv row>", "exec"), namespace)  # noqa: S102 - built from field kinds only, never from data
    function: RowCells = namespace["cells"]
    return function


class Part(Protocol):
    """One output file being written."""

    path: Path

    def write(self, rows: Iterator[Sequence[Any]], limit: int) -> int:
        """Write up to ``limit`` rows; return how many were written."""

    def close(self) -> None: ...


def _currency_index(fields: Sequence[Field]) -> int:
    for n, item in enumerate(fields):
        if item.key == "currency":
            return n
    return -1


class CsvPart:
    """A CSV file: UTF-8 with a BOM (Excel reads Chinese right), CRLF, RFC 4180 quoting."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        fields: Sequence[Field],
        tz: tzinfo,
        span: tuple[datetime, datetime] | None = None,
    ) -> None:
        self.path = path
        self._file = path.open("w", encoding="utf-8", newline="")
        self._file.write(CSV_BOM)
        self._writer = csv.writer(self._file, lineterminator="\r\n")
        self._writer.writerow([escape_cell(c.header) for c in columns])
        self._cells = csv_row_function(columns, fields, tz, span)

    def write(self, rows: Iterator[Sequence[Any]], limit: int) -> int:
        # rows go straight from the stream to the file, never held in a list (a
        # chunk of live rows costs more in garbage collection than it saves); map()
        # hands each row's number from ``counted`` to the row function, which
        # ignores it, so the count costs no Python call
        counted = count()
        self._writer.writerows(map(self._cells, islice(rows, limit), counted))
        return next(counted)

    def close(self) -> None:
        self._file.flush()
        self._file.close()


class XlsxPart:
    """An XLSX file written row by row (XlsxWriter's ``constant_memory``: each row
    goes to disk as soon as the next begins; memory does not grow with rows)."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[Column],
        fields: Sequence[Field],
        tz: tzinfo,
        sheet_name: str,
    ) -> None:
        import xlsxwriter  # noqa: PLC0415 - the xlsx extra, only when writing one

        self.path = path
        self._book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        self._sheet = self._book.add_worksheet(sheet_name[:31])
        self._columns = list(columns)
        self._currency = _currency_index(fields)
        self._tz = tz
        self._row = 0
        book = self._book
        self._header = book.add_format({"bold": True})
        self._text = book.add_format({"num_format": "@"})
        self._quoted = book.add_format({"num_format": "@", "quote_prefix": True})
        self._amount = book.add_format({"num_format": "0.00"})
        self._amount0 = book.add_format({"num_format": "0"})
        self._time = book.add_format({"num_format": _TIME_FORMAT})
        for n, column in enumerate(self._columns):
            kind = column.field.kind
            width = {FieldKind.TIME: 20, FieldKind.AMOUNT: 14, FieldKind.ID: 28}.get(kind, 16)
            self._sheet.set_column(n, n, max(width, len(column.header) * 2))
            self._sheet.write_string(0, n, column.header, self._header)
        self._sheet.freeze_panes(1, 0)

    def write(self, rows: Iterator[Sequence[Any]], limit: int) -> int:
        sheet = self._sheet
        write_string, write_number = sheet.write_string, sheet.write_number
        write_datetime = sheet.write_datetime
        text_fmt, quoted_fmt, time_fmt = self._text, self._quoted, self._time
        currency, tz = self._currency, self._tz
        plan = [(n, c.index, c.field.kind) for n, c in enumerate(self._columns)]
        amount_kind, time_kind, int_kind = FieldKind.AMOUNT, FieldKind.TIME, FieldKind.INTEGER
        exponents = CURRENCY_EXPONENTS
        r = self._row
        count = 0
        for row in islice(rows, limit):
            r += 1
            count += 1
            for col, i, kind in plan:
                value = row[i]
                if value is None:
                    continue
                if kind is amount_kind:
                    exponent = exponents[row[currency]]
                    write_number(
                        r,
                        col,
                        Decimal(amount_text(value, exponent)),
                        self._amount if exponent else self._amount0,
                    )
                elif kind is time_kind:
                    local = value.astimezone(tz).replace(tzinfo=None)
                    write_datetime(r, col, local, time_fmt)
                elif kind is int_kind:
                    write_number(r, col, value)
                else:
                    text = str(value)
                    write_string(r, col, text, quoted_fmt if needs_escape(text) else text_fmt)
        self._row = r
        return count

    def close(self) -> None:
        self._book.close()
