"""The ledger in the admin: accounts (balances in yuan), entries with their lines,
settlement batches with their members (all read only), holds (release, capture)
and withdrawals (mark paid, mark failed) through ``hub.ledger``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin  # type: ignore[import-untyped]
from django.db.models import QuerySet  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from payhub import PayHub
from payhub_django.admin._base import NoteForm, PayhubAdmin, action, display, shown
from payhub_django.models import (
    BatchMember,
    Hold,
    LedgerAccount,
    LedgerEntry,
    LedgerLine,
    SettlementBatch,
    Withdrawal,
)

__all__ = [
    "HoldAdmin",
    "LedgerAccountAdmin",
    "LedgerEntryAdmin",
    "SettlementBatchAdmin",
    "WithdrawalAdmin",
]


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[misc]  # Django ships no type hints
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(PayhubAdmin):
    list_display = ("party", "kind", "currency", "balance_shown", "version", "created_at")
    list_filter = ("kind", "currency")
    search_fields = ("=party",)
    exclude = ("balance_minor",)
    readonly_fields = ("balance_shown",)

    @display(description="balance", ordering="balance_minor")
    def balance_shown(self, account: LedgerAccount) -> str:
        return shown(account.balance)


class LedgerLineInline(_ReadOnlyInline):
    model = LedgerLine
    fields = ("account", "debit", "credit")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("account")

    @display(description="debit")
    def debit(self, line: LedgerLine) -> str:
        return shown(line.amount) if line.amount_minor > 0 else ""

    @display(description="credit")
    def credit(self, line: LedgerLine) -> str:
        return shown(-line.amount) if line.amount_minor < 0 else ""


@admin.register(LedgerEntry)
class LedgerEntryAdmin(PayhubAdmin):
    list_display = (
        "id",
        "cause",
        "reference",
        "party",
        "pending_shown",
        "available_on",
        "created_at",
    )
    list_filter = ("cause", "plan", "created_at")
    search_fields = ("=reference", "=party", "=idempotency_key")
    date_hierarchy = "created_at"
    inlines = (LedgerLineInline,)
    exclude = ("pending_minor", "digest")
    readonly_fields = ("pending_shown",)

    @display(description="pending moved", ordering="pending_minor")
    def pending_shown(self, entry: LedgerEntry) -> str:
        return shown(entry.pending)


class BatchMemberInline(_ReadOnlyInline):
    model = BatchMember
    fields = ("entry", "cause", "reference", "pending")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("entry")

    @display(description="cause")
    def cause(self, member: BatchMember) -> str:
        return str(member.entry.cause)

    @display(description="reference")
    def reference(self, member: BatchMember) -> str:
        return str(member.entry.reference)

    @display(description="pending moved")
    def pending(self, member: BatchMember) -> str:
        return shown(member.entry.pending)


@admin.register(SettlementBatch)
class SettlementBatchAdmin(PayhubAdmin):
    list_display = (
        "id",
        "party",
        "amount_shown",
        "entry_count",
        "available_on",
        "entry",
        "created_at",
    )
    list_filter = ("currency", "available_on")
    search_fields = ("=party", "=key")
    date_hierarchy = "available_on"
    inlines = (BatchMemberInline,)
    exclude = ("amount_minor",)
    readonly_fields = ("amount_shown",)

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, batch: SettlementBatch) -> str:
        return shown(batch.amount)


@admin.register(Hold)
class HoldAdmin(PayhubAdmin):
    list_display = ("id", "party", "amount_shown", "status", "reason", "expires_at", "created_at")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("=party", "=key")
    date_hierarchy = "created_at"
    actions = ("release_holds", "capture_holds")
    exclude = ("amount_minor",)
    readonly_fields = ("amount_shown",)

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, hold: Hold) -> str:
        return shown(hold.amount)

    @action(description="Release (back to the party's available balance)", permissions=["act"])
    def release_holds(self, request: HttpRequest, queryset: QuerySet) -> None:
        def release(hub: PayHub, hold: Hold) -> str:
            record = hub.ledger.release(hold.id)
            return f"released through payhub: {shown(record.amount)} back to {record.party}"

        self.act_on_each(request, list(queryset), release)

    @action(description="Capture (asks why; taken from the party)", permissions=["act"])
    def capture_holds(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        def capture(hub: PayHub, hold: Hold, data: dict[str, Any]) -> str:
            record = hub.ledger.capture(hold.id)
            return (
                f"captured through payhub: {shown(record.amount)} from {record.party} "
                f"({data['note']})"
            )

        return self.ask_then_act(
            request,
            list(queryset),
            form_class=CaptureForm,
            action="capture_holds",
            title="Capture holds",
            intro="Each frozen amount is taken from its party for good (to the platform's "
            "captured account); the reason is kept in the admin history.",
            submit="Capture",
            do=capture,
        )


class CaptureForm(NoteForm):
    """Why frozen money is taken from a seller (kept in the admin history)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"].label = "reason"
        self.fields["note"].required = True


class PayoutNoteForm(NoteForm):
    """The bank's or channel's reference once paid, or why the payout failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"].required = True
        self.fields["note"].help_text = (
            "Paid: the bank's or channel's reference. Failed: why (the money and its fee go "
            "back to the party's available balance)."
        )


@admin.register(Withdrawal)
class WithdrawalAdmin(PayhubAdmin):
    list_display = (
        "id",
        "party",
        "amount_shown",
        "fee_shown",
        "status",
        "note",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", "currency", "created_at")
    search_fields = ("=party", "=key")
    date_hierarchy = "created_at"
    actions = ("mark_paid", "mark_failed")
    exclude = ("amount_minor", "fee_minor")
    readonly_fields = ("amount_shown", "fee_shown")

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, withdrawal: Withdrawal) -> str:
        return shown(withdrawal.amount)

    @display(description="fee", ordering="fee_minor")
    def fee_shown(self, withdrawal: Withdrawal) -> str:
        return shown(withdrawal.fee)

    @action(description="Mark paid (asks for the payout reference)", permissions=["act"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        def paid(hub: PayHub, withdrawal: Withdrawal, data: dict[str, Any]) -> str:
            record = hub.ledger.mark_withdrawal_paid(withdrawal.id, data["note"])
            return f"marked paid through payhub: {shown(record.amount)} ({record.note})"

        return self.ask_then_act(
            request,
            list(queryset),
            form_class=PayoutNoteForm,
            action="mark_paid",
            title="Mark withdrawals paid",
            intro="The money left the platform: each withdrawal moves to paid out.",
            submit="Mark paid",
            do=paid,
        )

    @action(description="Mark failed (asks why)", permissions=["act"])
    def mark_failed(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        def failed(hub: PayHub, withdrawal: Withdrawal, data: dict[str, Any]) -> str:
            record = hub.ledger.mark_withdrawal_failed(withdrawal.id, data["note"])
            return f"marked failed through payhub: {shown(record.amount)} back ({record.note})"

        return self.ask_then_act(
            request,
            list(queryset),
            form_class=PayoutNoteForm,
            action="mark_failed",
            title="Mark withdrawals failed",
            intro="The payout failed: the amount and its fee go back to available.",
            submit="Mark failed",
            do=failed,
        )
