"""The WeChat Pay part of the control API (JSON, under ``/_control/wechat/``).

Errors come back as ``{"error": CODE, "message": ...}`` with a 4xx status, as
in the rest of the control API.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify, request

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox._input import json_body as _body
from payhub_sandbox._input import string_field as _string
from payhub_sandbox._state import Trade
from payhub_sandbox.wechat._pki import PlatformCertificate
from payhub_sandbox.wechat._simulator import wechat_trade_state
from payhub_sandbox.wechat._wire import format_time

__all__ = ["wechat_control_blueprint"]

wechat_control_blueprint = Blueprint("wechat_control", __name__, url_prefix="/_control/wechat")


@wechat_control_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


def _mch_id() -> str:
    if request.method == "GET":
        mch_id = request.args.get("mch_id", "")
        if not mch_id:
            raise InvalidInputError("mch_id is required")
        return mch_id
    return _string(_body(), "mch_id")


def _trade_json(trade: Trade) -> dict[str, Any]:
    data = trade.to_json()
    data["trade_state"] = wechat_trade_state(trade)
    return data


def _certificate_json(cert: PlatformCertificate) -> dict[str, Any]:
    return {
        "serial_no": cert.serial_no,
        "effective_time": format_time(cert.effective_time),
        "expire_time": format_time(cert.expire_time),
        "certificate": cert.pem,
    }


@wechat_control_blueprint.post("/merchants")
def add_merchant() -> tuple[Response, int]:
    data = _body()
    delay = data.get("refund_delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise InvalidInputError("refund_delay must be a number of seconds")
    bom = data.get("bill_bom", True)
    if not isinstance(bom, bool):
        raise InvalidInputError("bill_bom must be true or false")
    merchant = current_sandbox().add_wechat_merchant(
        _string(data, "mch_id"),
        _string(data, "app_id"),
        _string(data, "merchant_serial_no"),
        _string(data, "merchant_public_key"),
        _string(data, "api_v3_key"),
        _string(data, "key_mode", "public_key"),
        fee_rate=_string(data, "fee_rate", "0.006"),
        refund_delay=delay,
        bill_bom=bom,
    )
    return jsonify(merchant.to_json()), 201


@wechat_control_blueprint.get("/merchants")
def list_merchants() -> Response:
    return jsonify([m.to_json() for m in current_sandbox().wechat_merchants])


@wechat_control_blueprint.get("/public-key")
def public_key() -> Response:
    sandbox = current_sandbox()
    return jsonify(
        {"public_key_id": sandbox.wechat_public_key_id, "public_key": sandbox.wechat_public_key_pem}
    )


@wechat_control_blueprint.get("/certificates")
def certificates() -> Response:
    sandbox = current_sandbox()
    return jsonify(
        {
            "certificates": [_certificate_json(c) for c in sandbox.wechat.engine.certificates()],
            "ca_certificate": sandbox.wechat.engine.ca_certificate_pem,
        }
    )


@wechat_control_blueprint.post("/certificates/rotate")
def rotate_certificate() -> tuple[Response, int]:
    sandbox = current_sandbox()
    serial = sandbox.rotate_wechat_platform_certificate()
    (cert,) = [c for c in sandbox.wechat.engine.certificates() if c.serial_no == serial]
    return jsonify(_certificate_json(cert)), 201


@wechat_control_blueprint.post("/certificates/<serial_no>/retire")
def retire_certificate(serial_no: str) -> Response:
    sandbox = current_sandbox()
    sandbox.retire_wechat_platform_certificate(serial_no)
    return jsonify([_certificate_json(c) for c in sandbox.wechat.engine.certificates()])


@wechat_control_blueprint.get("/trades/<out_trade_no>")
def get_trade(out_trade_no: str) -> Response:
    return jsonify(_trade_json(current_sandbox().wechat_trade(_mch_id(), out_trade_no)))


@wechat_control_blueprint.post("/trades/<out_trade_no>/pay")
def pay_trade(out_trade_no: str) -> Response:
    data = _body()
    openid = data.get("openid")
    if openid is not None and not isinstance(openid, str):
        raise InvalidInputError("openid must be a string")
    trade = current_sandbox().wechat.pay(_string(data, "mch_id"), out_trade_no, buyer_id=openid)
    return jsonify(_trade_json(trade))


@wechat_control_blueprint.post("/trades/<out_trade_no>/close")
def close_trade(out_trade_no: str) -> Response:
    return jsonify(_trade_json(current_sandbox().wechat.close(_mch_id(), out_trade_no)))


@wechat_control_blueprint.get("/refunds/<out_refund_no>")
def get_refund(out_refund_no: str) -> Response:
    return jsonify(current_sandbox().wechat_refund(_mch_id(), out_refund_no).to_json())


@wechat_control_blueprint.post("/refunds/<out_refund_no>/settle")
def settle_refund(out_refund_no: str) -> Response:
    data = _body()
    refund = current_sandbox().wechat.settle_refund(
        _string(data, "mch_id"), out_refund_no, _string(data, "status", "SUCCESS")
    )
    return jsonify(refund.to_json())


@wechat_control_blueprint.get("/bills/<mch_id>/<bill_date>")
def bill(mch_id: str, bill_date: str) -> Response:
    try:
        day = date.fromisoformat(bill_date)
    except ValueError:
        raise InvalidInputError("bill date must be yyyy-MM-dd") from None
    bill_type = request.args.get("bill_type", "ALL")
    data = current_sandbox().wechat.bill(mch_id, day, bill_type)
    return Response(
        data,
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{mch_id}_{day:%Y%m%d}_{bill_type}.csv"'
        },
    )


@wechat_control_blueprint.post("/faults")
def add_fault() -> tuple[Response, int]:
    data = _body()
    times = data.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int):
        raise InvalidInputError("times must be an integer")
    path = data.get("path")
    mch_id = data.get("mch_id")
    message = data.get("message")
    for name, value in (("path", path), ("mch_id", mch_id), ("message", message)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a string")
    current_sandbox().wechat.fail(
        _string(data, "code"), times=times, merchant_id=mch_id, path=path, message=message
    )
    return jsonify(current_sandbox().wechat.engine.faults()), 201


@wechat_control_blueprint.get("/faults")
def list_faults() -> Response:
    return jsonify(current_sandbox().wechat.engine.faults())
