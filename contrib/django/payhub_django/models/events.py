"""The outbox (``payhub_events``) and the notification inbox (``payhub_notifications``)."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

from payhub_django.models._fields import PayhubModel, StoredJSONField, UTCDateTimeField

__all__ = ["Event", "InboxNotification"]


class Event(PayhubModel):
    """An outbox event; ``event_id`` is the stable id handlers see."""

    seq = models.BigAutoField(primary_key=True)
    # Django keeps the name ``id`` for primary keys; the column is ``id``.
    event_id = models.CharField("event id", max_length=32, unique=True, db_column="id")
    type = models.CharField(max_length=48)
    out_trade_no = models.CharField("order number", max_length=64, null=True)
    payload = StoredJSONField()
    created_at = UTCDateTimeField("created")
    dispatched_at = UTCDateTimeField("dispatched", null=True)
    claimed_until = UTCDateTimeField(null=True)
    attempts = models.IntegerField(default=0)
    last_error = models.CharField(max_length=512, null=True)

    class Meta:
        managed = False
        db_table = "payhub_events"
        ordering = ("-seq",)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class InboxNotification(PayhubModel):
    """A channel notification as received (raw bytes) and what became of it."""

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=64)
    event_key = models.CharField(max_length=191)
    kind = models.CharField(max_length=24)
    out_trade_no = models.CharField("order number", max_length=64)
    received_at = UTCDateTimeField("received")
    raw_body = models.BinaryField()
    payload = StoredJSONField(null=True)
    outcome = models.CharField(max_length=16)
    processed_at = UTCDateTimeField("processed", null=True)

    class Meta:
        managed = False
        db_table = "payhub_notifications"
        ordering = ("-id",)
        verbose_name = "inbox notification"

    def __str__(self) -> str:
        return f"{self.channel} {self.kind} {self.out_trade_no}"
