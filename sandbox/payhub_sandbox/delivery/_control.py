"""The control API of delivery faults, resends and merchant-side refunds (JSON).

=========================================================  ===========================
``POST /_control/delivery-faults`` ``{...}``                add a fault → 201
``GET /_control/delivery-faults``                          list them
``GET /_control/delivery-faults/<id>``                     one
``DELETE /_control/delivery-faults/<id>``                  remove one (releases held)
``DELETE /_control/delivery-faults``                       remove all → ``{"removed": n}``
``POST /_control/notifications/<id>/resend``               send now → the attempts
``POST /_control/alipay/trades/<out_trade_no>/refund``     ``{app_id, amount,
                                                           out_request_no?, reason?}``
``POST /_control/listeners`` ``{url, channel?}``            subscribe a listener → 201
``GET /_control/listeners``                                list them
``DELETE /_control/listeners/<id>``                        unsubscribe
=========================================================  ===========================
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox._input import json_body as _body
from payhub_sandbox.delivery._faults import fault_options_from_json

__all__ = ["delivery_control_blueprint"]

delivery_control_blueprint = Blueprint("delivery_control", __name__, url_prefix="/_control")


@delivery_control_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInputError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string")
    return value


@delivery_control_blueprint.post("/delivery-faults")
def add_delivery_fault() -> tuple[Response, int]:
    options = fault_options_from_json(_body())
    fault = current_sandbox().add_delivery_fault(**options)
    return jsonify(fault.to_json()), 201


@delivery_control_blueprint.get("/delivery-faults")
def list_delivery_faults() -> Response:
    return jsonify([f.to_json() for f in current_sandbox().delivery_faults])


@delivery_control_blueprint.get("/delivery-faults/<fault_id>")
def get_delivery_fault(fault_id: str) -> Response:
    return jsonify(current_sandbox().delivery_fault(fault_id).to_json())


@delivery_control_blueprint.delete("/delivery-faults/<fault_id>")
def remove_delivery_fault(fault_id: str) -> Response:
    return jsonify(current_sandbox().remove_delivery_fault(fault_id).to_json())


@delivery_control_blueprint.delete("/delivery-faults")
def clear_delivery_faults() -> Response:
    return jsonify({"removed": current_sandbox().clear_delivery_faults()})


@delivery_control_blueprint.post("/notifications/<notification_id>/resend")
def resend_notification(notification_id: str) -> Response:
    attempts = current_sandbox().resend_notification(notification_id)
    return jsonify([a.to_json() for a in attempts])


@delivery_control_blueprint.post("/alipay/trades/<out_trade_no>/refund")
def refund_alipay_trade(out_trade_no: str) -> tuple[Response, int]:
    data = _body()
    refund = current_sandbox().alipay.refund(
        _text(data, "app_id") or "",
        out_trade_no,
        _text(data, "amount") or "",
        out_refund_no=_text(data, "out_request_no", required=False),
        reason=_text(data, "reason", required=False) or "",
    )
    return jsonify(refund.to_json()), 201


@delivery_control_blueprint.post("/listeners")
def add_listener() -> tuple[Response, int]:
    data = _body()
    sandbox = current_sandbox()
    channel = data.get("channel")
    if isinstance(channel, str):
        sandbox.channel(channel)  # an unknown name: 400 before anything is added
    listener = sandbox.listeners.add(data.get("url"), channel, now=sandbox.clock.now())
    return jsonify(listener.to_json()), 201


@delivery_control_blueprint.get("/listeners")
def list_listeners() -> Response:
    return jsonify([listener.to_json() for listener in current_sandbox().listeners.list()])


@delivery_control_blueprint.delete("/listeners/<listener_id>")
def remove_listener(listener_id: str) -> Response:
    return jsonify(current_sandbox().listeners.remove(listener_id).to_json())
