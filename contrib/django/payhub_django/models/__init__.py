"""Django models over payhub's tables: read them with the ORM, show them in the
admin. ``managed = False``: payhub's Alembic migrations own the tables (run by
this app's migrations, or ``manage.py payhub db upgrade``), and every change
goes through the hub, never through ``save()``.

One module per area: payments, events, anomalies, the ledger (accounts, entries,
settlement batches, holds, withdrawals), risk reviews, reconciliation, splits
and payouts.
"""

from payhub_django.models.anomalies import Anomaly
from payhub_django.models.events import Event, InboxNotification
from payhub_django.models.ledger import (
    BatchMember,
    Hold,
    LedgerAccount,
    LedgerEntry,
    LedgerLine,
    SettlementBatch,
    Withdrawal,
)
from payhub_django.models.payments import Attempt, AuditEntry, Payment, Refund
from payhub_django.models.recon import ReconDifference
from payhub_django.models.reviews import RiskReview
from payhub_django.models.splits import Payout, Split

__all__ = [
    "Anomaly",
    "Attempt",
    "AuditEntry",
    "BatchMember",
    "Event",
    "Hold",
    "InboxNotification",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerLine",
    "Payment",
    "Payout",
    "ReconDifference",
    "Refund",
    "RiskReview",
    "SettlementBatch",
    "Split",
    "Withdrawal",
]
