"""Differences as rows: for the terminal, ``--json`` and CSV.

:func:`difference_rows` is the seam for the exports package (``payhub.reports``,
issue 12): a report type "reconciliation differences" only has to iterate it
and write the rows as CSV or XLSX. Until then :func:`write_csv` writes them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from payhub.money import Money

__all__ = ["DIFFERENCE_COLUMNS", "difference_rows", "write_csv"]

DIFFERENCE_COLUMNS: Final = (
    "id",
    "channel",
    "bill_date",
    "kind",
    "status",
    "out_trade_no",
    "out_refund_no",
    "channel_trade_id",
    "currency",
    "bill_amount",
    "store_amount",
    "bill_fee",
    "expected_fee",
    "repairs",
    "resolved_by",
    "resolution",
)
_AMOUNTS: Final = frozenset({"bill_amount", "store_amount", "bill_fee", "expected_fee"})
#: a cell a spreadsheet would run as a formula (OWASP's list)
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _amount(minor: int | None, currency: str | None) -> str:
    if minor is None:
        return ""
    return Money(minor, currency or "CNY").to_decimal_string()


def difference_rows(items: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, str]]:
    """Each stored difference as text cells named by :data:`DIFFERENCE_COLUMNS`
    (amounts in major units, exact)."""
    for item in items:
        currency = item.get("currency")
        detail = item.get("detail") or {}
        yield {
            "id": str(item["id"]),
            "channel": item["channel"],
            "bill_date": item["bill_date"].isoformat(),
            "kind": item["kind"],
            "status": item["status"],
            "out_trade_no": item.get("out_trade_no") or "",
            "out_refund_no": item.get("out_refund_no") or "",
            "channel_trade_id": item.get("channel_trade_id") or "",
            "currency": currency or "",
            "bill_amount": _amount(item.get("bill_amount_minor"), currency),
            "store_amount": _amount(item.get("store_amount_minor"), currency),
            "bill_fee": _amount(item.get("bill_fee_minor"), currency),
            "expected_fee": _amount(item.get("expected_fee_minor"), currency),
            "repairs": " ".join(detail.get("repairs", ())),
            "resolved_by": item.get("resolved_by") or "",
            "resolution": item.get("resolution") or "",
        }


def _safe(name: str, value: str) -> str:
    if name not in _AMOUNTS and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, str]]) -> int:
    """Write rows as RFC 4180 CSV, UTF-8 with a BOM (Excel), through a temporary
    file renamed into place; text cells that a spreadsheet would run as a
    formula are escaped. Returns the number of rows."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(DIFFERENCE_COLUMNS)
            for row in rows:
                writer.writerow([_safe(name, row.get(name, "")) for name in DIFFERENCE_COLUMNS])
                count += 1
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return count
