"""The web console at ``/``: every channel's merchants, trades, refunds and notifications.

Times are shown in the console's zone (``app.config[CONSOLE_TZ_KEY]``, a
``ZoneInfo``; Asia/Shanghai by default, ``payhub-sandbox run --timezone``).
The page refreshes itself: it polls ``GET /_console/state.json`` (the live part
of the page, rendered, with a ``stamp`` that changes when anything in it
does) and swaps it in, unless the person is typing into one of its forms.
Each trade links to its cashier page (Alipay's cashier, WeChat Pay's pay page,
UnionPay's front page).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, tzinfo
from functools import partial
from typing import Any, Final

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._console_actions import trade_actions
from payhub_sandbox._context import current_sandbox
from payhub_sandbox._control import trade_json
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._state import Trade
from payhub_sandbox.parts import MOUNTED_KEY, part_paths

__all__ = ["CONSOLE_TZ_KEY", "cashier_url", "console_blueprint"]

console_blueprint = Blueprint("console", __name__)

#: ``app.config`` key: the zone the console shows times in.
CONSOLE_TZ_KEY: Final = "PAYHUB_SANDBOX_CONSOLE_TZ"
#: How often the page asks for changes (milliseconds).
REFRESH_MS: Final = 1000


def cashier_url(sandbox: Sandbox, trade: Trade, base_url: str) -> str | None:
    """Where the buyer pays the trade in a browser, if its channel has such a page."""
    if trade.channel == "alipay":
        return sandbox.alipay.engine.cashier_url(trade, base_url)
    if trade.channel == "wechat":
        return sandbox.wechat.engine.pay_url(trade, base_url)
    if trade.channel == "unionpay":
        return f"{base_url.rstrip('/')}/unionpay/cashier/{trade.trade_no}"
    return None


def _zone() -> tzinfo:
    zone = current_app.config.get(CONSOLE_TZ_KEY)
    return zone if isinstance(zone, tzinfo) else CHINA_TZ


def _local(value: datetime | str | None) -> str:
    """A moment as ``yyyy-MM-dd HH:mm:ss`` in the console's zone ('' for none)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.isoformat(sep=" ", timespec="seconds")
    return moment.astimezone(_zone()).strftime("%Y-%m-%d %H:%M:%S")


def _context(sandbox: Sandbox) -> dict[str, Any]:
    base = sandbox.base_url or request.url_root.rstrip("/")
    trades = []
    for trade in sandbox.trades:
        data = trade_json(trade)
        data["cashier_url"] = cashier_url(sandbox, trade, base)
        trades.append(data)
    return {
        "sandbox": sandbox,
        "alipay_merchants": sandbox.alipay_merchants,
        "wechat_merchants": sandbox.wechat_merchants,
        "parts": part_paths(current_app, current_app.extensions.get(MOUNTED_KEY, [])),
        "trades": trades,
        "refunds": sandbox.refunds,
        "splits": _splits(sandbox),
        "transfers": _transfers(sandbox),
        "notifications": sandbox.notifications,
        "attempts": sandbox.deliveries,
        "faults": sandbox.delivery_faults,
        "trade_actions": partial(trade_actions, sandbox),
        "local": _local,
        "zone": str(_zone()),
    }


def _splits(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Alipay settles and WeChat profit-sharing orders, one row each (no names)."""
    rows = []
    for settle in sandbox.alipay.engine.settles():
        rows.append(
            {
                "channel": "alipay",
                "merchant_id": settle["app_id"],
                "number": settle["out_request_no"],
                "trade_no": settle["trade_no"],
                "state": settle["state"] + (" (finish)" if settle["finish"] else ""),
                "lines": ", ".join(f"{x['trans_in']} {x['amount']}" for x in settle["lines"]),
            }
        )
    for order in sandbox.wechat.engine.sharing.orders():
        rows.append(
            {
                "channel": "wechat",
                "merchant_id": order["mch_id"],
                "number": order["out_order_no"],
                "trade_no": order["transaction_id"],
                "state": order["state"],
                "lines": ", ".join(
                    f"{x['account']} {Money(x['amount']).to_decimal_string()} {x['result']}"
                    for x in order["receivers"]
                ),
            }
        )
    return rows


def _transfers(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Alipay transfers and WeChat transfer bills, one row each."""
    rows = []
    for order in sandbox.alipay.engine.transfers():
        rows.append(
            {
                "channel": "alipay",
                "merchant_id": order["app_id"],
                "number": order["out_biz_no"],
                "payee": order["identity"],
                "amount": order["amount"],
                "state": order["status"],
                "confirmable": False,
            }
        )
    for bill in sandbox.wechat.engine.sharing.bills():
        rows.append(
            {
                "channel": "wechat",
                "merchant_id": bill.mch_id,
                "number": bill.out_bill_no,
                "payee": bill.openid,
                "amount": Money(bill.amount).to_decimal_string(),
                "state": bill.state,
                "confirmable": bill.state == "WAIT_USER_CONFIRM",
            }
        )
    return rows


def _live(sandbox: Sandbox) -> tuple[str, str]:
    html = render_template("_console_live.html", **_context(sandbox))
    return html, hashlib.sha256(html.encode("utf-8")).hexdigest()[:16]


@console_blueprint.get("/")
def console() -> Response:
    sandbox = current_sandbox()
    live, stamp = _live(sandbox)
    html = render_template(
        "console.html",
        sandbox=sandbox,
        now=_local(sandbox.clock.now()),
        zone=str(_zone()),
        live=live,
        stamp=stamp,
        refresh_ms=REFRESH_MS,
        message=request.args.get("msg", ""),
        error=request.args.get("error", ""),
    )
    return Response(html, content_type="text/html; charset=utf-8")


@console_blueprint.get("/_console/state.json")
def state() -> Response:
    """The live part of the console, rendered, and its stamp; the clock."""
    sandbox = current_sandbox()
    live, stamp = _live(sandbox)
    response = jsonify({"stamp": stamp, "html": live, "now": _local(sandbox.clock.now())})
    response.headers["Cache-Control"] = "no-store"
    return response
