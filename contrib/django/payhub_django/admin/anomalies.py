"""Anomalies in the admin: resolve them with a reason, through the hub (audited)."""

from __future__ import annotations

from django import forms  # type: ignore[import-untyped]
from django.contrib import admin, messages  # type: ignore[import-untyped]
from django.db.models import QuerySet  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from payhub import PayHub, PayhubError
from payhub_django.admin._base import PayhubAdmin, action, display, shown, with_hub
from payhub_django.models import Anomaly

__all__ = ["AnomalyAdmin", "ResolveForm"]


class ResolveForm(forms.Form):  # type: ignore[misc]  # Django ships no type hints
    reason = forms.CharField(
        label="reason",
        max_length=512,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What was checked or done (kept with the anomaly and sent in its event).",
    )


@admin.register(Anomaly)
class AnomalyAdmin(PayhubAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "out_trade_no",
        "channel",
        "amount_shown",
        "created_at",
        "resolved_by",
    )
    list_filter = ("status", "kind", "channel", "created_at")
    search_fields = ("=out_trade_no", "=channel_trade_id", "resolved_by")
    date_hierarchy = "created_at"
    actions = ("resolve_anomalies",)
    exclude = ("amount_minor",)
    readonly_fields = ("amount_shown",)

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, anomaly: Anomaly) -> str:
        return shown(anomaly.amount)

    @action(description="Resolve (asks for the reason)", permissions=["act"])
    def resolve_anomalies(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        chosen = list(queryset.filter(status="open"))
        if not chosen:
            self.message_user(request, "None of these anomalies is open.", messages.WARNING)
            return None
        form = ResolveForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            operator = request.user.get_username()

            def work(hub: PayHub) -> None:
                for anomaly in chosen:
                    try:
                        hub.resolve_anomaly(anomaly.id, operator=operator, reason=reason)
                    except PayhubError as exc:
                        self.message_user(request, exc.message, messages.ERROR)
                        continue
                    self.log_change(request, anomaly, f"resolved through payhub: {reason}")
                    self.message_user(
                        request,
                        f"anomaly {anomaly.id} ({anomaly.kind}, {anomaly.out_trade_no}) resolved",
                        messages.SUCCESS,
                    )

            with_hub(request, self, work)
            return None
        return self.render_action_form(
            request,
            "admin/payhub_django/resolve.html",
            {
                "title": f"Resolve {len(chosen)} anomal{'y' if len(chosen) == 1 else 'ies'}",
                "anomalies": chosen,
                "form": form,
                "action": "resolve_anomalies",
            },
        )
