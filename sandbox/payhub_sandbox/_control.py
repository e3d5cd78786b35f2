"""The control API (JSON, under ``/_control/``): what a test or a person drives.

Errors come back as ``{"error": CODE, "message": ...}`` with a 4xx status.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import Blueprint, Response, jsonify, request

from payhub.money import Money
from payhub_sandbox._clock import ManualClock
from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox._input import json_body as _body
from payhub_sandbox._input import string_field as _string
from payhub_sandbox._state import Trade
from payhub_sandbox.alipay._simulator import DEFAULT_BUYER_ID, alipay_trade_status
from payhub_sandbox.unionpay._simulator import unionpay_orig_resp_code
from payhub_sandbox.wechat._simulator import wechat_trade_state

__all__ = ["control_blueprint", "trade_json"]

control_blueprint = Blueprint("control", __name__, url_prefix="/_control")


@control_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


def trade_json(trade: Trade) -> dict[str, Any]:
    data = trade.to_json()
    if trade.channel == "alipay":
        data["trade_status"] = alipay_trade_status(trade)
    elif trade.channel == "unionpay":
        data["orig_resp_code"] = unionpay_orig_resp_code(trade)
    elif trade.channel == "wechat":
        data["trade_state"] = wechat_trade_state(trade)
    return data


def _field(data: dict[str, Any], name: str, default: Any = None) -> Any:
    value = data.get(name, default)
    if value is None:
        raise InvalidInputError(f"{name} is required")
    return value


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be true or false")
    return value


# -- Alipay ---------------------------------------------------------------------


@control_blueprint.post("/alipay/merchants")
def add_alipay_merchant() -> tuple[Response, int]:
    data = _body()
    merchant = current_sandbox().add_alipay_merchant(
        _string(data, "app_id"),
        _string(data, "public_key"),
        _string(data, "seller_id"),
        _string(data, "sign_type", "RSA2"),
        charset=_string(data, "charset", "utf-8"),
        lie_content_type=_flag(data, "lie_content_type"),
        notify_on_close=_flag(data, "notify_on_close"),
        fee_rate=_string(data, "fee_rate", "0.006"),
    )
    return jsonify(merchant.to_json()), 201


@control_blueprint.get("/alipay/merchants")
def list_alipay_merchants() -> Response:
    return jsonify([m.to_json() for m in current_sandbox().alipay_merchants])


@control_blueprint.get("/alipay/platform-key")
def alipay_platform_key() -> Response:
    return Response(current_sandbox().alipay_public_key_pem, content_type="application/x-pem-file")


def _app_id() -> str:
    if request.method == "GET":
        app_id = request.args.get("app_id", "")
        if not app_id:
            raise InvalidInputError("app_id is required")
        return app_id
    return _string(_body(), "app_id")


@control_blueprint.get("/alipay/trades/<out_trade_no>")
def get_alipay_trade(out_trade_no: str) -> Response:
    return jsonify(trade_json(current_sandbox().alipay_trade(_app_id(), out_trade_no)))


@control_blueprint.post("/alipay/trades/<out_trade_no>/pay")
def pay_alipay_trade(out_trade_no: str) -> Response:
    data = _body()
    trade = current_sandbox().alipay.pay(
        _string(data, "app_id"), out_trade_no, buyer_id=_string(data, "buyer_id", DEFAULT_BUYER_ID)
    )
    return jsonify(trade_json(trade))


@control_blueprint.post("/alipay/trades/<out_trade_no>/finish")
def finish_alipay_trade(out_trade_no: str) -> Response:
    return jsonify(trade_json(current_sandbox().alipay.finish(_app_id(), out_trade_no)))


@control_blueprint.post("/alipay/trades/<out_trade_no>/close")
def close_alipay_trade(out_trade_no: str) -> Response:
    data = _body()
    reason = _string(data, "reason", "timeout")
    if reason not in ("timeout", "merchant"):
        raise InvalidInputError("reason must be 'timeout' or 'merchant'")
    kind: Literal["timeout", "merchant"] = "timeout" if reason == "timeout" else "merchant"
    trade = current_sandbox().alipay.close(_string(data, "app_id"), out_trade_no, reason=kind)
    return jsonify(trade_json(trade))


@control_blueprint.get("/alipay/bills/<app_id>/<bill_date>")
def alipay_bill(app_id: str, bill_date: str) -> Response:
    try:
        day = date.fromisoformat(bill_date)
    except ValueError:
        raise InvalidInputError("bill date must be yyyy-MM-dd") from None
    filename, data = current_sandbox().alipay.engine.bill(app_id, day)
    return Response(
        data,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- planted bill differences ----------------------------------------------------


def _money_field(data: dict[str, Any], name: str) -> Money | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{name} must be a non-negative number of fen")
    return Money(value)


def _optional_string(data: dict[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else _string(data, name)


@control_blueprint.post("/bills/differences")
def plant_bill_difference() -> tuple[Response, int]:
    """Plant a difference in a day's bill: ``{"channel", "merchant_id",
    "bill_date", "kind", "out_trade_no"?, "out_refund_no"?, "amount"?, "fee"?}``
    (amounts in fen)."""
    data = _body()
    try:
        day = date.fromisoformat(_string(data, "bill_date"))
    except ValueError:
        raise InvalidInputError("bill_date must be yyyy-MM-dd") from None
    fault = current_sandbox().plant_bill_difference(
        _string(data, "channel"),
        _string(data, "merchant_id"),
        day,
        _string(data, "kind"),
        out_trade_no=_optional_string(data, "out_trade_no"),
        out_refund_no=_optional_string(data, "out_refund_no"),
        amount=_money_field(data, "amount"),
        fee=_money_field(data, "fee"),
    )
    return jsonify(fault.to_json()), 201


@control_blueprint.get("/bills/differences")
def list_bill_differences() -> Response:
    return jsonify([f.to_json() for f in current_sandbox().bill_differences])


@control_blueprint.delete("/bills/differences")
def clear_bill_differences() -> Response:
    return jsonify({"removed": current_sandbox().clear_bill_differences()})


# -- every channel ----------------------------------------------------------------


@control_blueprint.get("/trades")
def list_trades() -> Response:
    return jsonify([trade_json(t) for t in current_sandbox().trades])


@control_blueprint.get("/refunds")
def list_refunds() -> Response:
    return jsonify([r.to_json() for r in current_sandbox().refunds])


@control_blueprint.get("/deliveries")
def list_deliveries() -> Response:
    return jsonify([a.to_json() for a in current_sandbox().deliveries])


@control_blueprint.get("/notifications")
def list_notifications() -> Response:
    return jsonify([n.to_json() for n in current_sandbox().notifications])


@control_blueprint.post("/deliver")
def deliver() -> Response:
    """Deliver what is due now; ``{"force": true}`` delivers every pending notification."""
    attempts = current_sandbox().deliver_due(force=_flag(_body(), "force"))
    return jsonify([a.to_json() for a in attempts])


@control_blueprint.post("/close-expired")
def close_expired() -> Response:
    return jsonify([trade_json(t) for t in current_sandbox().close_expired()])


@control_blueprint.get("/clock")
def get_clock() -> Response:
    sandbox = current_sandbox()
    return jsonify(
        {
            "now": sandbox.clock.now().isoformat(),
            "manual": isinstance(sandbox.clock, ManualClock),
            "time_factor": sandbox.time_factor,
        }
    )


@control_blueprint.post("/clock/advance")
def advance_clock() -> Response:
    sandbox = current_sandbox()
    clock = sandbox.clock
    if not isinstance(clock, ManualClock):
        raise SandboxError("the sandbox runs on the real clock; start it with a ManualClock")
    seconds = _field(_body(), "seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise InvalidInputError("seconds must be a non-negative number")
    clock.advance(seconds)
    return jsonify({"now": clock.now().isoformat()})
