"""Sandbox parts from other distributions: the one registration point for plugins.

A distribution that simulates another channel (payhub-epay's EPay provider)
declares a callable in the ``payhub_sandbox.parts`` entry-point group::

    [project.entry-points."payhub_sandbox.parts"]
    epay = "payhub_epay_sandbox:sandbox_part"

Each is called as ``part(app, sandbox)`` with the Flask app and its
:class:`~payhub_sandbox.Sandbox`; it mounts its blueprint with Flask's own
``app.register_blueprint`` and keeps its state in ``app.extensions``.
``PAYHUB_SANDBOX_PARTS`` (comma-separated names; empty for none) restricts
which load, as ``PAYHUB_PLUGINS`` does for payhub's plugins.

:func:`~payhub_sandbox.create_app` (and so ``payhub-sandbox run``) calls
:func:`install_parts`: an installed part is live without further code.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from importlib.metadata import entry_points

from flask import Flask

from payhub_sandbox._context import EXTENSION_KEY
from payhub_sandbox._sandbox import Sandbox

__all__ = ["MOUNTED_KEY", "PARTS_GROUP", "SandboxPart", "install_parts", "part_paths"]

PARTS_GROUP = "payhub_sandbox.parts"
_ENV_ALLOW = "PAYHUB_SANDBOX_PARTS"
#: Where an app records the parts mounted on it (names, in mounting order).
MOUNTED_KEY = "payhub_sandbox.parts"
_BLUEPRINTS_KEY = "payhub_sandbox.parts.blueprints"

#: What a part's entry point names.
SandboxPart = Callable[[Flask, Sandbox], object]


def install_parts(app: Flask) -> list[str]:
    """Mount every installed sandbox part on ``app`` (built by ``create_app``), once:
    the names of the parts mounted on it, in entry-point name order. Calling it
    again mounts only parts installed since."""
    sandbox = app.extensions[EXTENSION_KEY]
    allowed = os.environ.get(_ENV_ALLOW)
    names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    mounted: list[str] = app.extensions.setdefault(MOUNTED_KEY, [])
    blueprints: dict[str, list[str]] = app.extensions.setdefault(_BLUEPRINTS_KEY, {})
    for entry in sorted(entry_points(group=PARTS_GROUP), key=lambda e: e.name):
        if (names is not None and entry.name not in names) or entry.name in mounted:
            continue
        part: SandboxPart = entry.load()
        before = set(app.blueprints)
        part(app, sandbox)
        mounted.append(entry.name)
        blueprints[entry.name] = sorted(set(app.blueprints) - before)
    return list(mounted)


def part_paths(app: Flask, names: list[str]) -> dict[str, str]:
    """Where each mounted part answers: the longest path prefix its routes share
    (``/epay/`` for payhub-epay's), for the startup banner and the console."""
    blueprints: dict[str, list[str]] = app.extensions.get(_BLUEPRINTS_KEY, {})
    found: dict[str, str] = {}
    for name in names:
        owned = tuple(f"{b}." for b in blueprints.get(name, ()))
        rules = [r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith(owned)]
        if not owned or not rules:
            found[name] = "/"
            continue
        found[name] = posixpath.commonpath([posixpath.dirname(r) for r in rules]).rstrip("/") + "/"
    return found
