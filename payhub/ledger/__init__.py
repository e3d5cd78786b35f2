"""The ledger: double-entry balances posted with every payment, settlement, holds
and withdrawals (see ``docs/ledger.md``).

>>> hub.ledger.balances("alice")  # doctest: +SKIP
>>> hub.ledger.balance(Account("alice", AccountKind.AVAILABLE, "CNY"))  # doctest: +SKIP
"""

from payhub.ledger._config import DEFAULT_PLAN, LedgerConfig, WithdrawalRules
from payhub.ledger._holds import HoldRecord, HoldStatus, WithdrawalRecord, WithdrawalStatus
from payhub.ledger._ledger import AccountBalance, EntryRecord, Ledger, LineRecord, PendingGroup
from payhub.ledger._model import (
    PLATFORM,
    SHOP,
    Account,
    AccountKind,
    EntryCause,
    EntryDraft,
    Line,
    Side,
    credit,
    debit,
)
from payhub.ledger._plans import INSTANT, Plan, parse_plan
from payhub.ledger._poster import LedgerPoster
from payhub.ledger._settle import BatchRecord, SettleReport
from payhub.ledger._writer import Posted

__all__ = [
    "DEFAULT_PLAN",
    "INSTANT",
    "PLATFORM",
    "SHOP",
    "Account",
    "AccountBalance",
    "AccountKind",
    "BatchRecord",
    "EntryCause",
    "EntryDraft",
    "EntryRecord",
    "HoldRecord",
    "HoldStatus",
    "Ledger",
    "LedgerConfig",
    "LedgerPoster",
    "Line",
    "LineRecord",
    "PendingGroup",
    "Plan",
    "Posted",
    "SettleReport",
    "Side",
    "WithdrawalRecord",
    "WithdrawalRules",
    "WithdrawalStatus",
    "credit",
    "debit",
    "parse_plan",
]
