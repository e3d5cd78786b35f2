"""The EPay provider's HTTP face: submit.php, mapi.php, api.php, a cashier, a control API."""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request

from payhub_epay_sandbox._simulator import EpaySandboxError, EpaySimulator

__all__ = ["EXTENSION_KEY", "epay_blueprint", "init_app", "sandbox_part", "simulator"]

EXTENSION_KEY = "payhub_epay_sandbox"

epay_blueprint = Blueprint("payhub_epay", __name__)


def simulator() -> EpaySimulator:
    found = current_app.extensions[EXTENSION_KEY]
    assert isinstance(found, EpaySimulator)
    return found


def init_app(app: Flask, epay: EpaySimulator, *, url_prefix: str = "/epay") -> EpaySimulator:
    """Mount the EPay provider on ``app`` (the sandbox's ``create_app()``, or any
    Flask app) under ``url_prefix``: the channel's ``gateway`` is then
    ``<sandbox URL><url_prefix>/``. On an app where the provider is mounted already
    (``create_app()`` mounts the installed sandbox part), it swaps in ``epay``."""
    app.extensions[EXTENSION_KEY] = epay
    if epay_blueprint.name not in app.blueprints:
        app.register_blueprint(epay_blueprint, url_prefix=url_prefix)
    return epay


def sandbox_part(app: Flask, sandbox: Any) -> EpaySimulator:
    """The ``payhub_sandbox.parts`` entry point: an EPay provider on the sandbox's
    clock and time factor, under ``/epay``, notifying over the network."""
    epay = EpaySimulator(clock=sandbox.clock, time_factor=sandbox.time_factor)
    return init_app(app, epay)


def _fields() -> dict[str, str]:
    # submit.php takes GET or POST (彩虹易支付 reads $_GET first); the others POST.
    source = request.args if "pid" in request.args else request.form
    return {k: source.get(k, "") for k in source}


def _json_error(exc: EpaySandboxError) -> Response:
    return jsonify({"code": exc.code, "msg": str(exc)})


@epay_blueprint.route("/submit.php", methods=["GET", "POST"])
def submit() -> Any:
    try:
        order = simulator().create_order(_fields(), api=False)
    except EpaySandboxError as exc:
        return Response(f"<h3>站点提示信息</h3>{escape(str(exc))}", 200, mimetype="text/html")
    return redirect(f"{request.script_root}{_prefix()}/cashier/{order.trade_no}", code=302)


@epay_blueprint.post("/mapi.php")
def mapi() -> Response:
    try:
        order = simulator().create_order(request.form.to_dict(), api=True)
    except EpaySandboxError as exc:
        return _json_error(exc)
    cashier = f"{request.host_url.rstrip('/')}{_prefix()}/cashier/{order.trade_no}"
    answer: dict[str, Any] = {"code": 1, "msg": "succ", "trade_no": order.trade_no}
    device = request.form.get("device", "pc")
    if device == "pc":
        answer["qrcode"] = cashier
    else:
        answer["payurl"] = cashier
    return jsonify(answer)


@epay_blueprint.route("/api.php", methods=["GET", "POST"])
def api() -> Response:
    act = request.args.get("act", "")
    epay = simulator()
    try:
        if act == "order":
            args = request.args
            return jsonify(
                epay.query(
                    args.get("pid", ""),
                    args.get("key", ""),
                    args.get("out_trade_no"),
                    args.get("trade_no"),
                )
            )
        if act == "refund":
            form = request.form
            return jsonify(
                epay.refund(
                    form.get("pid", ""),
                    form.get("key", ""),
                    form.get("out_trade_no", ""),
                    form.get("money", "").strip(),
                )
            )
    except EpaySandboxError as exc:
        return _json_error(exc)
    return jsonify({"code": -5, "msg": "No Act!"})


@epay_blueprint.get("/cashier/<trade_no>")
def cashier(trade_no: str) -> Response:
    try:
        order = simulator().order(trade_no)
    except EpaySandboxError:
        return Response("订单号不存在", 404)
    action = f"{request.script_root}{_prefix()}/cashier/{trade_no}/pay"
    page = (
        "<!doctype html><meta charset='utf-8'><title>EPay sandbox cashier</title>"
        f"<h1>{escape(order.name)}</h1><p>¥{order.money:.2f} · {escape(order.type)}"
        f" · {escape(order.out_trade_no)} · status {order.status}</p>"
        f"<form method='post' action='{escape(action)}'><button>Pay</button></form>"
    )
    return Response(page, mimetype="text/html")


@epay_blueprint.post("/cashier/<trade_no>/pay")
def cashier_pay(trade_no: str) -> Any:
    epay = simulator()
    try:
        order = epay.pay(trade_no)
    except EpaySandboxError:
        return Response("订单号不存在", 404)
    if order.return_url:
        return redirect(epay.return_url_for(order), code=302)
    return Response("支付成功", mimetype="text/plain")


# -- control API (the sandbox's verbs for the EPay part) ----------------------


@epay_blueprint.post("/_control/merchants")
def control_merchant() -> Response:
    body = request.get_json(force=True)
    merchant = simulator().add_merchant(
        str(body["pid"]),
        str(body["key"]),
        refund_enabled=bool(body.get("refund_enabled", True)),
        notify_method="POST" if body.get("notify_method") == "POST" else "GET",
    )
    return jsonify({"pid": merchant.pid})


@epay_blueprint.post("/_control/orders/<trade_no>/pay")
def control_pay(trade_no: str) -> Response:
    try:
        order = simulator().pay(trade_no)
    except EpaySandboxError as exc:
        return _json_error(exc)
    return jsonify(order.as_query_answer())


@epay_blueprint.post("/_control/faults")
def control_fault() -> Response:
    body = request.get_json(force=True)
    fault = simulator().add_fault(
        body["kind"],
        count=int(body.get("count", 1)),
        seconds=float(body.get("seconds", 0)),
        out_trade_no=body.get("out_trade_no"),
    )
    return jsonify({"kind": fault.kind, "count": fault.count})


@epay_blueprint.delete("/_control/faults")
def control_clear_faults() -> Response:
    simulator().clear_faults()
    return jsonify({"cleared": True})


@epay_blueprint.post("/_control/deliver")
def control_deliver() -> Response:
    made = simulator().deliver_due(force=request.args.get("force") == "1")
    return jsonify(
        [
            {
                "trade_no": d.trade_no,
                "number": d.number,
                "status_code": d.status_code,
                "acknowledged": d.acknowledged,
                "effects": list(d.effects),
            }
            for d in made
        ]
    )


def _prefix() -> str:
    """Where the blueprint is mounted (e.g. ``/epay``), from this request's path."""
    path = request.path
    for suffix in ("/submit.php", "/mapi.php", "/api.php"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path.split("/cashier/")[0]
