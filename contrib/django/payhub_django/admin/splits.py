"""Splits (分账) and payouts in the admin: lists in yuan, a split's lines on its
page, and "sync with the channel" for the processing ones through
``hub.sync_split`` / ``hub.sync_payout`` (a query under the same number, never a
new send). Read only: payhub writes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages  # type: ignore[import-untyped]
from django.db.models import QuerySet  # type: ignore[import-untyped]
from django.http import HttpRequest  # type: ignore[import-untyped]
from django.utils.html import format_html, format_html_join  # type: ignore[import-untyped]

from payhub import PayHub, PayhubError
from payhub_django.admin._base import PayhubAdmin, action, display, shown, with_hub
from payhub_django.models import Payout, Split

__all__ = ["PayoutAdmin", "SplitAdmin"]

_PROCESSING = "processing"


def _sync_processing(
    admin_view: PayhubAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    sync: Callable[[PayHub, Any], str],
) -> None:
    """Ask the channel about each selected processing record (``sync`` returns
    its status afterwards); a final one is only named (its outcome is known:
    nothing to ask). Each asked record is written to its admin history; one
    still processing is a warning (the channel has not settled it, or could not
    be asked: the hub's sync keeps no reason), a refusal an error, and the
    others go on."""
    selected = list(queryset)
    for done in (obj for obj in selected if obj.status != _PROCESSING):
        admin_view.message_user(
            request, f"{done}: already {done.status}, nothing asked", messages.INFO
        )
    processing = [obj for obj in selected if obj.status == _PROCESSING]
    if not processing:
        return

    def work(hub: PayHub) -> None:
        for obj in processing:
            try:
                status = sync(hub, obj)
            except PayhubError as exc:
                admin_view.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
                continue
            admin_view.log_change(request, obj, f"synced through payhub: {status}")
            if status == _PROCESSING:
                admin_view.message_user(
                    request,
                    f"{obj}: still processing (not settled at the channel yet, or the "
                    "channel could not be asked); ask again later, or let payhub sync",
                    messages.WARNING,
                )
            else:
                admin_view.message_user(
                    request, f"{obj}: synced through payhub: {status}", messages.SUCCESS
                )

    with_hub(request, admin_view, work)


@admin.register(Split)
class SplitAdmin(PayhubAdmin):
    list_display = (
        "out_split_no",
        "out_trade_no",
        "channel",
        "amount_shown",
        "status",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", "channel", "created_at")
    search_fields = ("=out_split_no", "=out_trade_no", "=channel_split_id")
    date_hierarchy = "created_at"
    actions = ("sync_splits",)
    exclude = ("amount_minor", "digest", "lines")
    readonly_fields = ("amount_shown", "lines_shown")

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, split: Split) -> str:
        return shown(split.amount)

    @display(description="lines")
    def lines_shown(self, split: Split) -> str:
        """Each receiver's part: whose ledger account, the channel account, the
        amount in yuan, its status and why it failed."""
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    line["party"],
                    line["kind"],
                    line["account"],
                    shown(amount),
                    line["description"],
                    line["status"],
                    line.get("fail_reason") or "",
                )
                for line, amount in split.parts()
            ),
        )
        result: str = format_html(
            "<table><thead><tr><th>party</th><th>kind</th><th>account</th><th>amount</th>"
            "<th>description</th><th>status</th><th>fail reason</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )
        return result

    @action(description="Sync with the channel (query the processing ones)", permissions=["act"])
    def sync_splits(self, request: HttpRequest, queryset: QuerySet) -> None:
        def sync(hub: PayHub, split: Split) -> str:
            return hub.sync_split(split.out_split_no).status.value

        _sync_processing(self, request, queryset, sync)


@admin.register(Payout)
class PayoutAdmin(PayhubAdmin):
    list_display = (
        "out_payout_no",
        "withdrawal",
        "party",
        "channel",
        "amount_shown",
        "status",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", "channel", "created_at")
    search_fields = ("=out_payout_no", "=party", "=channel_transfer_id")
    date_hierarchy = "created_at"
    list_select_related = ("withdrawal",)
    actions = ("sync_payouts",)
    exclude = ("amount_minor", "digest", "package_info")
    readonly_fields = ("amount_shown",)

    @display(description="amount", ordering="amount_minor")
    def amount_shown(self, payout: Payout) -> str:
        return shown(payout.amount)

    @action(description="Sync with the channel (query the processing ones)", permissions=["act"])
    def sync_payouts(self, request: HttpRequest, queryset: QuerySet) -> None:
        def sync(hub: PayHub, payout: Payout) -> str:
            return hub.sync_payout(payout.out_payout_no).status.value

        _sync_processing(self, request, queryset, sync)
