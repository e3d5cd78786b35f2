"""The ledger's report types: balance detail, fees, settlement batches and members,
withdrawals and holds (``docs/reports.md``).

Every one is a single SELECT streamed from a server-side cursor like the
store's reports. The balance detail (余额明细) adds one thing while streaming:
the running balance of each account, started from its opening balance (the
sum of its lines before ``start``, one grouped query) and moved by each line
in (account, entry) order, so the last row of an account shows its balance
at ``end``. Fees are grouped in SQL (by day in the report's time zone,
channel, seller and currency). Amounts are on the account's normal side
(what its balance shows), in integer minor units until the writers format them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import InvalidRequestError
from payhub.ledger import PLATFORM, AccountKind, EntryCause, HoldStatus, WithdrawalStatus
from payhub.reports._streaming import stream_batches, stream_rows
from payhub.reports._types import Field, FieldKind, ReportFilters, ReportType
from payhub.store._schema import (
    ledger_accounts,
    ledger_batch_members,
    ledger_batches,
    ledger_entries,
    ledger_holds,
    ledger_lines,
    ledger_withdrawals,
)

__all__ = ["ledger_report_types"]

_ID, _TEXT, _AMOUNT, _TIME, _INT = (
    FieldKind.ID,
    FieldKind.TEXT,
    FieldKind.AMOUNT,
    FieldKind.TIME,
    FieldKind.INTEGER,
)
A, L, E = ledger_accounts.c, ledger_lines.c, ledger_entries.c
_KINDS = {k.value for k in AccountKind}
#: accounts whose normal side is the debit: their balance is the signed sum of lines
_DEBIT_NORMAL = tuple(k.value for k in AccountKind if k.side.value == 1)


def _status(value: str | None, allowed: set[str]) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidRequestError(
            f"unknown status {value!r} (one of: {', '.join(sorted(allowed))})"
        )
    return value


def _amount_range(
    column: sa.ColumnElement[Any], filters: ReportFilters
) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if filters.min_amount is not None:
        clauses.append(column >= filters.min_amount)
    if filters.max_amount is not None:
        clauses.append(column <= filters.max_amount)
    return clauses


def _count(conn: Connection, stmt: sa.Select[Any]) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
    )


# -- balance detail (余额明细) ---------------------------------------------------------


BALANCE_FIELDS = (
    Field("party", _ID, "账户主体", "Party"),
    Field("account_type", _TEXT, "账户类型", "Account type"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("created_at", _TIME, "记账时间", "Posted"),
    Field("entry_id", _ID, "分录号", "Entry"),
    Field("cause", _TEXT, "业务类型", "Cause"),
    Field("reference", _ID, "业务单号", "Reference"),
    Field("amount", _AMOUNT, "发生额（元）", "Amount"),
    Field("balance", _AMOUNT, "余额（元）", "Balance"),
)


def _account_where(filters: ReportFilters) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if filters.seller is not None:
        clauses.append(A.party == filters.seller)
    if filters.account_type is not None:
        if filters.account_type not in _KINDS:
            raise InvalidRequestError(
                f"unknown account type {filters.account_type!r} "
                f"(one of: {', '.join(sorted(_KINDS))})"
            )
        clauses.append(A.kind == filters.account_type)
    if filters.currency is not None:
        clauses.append(A.currency == filters.currency)
    return clauses


def _normal(amount: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A line's amount on its account's normal side (what the balance shows)."""
    return sa.case((A.kind.in_(_DEBIT_NORMAL), amount), else_=-amount)


def _balance_lines(filters: ReportFilters) -> sa.Select[Any]:
    return (
        sa.select(
            A.party,
            A.kind,
            A.currency,
            L.created_at,
            L.entry_id,
            E.cause,
            E.reference,
            _normal(L.amount_minor),
            L.account_id,
        )
        .select_from(
            ledger_lines.join(ledger_accounts, A.id == L.account_id).join(
                ledger_entries, E.id == L.entry_id
            )
        )
        .where(*_account_where(filters), L.created_at >= filters.start, L.created_at < filters.end)
        .order_by(L.account_id, L.entry_id, L.id)
    )


def _openings(conn: Connection, filters: ReportFilters) -> dict[int, int]:
    """Each account's balance just before ``start``: the sum of its earlier lines."""
    stmt = (
        sa.select(L.account_id, sa.func.sum(_normal(L.amount_minor)))
        .select_from(ledger_lines.join(ledger_accounts, A.id == L.account_id))
        .where(*_account_where(filters), L.created_at < filters.start)
        .group_by(L.account_id)
    )
    return {int(account): int(total) for account, total in conn.execute(stmt)}


