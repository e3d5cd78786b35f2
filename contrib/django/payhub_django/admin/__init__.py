"""payhub in the Django admin: one module per area (payments, events, anomalies,
the ledger, risk reviews, reconciliation, splits and payouts). Every page is
read only; the actions (sync, refund, resolve, release, capture, mark paid or
failed, approve, decline, ignore) go through the hub."""

from payhub_django.admin._base import NoteForm, PayhubAdmin
from payhub_django.admin.anomalies import AnomalyAdmin, ResolveForm
from payhub_django.admin.events import EventAdmin, InboxNotificationAdmin
from payhub_django.admin.ledger import (
    HoldAdmin,
    LedgerAccountAdmin,
    LedgerEntryAdmin,
    SettlementBatchAdmin,
    WithdrawalAdmin,
)
from payhub_django.admin.payments import PaymentAdmin, RefundAdmin, RefundForm
from payhub_django.admin.recon import IgnoreForm, ReconDifferenceAdmin
from payhub_django.admin.reviews import RiskReviewAdmin
from payhub_django.admin.splits import PayoutAdmin, SplitAdmin

__all__ = [
    "AnomalyAdmin",
    "EventAdmin",
    "HoldAdmin",
    "IgnoreForm",
    "InboxNotificationAdmin",
    "LedgerAccountAdmin",
    "LedgerEntryAdmin",
    "NoteForm",
    "PayhubAdmin",
    "PaymentAdmin",
    "PayoutAdmin",
    "ReconDifferenceAdmin",
    "RefundAdmin",
    "RefundForm",
    "ResolveForm",
    "RiskReviewAdmin",
    "SettlementBatchAdmin",
    "SplitAdmin",
    "WithdrawalAdmin",
]
