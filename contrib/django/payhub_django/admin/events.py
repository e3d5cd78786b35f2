"""The outbox and the notification inbox in the admin (read only)."""

from __future__ import annotations

from django.contrib import admin  # type: ignore[import-untyped]

from payhub_django.admin._base import PayhubAdmin
from payhub_django.models import Event, InboxNotification

__all__ = ["EventAdmin", "InboxNotificationAdmin"]


@admin.register(Event)
class EventAdmin(PayhubAdmin):
    list_display = ("event_id", "type", "out_trade_no", "created_at", "dispatched_at", "attempts")
    list_filter = ("type", ("dispatched_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("=event_id", "=out_trade_no")
    date_hierarchy = "created_at"


@admin.register(InboxNotification)
class InboxNotificationAdmin(PayhubAdmin):
    list_display = ("channel", "kind", "out_trade_no", "outcome", "received_at", "processed_at")
    list_filter = ("channel", "kind", "outcome", "received_at")
    search_fields = ("=out_trade_no", "=event_key")
    date_hierarchy = "received_at"
    # The raw body is kept for audits and replays; it is not shown on the page.
    exclude = ("raw_body",)
