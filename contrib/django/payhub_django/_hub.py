"""The process's hub: built lazily from ``settings.PAYHUB``, or injected."""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]

from payhub import ConfigurationError, Event, PayHub
from payhub_django.signals import send_event

if TYPE_CHECKING:
    from payhub.cli import ConfigSource

__all__ = ["get_hub", "hub_config", "on_setting_changed", "set_hub", "settings_source"]


class _Slot:
    """The hub, whether this module built it (then it closes it), and its signal bridge."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hub: PayHub | None = None
        self.owned = False
        self.bridge: Callable[[Event], None] | None = None

    def install(self, hub: PayHub | None, *, owned: bool) -> None:
        """Put ``hub`` in place (None: build from settings on next use); hold the lock."""
        old, old_owned = self.hub, self.owned
        if old is not None and self.bridge is not None:
            old.unsubscribe("*", self.bridge)
        self.hub, self.owned, self.bridge = hub, owned, None
        if old is not None and old_owned and old is not hub:
            old.close()
        if hub is not None and getattr(settings, "PAYHUB_SIGNALS", True):
            self.bridge = functools.partial(send_event, hub)
            hub.subscribe("*", self.bridge)

    def close(self) -> None:
        with self.lock:
            self.install(None, owned=False)


_slot = _Slot()
atexit.register(_slot.close)


def get_hub() -> PayHub:
    """The process's :class:`~payhub.PayHub`, built from ``settings.PAYHUB`` on first use.

    Built lazily (not at import) so that a pre-forking server gives each worker
    its own HTTP connections and database engine. Closed at process exit.
    """
    hub = _slot.hub
    if hub is not None:
        return hub
    with _slot.lock:
        if _slot.hub is None:
            _slot.install(_build(), owned=True)
        assert _slot.hub is not None
        return _slot.hub


def set_hub(hub: PayHub | None) -> None:
    """Use a pre-built hub (tests; a hub with an injected HTTP client or store).

    The caller keeps ownership: it is not closed here. ``set_hub(None)`` goes
    back to building one from ``settings.PAYHUB``. A hub this module built is
    closed when replaced. Events of the hub are sent as signals (unless
    ``settings.PAYHUB_SIGNALS`` is False).
    """
    with _slot.lock:
        _slot.install(hub, owned=False)


def hub_config() -> Mapping[str, Any]:
    """``settings.PAYHUB``, checked to be a mapping (ImproperlyConfigured if not)."""
    config: Any = getattr(settings, "PAYHUB", None)
    if config is None:
        raise ImproperlyConfigured(
            "payhub_django: set settings.PAYHUB to the hub configuration "
            "({'channels': {name: {'type': kind, ...}}})"
        )
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured("settings.PAYHUB must be a mapping")
    return config


def settings_source() -> ConfigSource:
    """``settings.PAYHUB`` as the ``payhub`` command's configuration (``manage.py payhub``)."""
    from payhub.cli import ConfigSource  # noqa: PLC0415 - the CLI only for commands

    def load() -> Mapping[str, Any]:
        try:
            return hub_config()
        except ImproperlyConfigured as exc:
            raise ConfigurationError(str(exc)) from None

    return ConfigSource("settings.PAYHUB", load)


def _build() -> PayHub:
    try:
        return PayHub.from_config(hub_config())
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"settings.PAYHUB: {exc.message}") from exc


def on_setting_changed(*, setting: str, **kwargs: object) -> None:
    """``override_settings`` of ``PAYHUB`` rebuilds the hub; of ``PAYHUB_SIGNALS``
    re-evaluates the signal bridge."""
    if setting == "PAYHUB":
        with _slot.lock:
            _slot.install(None, owned=False)
    elif setting == "PAYHUB_SIGNALS":
        with _slot.lock:
            _slot.install(_slot.hub, owned=_slot.owned)
