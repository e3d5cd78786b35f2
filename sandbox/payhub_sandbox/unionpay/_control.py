"""The UnionPay part of the control API (JSON, under ``/_control/unionpay/``).

Errors come back as ``{"error": CODE, "message": ...}`` with a 4xx status, as in
the rest of the control API.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, jsonify, request

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox._input import json_body as _body
from payhub_sandbox._input import string_field as _string
from payhub_sandbox._state import Trade
from payhub_sandbox.unionpay._pki import FAULT_KINDS, certificate_pem
from payhub_sandbox.unionpay._simulator import unionpay_orig_resp_code

__all__ = ["unionpay_control_blueprint", "unionpay_trade_json"]

unionpay_control_blueprint = Blueprint(
    "unionpay_control", __name__, url_prefix="/_control/unionpay"
)


@unionpay_control_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


def unionpay_trade_json(trade: Trade) -> dict[str, Any]:
    """A UnionPay trade for the control API: the neutral fields and ACP's words."""
    data = trade.to_json()
    data["orig_resp_code"] = unionpay_orig_resp_code(trade)
    data["query_id"] = trade.trade_no
    data["txn_time"] = trade.extra.get("txnTime")
    data["tn"] = trade.extra.get("tn")
    return data


@unionpay_control_blueprint.post("/merchants")
def add_merchant() -> tuple[Response, int]:
    """``{mer_id, password}``: issue a certificate (the answer holds the .pfx, base64);
    ``{mer_id, certificate}``: register the merchant's own certificate (PEM)."""
    data = _body()
    sandbox = current_sandbox()
    mer_id = _string(data, "mer_id")
    if "certificate" in data:
        merchant = sandbox.add_unionpay_merchant(mer_id, _string(data, "certificate"))
        return jsonify(merchant.to_json()), 201
    pfx, cert = sandbox.issue_unionpay_merchant(mer_id, _string(data, "password"))
    return (
        jsonify(
            {
                "mer_id": mer_id,
                "cert_id": str(cert.serial_number),
                "pfx": base64.b64encode(pfx).decode("ascii"),
                "certificate": certificate_pem(cert),
                "root_cert": sandbox.unionpay_root_cert_pem,
                "middle_cert": sandbox.unionpay_middle_cert_pem,
            }
        ),
        201,
    )


@unionpay_control_blueprint.get("/merchants")
def list_merchants() -> Response:
    return jsonify([m.to_json() for m in current_sandbox().unionpay_merchants])


@unionpay_control_blueprint.get("/certs")
def certs() -> Response:
    """The trust anchors a client configures, and the platform certificate in use."""
    sandbox = current_sandbox()
    pki = sandbox.unionpay.engine.pki
    return jsonify(
        {
            "root_cert": pki.root_cert_pem,
            "middle_cert": pki.middle_cert_pem,
            "sign_cert": pki.sign_cert_pem,
            "fault": sandbox.unionpay.engine.fault,
        }
    )


@unionpay_control_blueprint.post("/fault")
def set_fault() -> Response:
    """``{"kind": "other_chain" | "expired" | ... | null}``."""
    kind = _body().get("kind")
    if kind is not None and (not isinstance(kind, str) or kind not in FAULT_KINDS):
        raise InvalidInputError(f"kind must be null or one of {', '.join(FAULT_KINDS)}")
    return jsonify({"fault": current_sandbox().unionpay_fault(kind)})


def _mer_id() -> str:
    if request.method == "GET":
        mer_id = request.args.get("mer_id", "")
        if not mer_id:
            raise InvalidInputError("mer_id is required")
        return mer_id
    return _string(_body(), "mer_id")


@unionpay_control_blueprint.get("/trades/<order_id>")
def get_trade(order_id: str) -> Response:
    return jsonify(unionpay_trade_json(current_sandbox().unionpay_trade(_mer_id(), order_id)))


@unionpay_control_blueprint.post("/trades/<order_id>/pay")
def pay_trade(order_id: str) -> Response:
    return jsonify(unionpay_trade_json(current_sandbox().unionpay.pay(_mer_id(), order_id)))
