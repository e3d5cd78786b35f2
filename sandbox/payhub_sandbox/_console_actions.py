"""The console's buttons: small form handlers under ``/_console/`` that act, then go back to ``/``.

Each handler answers ``303 See Other`` to ``/?msg=...`` (or ``/?error=...``),
so a person's browser shows the console again with what happened.

================================================  ======================================
``POST /_console/trades/<trade_no>/pay``          the buyer pays (``buyer_id`` optional)
``POST /_console/trades/<trade_no>/fail``         the payment fails: the unpaid trade
                                                  is closed as a timeout (notified)
``POST /_console/trades/<trade_no>/close``        the merchant closes the unpaid trade
``POST /_console/trades/<trade_no>/refund``       refund ``amount`` (merchant portal)
``POST /_console/notifications/<id>/resend``      send a notification again, now
``POST /_console/deliver``                        deliver what is due (``force=1``: all)
``POST /_console/delivery-faults``                add a delivery fault (form fields)
``POST /_console/delivery-faults/<id>/delete``    remove it
``POST /_console/wechat-transfers/<mch_id>/<out_bill_no>/confirm``
                                                  the user confirms a WeChat transfer bill
================================================  ======================================

Operations dispatch on the trade's channel through :data:`CHANNEL_ACTIONS`
(the :class:`Sandbox` method each channel offers); a channel without one has
no button.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from flask import Blueprint, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError, TradeNotFoundError
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._state import Trade, TradeState

__all__ = ["CONSOLE_VERBS", "console_actions_blueprint", "trade_actions"]

console_actions_blueprint = Blueprint("console_actions", __name__, url_prefix="/_console")

#: button → the channel verb it calls ``(merchant_id, out_trade_no, ...)``: the buyer
#: failing to pay closes the trade. A channel gets the buttons whose verb it supports.
CONSOLE_VERBS: Final[Mapping[str, str]] = {
    "pay": "pay",
    "fail": "close",
    "close": "close",
    "refund": "refund",
}


def _method(sandbox: Sandbox, action: str, channel: str) -> Callable[..., Any] | None:
    verb = CONSOLE_VERBS.get(action)
    facade = sandbox.channels.get(channel)
    if verb is None or facade is None or not facade.supports(verb):
        return None
    method: Callable[..., Any] = getattr(facade, verb)
    return method


def trade_actions(sandbox: Sandbox, channel: str, state: str) -> list[str]:
    """The buttons a trade gets, given its channel and (neutral) state."""
    wanted = {
        TradeState.PENDING.value: ("pay", "fail", "close"),
        TradeState.PAID.value: ("refund",),
        TradeState.CLOSED.value: ("refund",),
    }.get(state, ())
    return [a for a in wanted if _method(sandbox, a, channel) is not None]


def _back(**params: str) -> BaseResponse:
    query = urlencode(params)
    return redirect(f"/?{query}" if query else "/", code=303)


def _trade(sandbox: Sandbox, trade_no: str) -> Trade:
    for trade in sandbox.trades:
        if trade.trade_no == trade_no:
            return trade
    raise TradeNotFoundError(f"no trade {trade_no!r}")


def _act(action: str, trade_no: str, **kwargs: Any) -> BaseResponse:
    sandbox = current_sandbox()
    try:
        trade = _trade(sandbox, trade_no)
        method = _method(sandbox, action, trade.channel)
        if method is None:
            raise InvalidInputError(f"the console cannot {action} a {trade.channel} trade")
        method(trade.merchant_id, trade.out_trade_no, **kwargs)
    except SandboxError as exc:
        return _back(error=exc.message)
    return _back(msg=f"{action}: {trade.channel} trade {trade.out_trade_no} ({trade_no})")


def _form(name: str) -> str:
    return request.form.get(name, "").strip()


@console_actions_blueprint.post("/trades/<trade_no>/pay")
def pay(trade_no: str) -> BaseResponse:
    buyer = _form("buyer_id")
    return _act("pay", trade_no, **({"buyer_id": buyer} if buyer else {}))


@console_actions_blueprint.post("/trades/<trade_no>/fail")
def fail(trade_no: str) -> BaseResponse:
    return _act("fail", trade_no)


@console_actions_blueprint.post("/trades/<trade_no>/close")
def close(trade_no: str) -> BaseResponse:
    try:
        channel = _trade(current_sandbox(), trade_no).channel
    except SandboxError as exc:
        return _back(error=exc.message)
    # Alipay tells a merchant's close from a timeout (only the latter is notified).
    return _act("close", trade_no, **({"reason": "merchant"} if channel == "alipay" else {}))


@console_actions_blueprint.post("/trades/<trade_no>/refund")
def refund(trade_no: str) -> BaseResponse:
    amount = _form("amount")
    if not amount:
        return _back(error="refund: an amount is required")
    return _act("refund", trade_no, amount=amount)


@console_actions_blueprint.post("/notifications/<notification_id>/resend")
def resend(notification_id: str) -> BaseResponse:
    try:
        attempts = current_sandbox().resend_notification(notification_id)
    except SandboxError as exc:
        return _back(error=exc.message)
    answers = ", ".join(
        str(a.status_code) if a.status_code is not None else (a.error or "?") for a in attempts
    )
    return _back(msg=f"resent {notification_id}: {answers or 'already in flight'}")


@console_actions_blueprint.post("/wechat-transfers/<mch_id>/<out_bill_no>/confirm")
def confirm_transfer(mch_id: str, out_bill_no: str) -> BaseResponse:
    try:
        bill = current_sandbox().wechat.engine.sharing.confirm_transfer(mch_id, out_bill_no)
    except SandboxError as exc:
        return _back(error=exc.message)
    return _back(msg=f"confirmed: wechat transfer {out_bill_no} is {bill.state}")


@console_actions_blueprint.post("/deliver")
def deliver() -> BaseResponse:
    attempts = current_sandbox().deliver_due(force=_form("force") in ("1", "on", "true"))
    return _back(msg=f"delivered: {len(attempts)} attempt(s)")


def _number(name: str) -> float | None:
    text = _form(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(f"{name} must be a number") from None


def _integer(name: str) -> int | None:
    text = _form(name)
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInputError(f"{name} must be a whole number")
    return int(text)


def _fault_options() -> dict[str, Any]:
    """The add-fault form: scope fields, then one effect (``effect``) and its settings."""
    options: dict[str, Any] = {}
    for name in ("channel", "merchant_id", "out_trade_no"):
        if _form(name):
            options[name] = _form(name)
    effect = _form("effect")
    if effect == "delay":
        low, high = _number("delay"), _number("delay_max")
        if low is None:
            raise InvalidInputError("delay: seconds are required")
        options["delay"] = low if high is None else (low, high)
        if (seed := _integer("seed")) is not None:
            options["seed"] = seed
    elif effect == "duplicates":
        options["duplicates"] = _integer("count") or 2
        options["concurrent"] = bool(_form("concurrent"))
    elif effect == "reorder":
        options["reorder"] = True
    elif effect == "drop_first":
        options["drop_first"] = _integer("count") or 1
    elif effect == "replay":
        options["replay_after"] = _number("delay") or 0.0
        options["replays"] = _integer("count") or 1
    elif effect in ("tamper_amount", "tamper_signature"):
        options["tamper"] = effect.removeprefix("tamper_")
        options["tamper_attempts"] = _integer("count") or 1
    else:
        raise InvalidInputError(f"unknown effect {effect!r}")
    if (limit := _integer("limit")) is not None:
        options["limit"] = limit
    return options


@console_actions_blueprint.post("/delivery-faults")
def add_fault() -> BaseResponse:
    sandbox = current_sandbox()
    try:
        fault = sandbox.add_delivery_fault(**_fault_options())
    except SandboxError as exc:
        return _back(error=exc.message)
    return _back(msg=f"fault {fault.id}: {fault.describe()}")


@console_actions_blueprint.post("/delivery-faults/<fault_id>/delete")
def delete_fault(fault_id: str) -> BaseResponse:
    try:
        current_sandbox().remove_delivery_fault(fault_id)
    except SandboxError as exc:
        return _back(error=exc.message)
    return _back(msg=f"fault {fault_id} removed")
