"""The built-in report types: payments and refunds over the store, and the ledger's
(balance detail, fees, settlement batches and members, withdrawals, holds).

Each is one SELECT, ordered by time then id, streamed from a server-side
cursor (``stream_results`` with ``yield_per``): PostgreSQL and MySQL/MariaDB
send rows as they are read, SQLite's cursor already steps row by row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import InvalidRequestError
from payhub.reports._ledger_reports import ledger_report_types
from payhub.reports._streaming import stream_rows
from payhub.reports._types import (
    Field,
    FieldKind,
    ReportFilters,
    ReportType,
    register_report_type,
)
from payhub.store import PaymentState, RefundState
from payhub.store._schema import payments, refunds

__all__ = ["register_builtins"]

_ID, _TEXT, _AMOUNT, _TIME = FieldKind.ID, FieldKind.TEXT, FieldKind.AMOUNT, FieldKind.TIME


def _where(
    table: sa.Table, filters: ReportFilters, statuses: set[str]
) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [
        table.c.created_at >= filters.start,
        table.c.created_at < filters.end,
    ]
    if filters.channel is not None:
        clauses.append(table.c.channel == filters.channel)
    if filters.status is not None:
        if filters.status not in statuses:
            raise InvalidRequestError(
                f"unknown status {filters.status!r} (one of: {', '.join(sorted(statuses))})"
            )
        clauses.append(table.c.status == filters.status)
    if filters.currency is not None:
        clauses.append(table.c.currency == filters.currency)
    if filters.min_amount is not None:
        clauses.append(table.c.amount_minor >= filters.min_amount)
    if filters.max_amount is not None:
        clauses.append(table.c.amount_minor <= filters.max_amount)
    return clauses


_PAYMENT_STATUSES = {s.value for s in PaymentState}
_REFUND_STATUSES = {s.value for s in RefundState}

PAYMENT_FIELDS = (
    Field("out_trade_no", _ID, "商户订单号", "Order number"),
    Field("channel", _TEXT, "支付渠道", "Channel"),
    Field("channel_trade_id", _ID, "渠道交易号", "Channel trade id"),
    Field("method", _TEXT, "支付方式", "Method"),
    Field("subject", _TEXT, "商品名称", "Subject"),
    Field("amount", _AMOUNT, "订单金额（元）", "Amount"),
    Field("refunded", _AMOUNT, "已退款金额（元）", "Refunded"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("status", _TEXT, "状态", "Status"),
    Field("created_at", _TIME, "创建时间", "Created"),
    Field("paid_at", _TIME, "支付时间", "Paid"),
)


def _payments_select(filters: ReportFilters) -> sa.Select[Any]:
    p = payments.c
    return (
        sa.select(
            p.out_trade_no,
            p.channel,
            p.channel_trade_id,
            p.method,
            p.subject,
            p.amount_minor,
            p.refunded_minor,
            p.currency,
            p.status,
            p.created_at,
            p.paid_at,
        )
        .where(*_where(payments, filters, _PAYMENT_STATUSES))
        .order_by(p.created_at, p.id)
    )


def _stream_payments(
    conn: Connection, filters: ReportFilters, yield_per: int
) -> Iterator[Sequence[Any]]:
    return stream_rows(conn, _payments_select(filters), yield_per)


def _count_payments(conn: Connection, filters: ReportFilters) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(payments)
        .where(*_where(payments, filters, _PAYMENT_STATUSES))
    )
    return int(conn.execute(stmt).scalar_one())


REFUND_FIELDS = (
    Field("out_refund_no", _ID, "退款单号", "Refund number"),
    Field("out_trade_no", _ID, "商户订单号", "Order number"),
    Field("channel", _TEXT, "支付渠道", "Channel"),
    Field("channel_refund_id", _ID, "渠道退款单号", "Channel refund id"),
    Field("amount", _AMOUNT, "退款金额（元）", "Amount"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("status", _TEXT, "状态", "Status"),
    Field("origin", _TEXT, "来源", "Origin"),
    Field("reason", _TEXT, "退款原因", "Reason"),
    Field("created_at", _TIME, "申请时间", "Created"),
    Field("updated_at", _TIME, "更新时间", "Updated"),
)


def _refunds_select(filters: ReportFilters) -> sa.Select[Any]:
    r = refunds.c
    return (
        sa.select(
            r.out_refund_no,
            payments.c.out_trade_no,
            r.channel,
            r.channel_refund_id,
            r.amount_minor,
            r.currency,
            r.status,
            r.origin,
            r.reason,
            r.created_at,
            r.updated_at,
        )
        .join(payments, payments.c.id == r.payment_id)
        .where(*_where(refunds, filters, _REFUND_STATUSES))
        .order_by(r.created_at, r.id)
    )


def _stream_refunds(
    conn: Connection, filters: ReportFilters, yield_per: int
) -> Iterator[Sequence[Any]]:
    return stream_rows(conn, _refunds_select(filters), yield_per)


def _count_refunds(conn: Connection, filters: ReportFilters) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(refunds)
        .where(*_where(refunds, filters, _REFUND_STATUSES))
    )
    return int(conn.execute(stmt).scalar_one())


_STORE_FILTERS = frozenset({"channel", "status", "currency", "min_amount", "max_amount"})


def register_builtins() -> None:
    register_report_type(
        ReportType(
            name="payments",
            title_zh="支付明细",
            title_en="Payments",
            fields=PAYMENT_FIELDS,
            filters=_STORE_FILTERS,
            stream=_stream_payments,
            count=_count_payments,
        )
    )
    register_report_type(
        ReportType(
            name="refunds",
            title_zh="退款明细",
            title_en="Refunds",
            fields=REFUND_FIELDS,
            filters=_STORE_FILTERS,
            stream=_stream_refunds,
            count=_count_refunds,
        )
    )
    for kind in ledger_report_types():
        register_report_type(kind)
