"""Alipay's HTTP face: ``/gateway.do``, the cashier page, bill downloads."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import SandboxError, TradeNotFoundError
from payhub_sandbox._state import Trade
from payhub_sandbox.alipay._simulator import DEFAULT_BUYER_ID, alipay_trade_status
from payhub_sandbox.alipay._wire import merge_params, parse_pairs

__all__ = ["alipay_blueprint", "gateway_params", "gateway_response"]

alipay_blueprint = Blueprint("alipay", __name__)


def _form_pairs() -> list[tuple[str, str]]:
    """The body's fields, as latin-1 carried bytes (see :func:`parse_pairs`)."""
    if request.method != "POST":
        return []
    mimetype = request.mimetype
    if mimetype in ("", "application/x-www-form-urlencoded"):
        return parse_pairs(request.get_data(cache=True))
    if mimetype == "multipart/form-data":
        # Werkzeug has decoded these as UTF-8 already; carry them on as bytes.
        return [
            (k.encode("utf-8").decode("latin-1"), v.encode("utf-8").decode("latin-1"))
            for k, v in request.form.items(multi=True)
        ]
    return []


def gateway_params() -> dict[str, str]:
    """The current gateway request's merged query and form parameters (latin-1 text)."""
    return merge_params(parse_pairs(request.query_string), _form_pairs())


@alipay_blueprint.route("/gateway.do", methods=["GET", "POST"])
def gateway() -> BaseResponse:
    return gateway_response()


def gateway_response(system_error: str | None = None) -> BaseResponse:
    """Answer the current ``gateway.do`` request (``system_error``: see
    :meth:`AlipaySimulator.handle`)."""
    sandbox = current_sandbox()
    reply = sandbox.alipay.engine.handle(
        gateway_params(),
        base_url=sandbox.base_url or request.url_root,
        system_error=system_error,
    )
    if reply.kind == "redirect":
        return redirect(reply.location, code=302)
    if reply.kind == "page_error":
        return Response(
            render_template("alipay_error.html", node=reply.node),
            status=200,
            content_type="text/html; charset=utf-8",
        )
    return Response(reply.body, status=200, content_type=f"application/json;charset={reply.codec}")


def _cashier_page(trade: Trade, *, error: str | None = None, status: int = 200) -> Response:
    sandbox = current_sandbox()
    merchant = sandbox.alipay_merchant(trade.merchant_id)
    html = render_template(
        "cashier.html",
        trade=trade,
        merchant=merchant,
        trade_status=alipay_trade_status(trade),
        amount=trade.amount.to_decimal_string(),
        buyer_id=DEFAULT_BUYER_ID,
        error=error,
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


@alipay_blueprint.route("/alipay/cashier/<trade_no>", methods=["GET", "POST"])
def cashier(trade_no: str) -> BaseResponse:
    sandbox = current_sandbox()
    try:
        trade = sandbox.alipay.engine.trade_by_no(trade_no)
    except TradeNotFoundError:
        abort(404)
    if request.method == "GET":
        # Opening the cashier is the buyer scanning the QR code: only now does a
        # precreated trade exist for alipay.trade.query.
        return _cashier_page(sandbox.alipay.engine.scan(trade))
    buyer_id = request.form.get("buyer_id", "").strip() or DEFAULT_BUYER_ID
    try:
        paid = sandbox.alipay.engine.pay(trade, buyer_id=buyer_id)
    except SandboxError as exc:
        return _cashier_page(
            sandbox.alipay.engine.trade_by_no(trade_no), error=exc.message, status=409
        )
    back = sandbox.alipay.engine.return_url(paid)
    if back is not None:
        return redirect(back, code=302)
    return _cashier_page(paid)


@alipay_blueprint.route("/_bills/alipay/<token>")
def bill_download(token: str) -> Response:
    found = current_sandbox().alipay.engine.bill_archive(token)
    if found is None:
        return Response(
            "bill link unknown or expired (links are valid for 30 s)\n",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    filename, data = found
    return Response(
        data,
        status=200,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
