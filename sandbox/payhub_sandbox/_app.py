"""The Flask application: Alipay's gateway and cashier, the control API, the console."""

from __future__ import annotations

from flask import Flask

from payhub_sandbox._alipay_views import alipay_blueprint
from payhub_sandbox._console import console_blueprint
from payhub_sandbox._context import EXTENSION_KEY
from payhub_sandbox._control import control_blueprint
from payhub_sandbox._sandbox import Sandbox

__all__ = ["create_app"]


def create_app(sandbox: Sandbox | None = None) -> Flask:
    """A WSGI app serving ``sandbox`` (a new default :class:`Sandbox` if None).

    The sandbox is kept at ``app.extensions["payhub_sandbox"]``. Mount the app
    in-process with ``httpx.WSGITransport(app=create_app(sandbox))`` or run it
    with ``payhub-sandbox run``.
    """
    app = Flask("payhub_sandbox")
    app.extensions[EXTENSION_KEY] = sandbox if sandbox is not None else Sandbox()
    app.register_blueprint(alipay_blueprint)
    app.register_blueprint(control_blueprint)
    app.register_blueprint(console_blueprint)
    return app
