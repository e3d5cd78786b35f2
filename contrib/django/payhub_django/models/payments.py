"""Payments, their channel attempts, refunds and audit trail (read-only views of
``payhub_payments``, ``payhub_attempts``, ``payhub_refunds``, ``payhub_audit``)."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

from payhub import Money
from payhub_django.models._fields import PayhubModel, UTCDateTimeField, money

__all__ = ["Attempt", "AuditEntry", "Payment", "Refund"]


class Payment(PayhubModel):
    """A payment as payhub's store keeps it; changed only through the hub."""

    id = models.BigAutoField(primary_key=True)
    out_trade_no = models.CharField("order number", max_length=64, unique=True)
    amount_minor = models.BigIntegerField("amount (minor units)")
    currency = models.CharField(max_length=3)
    subject = models.CharField(max_length=256)
    method = models.CharField(max_length=16)
    status = models.CharField(max_length=24)
    channel = models.CharField(max_length=64, null=True)
    channel_trade_id = models.CharField("channel trade", max_length=128, null=True)
    channel_context = models.TextField(null=True)
    paid_at = UTCDateTimeField("paid", null=True)
    refunded_minor = models.BigIntegerField("refunded (minor units)", default=0)
    created_at = UTCDateTimeField("created")
    updated_at = UTCDateTimeField("updated")
    version = models.IntegerField(default=1)
    deferred_refunds = models.BooleanField(default=False)

    class Meta:
        managed = False
        db_table = "payhub_payments"
        ordering = ("-id",)

    def __str__(self) -> str:
        return str(self.out_trade_no)

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def refunded(self) -> Money:
        return Money(self.refunded_minor, self.currency)


class Attempt(PayhubModel):
    """One channel tried for a payment (failover keeps every attempt)."""

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(
        Payment, models.DO_NOTHING, related_name="attempts", db_constraint=False
    )
    seq = models.IntegerField()
    channel = models.CharField(max_length=64)
    outcome = models.CharField(max_length=24)
    error_code = models.CharField(max_length=48, null=True)
    channel_code = models.CharField(max_length=64, null=True)
    message = models.CharField(max_length=255, null=True)
    may_exist = models.BooleanField()
    channel_trade_id = models.CharField(max_length=128, null=True)
    created_at = UTCDateTimeField("created")

    class Meta:
        managed = False
        db_table = "payhub_attempts"
        ordering = ("payment_id", "seq")

    def __str__(self) -> str:
        return f"{self.payment_id}#{self.seq} {self.channel}"


class Refund(PayhubModel):
    """A refund of a payment; asked through the hub or learnt from the channel."""

    id = models.BigAutoField(primary_key=True)
    out_refund_no = models.CharField("refund number", max_length=64, unique=True)
    payment = models.ForeignKey(
        Payment, models.DO_NOTHING, related_name="refunds", db_constraint=False
    )
    channel = models.CharField(max_length=64)
    amount_minor = models.BigIntegerField("amount (minor units)")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    channel_refund_id = models.CharField("channel refund", max_length=128, null=True)
    reason = models.CharField(max_length=256, null=True)
    origin = models.CharField(max_length=16)
    created_at = UTCDateTimeField("created")
    updated_at = UTCDateTimeField("updated")
    channel_context = models.TextField(null=True)
    anomaly_id = models.BigIntegerField(null=True)

    class Meta:
        managed = False
        db_table = "payhub_refunds"
        ordering = ("-id",)

    def __str__(self) -> str:
        return str(self.out_refund_no)

    @property
    def amount(self) -> Money | None:
        return money(self.amount_minor, self.currency)


class AuditEntry(PayhubModel):
    """One transition of a payment: from, to, what caused it."""

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(
        Payment, models.DO_NOTHING, related_name="audit", db_constraint=False
    )
    from_status = models.CharField(max_length=24, null=True)
    to_status = models.CharField(max_length=24)
    cause = models.CharField(max_length=16)
    source = models.CharField(max_length=320)
    at = UTCDateTimeField()

    class Meta:
        managed = False
        db_table = "payhub_audit"
        ordering = ("id",)
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} ({self.cause})"
