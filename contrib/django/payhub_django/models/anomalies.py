"""Anomalies (``payhub_anomalies``): duplicate and late payments, mismatches."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

from payhub import Money
from payhub_django.models._fields import PayhubModel, StoredJSONField, UTCDateTimeField, money
from payhub_django.models.payments import Payment

__all__ = ["Anomaly"]


class Anomaly(PayhubModel):
    """Something a channel said that payhub recorded instead of crediting;
    resolved through the hub (who and why are kept)."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=191, unique=True)
    kind = models.CharField(max_length=24)
    out_trade_no = models.CharField("order number", max_length=64)
    payment = models.ForeignKey(
        Payment, models.DO_NOTHING, null=True, related_name="anomalies", db_constraint=False
    )
    channel = models.CharField(max_length=64)
    channel_trade_id = models.CharField("channel trade", max_length=128, null=True)
    amount_minor = models.BigIntegerField("amount (minor units)", null=True)
    currency = models.CharField(max_length=3, null=True)
    source = models.CharField(max_length=320)
    detail = StoredJSONField()
    status = models.CharField(max_length=16)
    created_at = UTCDateTimeField("created")
    resolved_at = UTCDateTimeField("resolved", null=True)
    resolved_by = models.CharField(max_length=128, null=True)
    resolution = models.CharField(max_length=512, null=True)

    class Meta:
        managed = False
        db_table = "payhub_anomalies"
        ordering = ("-id",)
        verbose_name_plural = "anomalies"

    def __str__(self) -> str:
        return f"{self.kind} {self.out_trade_no}"

    @property
    def amount(self) -> Money | None:
        return money(self.amount_minor, self.currency)
