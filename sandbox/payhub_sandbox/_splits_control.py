"""The control API of splits (分账) and transfers, under ``/_control/splits/``.

=========================================  ==========================================
``POST /_control/splits/faults``           set a fault: ``channel``, ``mode``,
                                           optional ``merchant_id``, ``count``,
                                           ``seconds`` (see :mod:`._splits`)
``GET /_control/splits/faults``            the faults set
``DELETE /_control/splits/faults``         clear them (``?channel=``, ``&merchant_id=``)
``PUT /_control/splits/balance``           ``channel``, ``merchant_id``, ``amount`` (fen)
``GET /_control/splits/balance``           ``?channel=&merchant_id=``: the balance
``POST /_control/splits/payees``           ``channel``, ``account``, ``name``: a known name
``GET /_control/splits/alipay``            Alipay receivers and royalty trades (``?app_id=``),
                                           settles, transfers
``GET /_control/alipay/certificates``      certificate mode: ``alipay_cert``, ``root_cert``
``POST /_control/alipay/app-cert``         ``app_id``, ``public_key``: an app certificate
``GET /_control/splits/wechat``            WeChat receivers (``?mch_id=``), orders, bills
``POST /_control/splits/wechat/transfers/<out_bill_no>/confirm``
                                           ``mch_id``: the user confirms a transfer bill
=========================================  ==========================================
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from payhub.money import Money
from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox._input import json_body, string_field

__all__ = ["splits_control_blueprint"]

splits_control_blueprint = Blueprint("splits_control", __name__, url_prefix="/_control")


@splits_control_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


@splits_control_blueprint.post("/splits/faults")
def set_split_fault() -> tuple[Response, int]:
    data = json_body()
    fault = current_sandbox().splits.faults.set(
        data.get("channel"),
        data.get("mode"),
        merchant_id=data.get("merchant_id"),
        count=data.get("count"),
        seconds=data.get("seconds"),
    )
    return jsonify(fault.to_json()), 201


@splits_control_blueprint.get("/splits/faults")
def list_split_faults() -> Response:
    return jsonify([f.to_json() for f in current_sandbox().splits.faults.list()])


@splits_control_blueprint.delete("/splits/faults")
def clear_split_faults() -> Response:
    channel = request.args.get("channel") or None
    merchant_id = request.args.get("merchant_id") or None
    cleared = current_sandbox().splits.faults.clear(channel, merchant_id=merchant_id)
    return jsonify({"cleared": cleared})


def _balance_json(channel: str, merchant_id: str, amount: Money) -> dict[str, Any]:
    return {
        "channel": channel,
        "merchant_id": merchant_id,
        "amount": amount.minor,
        "amount_text": amount.to_decimal_string(),
    }


@splits_control_blueprint.put("/splits/balance")
def set_balance() -> Response:
    data = json_body()
    channel = string_field(data, "channel")
    merchant_id = string_field(data, "merchant_id")
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise InvalidInputError("amount must be a non-negative number of fen")
    current_sandbox().splits.set_balance(channel, merchant_id, Money(amount))
    return jsonify(_balance_json(channel, merchant_id, Money(amount)))


@splits_control_blueprint.get("/splits/balance")
def get_balance() -> Response:
    channel = request.args.get("channel", "")
    merchant_id = request.args.get("merchant_id", "")
    if not channel or not merchant_id:
        raise InvalidInputError("channel and merchant_id are required")
    amount = current_sandbox().splits.balance(channel, merchant_id)
    return jsonify(_balance_json(channel, merchant_id, amount))


@splits_control_blueprint.post("/splits/payees")
def add_payee() -> tuple[Response, int]:
    data = json_body()
    channel = string_field(data, "channel")
    account = string_field(data, "account")
    current_sandbox().splits.add_payee(channel, account, string_field(data, "name"))
    return jsonify({"channel": channel, "account": account}), 201


@splits_control_blueprint.get("/splits/alipay")
def alipay_splits() -> Response:
    engine = current_sandbox().alipay.engine
    app_id = request.args.get("app_id", "")
    receivers = [r.to_json() for r in engine.royalty_receivers(app_id)] if app_id else []
    return jsonify(
        {
            "receivers": receivers,
            "trades": engine.royalty_trades(app_id) if app_id else [],
            "settles": engine.settles(),
            "transfers": engine.transfers(),
        }
    )


@splits_control_blueprint.get("/alipay/certificates")
def alipay_certificates() -> Response:
    sandbox = current_sandbox()
    return jsonify(
        {"alipay_cert": sandbox.alipay_cert_pem, "root_cert": sandbox.alipay_root_cert_pem}
    )


@splits_control_blueprint.post("/alipay/app-cert")
def alipay_app_cert() -> tuple[Response, int]:
    data = json_body()
    pem = current_sandbox().issue_alipay_app_cert(
        string_field(data, "app_id"), string_field(data, "public_key")
    )
    return jsonify({"app_cert": pem}), 201


@splits_control_blueprint.get("/splits/wechat")
def wechat_splits() -> Response:
    sharing = current_sandbox().wechat.engine.sharing
    mch_id = request.args.get("mch_id", "")
    receivers = (
        [
            {"type": r.type, "account": r.account, "relation_type": r.relation_type}
            for r in sharing.receivers(mch_id)
        ]
        if mch_id
        else []
    )
    return jsonify(
        {
            "receivers": receivers,
            "orders": sharing.orders(),
            "transfers": [b.to_json() for b in sharing.bills()],
        }
    )


@splits_control_blueprint.post("/splits/wechat/transfers/<out_bill_no>/confirm")
def confirm_wechat_transfer(out_bill_no: str) -> Response:
    data = json_body()
    bill = current_sandbox().wechat.engine.sharing.confirm_transfer(
        string_field(data, "mch_id"), out_bill_no
    )
    return jsonify(bill.to_json())
