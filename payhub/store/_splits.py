"""Splits (分账) and payouts: reserved under the caller's number before the channel
is asked, then settled by the channel's answer (a send, a query or a notification).

The same number with the same content is the same operation: the stored record
comes back, and an outcome still unknown is settled by a query under that
number, never by a new one. The same number with other content (its SHA-256
``digest`` differs) raises ``ORDER_NUMBER_USED`` and sends nothing. A
channel's refusal marks it ``refused`` (no row is ever deleted): nothing moved,
and the same call may be made again once the cause is fixed. The ledger is
posted only when the channel confirms, in the transaction that records it
(``docs/ledger.md``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import (
    AmountError,
    ConfigurationError,
    CurrencyMismatchError,
    ErrorCode,
    InvalidRequestError,
    LedgerError,
    PaymentStateError,
    SplitError,
)
from payhub.lifecycle import PaymentState
from payhub.money import Money
from payhub.splits_models import (
    SplitResult,
    SplitStatus,
    TransferRequest,
    TransferResult,
    TransferStatus,
)
from payhub.store._base import StoreBase, _lock_payment
from payhub.store._engine import insert_ignore
from payhub.store._movements import Movement, MovementKind
from payhub.store._schema import ledger_withdrawals, payouts, splits

__all__ = [
    "PayoutRecord",
    "PayoutState",
    "SplitLineRecord",
    "SplitRecord",
    "SplitState",
    "SplitsJob",
    "digest_of",
]

_SPLITTABLE = frozenset({PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED})


class SplitState(enum.StrEnum):
    PROCESSING = "processing"  #: sent (or about to be); outcome not known yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  #: final, nothing moved
    PARTIAL = "partial"  #: final, some lines moved
    #: the channel refused it when asked: nothing moved, and the same call
    #: (same number, same content) may be made again once the cause is fixed
    REFUSED = "refused"

    @property
    def final(self) -> bool:
        return self is not SplitState.PROCESSING


class PayoutState(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"  #: the withdrawal is paid
    FAILED = "failed"  #: the withdrawal went back to available
    #: the channel refused it when asked: nothing moved, the withdrawal is still
    #: pending, and the same call may be made again once the cause is fixed
    REFUSED = "refused"

    @property
    def final(self) -> bool:
        return self is not PayoutState.PROCESSING


@dataclass(frozen=True)
class SplitLineRecord:
    """One receiver's part: ``party`` is whose ledger account it reaches."""

    party: str
    kind: str
    account: str
    amount: Money
    description: str
    status: SplitState = SplitState.PROCESSING
    fail_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "kind": self.kind,
            "account": self.account,
            "amount_minor": self.amount.minor,
            "description": self.description,
            "status": self.status.value,
            "fail_reason": self.fail_reason,
        }


@dataclass(frozen=True)
class SplitRecord:
    out_split_no: str
    out_trade_no: str
    channel: str
    channel_trade_id: str
    seller: str | None
    amount: Money
    finish: bool
    status: SplitState
    lines: tuple[SplitLineRecord, ...]
    channel_split_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PayoutRecord:
    out_payout_no: str
    withdrawal_id: int
    party: str
    channel: str
    payee_kind: str
    payee_account: str
    amount: Money
    status: PayoutState
    channel_transfer_id: str | None
    package_info: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


