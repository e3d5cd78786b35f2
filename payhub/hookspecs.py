"""pluggy hook specifications of payhub.

A plugin is a module or object with ``@hookimpl`` functions, registered from
the ``payhub`` entry-point group. The built-in channels use the same hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

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
