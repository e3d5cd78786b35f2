""":class:`Ledger`: the typed API over the ledger tables of one store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import ErrorCode, LedgerError
from payhub.ledger import _holds, _settle
from payhub.ledger._config import LedgerConfig
from payhub.ledger._holds import HoldRecord, HoldStatus, WithdrawalRecord, WithdrawalStatus
from payhub.ledger._model import Account, AccountKind, EntryCause, EntryDraft, check_party
from payhub.ledger._plans import Plan
from payhub.ledger._settle import BatchRecord, Progress, SettleReport
from payhub.ledger._writer import Posted, write_entry
from payhub.money import Money
from payhub.store._schema import (
    ledger_accounts,
    ledger_batch_members,
    ledger_batches,
    ledger_entries,
    ledger_holds,
    ledger_lines,
    ledger_parties,
    ledger_withdrawals,
)

if TYPE_CHECKING:
    from payhub.store._base import StoreBase

__all__ = ["AccountBalance", "EntryRecord", "Ledger", "LineRecord", "PendingGroup"]

T = TypeVar("T")
A, E, L = ledger_accounts, ledger_entries, ledger_lines


@dataclass(frozen=True)
class AccountBalance:
    account: Account
    #: on the account's normal side (positive normally)
    balance: Money
    version: int


@dataclass(frozen=True)
class LineRecord:
    account: Account
    #: signed: a debit positive, a credit negative
    amount: Money


@dataclass(frozen=True)
class EntryRecord:
    id: int
    idempotency_key: str
    cause: EntryCause
    reference: str
    party: str | None
    plan: str | None
    available_on: datetime | None
    created_at: datetime
    lines: tuple[LineRecord, ...]


@dataclass(frozen=True)
class PendingGroup:
    """Pending money of one party not yet in a settlement batch, due at ``available_on``."""

    party: str
    available_on: datetime
    amount: Money
    entries: int


class Ledger:
    """The ledger of a store (``store.ledger``, ``hub.ledger``); see ``docs/ledger.md``."""

    def __init__(self, store: StoreBase, config: LedgerConfig) -> None:
        self._store = store
        self.config = config
        self._plans_loaded = False

    # -- plumbing -------------------------------------------------------------

    def _run(self, fn: Callable[[Connection], T]) -> T:
        return self._store.run(fn)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self._store.run(fn, readonly=True)

    def now(self) -> datetime:
        return self._store.now()

    def load_plans(self) -> None:
        """Read the plans set through :meth:`set_plan` (by any process) into the
        configuration this process posts with."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(ledger_parties.c.name, ledger_parties.c.plan).where(
                    ledger_parties.c.plan.is_not(None)
                )
            ).all()
        )
        for name, plan in rows:
            self.config.set_plan(name, plan)
        self._plans_loaded = True

    # -- posting --------------------------------------------------------------

    def post(self, draft: EntryDraft) -> Posted:
        """Post a (manual) entry in its own transaction. The same idempotency key
        with the same content posts nothing (``created`` False); with other
        content raises :class:`LedgerError` (``LEDGER_IDEMPOTENCY_CONFLICT``)."""
        if not isinstance(draft, EntryDraft):
            raise LedgerError("post() takes an EntryDraft", code=ErrorCode.INVALID_REQUEST)
        now = self.now()
        return self._run(lambda conn: write_entry(conn, draft, now))

    def set_plan(self, party: str, plan: str) -> Plan:
        """Set ``party``'s settlement plan for the payments posted from now on."""
        check_party(party)
        parsed = self.config.set_plan(party, plan)
        now = self.now()

        def fn(conn: Connection) -> None:
            updated = conn.execute(
                ledger_parties.update()
                .where(ledger_parties.c.name == party)
                .values(plan=parsed.code, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(
                    ledger_parties.insert().values(
                        name=party, plan=parsed.code, created_at=now, updated_at=now
                    )
                )

        self._run(fn)
        return parsed

    def plan(self, party: str) -> Plan:
        if not self._plans_loaded:
            self.load_plans()
        return self.config.plan_of(party)

    # -- reading --------------------------------------------------------------

    def balance(self, account: Account, as_of: datetime | None = None) -> Money:
        """The account's normal-side balance now, or as of ``as_of`` (from its lines)."""
        if not isinstance(account, Account):
            raise LedgerError("balance() takes an Account", code=ErrorCode.INVALID_REQUEST)
        if as_of is not None and as_of.utcoffset() is None:
            raise LedgerError("as_of must be timezone-aware", code=ErrorCode.INVALID_REQUEST)
        where = (
            A.c.party == account.party,
            A.c.kind == account.kind.value,
            A.c.currency == account.currency,
        )

        def fn(conn: Connection) -> int:
            if as_of is None:
                value = conn.execute(sa.select(A.c.balance_minor).where(*where)).scalar()
                return int(value or 0)
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_minor), 0))
                .select_from(L.join(A, L.c.account_id == A.c.id))
                .where(*where, L.c.created_at <= as_of)
            ).scalar_one()
            return int(total) * account.kind.side.value

        return Money(self._read(fn), account.currency)

    def balances(self, party: str | None = None) -> list[AccountBalance]:
        """Every account (of ``party``), with its balance and version."""
        query = sa.select(A).order_by(A.c.party, A.c.kind, A.c.currency)
        if party is not None:
            query = query.where(A.c.party == check_party(party))
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [
            AccountBalance(
                Account(r["party"], AccountKind(r["kind"]), r["currency"]),
                Money(int(r["balance_minor"]), r["currency"]),
                int(r["version"]),
            )
            for r in rows
        ]

    def pending_by_available_on(
        self, party: str | None = None, *, due_by: datetime | None = None
    ) -> list[PendingGroup]:
        """Pending money not yet settled, by party and ``available_on``."""
        m = ledger_batch_members
        query = (
            sa.select(
                E.c.party,
                E.c.available_on,
                E.c.currency,
                sa.func.sum(E.c.pending_minor),
                sa.func.count(),
            )
            .where(
                E.c.pending_minor.is_not(None),
                ~sa.exists().where(m.c.entry_id == E.c.id),
            )
            .group_by(E.c.party, E.c.available_on, E.c.currency)
            .order_by(E.c.available_on, E.c.party)
        )
        if party is not None:
            query = query.where(E.c.party == check_party(party))
        if due_by is not None:
            query = query.where(E.c.available_on <= due_by)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [
            PendingGroup(str(p), on, Money(int(total), str(cur)), int(count))
            for p, on, cur, total, count in rows
        ]

    def entries(
        self,
        *,
        party: str | None = None,
        cause: EntryCause | str | None = None,
        reference: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        after_id: int | None = None,
    ) -> list[EntryRecord]:
        """Entries with their lines, oldest first, filtered; ``after_id`` pages on."""
        query = sa.select(E).order_by(E.c.id).limit(_limit(limit))
        if party is not None:
            query = query.where(E.c.party == check_party(party))
        if cause is not None:
            try:
                query = query.where(E.c.cause == EntryCause(cause).value)
            except ValueError:
                raise LedgerError(
                    f"unknown cause {cause!r}", code=ErrorCode.INVALID_REQUEST
                ) from None
        if reference is not None:
            query = query.where(E.c.reference == reference)
        if since is not None:
            query = query.where(E.c.created_at >= since)
        if until is not None:
            query = query.where(E.c.created_at < until)
        if after_id is not None:
            query = query.where(E.c.id > after_id)

        def fn(conn: Connection) -> list[EntryRecord]:
            rows = conn.execute(query).mappings().all()
            if not rows:
                return []
            lines = conn.execute(
                sa.select(L.c.entry_id, L.c.amount_minor, L.c.currency, A.c.party, A.c.kind)
                .select_from(L.join(A, L.c.account_id == A.c.id))
                .where(L.c.entry_id.in_([r["id"] for r in rows]))
                .order_by(L.c.entry_id, L.c.id)
            ).all()
            by_entry: dict[int, list[LineRecord]] = {}
            for entry_id, amount, cur, who, kind in lines:
                by_entry.setdefault(int(entry_id), []).append(
                    LineRecord(Account(who, AccountKind(kind), cur), Money(int(amount), cur))
                )
            return [_entry_record(r, tuple(by_entry.get(int(r["id"]), ()))) for r in rows]

        return self._read(fn)

    # -- settlement -----------------------------------------------------------

    def settle(
        self,
        at: datetime | None = None,
        *,
        party: str | None = None,
        progress: Progress | None = None,
    ) -> SettleReport:
        """Move every pending amount due by ``at`` (default now) to available: one batch
        (one transaction) per party, currency and ``available_on``. Re-running
        creates nothing; a crash leaves whole batches only."""
        at = self._aware(at, "at") or self.now()
        if party is not None:
            check_party(party)
        groups = self._read(lambda conn: _settle.candidates(conn, at, party))
        made: list[BatchRecord] = []
        for done, (who, cur, on, first, _count) in enumerate(groups, 1):
            now = self.now()

            def one(
                conn: Connection,
                *,
                who: str = who,
                cur: str = cur,
                on: datetime = on,
                first: int = int(first),
                now: datetime = now,
            ) -> BatchRecord | None:
                return _settle.settle_group(
                    conn, party=who, currency=cur, available_on=on, first=first, now=now
                )

            batch = self._run(one)
            if batch is not None:
                made.append(batch)
            if progress is not None:
                progress(done, len(groups))
        amounts: dict[str, Money] = {}
        for batch in made:
            cur = batch.amount.currency
            amounts[cur] = amounts.get(cur, Money.zero(cur)) + batch.amount
        return SettleReport(
            at=at,
            batches=len(made),
            entries=sum(b.entry_count for b in made),
            amounts=amounts,
            batch_ids=tuple(b.id for b in made),
        )

    def batches(
        self, *, party: str | None = None, limit: int = 100, after_id: int | None = None
    ) -> list[BatchRecord]:
        """Settlement batches, oldest first."""
        b = ledger_batches
        query = sa.select(b).order_by(b.c.id).limit(_limit(limit))
        if party is not None:
            query = query.where(b.c.party == check_party(party))
        if after_id is not None:
            query = query.where(b.c.id > after_id)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [_settle.batch_record(r) for r in rows]

    def batch(self, batch_id: int) -> BatchRecord:
        """One batch with its member entries' ids."""
        b, m = ledger_batches, ledger_batch_members

        def fn(conn: Connection) -> BatchRecord:
            row = conn.execute(sa.select(b).where(b.c.id == batch_id)).mappings().first()
            if row is None:
                raise LedgerError(
                    f"no settlement batch {batch_id}", code=ErrorCode.LEDGER_NOT_FOUND
                )
            members = conn.execute(
                sa.select(m.c.entry_id).where(m.c.batch_id == batch_id).order_by(m.c.entry_id)
            ).scalars()
            return _settle.batch_record(row, tuple(int(i) for i in members))

        return self._read(fn)

    # -- holds and withdrawals --------------------------------------------------

    def hold(
        self,
        party: str,
        amount: Money,
        *,
        reason: str | None = None,
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> HoldRecord:
        """Freeze ``amount`` of ``party``'s available balance (冻结). ``key`` makes it
        idempotent. :class:`LedgerError` if available cannot cover it."""
        check_party(party)
        now = self.now()
        return self._run(
            lambda conn: _holds.create_hold(
                conn, now, party=party, amount=amount, reason=reason, expires_at=expires_at, key=key
            )
        )

    def release(self, hold_id: int) -> HoldRecord:
        """Give a hold back to available."""
        now = self.now()
        return self._run(lambda conn: _holds.end_hold(conn, now, hold_id, HoldStatus.RELEASED))

    def capture(self, hold_id: int) -> HoldRecord:
        """Take a hold from the seller (to the platform's ``captured``)."""
        now = self.now()
        return self._run(lambda conn: _holds.end_hold(conn, now, hold_id, HoldStatus.CAPTURED))

    def expire_holds(self, at: datetime | None = None) -> list[HoldRecord]:
        """Release every active hold whose expiry is at or before ``at`` (default now)."""
        at = self._aware(at, "at") or self.now()
        h = ledger_holds
        ids = self._read(
            lambda conn: list(
                conn.execute(
                    sa.select(h.c.id)
                    .where(h.c.status == HoldStatus.ACTIVE.value, h.c.expires_at <= at)
                    .order_by(h.c.id)
                ).scalars()
            )
        )
        expired = []
        for hold_id in ids:
            now = self.now()

            def fn(conn: Connection, hold_id: int = int(hold_id), now: datetime = now) -> Any:
                try:
                    return _holds.end_hold(conn, now, hold_id, HoldStatus.EXPIRED)
                except LedgerError as exc:
                    if exc.code is ErrorCode.LEDGER_STATE:  # ended meanwhile
                        return None
                    raise

            record = self._run(fn)
            if record is not None:
                expired.append(record)
        return expired

    def holds(self, *, party: str | None = None, status: str | None = None) -> list[HoldRecord]:
        h = ledger_holds
        query = sa.select(h).order_by(h.c.id)
        if party is not None:
            query = query.where(h.c.party == check_party(party))
        if status is not None:
            query = query.where(h.c.status == HoldStatus(status).value)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [_holds.hold_record(r) for r in rows]

    def withdraw(self, party: str, amount: Money, *, key: str | None = None) -> WithdrawalRecord:
        """Ask to withdraw ``amount`` from ``party``'s available balance (提现): at least
        the configured minimum; its fee goes to revenue; pending until marked paid
        or failed."""
        check_party(party)
        now = self.now()
        return self._run(
            lambda conn: _holds.create_withdrawal(
                conn, now, self.config, party=party, amount=amount, key=key
            )
        )

    def mark_withdrawal_paid(self, withdrawal_id: int, note: str | None = None) -> WithdrawalRecord:
        now = self.now()
        return self._run(
            lambda conn: _holds.end_withdrawal(
                conn, now, withdrawal_id, WithdrawalStatus.PAID, note
            )
        )

    def mark_withdrawal_failed(
        self, withdrawal_id: int, note: str | None = None
    ) -> WithdrawalRecord:
        """The payout failed: the money (and its fee) back to available."""
        now = self.now()
        return self._run(
            lambda conn: _holds.end_withdrawal(
                conn, now, withdrawal_id, WithdrawalStatus.FAILED, note
            )
        )

    def withdrawals(
        self, *, party: str | None = None, status: str | None = None
    ) -> list[WithdrawalRecord]:
        w = ledger_withdrawals
        query = sa.select(w).order_by(w.c.id)
        if party is not None:
            query = query.where(w.c.party == check_party(party))
        if status is not None:
            query = query.where(w.c.status == WithdrawalStatus(status).value)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [_holds.withdrawal_record(r) for r in rows]

    @staticmethod
    def _aware(value: datetime | None, what: str) -> datetime | None:
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise LedgerError(
                f"{what} must be a timezone-aware datetime", code=ErrorCode.INVALID_REQUEST
            )
        return value

    def totals(self) -> Mapping[str, int]:
        """Per currency, the sum of every line (always 0 for a sound ledger)."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(L.c.currency, sa.func.sum(L.c.amount_minor)).group_by(L.c.currency)
            ).all()
        )
        return {str(cur): int(total) for cur, total in rows}


def _limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 10_000:
        raise LedgerError("limit must be 1 to 10000", code=ErrorCode.INVALID_REQUEST)
    return limit


def _entry_record(row: Any, lines: Sequence[LineRecord]) -> EntryRecord:
    return EntryRecord(
        id=int(row["id"]),
        idempotency_key=row["idempotency_key"],
        cause=EntryCause(row["cause"]),
        reference=row["reference"],
        party=row["party"],
        plan=row["plan"],
        available_on=row["available_on"],
        created_at=row["created_at"],
        lines=tuple(lines),
    )