def _stream_balance(
    conn: Connection, filters: ReportFilters, yield_per: int
) -> Iterator[Sequence[Any]]:
    openings = _openings(conn, filters)
    low, high = filters.min_amount, filters.max_amount
    ranged = low is not None or high is not None
    current: int | None = None
    balance = 0
    # the batches themselves, not stream_rows(): one generator step a row, not two
    for batch in stream_batches(conn, _balance_lines(filters), yield_per):
        for party, kind, currency, at, entry, cause, reference, amount, account in batch:
            if account != current:
                current = account
                balance = openings.get(account, 0)
            balance += amount
            if ranged:
                # the amount range picks the lines shown; the balance counts every line
                size = -amount if amount < 0 else amount
                if (low is not None and size < low) or (high is not None and size > high):
                    continue
            yield (party, kind, currency, at, entry, cause, reference, amount, balance)


def _count_balance(conn: Connection, filters: ReportFilters) -> int:
    stmt = _balance_lines(filters).where(*_amount_range(sa.func.abs(L.amount_minor), filters))
    return _count(conn, stmt)


# -- fees (by day, channel, seller) --------------------------------------------------

FEE_FIELDS = (
    Field("day", _TEXT, "日期", "Day"),
    Field("channel", _TEXT, "支付渠道", "Channel"),
    Field("seller", _ID, "商户", "Seller"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("entries", _INT, "笔数", "Entries"),
    Field("gross", _AMOUNT, "交易金额（元）", "Gross"),
    Field("channel_fee", _AMOUNT, "渠道手续费（元）", "Channel fee"),
    Field("platform_fee", _AMOUNT, "平台服务费（元）", "Platform fee"),
)
_FEE_CAUSES = (EntryCause.PAYMENT.value, EntryCause.REFUND.value)
_CHANNEL_SIDE = (AccountKind.CLEARING.value, AccountKind.CHANNEL_FEES.value)
#: a fees report spans at most this many days (one CASE branch a day)
MAX_FEE_DAYS = 400


def _day_case(filters: ReportFilters) -> sa.ColumnElement[str]:
    """The entry's calendar day in the report's zone, as SQL: one branch per midnight,
    so it is right on every database and in zones with summer time."""
    tz = filters.tz
    first = filters.start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    branches: list[tuple[sa.ColumnElement[bool], str]] = []
    day = first
    while day.astimezone(tz) < filters.end:
        following = (day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
        branches.append((E.created_at < following, day.date().isoformat()))
        day = following
        if len(branches) > MAX_FEE_DAYS:
            raise InvalidRequestError(
                f"a fees report covers at most {MAX_FEE_DAYS} days: narrow the range"
            )
    return sa.case(*branches, else_=day.date().isoformat())


def _fees_select(filters: ReportFilters) -> sa.Select[Any]:
    channel_side = A.kind.in_(_CHANNEL_SIDE)
    per_entry = (
        sa.select(
            _day_case(filters).label("day"),
            sa.func.max(sa.case((channel_side, A.party))).label("channel"),
            E.party.label("seller"),
            L.currency.label("currency"),
            sa.func.sum(sa.case((channel_side, L.amount_minor), else_=0)).label("gross"),
            sa.func.sum(
                sa.case((A.kind == AccountKind.CHANNEL_FEES.value, L.amount_minor), else_=0)
            ).label("channel_fee"),
            sa.func.sum(
                sa.case(
                    (
                        sa.and_(A.party == PLATFORM, A.kind == AccountKind.REVENUE.value),
                        -L.amount_minor,
                    ),
                    else_=0,
                )
            ).label("platform_fee"),
        )
        .select_from(
            ledger_lines.join(ledger_entries, E.id == L.entry_id).join(
                ledger_accounts, A.id == L.account_id
            )
        )
        .where(
            E.cause.in_(_FEE_CAUSES),
            E.created_at >= filters.start,
            E.created_at < filters.end,
        )
        .group_by(E.id, E.created_at, E.party, L.currency)
    )
    if filters.seller is not None:
        per_entry = per_entry.where(E.party == filters.seller)
    if filters.currency is not None:
        per_entry = per_entry.where(L.currency == filters.currency)
    s = per_entry.subquery("per_entry")
    stmt = sa.select(
        s.c.day,
        s.c.channel,
        s.c.seller,
        s.c.currency,
        sa.func.count(),
        sa.func.sum(s.c.gross),
        sa.func.sum(s.c.channel_fee),
        sa.func.sum(s.c.platform_fee),
    )
    if filters.channel is not None:
        stmt = stmt.where(s.c.channel == filters.channel)
    return stmt.group_by(s.c.day, s.c.channel, s.c.seller, s.c.currency).order_by(
        s.c.day, s.c.channel, s.c.seller, s.c.currency
    )


def _stream_fees(
    conn: Connection, filters: ReportFilters, yield_per: int
) -> Iterator[Sequence[Any]]:
    for day, channel, seller, currency, n, gross, fee_c, fee_p in stream_rows(
        conn, _fees_select(filters), yield_per
    ):
        # SUM comes back as Decimal on MySQL/PostgreSQL: whole minor units, made int
        yield (day, channel, seller, currency, int(n), int(gross), int(fee_c), int(fee_p))


def _count_fees(conn: Connection, filters: ReportFilters) -> int:
    return _count(conn, _fees_select(filters))


# -- settlement batches and their members ---------------------------------------------

B, M = ledger_batches.c, ledger_batch_members.c

BATCH_FIELDS = (
    Field("batch_id", _ID, "结算批次号", "Batch"),
    Field("seller", _ID, "商户", "Seller"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("available_on", _TIME, "结算时间", "Settles on"),
    Field("amount", _AMOUNT, "结算金额（元）", "Amount"),
    Field("entry_count", _INT, "笔数", "Entries"),
    Field("entry_id", _ID, "结算分录号", "Settlement entry"),
    Field("created_at", _TIME, "生成时间", "Created"),
)


def _batch_where(filters: ReportFilters) -> list[sa.ColumnElement[bool]]:
    clauses = [B.available_on >= filters.start, B.available_on < filters.end]
    if filters.seller is not None:
        clauses.append(B.party == filters.seller)
    if filters.currency is not None:
        clauses.append(B.currency == filters.currency)
    return clauses


def _batches_select(filters: ReportFilters) -> sa.Select[Any]:
    return (
        sa.select(
            B.id,
            B.party,
            B.currency,
            B.available_on,
            B.amount_minor,
            B.entry_count,
            B.entry_id,
            B.created_at,
        )
        .where(*_batch_where(filters), *_amount_range(B.amount_minor, filters))
        .order_by(B.available_on, B.id)
    )


MEMBER_FIELDS = (
    Field("batch_id", _ID, "结算批次号", "Batch"),
    Field("seller", _ID, "商户", "Seller"),
    Field("available_on", _TIME, "结算时间", "Settles on"),
    Field("entry_id", _ID, "分录号", "Entry"),
    Field("cause", _TEXT, "业务类型", "Cause"),
    Field("reference", _ID, "业务单号", "Reference"),
    Field("amount", _AMOUNT, "入账金额（元）", "Amount"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("created_at", _TIME, "记账时间", "Posted"),
)


def _members_select(filters: ReportFilters) -> sa.Select[Any]:
    return (
        sa.select(
            B.id,
            B.party,
            B.available_on,
            E.id,
            E.cause,
            E.reference,
            E.pending_minor,
            B.currency,
            E.created_at,
        )
        .select_from(
            ledger_batch_members.join(ledger_batches, B.id == M.batch_id).join(
                ledger_entries, E.id == M.entry_id
            )
        )
        .where(*_batch_where(filters), *_amount_range(E.pending_minor, filters))
        .order_by(B.available_on, B.id, E.id)
    )


# -- withdrawals and holds -------------------------------------------------------------

W, H = ledger_withdrawals.c, ledger_holds.c
_WITHDRAWAL_STATUSES = {s.value for s in WithdrawalStatus}
_HOLD_STATUSES = {s.value for s in HoldStatus}

WITHDRAWAL_FIELDS = (
    Field("id", _ID, "提现单号", "Withdrawal"),
    Field("seller", _ID, "商户", "Seller"),
    Field("amount", _AMOUNT, "提现金额（元）", "Amount"),
    Field("fee", _AMOUNT, "手续费（元）", "Fee"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("status", _TEXT, "状态", "Status"),
    Field("note", _TEXT, "备注", "Note"),
    Field("created_at", _TIME, "申请时间", "Requested"),
    Field("updated_at", _TIME, "更新时间", "Updated"),
)


def _withdrawals_select(filters: ReportFilters) -> sa.Select[Any]:
    stmt = sa.select(
        W.id,
        W.party,
        W.amount_minor,
        W.fee_minor,
        W.currency,
        W.status,
        W.note,
        W.created_at,
        W.updated_at,
    ).where(
        W.created_at >= filters.start,
        W.created_at < filters.end,
        *_amount_range(W.amount_minor, filters),
    )
    if filters.seller is not None:
        stmt = stmt.where(W.party == filters.seller)
    if filters.currency is not None:
        stmt = stmt.where(W.currency == filters.currency)
    if _status(filters.status, _WITHDRAWAL_STATUSES) is not None:
        stmt = stmt.where(W.status == filters.status)
    return stmt.order_by(W.created_at, W.id)


HOLD_FIELDS = (
    Field("id", _ID, "冻结单号", "Hold"),
    Field("seller", _ID, "商户", "Seller"),
    Field("amount", _AMOUNT, "冻结金额（元）", "Amount"),
    Field("currency", _TEXT, "币种", "Currency"),
    Field("status", _TEXT, "状态", "Status"),
    Field("reason", _TEXT, "原因", "Reason"),
    Field("expires_at", _TIME, "到期时间", "Expires"),
    Field("created_at", _TIME, "冻结时间", "Created"),
    Field("updated_at", _TIME, "更新时间", "Updated"),
)


def _holds_select(filters: ReportFilters) -> sa.Select[Any]:
    stmt = sa.select(
        H.id,
        H.party,
        H.amount_minor,
        H.currency,
        H.status,
        H.reason,
        H.expires_at,
        H.created_at,
        H.updated_at,
    ).where(
        H.created_at >= filters.start,
        H.created_at < filters.end,
        *_amount_range(H.amount_minor, filters),
    )
    if filters.seller is not None:
        stmt = stmt.where(H.party == filters.seller)
    if filters.currency is not None:
        stmt = stmt.where(H.currency == filters.currency)
    if _status(filters.status, _HOLD_STATUSES) is not None:
        stmt = stmt.where(H.status == filters.status)
    return stmt.order_by(H.created_at, H.id)


def _plain(
    name: str,
    *,
    zh: str,
    en: str,
    fields: tuple[Field, ...],
    select: Callable[[ReportFilters], sa.Select[Any]],
    filters: frozenset[str],
) -> ReportType:
    def stream(conn: Connection, f: ReportFilters, yield_per: int) -> Iterator[Sequence[Any]]:
        return stream_rows(conn, select(f), yield_per)

    def count(conn: Connection, f: ReportFilters) -> int:
        return _count(conn, select(f))

    return ReportType(name, zh, en, fields, filters, stream, count)


_AMOUNTS = frozenset({"currency", "min_amount", "max_amount"})


def ledger_report_types() -> list[ReportType]:
    """The ledger's report types, for :func:`~payhub.reports.register_report_type`."""
    return [
        ReportType(
            name="balance-detail",
            title_zh="余额明细",
            title_en="Balance detail",
            fields=BALANCE_FIELDS,
            filters=_AMOUNTS | {"seller", "account_type"},
            stream=_stream_balance,
            count=_count_balance,
        ),
        ReportType(
            name="fees",
            title_zh="手续费汇总",
            title_en="Fees",
            fields=FEE_FIELDS,
            filters=frozenset({"seller", "channel", "currency"}),
            stream=_stream_fees,
            count=_count_fees,
        ),
        _plain(
            "settlement-batches",
            zh="结算批次",
            en="Settlement batches",
            fields=BATCH_FIELDS,
            select=_batches_select,
            filters=_AMOUNTS | {"seller"},
        ),
        _plain(
            "settlement-members",
            zh="结算批次明细",
            en="Settlement batch members",
            fields=MEMBER_FIELDS,
            select=_members_select,
            filters=_AMOUNTS | {"seller"},
        ),
        _plain(
            "withdrawals",
            zh="提现记录",
            en="Withdrawals",
            fields=WITHDRAWAL_FIELDS,
            select=_withdrawals_select,
            filters=_AMOUNTS | {"seller", "status"},
        ),
        _plain(
            "holds",
            zh="冻结记录",
            en="Holds",
            fields=HOLD_FIELDS,
            select=_holds_select,
            filters=_AMOUNTS | {"seller", "status"},
        ),
    ]
