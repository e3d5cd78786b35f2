"""payhub in the Django admin: one module per area (payments, events, anomalies;
the ledger, settlements and reviews get theirs the same way). Every page is
read only; the actions (sync, refund, resolve) go through the hub."""

from payhub_django.admin._base import PayhubAdmin
from payhub_django.admin.anomalies import AnomalyAdmin, ResolveForm
from payhub_django.admin.events import EventAdmin, InboxNotificationAdmin
from payhub_django.admin.payments import PaymentAdmin, RefundAdmin, RefundForm

__all__ = [
    "AnomalyAdmin",
    "EventAdmin",
    "InboxNotificationAdmin",
    "PayhubAdmin",
    "PaymentAdmin",
    "RefundAdmin",
    "RefundForm",
    "ResolveForm",
]
