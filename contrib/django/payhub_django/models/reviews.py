"""Risk reviews (``payhub_risk_reviews``): payments a risk rule held, approved or
declined through the hub."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

from payhub_django.models._fields import PayhubModel, StoredJSONField, UTCDateTimeField
from payhub_django.models.payments import Payment

__all__ = ["RiskReview"]


class RiskReview(PayhubModel):
    """A payment held for review by a risk rule: open, approved or declined."""

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(
        Payment, models.DO_NOTHING, related_name="reviews", db_constraint=False
    )
    out_trade_no = models.CharField("order number", max_length=64, unique=True)
    status = models.CharField(max_length=16)
    rule = models.CharField(max_length=64)
    verdict = StoredJSONField()
    created_at = UTCDateTimeField("created")
    decided_at = UTCDateTimeField("decided", null=True)
    decided_by = models.CharField(max_length=128, null=True)
    note = models.CharField(max_length=512, null=True)
    out_refund_no = models.CharField("refund number", max_length=64, null=True)

    class Meta:
        managed = False
        db_table = "payhub_risk_reviews"
        ordering = ("-id",)
        verbose_name = "risk review"

    def __str__(self) -> str:
        return f"review of {self.out_trade_no}"
