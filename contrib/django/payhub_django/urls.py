"""The payhub endpoints: ``path("payhub/", include("payhub_django.urls"))``.

``notify/<channel>/`` takes the channel's notifications (POST, or GET with the
signed form in the query string as EPay sends them; CSRF-exempt);
``return/<channel>/`` the buyer's browser return (GET, or POST for UnionPay).
Reverse them as ``payhub:notify`` and ``payhub:return``.
"""

from __future__ import annotations

from django.urls import path  # type: ignore[import-untyped]

from payhub_django import views

__all__ = ["app_name", "urlpatterns"]

app_name = "payhub"

urlpatterns = [
    path("notify/<str:channel>/", views.notify, name="notify"),
    path("return/<str:channel>/", views.browser_return, name="return"),
]
