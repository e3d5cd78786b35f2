"""Plugin discovery and what the hooks register: channel types, event
handlers and transition hooks.

Calendar providers (``register_calendars``) are collected by
:func:`payhub.settlement.calendars.calendar_providers`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from payhub import hookspecs
from payhub.errors import ConfigurationError

if TYPE_CHECKING:
    from payhub.channels._base import Channel
    from payhub.events import Event

__all__ = [
    "BUILTIN_PLUGINS",
    "channel_types",
    "event_handlers",
    "get_plugin_manager",
    "transition_hooks",
]

#: Built-in plugin modules: the channels, under the same names as their entry
#: points, and the default working-day calendar provider.
BUILTIN_PLUGINS: dict[str, str] = {
    "alipay": "payhub.channels.alipay",
    "unionpay": "payhub.channels.unionpay",
    "wechat": "payhub.channels.wechat",
    "payhub.calendars": "payhub.settlement.calendars",
}

_ENV_ALLOW = "PAYHUB_PLUGINS"


def get_plugin_manager(*, load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins and the ``payhub`` entry points.

    If ``PAYHUB_PLUGINS`` is set (a comma-separated list of entry-point names),
    only those third-party plugins load; set it empty to load none.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name, module in BUILTIN_PLUGINS.items():
        pm.register(importlib.import_module(module), name=name)
    if load_entrypoints:
        allowed = os.environ.get(_ENV_ALLOW)
        if allowed is None:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        else:
            for name in filter(None, (n.strip() for n in allowed.split(","))):
                pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME, name=name)
    return pm


def channel_types(pm: pluggy.PluginManager) -> dict[str, type[Channel]]:
    """Every channel type registered through ``register_channels``, by kind."""
    found: dict[str, type[Channel]] = {}

    def register(cls: type[Channel]) -> None:
        kind = getattr(cls, "kind", None)
        if not isinstance(kind, str) or not kind:
            raise ConfigurationError(f"channel class {cls.__qualname__} has no 'kind'")
        previous = found.get(kind)
        if previous is not None and previous is not cls:
            raise ConfigurationError(
                f"two plugins register channel type {kind!r}: "
                f"{previous.__module__} and {cls.__module__}"
            )
        found[kind] = cls

    pm.hook.register_channels(register=register)
    return found


def event_handlers(pm: pluggy.PluginManager) -> list[tuple[str, Callable[[Event], Any]]]:
    """Every ``(event_type, handler)`` registered through ``register_event_handlers``."""
    found: list[tuple[str, Callable[[Event], Any]]] = []

    def register(event_type: str, handler: Callable[[Event], Any]) -> None:
        if not callable(handler):
            raise ConfigurationError(f"event handler for {event_type!r} is not callable")
        found.append((str(event_type), handler))

    pm.hook.register_event_handlers(register=register)
    return found


def transition_hooks(pm: pluggy.PluginManager) -> list[Callable[..., None]]:
    """Every transition hook registered through ``register_transition_hooks``."""
    found: list[Callable[..., None]] = []

    def register(hook: Callable[..., None]) -> None:
        if not callable(hook):
            raise ConfigurationError(f"transition hook {hook!r} is not callable")
        found.append(hook)

    pm.hook.register_transition_hooks(register=register)
    return found
