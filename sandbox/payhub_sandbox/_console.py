"""The web console at ``/``: merchants, trades, refunds, notifications at a glance."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, Response, render_template, request

from payhub_sandbox._console_actions import trade_actions
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
        faults=sandbox.delivery_faults,
        trade_actions=partial(trade_actions, sandbox),
        message=request.args.get("msg", ""),
        error=request.args.get("error", ""),
    )
    return Response(html, content_type="text/html; charset=utf-8")
