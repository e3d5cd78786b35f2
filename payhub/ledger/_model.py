"""The ledger's values: account kinds, accounts, lines and entry drafts. Pure.

A line's amount is signed: a debit positive, a credit negative. An entry's
lines sum to zero in each currency, checked here before any SQL. Balances are
shown on each account's normal side (see ``docs/ledger.md``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from payhub.errors import ErrorCode, LedgerError
from payhub.money import Money

__all__ = [
    "PLATFORM",
    "SHOP",
    "Account",
    "AccountKind",
    "EntryCause",
    "EntryDraft",
    "Line",
    "Side",
]

#: The party of a payment that names no seller.
SHOP = "shop"
#: The party that earns the fees.
PLATFORM = "platform"
_MAX_PARTY = 64


class Side(enum.Enum):
    DEBIT = 1
    CREDIT = -1


class AccountKind(enum.StrEnum):
    """What an account holds; its normal side and whether it may go negative."""

    CLEARING = "clearing"
    CHANNEL_FEES = "channel_fees"
    PENDING = "pending"
    AVAILABLE = "available"
    FROZEN = "frozen"
    WITHDRAWING = "withdrawing"
    RECEIVABLE = "receivable"
    REVENUE = "revenue"
    SUSPENSE = "suspense"
    CAPTURED = "captured"
    PAID_OUT = "paid_out"

    @property
    def side(self) -> Side:
        return Side.DEBIT if self in _DEBIT_NORMAL else Side.CREDIT

    @property
    def non_negative(self) -> bool:
        """The account refuses an entry that would take its balance below zero."""
        return self in _NON_NEGATIVE

    @property
    def seller_kind(self) -> bool:
        return self in _SELLER_KINDS


_DEBIT_NORMAL = frozenset({AccountKind.CLEARING, AccountKind.CHANNEL_FEES, AccountKind.RECEIVABLE})
_NON_NEGATIVE = frozenset(
    {
        AccountKind.PENDING,
        AccountKind.AVAILABLE,
        AccountKind.FROZEN,
        AccountKind.WITHDRAWING,
        AccountKind.RECEIVABLE,
    }
)
_SELLER_KINDS = frozenset(
    {
        AccountKind.PENDING,
        AccountKind.AVAILABLE,
        AccountKind.FROZEN,
        AccountKind.WITHDRAWING,
        AccountKind.RECEIVABLE,
    }
)


class EntryCause(enum.StrEnum):
    """What caused an entry."""

    PAYMENT = "payment"
    REFUND = "refund"
    DUPLICATE = "duplicate"
    DUPLICATE_REFUND = "duplicate_refund"
    SETTLEMENT = "settlement"
    HOLD = "hold"
    RELEASE = "release"
    CAPTURE = "capture"
    WITHDRAWAL = "withdrawal"
    WITHDRAWAL_PAID = "withdrawal_paid"
    WITHDRAWAL_FAILED = "withdrawal_failed"
    ADJUSTMENT = "adjustment"
    #: a split (分账) the channel confirmed: the payer's balance to the receivers
    SPLIT = "split"


def check_party(party: object) -> str:
    if (
        not isinstance(party, str)
        or not party
        or len(party) > _MAX_PARTY
        or not party.isprintable()
        or party != party.strip()
    ):
        raise LedgerError(
            f"a party is a printable name of 1 to {_MAX_PARTY} characters, not {party!r}",
            code=ErrorCode.INVALID_REQUEST,
        )
    return party


@dataclass(frozen=True, order=True)
class Account:
    """One (party, kind, currency)."""

    party: str
    kind: AccountKind
    currency: str = "CNY"

    def __post_init__(self) -> None:
        check_party(self.party)
        object.__setattr__(self, "kind", AccountKind(self.kind))
        Money.zero(self.currency)  # an unknown currency raises AmountError

    def __str__(self) -> str:
        return f"{self.party}:{self.kind.value}:{self.currency}"


@dataclass(frozen=True)
class Line:
    """``amount`` moved on ``account``: ``side`` DEBIT adds to a debit-normal account."""

    account: Account
    side: Side
    amount: Money

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Money):
            raise LedgerError("a line's amount must be Money", code=ErrorCode.INVALID_AMOUNT)
        if self.amount.minor < 0:
            raise LedgerError(
                f"a line's amount must not be negative, got {self.amount}",
                code=ErrorCode.INVALID_AMOUNT,
            )
        if self.amount.currency != self.account.currency:
            raise LedgerError(
                f"a line in {self.amount.currency} on account {self.account}",
                code=ErrorCode.CURRENCY_MISMATCH,
            )

    @property
    def signed_minor(self) -> int:
        """Stored amount: a debit positive, a credit negative."""
        return self.amount.minor * self.side.value

    @property
    def normal_minor(self) -> int:
        """What this line adds to its account's (normal-side) balance."""
        return self.signed_minor * self.account.kind.side.value


