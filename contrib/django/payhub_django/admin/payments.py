"""Payments (sync, refund), their refunds (sync) and attempts in the admin."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django import forms  # type: ignore[import-untyped]
from django.contrib import admin, messages  # type: ignore[import-untyped]
from django.db.models import QuerySet  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from payhub import AmountError, Money, PayHub, PayhubError, RefundRequest
from payhub.tz import SHANGHAI
from payhub_django.admin._base import PayhubAdmin, action, display, shown, with_hub
from payhub_django.models import Attempt, AuditEntry, Payment, Refund

__all__ = ["PaymentAdmin", "RefundAdmin", "RefundForm"]


class RefundForm(forms.Form):  # type: ignore[misc]  # Django ships no type hints
    """What an operator fills in before a refund is sent."""

    out_refund_no = forms.CharField(
        label="refund number",
        max_length=64,
        help_text="Send the same number again to retry the same refund, never a new one.",
    )
    amount = forms.CharField(label="amount (yuan)", max_length=20)
    reason = forms.CharField(label="reason", max_length=256)

    def __init__(self, *args: Any, currency: str = "CNY", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self) -> Money:
        text = self.cleaned_data["amount"].strip()
        try:
            amount = Money.parse(text, self.currency)
        except AmountError as exc:
            raise forms.ValidationError(exc.message) from None
        if amount.is_zero():
            raise forms.ValidationError("the amount must be more than zero")
        return amount


def new_refund_number(now: datetime | None = None) -> str:
    """``RF`` + Shanghai time + 6 random hex digits: letters and digits only, so
    every channel's refund-number rule accepts it (UnionPay's is the strictest)."""
    stamp = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")
    return f"RF{stamp}{secrets.token_hex(3).upper()}"


class AttemptInline(admin.TabularInline):  # type: ignore[misc]
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("seq", "channel", "outcome", "error_code", "channel_code", "message", "may_exist")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RefundInline(admin.TabularInline):  # type: ignore[misc]
    model = Refund
    extra = 0
    can_delete = False
    fields = ("out_refund_no", "refund_amount", "status", "origin", "reason", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @display(description="amount")
    def refund_amount(self, refund: Refund) -> str:
        return shown(refund.amount)


class AuditInline(admin.TabularInline):  # type: ignore[misc]
    model = AuditEntry
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "cause", "source")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(PayhubAdmin):
    list_display = (
        "out_trade_no",
        "amount_shown",
        "refunded_shown",
        "status",
        "channel",
        "method",
        "created_at",
        "paid_at",
    )
    list_filter = ("status", "channel", "method", "created_at", "paid_at")
    search_fields = ("=out_trade_no", "=channel_trade_id", "subject")
    date_hierarchy = "created_at"
    inlines = (AttemptInline, RefundInline, AuditInline)
    actions = ("sync_payments", "refund_payment")
    exclude = ("amount_minor", "refunded_minor", "channel_context", "version")
    readonly_fields = ("amount_shown", "refunded_shown")

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, payment: Payment) -> str:
        return shown(payment.amount)

    @display(description="refunded", ordering="refunded_minor")
    def refunded_shown(self, payment: Payment) -> str:
        return shown(payment.refunded)

    @action(description="Sync with the channel (query and apply)", permissions=["act"])
    def sync_payments(self, request: HttpRequest, queryset: QuerySet) -> None:
        def work(hub: PayHub) -> None:
            for payment in queryset:
                try:  # one channel failing does not stop the others
                    record = hub.sync_payment(payment.out_trade_no)
                except PayhubError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                    continue
                state = "unknown" if record is None else record.status.value
                self.log_change(request, payment, f"synced through payhub: {state}")
                self.message_user(request, f"{payment.out_trade_no}: {state}", messages.SUCCESS)

        with_hub(request, self, work)

    @action(description="Refund (asks for the amount and reason)", permissions=["act"])
    def refund_payment(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        payments = list(queryset[:2])
        if len(payments) != 1:
            self.message_user(request, "Refund one payment at a time.", messages.WARNING)
            return None
        (payment,) = payments
        refundable = Money(payment.amount_minor - payment.refunded_minor, payment.currency)
        if "confirm" in request.POST:
            form = RefundForm(request.POST, currency=payment.currency)
            if form.is_valid() and self._refund(request, payment, form):
                return None
        else:
            form = RefundForm(
                initial={
                    "out_refund_no": new_refund_number(),
                    "amount": refundable.to_decimal_string(),
                },
                currency=payment.currency,
            )
        return self.render_action_form(
            request,
            "admin/payhub_django/refund.html",
            {
                "title": f"Refund {payment.out_trade_no}",
                "payment": payment,
                "paid": shown(payment.amount),
                "refundable": shown(refundable),
                "form": form,
                "action": "refund_payment",
            },
        )

    def _refund(self, request: HttpRequest, payment: Payment, form: RefundForm) -> bool:
        """Send the refund through the hub; False (the form shown again) if it failed."""
        done = []

        def work(hub: PayHub) -> None:
            data = form.cleaned_data
            result = hub.refund(
                None,
                RefundRequest(
                    out_trade_no=payment.out_trade_no,
                    out_refund_no=data["out_refund_no"],
                    amount=data["amount"],
                    reason=data["reason"],
                ),
            )
            message = (
                f"refund {result.out_refund_no} of {shown(data['amount'])}: "
                f"{result.status.value} (reason: {data['reason']})"
            )
            self.log_change(request, payment, message)
            self.message_user(request, message, messages.SUCCESS)
            done.append(result)

        with_hub(request, self, work)
        return bool(done)


@admin.register(Refund)
class RefundAdmin(PayhubAdmin):
    list_display = (
        "out_refund_no",
        "payment",
        "amount_shown",
        "status",
        "channel",
        "origin",
        "created_at",
    )
    list_filter = ("status", "channel", "origin", "created_at")
    search_fields = ("=out_refund_no", "=payment__out_trade_no", "=channel_refund_id")
    date_hierarchy = "created_at"
    list_select_related = ("payment",)
    actions = ("sync_refunds",)
    exclude = ("amount_minor", "channel_context")
    readonly_fields = ("amount_shown",)

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, refund: Refund) -> str:
        return shown(refund.amount)

    @action(description="Sync with the channel (query and apply)", permissions=["act"])
    def sync_refunds(self, request: HttpRequest, queryset: QuerySet) -> None:
        def work(hub: PayHub) -> None:
            for refund in queryset:
                try:
                    record = hub.sync_refund(refund.out_refund_no)
                except PayhubError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                    continue
                self.log_change(request, refund, f"synced through payhub: {record.status.value}")
                self.message_user(
                    request, f"{refund.out_refund_no}: {record.status.value}", messages.SUCCESS
                )

        with_hub(request, self, work)
