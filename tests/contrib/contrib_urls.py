"""The URLconf of the Django adapter tests."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path
from payhub_django import ReturnOutcome, views


def shop_return(request: HttpRequest, outcome: ReturnOutcome) -> HttpResponse:
    """A shop's own return handler: a redirect to its order page."""
    if outcome.info is None:
        return HttpResponseRedirect("/orders/unknown")
    return HttpResponseRedirect(f"/orders/{outcome.info.out_trade_no}")


def shop_form(request: HttpRequest) -> HttpResponse:
    """An ordinary view, CSRF-protected, to show the check is on."""
    return HttpResponse("posted")


urlpatterns = [
    path("payhub/", include("payhub_django.urls")),
    path("admin/", admin.site.urls),
    path("shop/form/", shop_form),
    path("shop/back/<str:channel>/", views.browser_return, {"on_return": shop_return}),
]
