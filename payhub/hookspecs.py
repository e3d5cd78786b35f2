"""pluggy hook specifications of payhub.

A plugin is a module or object with ``@hookimpl`` functions, registered from
the ``payhub`` entry-point group. The built-in channels and calendar use the
same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from payhub.channels._base import Channel

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
