"""Splits (分账, ``payhub_splits``) and payouts (``payhub_payouts``): what
``hub.split`` and ``hub.payout`` stored and the channel's answers settled. Read
only: payhub writes them, and a processing one is settled by ``hub.sync_split``
/ ``hub.sync_payout``."""

from __future__ import annotations

from typing import Any

from django.db import models  # type: ignore[import-untyped]

from payhub import Money
from payhub_django.models._fields import PayhubModel, StoredJSONField, UTCDateTimeField
from payhub_django.models.ledger import Withdrawal

__all__ = ["Payout", "Split"]


class Split(PayhubModel):
    """A split of a paid payment among receivers, under the caller's number:
    processing, succeeded, failed, partial (some lines moved) or refused."""

    id = models.BigAutoField(primary_key=True)
    out_split_no = models.CharField("split number", max_length=32, unique=True)
    out_trade_no = models.CharField("order number", max_length=64)
    channel = models.CharField(max_length=64)
    channel_trade_id = models.CharField("channel trade", max_length=128)
    seller = models.CharField(max_length=64, null=True)
    amount_minor = models.BigIntegerField("amount (minor units)")
    currency = models.CharField(max_length=3)
    finish = models.BooleanField(default=False)
    digest = models.CharField(max_length=64)
    status = models.CharField(max_length=16)
    channel_split_id = models.CharField("channel split", max_length=128, null=True)
    lines = StoredJSONField()
    error = models.CharField(max_length=256, null=True)
    created_at = UTCDateTimeField("created")
    updated_at = UTCDateTimeField("updated")

    class Meta:
        managed = False
        db_table = "payhub_splits"
        ordering = ("-id",)

    def __str__(self) -> str:
        return str(self.out_split_no)

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    def parts(self) -> list[tuple[dict[str, Any], Money]]:
        """Each receiver's line (party, kind, account, description, status,
        fail_reason) with its amount as :class:`~payhub.Money`."""
        return [(line, Money(int(line["amount_minor"]), self.currency)) for line in self.lines]


class Payout(PayhubModel):
    """A withdrawal paid out through a channel (Alipay transfer, WeChat
    transfer): processing, succeeded (the withdrawal is paid), failed (it went
    back to available) or refused (nothing moved)."""

    id = models.BigAutoField(primary_key=True)
    out_payout_no = models.CharField("payout number", max_length=32, unique=True)
    withdrawal = models.ForeignKey(
        Withdrawal, models.DO_NOTHING, related_name="payouts", db_constraint=False
    )
    party = models.CharField(max_length=64)
    channel = models.CharField(max_length=64)
    payee_kind = models.CharField("payee kind", max_length=16)
    payee_account = models.CharField("payee account", max_length=64)
    amount_minor = models.BigIntegerField("amount (minor units)")
    currency = models.CharField(max_length=3)
    digest = models.CharField(max_length=64)
    status = models.CharField(max_length=16)
    channel_transfer_id = models.CharField("channel transfer", max_length=128, null=True)
    package_info = models.CharField(max_length=512, null=True)
    error = models.CharField(max_length=256, null=True)
    created_at = UTCDateTimeField("created")
    updated_at = UTCDateTimeField("updated")

    class Meta:
        managed = False
        db_table = "payhub_payouts"
        ordering = ("-id",)

    def __str__(self) -> str:
        return str(self.out_payout_no)

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)
