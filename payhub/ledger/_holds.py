"""Holds (冻结) and withdrawals (提现): rows with a status, each change one entry.

Every function runs inside the caller's transaction; a refusal raises
:class:`LedgerError` and the caller's transaction writes nothing.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import ErrorCode, LedgerError
from payhub.ledger._config import LedgerConfig
from payhub.ledger._model import (
    PLATFORM,
    Account,
    AccountKind,
    EntryCause,
    EntryDraft,
    credit,
    debit,
)
from payhub.ledger._writer import write_entry
from payhub.money import Money
from payhub.store._engine import insert_ignore
from payhub.store._schema import ledger_holds, ledger_withdrawals

__all__ = [
    "HoldRecord",
    "HoldStatus",
    "WithdrawalRecord",
    "WithdrawalStatus",
]

K = AccountKind
H, W = ledger_holds, ledger_withdrawals


class HoldStatus(enum.StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    CAPTURED = "captured"
    EXPIRED = "expired"


class WithdrawalStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


@dataclass(frozen=True)
class HoldRecord:
    id: int
    key: str
    party: str
    amount: Money
    status: HoldStatus
    reason: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WithdrawalRecord:
    id: int
    key: str
    party: str
    amount: Money
    fee: Money
    status: WithdrawalStatus
    note: str | None
    created_at: datetime
    updated_at: datetime


def hold_record(row: Any) -> HoldRecord:
    return HoldRecord(
        id=int(row["id"]),
        key=row["key"],
        party=row["party"],
        amount=Money(int(row["amount_minor"]), row["currency"]),
        status=HoldStatus(row["status"]),
        reason=row["reason"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def withdrawal_record(row: Any) -> WithdrawalRecord:
    cur = row["currency"]
    return WithdrawalRecord(
        id=int(row["id"]),
        key=row["key"],
        party=row["party"],
        amount=Money(int(row["amount_minor"]), cur),
        fee=Money(int(row["fee_minor"]), cur),
        status=WithdrawalStatus(row["status"]),
        note=row["note"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _positive(amount: object, what: str) -> Money:
    if not isinstance(amount, Money):
        raise LedgerError(f"{what} must be Money", code=ErrorCode.INVALID_AMOUNT)
    if amount.minor <= 0:
        raise LedgerError(f"{what} must be positive, got {amount}", code=ErrorCode.INVALID_AMOUNT)
    return amount


def _text(value: str | None, what: str, size: int) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > size):
        raise LedgerError(f"{what} is text of at most {size} characters")
    return value


def _key(key: str | None, what: str) -> str | None:
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 150):
        raise LedgerError(
            f"a {what} key is a string of 1 to 150 characters", code=ErrorCode.INVALID_REQUEST
        )
    return key


def _locked(conn: Connection, table: sa.Table, row_id: int, what: str) -> Any:
    if isinstance(row_id, bool) or not isinstance(row_id, int):
        raise LedgerError(f"a {what} id is an integer", code=ErrorCode.INVALID_REQUEST)
    row = (
        conn.execute(sa.select(table).where(table.c.id == row_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        raise LedgerError(f"no {what} {row_id}", code=ErrorCode.LEDGER_NOT_FOUND)
    return row


# -- holds -------------------------------------------------------------------------


def create_hold(
    conn: Connection,
    now: datetime,
    *,
    party: str,
    amount: Money,
    reason: str | None,
    expires_at: datetime | None,
    key: str | None,
) -> HoldRecord:
    _positive(amount, "a hold")
    _text(reason, "reason", 256)
    _key(key, "hold")
    if expires_at is not None and expires_at.utcoffset() is None:
        raise LedgerError("expires_at must be timezone-aware", code=ErrorCode.INVALID_REQUEST)
    values = {
        "party": party,
        "amount_minor": amount.minor,
        "currency": amount.currency,
        "status": HoldStatus.ACTIVE.value,
        "reason": reason,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }
    if key is None:
        key = f"hold-{uuid.uuid4().hex}"
        conn.execute(H.insert().values(key=key, **values))
    elif not insert_ignore(conn, H, {"key": key, **values}):
        row = conn.execute(sa.select(H).where(H.c.key == key)).mappings().one()
        if (row["party"], row["amount_minor"], row["currency"]) != (
            party,
            amount.minor,
            amount.currency,
        ):
            raise LedgerError(
                f"hold key {key!r} was used for another hold",
                code=ErrorCode.LEDGER_IDEMPOTENCY_CONFLICT,
            )
        return hold_record(row)
    row = conn.execute(sa.select(H).where(H.c.key == key)).mappings().one()
    cur = amount.currency
    write_entry(
        conn,
        EntryDraft(
            f"hold:{row['id']}",
            EntryCause.HOLD,
            str(row["id"]),
            [
                debit(Account(party, K.AVAILABLE, cur), amount),
                credit(Account(party, K.FROZEN, cur), amount),
            ],
            party=party,
        ),
        now,
    )
    return hold_record(row)


def end_hold(conn: Connection, now: datetime, hold_id: int, to: HoldStatus) -> HoldRecord:
    row = _locked(conn, H, hold_id, "hold")
    if row["status"] != HoldStatus.ACTIVE.value:
        raise LedgerError(f"hold {hold_id} is already {row['status']}", code=ErrorCode.LEDGER_STATE)
    party, cur = row["party"], row["currency"]
    amount = Money(int(row["amount_minor"]), cur)
    frozen = Account(party, K.FROZEN, cur)
    if to is HoldStatus.CAPTURED:
        target, cause = Account(PLATFORM, K.CAPTURED, cur), EntryCause.CAPTURE
    else:
        target, cause = Account(party, K.AVAILABLE, cur), EntryCause.RELEASE
    write_entry(
        conn,
        EntryDraft(
            f"{cause.value}:{hold_id}",
            cause,
            str(hold_id),
            [debit(frozen, amount), credit(target, amount)],
            party=party,
        ),
        now,
    )
    conn.execute(H.update().where(H.c.id == hold_id).values(status=to.value, updated_at=now))
    return hold_record({**row, "status": to.value, "updated_at": now})


# -- withdrawals -------------------------------------------------------------------


def create_withdrawal(
    conn: Connection,
    now: datetime,
    config: LedgerConfig,
    *,
    party: str,
    amount: Money,
    key: str | None,
) -> WithdrawalRecord:
    _positive(amount, "a withdrawal")
    _key(key, "withdrawal")
    if amount.minor < config.withdrawal.minimum:
        raise LedgerError(
            f"a withdrawal of {amount} is below the minimum "
            f"{Money(config.withdrawal.minimum, amount.currency)}",
            code=ErrorCode.WITHDRAWAL_BELOW_MINIMUM,
        )
    fee = config.withdrawal_fee(amount)
    if fee >= amount:
        raise LedgerError(
            f"the withdrawal fee {fee} would take all of {amount}",
            code=ErrorCode.WITHDRAWAL_BELOW_MINIMUM,
        )
    values = {
        "party": party,
        "amount_minor": amount.minor,
        "fee_minor": fee.minor,
        "currency": amount.currency,
        "status": WithdrawalStatus.PENDING.value,
        "note": None,
        "created_at": now,
        "updated_at": now,
    }
    if key is None:
        key = f"withdrawal-{uuid.uuid4().hex}"
        conn.execute(W.insert().values(key=key, **values))
    elif not insert_ignore(conn, W, {"key": key, **values}):
        row = conn.execute(sa.select(W).where(W.c.key == key)).mappings().one()
        if (row["party"], row["amount_minor"], row["currency"]) != (
            party,
            amount.minor,
            amount.currency,
        ):
            raise LedgerError(
                f"withdrawal key {key!r} was used for another withdrawal",
                code=ErrorCode.LEDGER_IDEMPOTENCY_CONFLICT,
            )
        return withdrawal_record(row)
    row = conn.execute(sa.select(W).where(W.c.key == key)).mappings().one()
    cur = amount.currency
    write_entry(
        conn,
        EntryDraft(
            f"withdrawal:{row['id']}",
            EntryCause.WITHDRAWAL,
            str(row["id"]),
            [
                debit(Account(party, K.AVAILABLE, cur), amount),
                credit(Account(party, K.WITHDRAWING, cur), amount - fee),
                credit(Account(PLATFORM, K.REVENUE, cur), fee),
            ],
            party=party,
        ),
        now,
    )
    return withdrawal_record(row)


def end_withdrawal(
    conn: Connection, now: datetime, withdrawal_id: int, to: WithdrawalStatus, note: str | None
) -> WithdrawalRecord:
    _text(note, "note", 256)
    row = _locked(conn, W, withdrawal_id, "withdrawal")
    if row["status"] != WithdrawalStatus.PENDING.value:
        raise LedgerError(
            f"withdrawal {withdrawal_id} is already {row['status']}", code=ErrorCode.LEDGER_STATE
        )
    party, cur = row["party"], row["currency"]
    amount = Money(int(row["amount_minor"]), cur)
    fee = Money(int(row["fee_minor"]), cur)
    withdrawing = Account(party, K.WITHDRAWING, cur)
    if to is WithdrawalStatus.PAID:
        cause = EntryCause.WITHDRAWAL_PAID
        lines = [
            debit(withdrawing, amount - fee),
            credit(Account(PLATFORM, K.PAID_OUT, cur), amount - fee),
        ]
    else:
        cause = EntryCause.WITHDRAWAL_FAILED
        lines = [
            debit(withdrawing, amount - fee),
            debit(Account(PLATFORM, K.REVENUE, cur), fee),
            credit(Account(party, K.AVAILABLE, cur), amount),
        ]
    write_entry(
        conn,
        EntryDraft(f"{cause.value}:{withdrawal_id}", cause, str(withdrawal_id), lines, party=party),
        now,
    )
    conn.execute(
        W.update().where(W.c.id == withdrawal_id).values(status=to.value, note=note, updated_at=now)
    )
    return withdrawal_record({**row, "status": to.value, "note": note, "updated_at": now})
