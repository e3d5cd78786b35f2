"""What every payhub admin shares: read-only pages in Asia/Shanghai time, money
in yuan, actions that go through the hub."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django import forms  # type: ignore[import-untyped]
from django.contrib import admin, messages  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.template.response import TemplateResponse  # type: ignore[import-untyped]
from django.utils import timezone  # type: ignore[import-untyped]

from payhub import Money, PayHub, PayhubError
from payhub.tz import SHANGHAI
from payhub_django._hub import get_hub

__all__ = ["NoteForm", "PayhubAdmin", "action", "display", "shown", "with_hub"]

F = TypeVar("F", bound=Callable[..., Any])


def display(**options: Any) -> Callable[[F], F]:
    """``admin.display``, typed (Django ships no type hints)."""
    decorate: Callable[[F], F] = admin.display(**options)
    return decorate


def action(**options: Any) -> Callable[[F], F]:
    """``admin.action``, typed."""
    decorate: Callable[[F], F] = admin.action(**options)
    return decorate


def shown(amount: Money | None) -> str:
    """``12.34 CNY``: yuan (major units) and the currency; ``-`` if unknown."""
    return "-" if amount is None else str(amount)


def with_hub(request: HttpRequest, admin_site: Any, work: Callable[[PayHub], None]) -> None:
    """Run ``work`` with the process's hub; a payhub error or a bad configuration
    becomes an error message on the page, never a server error."""
    try:
        work(get_hub())
    except ImproperlyConfigured as exc:
        admin_site.message_user(request, f"payhub is not configured: {exc}", messages.ERROR)
    except PayhubError as exc:
        admin_site.message_user(request, exc.message, messages.ERROR)


class NoteForm(forms.Form):  # type: ignore[misc]  # Django ships no type hints
    """A note kept with what an action did (optional unless a subclass says so)."""

    note = forms.CharField(
        label="note", max_length=256, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class PayhubAdmin(admin.ModelAdmin):  # type: ignore[misc]  # Django ships no type hints
    """payhub's rows are read here and changed only by the actions, through the
    hub (which keeps the audit trail and the events): no add, change or delete.
    Times show in Asia/Shanghai, whatever ``settings.TIME_ZONE`` is."""

    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over millions of payments per page view

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """The actions (sync, refund, resolve) need the model's "change" permission."""
        opts = self.model._meta
        return bool(request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return _in_shanghai(
            lambda: super(PayhubAdmin, self).changelist_view(request, extra_context)
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return _in_shanghai(
            lambda: super(PayhubAdmin, self).change_view(
                request, object_id, form_url, extra_context
            )
        )

    def act_on_each(
        self, request: HttpRequest, objects: Iterable[Any], do: Callable[[PayHub, Any], str]
    ) -> None:
        """``do(hub, obj)`` for each object: what it returns is recorded in the admin
        history and shown; a refusal (a typed payhub error) is shown as an error
        message and the others go on."""

        def work(hub: PayHub) -> None:
            for obj in objects:
                try:
                    message = do(hub, obj)
                except PayhubError as exc:
                    self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
                    continue
                self.log_change(request, obj, message)
                self.message_user(request, f"{obj}: {message}", messages.SUCCESS)

        with_hub(request, self, work)

    def ask_then_act(
        self,
        request: HttpRequest,
        objects: list[Any],
        *,
        form_class: type[forms.Form],
        action: str,
        title: str,
        intro: str,
        submit: str,
        do: Callable[[PayHub, Any, dict[str, Any]], str],
    ) -> HttpResponse | None:
        """An action that asks first (a note, a reason): the form until it is
        confirmed and valid, then ``do(hub, obj, cleaned_data)`` for each object."""
        form = form_class(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            data = form.cleaned_data
            self.act_on_each(request, objects, lambda hub, obj: do(hub, obj, data))
            return None
        return self.render_action_form(
            request,
            "admin/payhub_django/confirm.html",
            {
                "title": title,
                "intro": intro,
                "objects": objects,
                "form": form,
                "action": action,
                "submit": submit,
            },
        )

    def render_action_form(
        self, request: HttpRequest, template: str, context: dict[str, Any]
    ) -> TemplateResponse:
        """An action's own page (amount and reason of a refund, reason of a resolution)."""
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                **context,
            },
        )


def _in_shanghai(view: Callable[[], HttpResponse]) -> HttpResponse:
    """Run and render the view in Asia/Shanghai time (the date hierarchy's days too)."""
    with timezone.override(SHANGHAI):
        response = view()
        if isinstance(response, TemplateResponse):
            response.render()
        return response
