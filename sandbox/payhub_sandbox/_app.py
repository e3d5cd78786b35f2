"""The Flask application: Alipay's gateway and cashier, the control API, the console."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask

from payhub_sandbox._console import console_blueprint
from payhub_sandbox._console_actions import console_actions_blueprint
from payhub_sandbox._context import EXTENSION_KEY
from payhub_sandbox._control import control_blueprint
from payhub_sandbox._control_guard import ControlGuard, install_guard
from payhub_sandbox._fault_views import faults_blueprint
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._splits_control import splits_control_blueprint
from payhub_sandbox._triggers import triggers_blueprint
from payhub_sandbox.alipay._views import alipay_blueprint
from payhub_sandbox.delivery._control import delivery_control_blueprint
from payhub_sandbox.parts import install_parts
from payhub_sandbox.unionpay._control import unionpay_control_blueprint
from payhub_sandbox.unionpay._views import unionpay_blueprint
from payhub_sandbox.wechat._control import wechat_control_blueprint
from payhub_sandbox.wechat._views import wechat_blueprint

__all__ = ["create_app"]


def create_app(
    sandbox: Sandbox | None = None,
    *,
    allowed_hosts: Iterable[str] = (),
    token: str | None = None,
    parts: bool = True,
) -> Flask:
    """A WSGI app serving ``sandbox`` (a new default :class:`Sandbox` if None).

    The sandbox is kept at ``app.extensions["payhub_sandbox"]``. Mount the app
    in-process with ``httpx.WSGITransport(app=create_app(sandbox))`` or run it
    with ``payhub-sandbox run``.

    The control API and the console refuse foreign ``Host`` and ``Origin``
    headers (see :mod:`payhub_sandbox._control_guard`): loopback names, the
    host of ``sandbox.base_url``, RFC 6761 names (``*.test``, ``*.localhost``)
    and ``allowed_hosts`` are accepted. With a ``token``, they also require it
    (``X-Sandbox-Token`` or ``Authorization: Bearer``).

    Every installed sandbox part (another distribution's channel, e.g.
    payhub-epay's EPay provider) is mounted too, see :mod:`payhub_sandbox.parts`;
    ``parts=False`` mounts none (``install_parts(app)`` can mount them later).
    """
    app = Flask("payhub_sandbox")
    app.extensions[EXTENSION_KEY] = sandbox if sandbox is not None else Sandbox()
    # Before every other hook: a refused request touches nothing.
    install_guard(app, ControlGuard.build(allowed_hosts, token))
    # First: its hook applies gateway faults before any other runs.
    app.register_blueprint(faults_blueprint)
    app.register_blueprint(alipay_blueprint)
    app.register_blueprint(control_blueprint)
    app.register_blueprint(unionpay_blueprint)
    app.register_blueprint(unionpay_control_blueprint)
    app.register_blueprint(wechat_blueprint)
    app.register_blueprint(wechat_control_blueprint)
    app.register_blueprint(delivery_control_blueprint)
    app.register_blueprint(triggers_blueprint)
    app.register_blueprint(splits_control_blueprint)
    app.register_blueprint(console_blueprint)
    app.register_blueprint(console_actions_blueprint)
    if parts:
        install_parts(app)
    return app
