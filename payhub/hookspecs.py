"""pluggy hook specifications of payhub.

A plugin is a module or object with ``@hookimpl`` functions, registered from
the ``payhub`` entry-point group. The built-in channels and calendar use the
same hooks. Every hook receives a ``register`` callback (as in llm and
datasette) rather than returning values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from payhub.channels._base import Channel
    from payhub.events import Event

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "payhub"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    """Register channel types: call ``register(ChannelClass)`` for each.

    ``ChannelClass.kind`` is the name configuration uses in ``"type"``.
    """


@hookspec
def register_calendars(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register working-day calendar providers: ``register(name, factory)`` for each.

    ``factory(options)`` gets the provider's ``options`` mapping from the
    settlement calendar configuration and returns a
    :class:`payhub.settlement.calendars.WorkdayCalendar`. ``name`` is what the
    configuration lists under ``"providers"`` (the built-in one is
    ``"chinesecalendar"``).
    """


@hookspec
def register_event_handlers(register: Callable[[str, Callable[[Event], Any]], None]) -> None:
    """Register outbox event handlers: ``register(event_type, handler)`` for each.

    ``event_type`` is an :class:`payhub.EventType` value or ``"*"`` (every
    type); ``handler(event)`` may be a coroutine function for
    :class:`payhub.AsyncPayHub`. A hub built with ``PayHub.from_config``
    subscribes them, then the ``"events": {"handlers": ...}`` of its
    configuration (``"module:function"`` strings).
    """


@hookspec
def register_transition_hooks(register: Callable[[Callable[..., None]], None]) -> None:
    """Register transition hooks: ``register(hook)`` for each.

    ``hook(conn, transition)`` runs inside the database transaction of every
    payment or refund state change (:meth:`payhub.Store.add_transition_hook`):
    what it writes through ``conn`` commits or rolls back with the change. A
    hub built with ``PayHub.from_config`` adds them to the store it builds from
    the ``"store"`` section; a store passed in keeps the hooks it was given.
    """
