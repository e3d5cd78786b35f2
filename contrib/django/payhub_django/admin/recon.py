"""Reconciliation differences in the admin: resolved as "ignore" with a reason
through :meth:`payhub.recon.Reconciler.resolve` (audited with the operator)."""

from __future__ import annotations

from typing import Any

from django import forms  # type: ignore[import-untyped]
from django.contrib import admin  # type: ignore[import-untyped]
from django.db.models import QuerySet  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from payhub import PayHub
from payhub.recon import Reconciler, Repair
from payhub_django.admin._base import PayhubAdmin, action, display, shown
from payhub_django.models import ReconDifference

__all__ = ["IgnoreForm", "ReconDifferenceAdmin"]


class IgnoreForm(forms.Form):  # type: ignore[misc]  # Django ships no type hints
    reason = forms.CharField(
        label="reason",
        max_length=512,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the difference is accepted as it is (kept with its repair record).",
    )


@admin.register(ReconDifference)
class ReconDifferenceAdmin(PayhubAdmin):
    list_display = (
        "id",
        "channel",
        "bill_date",
        "kind",
        "status",
        "out_trade_no",
        "out_refund_no",
        "bill_amount_shown",
        "store_amount_shown",
        "resolved_by",
    )
    list_filter = ("status", "kind", "channel", "bill_date")
    search_fields = ("=out_trade_no", "=out_refund_no", "=channel_trade_id")
    date_hierarchy = "bill_date"
    actions = ("ignore_differences",)
    exclude = ("bill_amount_minor", "store_amount_minor")
    readonly_fields = ("bill_amount_shown", "store_amount_shown")

    @display(description="bill amount", ordering="bill_amount_minor")
    def bill_amount_shown(self, item: ReconDifference) -> str:
        return shown(item.bill_amount)

    @display(description="store amount", ordering="store_amount_minor")
    def store_amount_shown(self, item: ReconDifference) -> str:
        return shown(item.store_amount)

    @action(description="Resolve: ignore (asks for the reason)", permissions=["act"])
    def ignore_differences(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        operator = request.user.get_username()

        def ignore(hub: PayHub, item: ReconDifference, data: dict[str, Any]) -> str:
            record = Reconciler(hub).resolve(
                item.id, Repair.IGNORE, operator=operator, reason=data["reason"]
            )
            return f"{record['status']} through payhub: {data['reason']}"

        return self.ask_then_act(
            request,
            list(queryset),
            form_class=IgnoreForm,
            action="ignore_differences",
            title="Ignore differences",
            intro="Each difference is accepted as it is: nothing is changed in the store.",
            submit="Ignore",
            do=ignore,
        )
