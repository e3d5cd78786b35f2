"""The Django application config of payhub_django."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]
from django.core import checks  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]

from payhub.signing import guard_http_logs
from payhub_django._hub import on_setting_changed
from payhub_django.checks import check_settings

__all__ = ["PayhubConfig"]


class PayhubConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints: Any
    name = "payhub_django"
    verbose_name = "payhub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        setting_changed.connect(on_setting_changed, dispatch_uid="payhub_django.settings")
        checks.register(check_settings, "payhub")
        # runserver logs each request line, Alipay's return URL with its ``sign``.
        guard_http_logs("django.server")
        # A meaningless body cap fails at start-up, not on the first notification.
        from payhub_django.views import max_notification_bytes  # noqa: PLC0415

        max_notification_bytes()
