"""UnionPay's HTTP face: the ACP endpoints under ``/gateway/api/`` and the cashier."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from markupsafe import Markup, escape

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import SandboxError, TradeNotFoundError
from payhub_sandbox._fault_views import SYSTEM_ERROR_RESPONDERS
from payhub_sandbox._faults import GatewayFault
from payhub_sandbox._state import Trade
from payhub_sandbox.unionpay._simulator import ENDPOINTS, unionpay_orig_resp_code

__all__ = ["unionpay_blueprint"]

unionpay_blueprint = Blueprint("unionpay", __name__)

_HTML = "text/html; charset=utf-8"


@unionpay_blueprint.post("/gateway/api/<endpoint>")
def gateway(endpoint: str) -> Response:
    role = ENDPOINTS.get(endpoint)
    if role is None:
        abort(404)
    reply = current_sandbox().unionpay.engine.handle(role, request.get_data(cache=True))
    if reply.kind == "page_error":
        html = render_template("unionpay_error.html", fields=reply.fields)
        return Response(html, status=200, content_type=_HTML)
    if reply.kind == "cashier":
        assert reply.trade is not None
        return _cashier_page(reply.trade)
    return Response(reply.body, status=200, content_type="text/plain;charset=UTF-8")


def _cashier_page(trade: Trade, *, error: str | None = None, status: int = 200) -> Response:
    html = render_template(
        "unionpay_cashier.html",
        trade=trade,
        amount=trade.amount.to_decimal_string(),
        orig_resp_code=unionpay_orig_resp_code(trade),
        error=error,
    )
    return Response(html, status=status, content_type=_HTML)


@unionpay_blueprint.route("/unionpay/cashier/<trade_no>", methods=["GET", "POST"])
def cashier(trade_no: str) -> Response:
    """The card page. POST pays; the browser then posts the front notification to
    ``frontUrl`` (an auto-submitting form), or sees the paid page without one."""
    simulator = current_sandbox().unionpay.engine
    try:
        trade = simulator.trade_by_no(trade_no)
    except TradeNotFoundError:
        abort(404)
    if request.method == "GET":
        return _cashier_page(trade)
    try:
        paid = simulator.pay(trade)
    except SandboxError as exc:
        return _cashier_page(simulator.trade_by_no(trade_no), error=exc.message, status=409)
    front = simulator.front_return(paid)
    if front is None:
        return _cashier_page(paid)
    url, fields = front
    html = render_template(
        "unionpay_front.html",
        trade=paid,
        action=url,
        fields=[(name, _attribute(value)) for name, value in fields.items()],
    )
    return Response(html, status=200, content_type=_HTML)


def _attribute(value: str) -> Markup:
    """An attribute value whose CR and LF survive a browser: HTML parsers turn a raw
    CRLF into LF, which would change the signed ``signPubKeyCert``; character
    references are kept as written."""
    escaped = str(escape(value)).replace("\r", "&#13;").replace("\n", "&#10;")
    return Markup(escaped)  # noqa: S704 - escaped above; only CR/LF became references


def _system_error(fault: GatewayFault) -> Response:
    """A ``system_error`` gateway fault, answered as UnionPay does: a signed ``k=v&…``
    body with ``respCode`` 03 (or the fault's code); a browser consume sees the error page."""
    simulator = current_sandbox().unionpay.engine
    # The fault hook has parsed the form already (to find merId): read it from there.
    fields = simulator.system_error(fault.code or "03", request.form.to_dict(flat=True))
    if request.path.endswith("/frontTransReq.do"):
        html = render_template("unionpay_error.html", fields=fields)
        return Response(html, status=200, content_type=_HTML)
    # respCode leads this body (the others are in key order): ACP gives the order no
    # meaning, and a client that depends on it should find out here.
    body = simulator.signed_body(fields, first=("respCode", "respMsg"))
    return Response(body, status=200, content_type="text/plain;charset=UTF-8")


# The gateway-fault hook's default UnionPay answer is unsigned; sign it as UnionPay would.
SYSTEM_ERROR_RESPONDERS["unionpay"] = _system_error
