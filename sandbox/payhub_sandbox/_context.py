"""Finding the :class:`Sandbox` of the app handling the current request."""

from __future__ import annotations

from typing import Final, cast

from flask import current_app

from payhub_sandbox._sandbox import Sandbox

__all__ = ["EXTENSION_KEY", "current_sandbox"]

#: Where an app keeps its :class:`Sandbox`: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY: Final = "payhub_sandbox"


def current_sandbox() -> Sandbox:
    return cast(Sandbox, current_app.extensions[EXTENSION_KEY])
