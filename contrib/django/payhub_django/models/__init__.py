"""Django models over payhub's tables: read them with the ORM, show them in the
admin. ``managed = False``: payhub's Alembic migrations own the tables (run by
this app's migration, or ``manage.py payhub db upgrade``), and every change
goes through the hub, never through ``save()``.

One module per area (payments, events, anomalies); the ledger, settlements and
reviews get theirs the same way.
"""

from payhub_django.models.anomalies import Anomaly
from payhub_django.models.events import Event, InboxNotification
from payhub_django.models.payments import Attempt, AuditEntry, Payment, Refund

__all__ = ["Anomaly", "Attempt", "AuditEntry", "Event", "InboxNotification", "Payment", "Refund"]