def digest_of(content: Any) -> str:
    """SHA-256 of a request's content (canonical JSON): tells a repeat from a conflict."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _split_record(row: Any) -> SplitRecord:
    cur = row["currency"]
    raw = row["lines"]
    if isinstance(raw, str):  # MariaDB returns JSON columns as text
        raw = json.loads(raw)
    lines = tuple(
        SplitLineRecord(
            party=item["party"],
            kind=item["kind"],
            account=item["account"],
            amount=Money(int(item["amount_minor"]), cur),
            description=item["description"],
            status=SplitState(item["status"]),
            fail_reason=item.get("fail_reason"),
        )
        for item in raw
    )
    return SplitRecord(
        out_split_no=row["out_split_no"],
        out_trade_no=row["out_trade_no"],
        channel=row["channel"],
        channel_trade_id=row["channel_trade_id"],
        seller=row["seller"],
        amount=Money(int(row["amount_minor"]), cur),
        finish=bool(row["finish"]),
        status=SplitState(row["status"]),
        lines=lines,
        channel_split_id=row["channel_split_id"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _payout_record(row: Any) -> PayoutRecord:
    return PayoutRecord(
        out_payout_no=row["out_payout_no"],
        withdrawal_id=int(row["withdrawal_id"]),
        party=row["party"],
        channel=row["channel"],
        payee_kind=row["payee_kind"],
        payee_account=row["payee_account"],
        amount=Money(int(row["amount_minor"]), row["currency"]),
        status=PayoutState(row["status"]),
        channel_transfer_id=row["channel_transfer_id"],
        package_info=row["package_info"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _number_used(what: str, number: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{what} number {number!r} was used before for other content; nothing was sent",
        code=ErrorCode.ORDER_NUMBER_USED,
    )


_LINE_STATES = {
    SplitStatus.SUCCEEDED: SplitState.SUCCEEDED,
    SplitStatus.FAILED: SplitState.FAILED,
    SplitStatus.PARTIAL: SplitState.PARTIAL,
}
_PAYOUT_FAILED = frozenset({TransferStatus.FAILED, TransferStatus.CANCELLED})


def split_taken(conn: Connection, out_trade_no: str) -> int:
    """Minor units of a payment split away or being split (a failed or refused split
    takes nothing; a partial one what its succeeded lines moved). The caller holds
    the payment's lock, so a split and a refund of one payment never both see room
    that only one of them may take."""
    rows = conn.execute(
        sa.select(splits.c.status, splits.c.amount_minor, splits.c.lines).where(
            splits.c.out_trade_no == out_trade_no,
            splits.c.status.not_in([SplitState.FAILED.value, SplitState.REFUSED.value]),
        )
    ).all()
    taken = 0
    for status, amount, lines in rows:
        if status == SplitState.PARTIAL.value:
            items = json.loads(lines) if isinstance(lines, str) else lines
            taken += sum(int(i["amount_minor"]) for i in items if i["status"] == "succeeded")
        else:
            taken += int(amount)
    return taken


def _clip(text: str | None, size: int) -> str | None:
    return None if text is None else text[:size]


class SplitsJob(StoreBase):
    """Splits and payouts (part of :class:`~payhub.store.Store`)."""

    # -- splits ---------------------------------------------------------------

    def reserve_split(
        self,
        *,
        out_split_no: str,
        out_trade_no: str,
        lines: Sequence[SplitLineRecord],
        finish: bool,
        digest: str,
    ) -> tuple[SplitRecord, bool]:
        """Reserve a split of a paid payment under the payment's lock, before the
        channel is asked. Returns the record and whether it existed (same number,
        same digest). Refuses (typed, nothing written) a number used for other
        content, an unknown or unpaid payment, lines in another currency, and a
        split above what is left of the payment (paid, less refunded, less
        the splits not failed)."""
        if not lines:
            raise SplitError("a split needs at least one receiver's part")
        if self._poster is None:
            raise ConfigurationError("splits need the ledger (this store has ledger=False)")

        def fn(conn: Connection) -> tuple[SplitRecord, bool]:
            found = self._split_row(conn, out_split_no)
            if found is not None:
                if found["digest"] != digest:
                    raise _number_used("split", out_split_no)
                if found["status"] != SplitState.REFUSED.value:
                    return _split_record(found), True
            payment = _lock_payment(conn, out_trade_no)
            if payment is None:
                raise PaymentStateError(
                    f"no stored payment {out_trade_no!r}", code=ErrorCode.UNKNOWN_PAYMENT
                )
            if payment["status"] not in _SPLITTABLE:
                raise PaymentStateError(
                    f"payment {out_trade_no!r} is {payment['status']}: only a paid payment "
                    "is split",
                    code=ErrorCode.PAYMENT_STATE,
                )
            if not payment["channel"] or not payment["channel_trade_id"]:
                raise PaymentStateError(
                    f"payment {out_trade_no!r} has no channel trade id to split",
                    code=ErrorCode.PAYMENT_STATE,
                )
            cur = payment["currency"]
            for line in lines:
                if line.amount.currency != cur:
                    raise CurrencyMismatchError(
                        f"a split line in {line.amount.currency} of a payment in {cur}"
                    )
            total = sum((line.amount for line in lines), start=Money.zero(cur))
            room = self._split_room(conn, payment)
            if total.minor > room:
                raise SplitError(
                    f"the split of {total} is more than what is left of payment "
                    f"{out_trade_no!r} ({Money(max(room, 0), cur)}: paid, less refunded, "
                    "less earlier splits)"
                )
            now = self.now()
            values = {
                "out_split_no": out_split_no,
                "out_trade_no": out_trade_no,
                "channel": payment["channel"],
                "channel_trade_id": payment["channel_trade_id"],
                "seller": payment["seller"],
                "amount_minor": total.minor,
                "currency": cur,
                "finish": finish,
                "digest": digest,
                "status": SplitState.PROCESSING.value,
                "channel_split_id": None,
                "lines": [line.as_json() for line in lines],
                "error": None,
                "created_at": now,
                "updated_at": now,
            }
            if found is not None:  # refused before: reserved again, as new
                conn.execute(
                    splits.update()
                    .where(
                        splits.c.id == found["id"],
                        splits.c.status == SplitState.REFUSED.value,
                    )
                    .values(**{k: v for k, v in values.items() if k != "created_at"})
                )
            elif not insert_ignore(conn, splits, values):
                row = self._split_row(conn, out_split_no)
                if row is None or row["digest"] != digest:
                    raise _number_used("split", out_split_no)
                return _split_record(row), True
            row = self._split_row(conn, out_split_no)
            return _split_record(row), False

        return self.run(fn)

    @staticmethod
    def _split_row(conn: Connection, out_split_no: str, *, lock: bool = False) -> Any:
        query = sa.select(splits).where(splits.c.out_split_no == out_split_no)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).mappings().first()

    @staticmethod
    def _split_room(conn: Connection, payment: Any) -> int:
        """Minor units of the payment not yet refunded nor split (or being split)."""
        taken = split_taken(conn, payment["out_trade_no"])
        return int(payment["amount_minor"]) - int(payment["refunded_minor"]) - taken

    def apply_split_result(self, out_split_no: str, result: SplitResult) -> SplitRecord:
        """Record the channel's word on a split. A final one (succeeded, failed,
        partial) is applied once: its succeeded lines are posted to the ledger in
        this transaction; a later answer changes nothing. PROCESSING and
        NOT_FOUND keep it processing."""

        def fn(conn: Connection) -> SplitRecord:
            row = self._split_row(conn, out_split_no, lock=True)
            if row is None:
                raise InvalidRequestError(f"no stored split {out_split_no!r}")
            record = _split_record(row)
            now = self.now()
            if record.status.final:
                return record
            split_id = _clip(result.channel_split_id, 128) or record.channel_split_id
            status = _LINE_STATES.get(result.status)
            if status is None:
                conn.execute(
                    splits.update()
                    .where(splits.c.id == row["id"])
                    .values(channel_split_id=split_id, updated_at=now)
                )
                return _split_record({**row, "channel_split_id": split_id, "updated_at": now})
            lines = _settle_lines(record.lines, result, status)
            if all(line.status is SplitState.SUCCEEDED for line in lines):
                status = SplitState.SUCCEEDED
            elif all(line.status is SplitState.FAILED for line in lines):
                status = SplitState.FAILED
            else:
                status = SplitState.PARTIAL
            moved = tuple(
                (line.party, line.amount) for line in lines if line.status is SplitState.SUCCEEDED
            )
            if moved and self._poster is not None:
                self._poster(
                    conn,
                    Movement(
                        kind=MovementKind.SPLIT,
                        key=out_split_no,
                        out_trade_no=record.out_trade_no,
                        seller=record.seller,
                        channel=record.channel,
                        amount=sum((a for _, a in moved), start=Money.zero(record.amount.currency)),
                        at=now,
                        now=now,
                        parts=moved,
                    ),
                )
            reasons = sorted({line.fail_reason for line in lines if line.fail_reason})
            values = {
                "status": status.value,
                "lines": [line.as_json() for line in lines],
                "channel_split_id": split_id,
                "error": _clip(", ".join(reasons), 256) if reasons else None,
                "updated_at": now,
            }
            conn.execute(splits.update().where(splits.c.id == row["id"]).values(**values))
            return _split_record({**row, **values})

        return self.run(fn)

    def refuse_split(self, out_split_no: str, reason: str) -> None:
        """The channel refused the split when asked: nothing moved. It no longer
        counts against the payment, and the same call may be made again (a row
        is never deleted: the application's role may delete nothing)."""

        def fn(conn: Connection) -> None:
            conn.execute(
                splits.update()
                .where(
                    splits.c.out_split_no == out_split_no,
                    splits.c.status == SplitState.PROCESSING.value,
                )
                .values(
                    status=SplitState.REFUSED.value,
                    error=_clip(reason, 256),
                    updated_at=self.now(),
                )
            )

        self.run(fn)

    def split(self, out_split_no: str) -> SplitRecord | None:
        row = self._read(lambda conn: self._split_row(conn, out_split_no))
        return None if row is None else _split_record(row)

    def splits(
        self,
        *,
        out_trade_no: str | None = None,
        status: SplitState | str | None = None,
        limit: int | None = None,
    ) -> list[SplitRecord]:
        """Stored splits, oldest first (``status="processing"``: what sync settles)."""
        query = sa.select(splits).order_by(splits.c.id)
        if out_trade_no is not None:
            query = query.where(splits.c.out_trade_no == out_trade_no)
        if status is not None:
            query = query.where(splits.c.status == SplitState(status).value)
        if limit is not None:
            query = query.limit(limit)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [_split_record(r) for r in rows]

    # -- payouts --------------------------------------------------------------

    def reserve_payout(
        self, channel: str, withdrawal_id: int, request: TransferRequest, digest: str
    ) -> tuple[PayoutRecord, bool]:
        """Reserve the payout of a pending withdrawal (locked), before the channel
        is asked. Its amount must be what the withdrawal holds in ``withdrawing``
        (the amount less its fee); a withdrawal is paid out once."""
        if self._poster is None:
            raise ConfigurationError("payouts need the ledger (this store has ledger=False)")
        number = request.out_transfer_no

        def fn(conn: Connection) -> tuple[PayoutRecord, bool]:
            found = self._payout_row(conn, number)
            if found is not None:
                if found["digest"] != digest:
                    raise _number_used("payout", number)
                if found["status"] != PayoutState.REFUSED.value:
                    return _payout_record(found), True
            w = ledger_withdrawals
            row = (
                conn.execute(sa.select(w).where(w.c.id == withdrawal_id).with_for_update())
                .mappings()
                .first()
            )
            if row is None:
                raise LedgerError(f"no withdrawal {withdrawal_id}", code=ErrorCode.LEDGER_NOT_FOUND)
            if row["status"] != "pending":
                raise LedgerError(
                    f"withdrawal {withdrawal_id} is already {row['status']}",
                    code=ErrorCode.LEDGER_STATE,
                )
            cur = row["currency"]
            if request.amount.currency != cur:
                raise CurrencyMismatchError(
                    f"a payout in {request.amount.currency} of a withdrawal in {cur}"
                )
            net = int(row["amount_minor"]) - int(row["fee_minor"])
            if request.amount.minor > net:
                raise AmountError(
                    f"the payout of {request.amount} is above withdrawal {withdrawal_id}'s "
                    f"{Money(net, cur)} (its amount less its fee)"
                )
            if request.amount.minor < net:
                raise AmountError(
                    f"a payout pays the whole withdrawal: {Money(net, cur)}, not {request.amount}"
                )
            now = self.now()
            values = {
                "out_payout_no": number,
                "withdrawal_id": withdrawal_id,
                "party": row["party"],
                "channel": channel,
                "payee_kind": request.kind.value,
                "payee_account": request.account,
                "amount_minor": request.amount.minor,
                "currency": cur,
                "digest": digest,
                "status": PayoutState.PROCESSING.value,
                "channel_transfer_id": None,
                "package_info": None,
                "error": None,
                "created_at": now,
                "updated_at": now,
            }
            # under the withdrawal's lock: one live payout per withdrawal
            other = conn.execute(
                sa.select(payouts.c.out_payout_no).where(
                    payouts.c.withdrawal_id == withdrawal_id,
                    payouts.c.status != PayoutState.REFUSED.value,
                    payouts.c.out_payout_no != number,
                )
            ).first()
            if other is not None:
                raise LedgerError(
                    f"withdrawal {withdrawal_id} is being paid out under another number",
                    code=ErrorCode.LEDGER_STATE,
                )
            if found is not None:  # refused before: reserved again, as new
                conn.execute(
                    payouts.update()
                    .where(
                        payouts.c.id == found["id"],
                        payouts.c.status == PayoutState.REFUSED.value,
                    )
                    .values(**{k: v for k, v in values.items() if k != "created_at"})
                )
            elif not insert_ignore(conn, payouts, values):
                again = self._payout_row(conn, number)
                if again is None or again["digest"] != digest:
                    raise _number_used("payout", number)
                return _payout_record(again), True
            return _payout_record(self._payout_row(conn, number)), False

        return self.run(fn)

    @staticmethod
    def _payout_row(conn: Connection, number: str, *, lock: bool = False) -> Any:
        query = sa.select(payouts).where(payouts.c.out_payout_no == number)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).mappings().first()

    def apply_payout_result(self, out_payout_no: str, result: TransferResult) -> PayoutRecord:
        """Record the channel's word on a payout. SUCCEEDED marks the withdrawal
        paid, FAILED or CANCELLED marks it failed (its money back to available),
        in this transaction and once; anything else keeps it processing."""

        def fn(conn: Connection) -> PayoutRecord:
            row = self._payout_row(conn, out_payout_no, lock=True)
            if row is None:
                raise InvalidRequestError(f"no stored payout {out_payout_no!r}")
            record = _payout_record(row)
            if record.status.final:
                return record
            now = self.now()
            values: dict[str, Any] = {
                "channel_transfer_id": _clip(result.channel_transfer_id, 128)
                or record.channel_transfer_id,
                "package_info": _clip(result.package_info, 512) or record.package_info,
                "updated_at": now,
            }
            kind = None
            if result.status is TransferStatus.SUCCEEDED:
                values["status"] = PayoutState.SUCCEEDED.value
                kind = MovementKind.PAYOUT_PAID
                note = f"payout {out_payout_no}"
                if values["channel_transfer_id"]:
                    note += f" ({values['channel_transfer_id']})"
            elif result.status in _PAYOUT_FAILED:
                values["status"] = PayoutState.FAILED.value
                values["error"] = _clip(result.fail_reason or result.status.value, 256)
                kind = MovementKind.PAYOUT_FAILED
                note = f"payout {out_payout_no} failed: {values['error']}"
            if kind is not None and self._poster is not None:
                self._poster(
                    conn,
                    Movement(
                        kind=kind,
                        key=str(record.withdrawal_id),
                        out_trade_no=out_payout_no,
                        seller=record.party,
                        channel=record.channel,
                        amount=record.amount,
                        at=now,
                        now=now,
                        note=note[:256],
                    ),
                )
            conn.execute(payouts.update().where(payouts.c.id == row["id"]).values(**values))
            return _payout_record({**row, **values})

        return self.run(fn)

    def refuse_payout(self, out_payout_no: str, reason: str) -> None:
        """The channel refused the payout when asked: nothing moved, the withdrawal
        stays pending, and the same call may be made again (no row is deleted)."""

        def fn(conn: Connection) -> None:
            conn.execute(
                payouts.update()
                .where(
                    payouts.c.out_payout_no == out_payout_no,
                    payouts.c.status == PayoutState.PROCESSING.value,
                )
                .values(
                    status=PayoutState.REFUSED.value,
                    error=_clip(reason, 256),
                    updated_at=self.now(),
                )
            )

        self.run(fn)

    def payout(self, out_payout_no: str) -> PayoutRecord | None:
        row = self._read(lambda conn: self._payout_row(conn, out_payout_no))
        return None if row is None else _payout_record(row)

    def payouts(
        self, *, status: PayoutState | str | None = None, limit: int | None = None
    ) -> list[PayoutRecord]:
        query = sa.select(payouts).order_by(payouts.c.id)
        if status is not None:
            query = query.where(payouts.c.status == PayoutState(status).value)
        if limit is not None:
            query = query.limit(limit)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [_payout_record(r) for r in rows]


def _settle_lines(
    lines: tuple[SplitLineRecord, ...], result: SplitResult, overall: SplitState
) -> list[SplitLineRecord]:
    """Each stored line with the channel's word on it (matched by account and
    amount); a line the answer does not list takes the overall state, except
    that a PARTIAL answer's unlisted line stays unknown and counts as failed
    (nothing is posted for it)."""
    answers = list(result.lines)
    settled = []
    for line in lines:
        match = next(
            (a for a in answers if a.account == line.account and a.amount == line.amount), None
        )
        if match is not None:
            answers.remove(match)
            state = _LINE_STATES.get(match.status, SplitState.FAILED)
            reason = match.fail_reason
        else:
            state = SplitState.FAILED if overall is SplitState.PARTIAL else overall
            reason = None
        settled.append(
            SplitLineRecord(
                party=line.party,
                kind=line.kind,
                account=line.account,
                amount=line.amount,
                description=line.description,
                status=state,
                fail_reason=_clip(reason, 128),
            )
        )
    return settled
