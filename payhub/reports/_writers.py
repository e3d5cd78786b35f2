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
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import islice
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


def _csv_cell_source(column: Column, currency_index: int, fixed: bool = False) -> str:
    """The expression that formats one CSV cell of ``row`` (see :func:`csv_row_function`)."""
    v = f"row[{column.index}]"
    kind = column.field.kind
    if kind is FieldKind.AMOUNT:
        # the common case (a whole number of fen, at least 1 yuan) by slicing its
        # digits; anything else (negative, under 100, other exponents) by amount_text
        currency = f"row[{currency_index}]"
        body = (
            f'(s[:-2] + "." + s[-2:] if x.__class__ is int and x >= 100 '
            f"and EXP[{currency}] == 2 and (s := str(x)) else amount_text(x, EXP[{currency}]))"
        )
    elif kind is FieldKind.TIME and fixed:
        # one offset over the whole range: an addition instead of a zone lookup
        body = (
            '((x + OFFSET) if x.tzinfo is UTC else x.astimezone(TZ)).isoformat(" ", "seconds")[:19]'
        )
    elif kind is FieldKind.TIME:
        body = 'x.astimezone(TZ).isoformat(" ", "seconds")[:19]'
    elif kind is FieldKind.INTEGER:
        body = "str(x)"
    elif kind is FieldKind.ID:
        # _excel_text_id written out: a long all-digit id gets a trailing tab
        body = (
            '("\'" + s if (s := (t + "\\t" if len(t := x if x.__class__ is str else str(x)) > 11 '
            "and t.isdigit() else t))[:1] in DANGER else s)"
        )
    else:
        body = '("\'" + s if (s := x if x.__class__ is str else str(x))[:1] in DANGER else s)'
    return f'("" if (x := {v}) is None else {body})'


def csv_row_function(
    columns: Sequence[Column],
    fields: Sequence[Field],
    tz: tzinfo,
    span: tuple[datetime, datetime] | None = None,
) -> Callable[[Sequence[Any]], list[str]]:
    """One function formatting a whole row, built once per file from the columns.

    The same rules as :func:`escape_cell`, :func:`amount_text` and the time
    format, written out as a single list expression: a million rows then cost
    one Python call each instead of one per cell. ``span``: the range the
    rows' times fall in, when known (see :func:`fixed_offset`).
    """
    currency = _currency_index(fields)
    offset = None if span is None else fixed_offset(tz, *span)
    fixed = offset is not None
    cells = ",\n        ".join(_csv_cell_source(c, currency, fixed) for c in columns)
    source = f"def cells(row):\n    return [\n        {cells},\n    ]\n"
    namespace: dict[str, Any] = {
        "amount_text": amount_text,
        "EXP": CURRENCY_EXPONENTS,
        "TZ": tz,
        "UTC": UTC,
        "OFFSET": offset,
        "DANGER": _DANGER_SET,
        "text_id": _excel_text_id,
    }
    exec(compile(source, "<payhub.reports csv row>", "exec"), namespace)  # noqa: S102 - built from field kinds only, never from data
    function: Callable[[Sequence[Any]], list[str]] = namespace["cells"]
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
        # a list of at most ``limit`` rows (the caller's chunk): counted by len(),
        # not by a Python call per row
        chunk = list(islice(rows, limit))
        self._writer.writerows(map(self._cells, chunk))
        return len(chunk)

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
