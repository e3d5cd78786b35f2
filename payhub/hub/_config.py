"""Building a hub from configuration: channels, event handlers, routing.

Everything here is a pure function of the configuration mapping and the
plugin manager (importing a ``module:function`` handler aside).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from payhub.channels._base import Channel
from payhub.config import validated
from payhub.errors import ConfigurationError
from payhub.events import Event
from payhub.plugins import channel_types, get_plugin_manager
from payhub.routing import FailoverPolicy, Router

__all__ = ["build_channels", "check_routing_names", "configured_handlers", "routing_options"]


def build_channels(
    config: Mapping[str, Mapping[str, Any]], pm: pluggy.PluginManager | None = None
) -> list[Channel]:
    """Build channel accounts from ``{name: {"type": kind, ...settings}}``."""
    types = channel_types(pm or get_plugin_manager())
    channels: list[Channel] = []
    for name, settings in config.items():
        kind = settings.get("type", name)
        cls = types.get(kind)
        if cls is None:
            raise ConfigurationError(
                f"channel {name!r}: unknown type {kind!r} (known: {', '.join(sorted(types))})"
            )
        channels.append(cls.from_config(name, {k: v for k, v in settings.items() if k != "type"}))
    return channels


def import_handler(ref: object) -> Callable[[Event], Any]:
    """``"package.module:function"`` from a configuration file (a callable passes)."""
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigurationError(f"events: handler {ref!r} is not 'module:attribute'")
    module_name, _, attr = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"events: cannot import handler {ref!r}: {exc}") from None
    if not callable(target):
        raise ConfigurationError(f"events: handler {ref!r} is not callable")
    return target  # type: ignore[no-any-return]


def configured_handlers(config: object) -> list[tuple[str, Callable[[Event], Any]]]:
    """``{"handlers": {"payment.succeeded": "shop.tasks:deliver" | [...]}}``, imported."""
    if config is None:
        return []
    handlers = config.get("handlers", {}) if isinstance(config, Mapping) else None
    if not isinstance(handlers, Mapping):
        raise ConfigurationError("events: expected {'handlers': {event_type: 'module:function'}}")
    found: list[tuple[str, Callable[[Event], Any]]] = []
    for event_type, refs in handlers.items():
        for ref in refs if isinstance(refs, list) else [refs]:
            found.append((str(event_type), import_handler(ref)))
    return found


def routing_options(section: object) -> dict[str, Any]:
    """``PayHub.from_config``'s ``"routing"`` section as hub keyword arguments.

    The keys of :meth:`Router.from_config`, plus ``"failover": {"max_attempts": 3,
    "deadline": 30}`` (seconds) and ``"attempt_timeout"`` (seconds).
    """
    if not isinstance(section, Mapping):
        raise ConfigurationError("routing: expected a mapping")
    rest = dict(section)
    options: dict[str, Any] = {}
    failover = rest.pop("failover", None)
    if failover is not None:
        options["failover"] = validated(FailoverPolicy, failover, "routing.failover")
    if "attempt_timeout" in rest:
        options["attempt_timeout"] = rest.pop("attempt_timeout")
    options["router"] = Router.from_config(rest)
    return options


def check_routing_names(router: Router, channels: Mapping[str, Channel]) -> None:
    """A policy or rule naming no configured account is a typo: refuse it."""
    named = set(router.policies)
    for rule in router.rules:
        named |= rule.accounts
    unknown = sorted(named - set(channels))
    if unknown:
        raise ConfigurationError(
            f"routing names accounts that are not configured channels: {', '.join(unknown)}"
        )
