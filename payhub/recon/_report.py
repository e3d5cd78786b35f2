"""Reconciliation differences as a report type (``recon-differences``).

Registered with :func:`payhub.reports.register_report_type` when
:mod:`payhub.recon` is imported, so ``payhub reports run recon-differences``,
schedules and ``payhub reconcile --xlsx`` write them through the export
machinery: CSV or XLSX, streamed, templated, escaped, encrypted, recorded.
The columns are :data:`~payhub.recon.DIFFERENCE_COLUMNS` (the same as
:func:`~payhub.recon.difference_rows`), but amounts stay integer minor units
here so that the writers make them numeric cells.

The range is over bill days: a difference is in ``[start, end)`` when its
bill's day (a calendar day in the report's zone) is on or after ``start``'s
day and before ``end`` (a day that ``end`` falls inside counts).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import InvalidRequestError
from payhub.recon._export import DIFFERENCE_COLUMNS
from payhub.reports import Field, FieldKind, ReportFilters, ReportType, register_report_type
from payhub.store._schema import recon_items

__all__ = ["DIFFERENCE_FIELDS", "REPORT_NAME", "register_report"]

REPORT_NAME: Final = "recon-differences"
#: open / repaired / ignored / adjusted / created / replaced / cleared
STATUSES: Final = frozenset(
    {"open", "repaired", "ignored", "adjusted", "created", "replaced", "cleared"}
)

_ID, _TEXT, _AMOUNT = FieldKind.ID, FieldKind.TEXT, FieldKind.AMOUNT
DIFFERENCE_FIELDS: Final = (
    Field("id", _ID, "差异编号", "Difference"),
    Field("channel", _TEXT, "支付渠道", "Channel"),
    Field("bill_date", _TEXT, "账单日期", "Bill date"),
    Field("kind", _TEXT, "差异类型", "Kind"),
    Field("status", _TEXT, "处理状态", "Status"),
    Field("out_trade_no", _ID, "商户订单号", "Order number"),
    Field("out_refund_no", _ID, "退款单号", "Refund number"),
    Field("channel_trade_id", _ID, "渠道交易号", "Channel trade id"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("bill_amount", _AMOUNT, "账单金额（元）", "Bill amount"),
    Field("store_amount", _AMOUNT, "系统金额（元）", "Store amount"),
    Field("bill_fee", _AMOUNT, "账单手续费（元）", "Bill fee"),
    Field("expected_fee", _AMOUNT, "应收手续费（元）", "Expected fee"),
    Field("repairs", _TEXT, "已做修复", "Repairs"),
    Field("resolved_by", _TEXT, "处理人", "Resolved by"),
    Field("resolution", _TEXT, "处理说明", "Resolution"),
)
assert tuple(f.key for f in DIFFERENCE_FIELDS) == DIFFERENCE_COLUMNS

R = recon_items.c


def _days(filters: ReportFilters) -> tuple[date, date]:
    tz = filters.tz
    first = filters.start.astimezone(tz).date()
    end = filters.end.astimezone(tz)
    last = end.date()
    if (end.hour, end.minute, end.second, end.microsecond) != (0, 0, 0, 0):
        last += timedelta(days=1)
    return first, last


def _select(filters: ReportFilters) -> sa.Select[Any]:
    first, last = _days(filters)
    amount = sa.func.coalesce(R.bill_amount_minor, R.store_amount_minor)
    stmt = sa.select(
        R.id,
        R.channel,
        R.bill_date,
        R.kind,
        R.status,
        R.out_trade_no,
        R.out_refund_no,
        R.channel_trade_id,
        # a difference without a currency was found in a CNY bill (as difference_rows reads it)
        sa.func.coalesce(R.currency, "CNY"),
        R.bill_amount_minor,
        R.store_amount_minor,
        R.bill_fee_minor,
        R.expected_fee_minor,
        R.detail,
        R.resolved_by,
        R.resolution,
    ).where(R.bill_date >= first, R.bill_date < last)
    if filters.channel is not None:
        stmt = stmt.where(R.channel == filters.channel)
    if filters.status is not None:
        if filters.status not in STATUSES:
            raise InvalidRequestError(
                f"unknown status {filters.status!r} (one of: {', '.join(sorted(STATUSES))})"
            )
        stmt = stmt.where(R.status == filters.status)
    if filters.currency is not None:
        stmt = stmt.where(R.currency == filters.currency)
    if filters.min_amount is not None:
        stmt = stmt.where(amount >= filters.min_amount)
    if filters.max_amount is not None:
        stmt = stmt.where(amount <= filters.max_amount)
    return stmt.order_by(R.bill_date, R.channel, R.id)


def _stream(conn: Connection, filters: ReportFilters, yield_per: int) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=yield_per).execute(
        _select(filters)
    )
    try:
        for row in result:
            cells = list(row)
            cells[2] = cells[2].isoformat()
            detail = cells[13] or {}
            cells[13] = " ".join(detail.get("repairs", ()))
            yield cells
    finally:
        result.close()


def _count(conn: Connection, filters: ReportFilters) -> int:
    inner = _select(filters).order_by(None).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def register_report() -> None:
    """Register ``recon-differences`` (again, harmlessly, on a second call)."""
    register_report_type(
        ReportType(
            name=REPORT_NAME,
            title_zh="对账差异",
            title_en="Reconciliation differences",
            fields=DIFFERENCE_FIELDS,
            filters=frozenset({"channel", "status", "currency", "min_amount", "max_amount"}),
            stream=_stream,
            count=_count,
        ),
        replace=True,
    )