def entry_key(prefix: str, key: str) -> str:
    """``prefix:key``, the key hashed when the whole would not fit its column (191)."""
    whole = f"{prefix}:{key}"
    if len(whole) <= 191:
        return whole
    return f"{prefix}:sha256:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def debit(account: Account, amount: Money) -> Line:
    return Line(account, Side.DEBIT, amount)


def credit(account: Account, amount: Money) -> Line:
    return Line(account, Side.CREDIT, amount)


@dataclass(frozen=True)
class EntryDraft:
    """An entry before it is written: checked to balance when built.

    Zero-amount lines are dropped and lines on the same account merged, so an
    entry holds at most one line per account.
    """

    idempotency_key: str
    cause: EntryCause
    reference: str
    lines: Sequence[Line]
    party: str | None = None
    plan: str | None = None
    available_on: datetime | None = None
    #: set on build: the pending account's movement (normal side), if any
    pending: tuple[Account, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.idempotency_key, str) or not 0 < len(self.idempotency_key) <= 191:
            raise LedgerError(
                "an idempotency key is a string of 1 to 191 characters",
                code=ErrorCode.INVALID_REQUEST,
            )
        if not isinstance(self.reference, str) or not 0 < len(self.reference) <= 191:
            raise LedgerError(
                "a reference is at most 191 characters", code=ErrorCode.INVALID_REQUEST
            )
        object.__setattr__(self, "cause", EntryCause(self.cause))
        if self.party is not None:
            check_party(self.party)
        if self.available_on is not None and self.available_on.utcoffset() is None:
            raise LedgerError("available_on must be timezone-aware", code=ErrorCode.INVALID_REQUEST)
        merged = _merge(self.lines)
        if not merged:
            raise LedgerError("an entry needs at least one non-zero line")
        totals: dict[str, int] = {}
        for line in merged:
            totals[line.amount.currency] = totals.get(line.amount.currency, 0) + line.signed_minor
        unbalanced = {c: t for c, t in totals.items() if t != 0}
        if unbalanced:
            raise LedgerError(
                f"entry {self.idempotency_key!r} does not balance: {unbalanced} (minor units)",
                code=ErrorCode.LEDGER_UNBALANCED,
            )
        object.__setattr__(self, "lines", tuple(merged))
        pending = [ln for ln in merged if ln.account.kind is AccountKind.PENDING]
        if self.cause is EntryCause.SETTLEMENT:
            pending = []  # it empties pending; it is not itself due for settlement
        if len(pending) > 1:
            raise LedgerError("an entry moves at most one pending account")
        if pending:
            object.__setattr__(self, "pending", (pending[0].account, pending[0].normal_minor))

    def digest(self) -> str:
        """SHA-256 of what the entry says (not when): a replay has the same."""
        content = {
            "cause": self.cause.value,
            "reference": self.reference,
            "party": self.party,
            "lines": sorted((str(ln.account), ln.signed_minor) for ln in self.lines),
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _merge(lines: Iterable[Line]) -> list[Line]:
    by_account: dict[Account, int] = {}
    for line in lines:
        if not isinstance(line, Line):
            raise LedgerError(f"not a Line: {line!r}", code=ErrorCode.INVALID_REQUEST)
        by_account[line.account] = by_account.get(line.account, 0) + line.signed_minor
    merged = []
    for account in sorted(by_account):
        signed = by_account[account]
        if signed == 0:
            continue
        side = Side.DEBIT if signed > 0 else Side.CREDIT
        merged.append(Line(account, side, Money(abs(signed), account.currency)))
    return merged
