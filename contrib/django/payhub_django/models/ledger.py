"""The ledger (``payhub_ledger_*``): accounts and their balances, entries and their
lines, settlement batches and their members, holds and withdrawals. Read only:
entries are immutable, and holds and withdrawals change through ``hub.ledger``."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

from payhub import Money
from payhub_django.models._fields import PayhubModel, UTCDateTimeField, money

__all__ = [
    "BatchMember",
    "Hold",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerLine",
    "SettlementBatch",
    "Withdrawal",
]


class LedgerAccount(PayhubModel):
    """One account of a party (pending, available, frozen, ...) in one currency;
    its balance on the account's normal side, kept with the lines."""

    id = models.BigAutoField(primary_key=True)
    party = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    balance_minor = models.BigIntegerField("balance (minor units)", default=0)
    version = models.BigIntegerField(default=0)
    created_at = UTCDateTimeField("created")

    class Meta:
        managed = False
        db_table = "payhub_ledger_accounts"
        ordering = ("party", "kind", "currency")
        unique_together = (("party", "kind", "currency"),)
        verbose_name = "ledger account"

    def __str__(self) -> str:
        return f"{self.party}:{self.kind} ({self.currency})"

    @property
    def balance(self) -> Money:
        return Money(self.balance_minor, self.currency)


class LedgerEntry(PayhubModel):
    """One posting (a payment, a refund, a settlement, a hold, ...): its lines sum
    to zero; never updated or deleted."""

    id = models.BigAutoField(primary_key=True)
    idempotency_key = models.CharField(max_length=191, unique=True)
    cause = models.CharField(max_length=24)
    reference = models.CharField(max_length=191)
    party = models.CharField(max_length=64, null=True)
    plan = models.CharField(max_length=32, null=True)
    available_on = UTCDateTimeField("available on", null=True)
    currency = models.CharField(max_length=3, null=True)
    pending_minor = models.BigIntegerField("pending moved (minor units)", null=True)
    digest = models.CharField(max_length=64)
    created_at = UTCDateTimeField("created")

    class Meta:
        managed = False
        db_table = "payhub_ledger_entries"
        ordering = ("-id",)
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"#{self.id} {self.cause} {self.reference}"

    @property
    def pending(self) -> Money | None:
        return money(self.pending_minor, self.currency)


class LedgerLine(PayhubModel):
    """One leg of an entry: a debit positive, a credit negative."""

    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(
        LedgerEntry, models.DO_NOTHING, related_name="lines", db_constraint=False
    )
    account = models.ForeignKey(
        LedgerAccount, models.DO_NOTHING, related_name="lines", db_constraint=False
    )
    amount_minor = models.BigIntegerField("amount (minor units)")
    currency = models.CharField(max_length=3)
    created_at = UTCDateTimeField("created")

    class Meta:
        managed = False
        db_table = "payhub_ledger_lines"
        ordering = ("entry_id", "id")
        verbose_name = "ledger line"

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_minor} {self.currency}"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class SettlementBatch(PayhubModel):
    """The pending entries of one party, currency and day moved to available by one
    settlement entry."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=191, unique=True)
    party = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    available_on = UTCDateTimeField("available on")
    amount_minor = models.BigIntegerField("amount (minor units)")
    entry_count = models.IntegerField("entries")
    entry = models.ForeignKey(
        LedgerEntry,
        models.DO_NOTHING,
        null=True,
        related_name="settled_batches",
        db_constraint=False,
        verbose_name="settlement entry",
    )
    created_at = UTCDateTimeField("created")

    class Meta:
        managed = False
        db_table = "payhub_ledger_batches"
        ordering = ("-id",)
        verbose_name = "settlement batch"
        verbose_name_plural = "settlement batches"

    def __str__(self) -> str:
        return f"batch {self.id} {self.party}"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class BatchMember(PayhubModel):
    """An entry settled in a batch (each entry lands in exactly one)."""

    entry = models.OneToOneField(
        LedgerEntry,
        models.DO_NOTHING,
        primary_key=True,
        related_name="batch_membership",
        db_constraint=False,
    )
    batch = models.ForeignKey(
        SettlementBatch, models.DO_NOTHING, related_name="members", db_constraint=False
    )

    class Meta:
        managed = False
        db_table = "payhub_ledger_batch_members"
        ordering = ("entry_id",)
        verbose_name = "batch member"

    def __str__(self) -> str:
        return f"entry {self.entry_id} in batch {self.batch_id}"


class Hold(PayhubModel):
    """Money of a party frozen (冻结): released back, captured, or expired."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=191, unique=True)
    party = models.CharField(max_length=64)
    amount_minor = models.BigIntegerField("amount (minor units)")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    reason = models.CharField(max_length=256, null=True)
    expires_at = UTCDateTimeField("expires", null=True)
    created_at = UTCDateTimeField("created")
    updated_at = UTCDateTimeField("updated")

    class Meta:
        managed = False
        db_table = "payhub_ledger_holds"
        ordering = ("-id",)

    def __str__(self) -> str:
        return f"hold {self.id} {self.party}"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class Withdrawal(PayhubModel):
    """A party's withdrawal (提现): pending until marked paid or failed."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=191, unique=True)
    party = models.CharField(max_length=64)
    amount_minor = models.BigIntegerField("amount (minor units)")
    fee_minor = models.BigIntegerField("fee (minor units)")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    note = models.CharField(max_length=256, null=True)
    created_at = UTCDateTimeField("created")
    updated_at = UTCDateTimeField("updated")

    class Meta:
        managed = False
        db_table = "payhub_ledger_withdrawals"
        ordering = ("-id",)

    def __str__(self) -> str:
        return f"withdrawal {self.id} {self.party}"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def fee(self) -> Money:
        return Money(self.fee_minor, self.currency)
