"""The web console at ``/``: merchants, trades, refunds, notifications at a glance."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._control import trade_json

__all__ = ["console_blueprint"]

console_blueprint = Blueprint("console", __name__)


@console_blueprint.get("/")
def console() -> Response:
    sandbox = current_sandbox()
    html = render_template(
        "console.html",
        sandbox=sandbox,
        now=sandbox.clock.now(),
        merchants=sandbox.alipay_merchants,
        trades=[trade_json(t) for t in sandbox.trades],
        refunds=sandbox.refunds,
        notifications=sandbox.notifications,
        attempts=sandbox.deliveries,
    )
    return Response(html, content_type="text/html; charset=utf-8")
