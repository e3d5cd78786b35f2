"""Reconciliation differences (``payhub_recon_items``): what a channel's bill and
the store disagree on, resolved through :class:`payhub.recon.Reconciler`."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

from payhub import Money
from payhub_django.models._fields import PayhubModel, StoredJSONField, UTCDateTimeField, money

__all__ = ["ReconDifference"]


class ReconDifference(PayhubModel):
    """One difference of one channel's bill of one day (open until resolved)."""

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=64)
    bill_date = models.DateField("bill date")
    kind = models.CharField(max_length=24)
    key = models.CharField(max_length=191)
    out_trade_no = models.CharField("order number", max_length=64, null=True)
    out_refund_no = models.CharField("refund number", max_length=64, null=True)
    channel_trade_id = models.CharField("channel trade", max_length=128, null=True)
    bill_amount_minor = models.BigIntegerField("bill amount (minor units)", null=True)
    store_amount_minor = models.BigIntegerField("store amount (minor units)", null=True)
    currency = models.CharField(max_length=3, null=True)
    bill_fee_minor = models.BigIntegerField("bill fee (minor units)", null=True)
    expected_fee_minor = models.BigIntegerField("expected fee (minor units)", null=True)
    detail = StoredJSONField()
    status = models.CharField(max_length=16)
    first_run_id = models.BigIntegerField("first run")
    last_run_id = models.BigIntegerField("last run")
    created_at = UTCDateTimeField("created")
    resolved_at = UTCDateTimeField("resolved", null=True)
    resolved_by = models.CharField(max_length=128, null=True)
    resolution = models.CharField(max_length=512, null=True)

    class Meta:
        managed = False
        db_table = "payhub_recon_items"
        ordering = ("-id",)
        unique_together = (("channel", "bill_date", "kind", "key"),)
        verbose_name = "reconciliation difference"

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.channel} {self.bill_date})"

    @property
    def bill_amount(self) -> Money | None:
        return money(self.bill_amount_minor, self.currency)

    @property
    def store_amount(self) -> Money | None:
        return money(self.store_amount_minor, self.currency)
