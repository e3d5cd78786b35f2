"""Risk reviews in the admin: approve (the goods are delivered) or decline (the
payment is refunded) through the hub's review API, the operator being the
logged-in user."""

from __future__ import annotations

from typing import Any

from django.contrib import admin  # type: ignore[import-untyped]
from django.db.models import QuerySet  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from payhub import PayHub
from payhub_django.admin._base import NoteForm, PayhubAdmin, action
from payhub_django.models import RiskReview

__all__ = ["RiskReviewAdmin"]


@admin.register(RiskReview)
class RiskReviewAdmin(PayhubAdmin):
    list_display = (
        "out_trade_no",
        "status",
        "rule",
        "created_at",
        "decided_by",
        "decided_at",
        "out_refund_no",
    )
    list_filter = ("status", "rule", "created_at")
    search_fields = ("=out_trade_no", "decided_by")
    date_hierarchy = "created_at"
    list_select_related = ("payment",)
    actions = ("approve_reviews", "decline_reviews")

    @action(description="Approve (deliver the goods)", permissions=["act"])
    def approve_reviews(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        operator = request.user.get_username()

        def approve(hub: PayHub, review: RiskReview, data: dict[str, Any]) -> str:
            record = hub.approve_review(
                review.out_trade_no, operator=operator, note=data["note"] or None
            )
            return f"{record.status.value} through payhub by {operator}"

        return self.ask_then_act(
            request,
            list(queryset),
            form_class=NoteForm,
            action="approve_reviews",
            title="Approve reviews",
            intro="Each paid payment's goods are released (payment.succeeded is sent).",
            submit="Approve",
            do=approve,
        )

    @action(description="Decline (refund the payment)", permissions=["act"])
    def decline_reviews(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        operator = request.user.get_username()

        def decline(hub: PayHub, review: RiskReview, data: dict[str, Any]) -> str:
            record, refund = hub.decline_review(
                review.out_trade_no, operator=operator, note=data["note"] or None
            )
            sent = "" if refund is None else f"; refund {refund.out_refund_no}: "
            sent += "" if refund is None else refund.status.value
            return f"{record.status.value} through payhub by {operator}{sent}"

        return self.ask_then_act(
            request,
            list(queryset),
            form_class=NoteForm,
            action="decline_reviews",
            title="Decline reviews",
            intro="Each paid payment is refunded in full through the hub (declining again "
            "resends the same refund number).",
            submit="Decline",
            do=decline,
        )
