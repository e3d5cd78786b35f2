"""WeChat Pay's HTTP face: ``/v3/...``, the payment page, a WeChat console page."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, abort, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import SandboxError, TradeNotFoundError
from payhub_sandbox._fault_views import MERCHANT_IDS, SYSTEM_ERROR_RESPONDERS
from payhub_sandbox._faults import GatewayFault
from payhub_sandbox._state import Trade
from payhub_sandbox.wechat._simulator import DEFAULT_OPENID, WechatReply, wechat_trade_state

__all__ = ["wechat_blueprint"]

wechat_blueprint = Blueprint("wechat", __name__)

# Characters a client may leave unescaped in a path (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _targets() -> list[str]:
    """The request target as the client signed it: the raw one if the server kept
    it (``RAW_URI``/``REQUEST_URI``), then rebuilt from the decoded path."""
    env = request.environ
    found: list[str] = []
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        if "://" in raw:  # absolute-form: keep the path and query only
            parts = urlsplit(raw)
            raw = parts.path + (f"?{parts.query}" if parts.query else "")
        found.append(raw)
    path = str(env.get("SCRIPT_NAME", "")) + str(env.get("PATH_INFO", ""))
    query = str(env.get("QUERY_STRING", ""))
    suffix = f"?{query}" if query else ""
    try:
        quoted = quote(path.encode("latin-1"), safe=_PATH_SAFE)
    except UnicodeEncodeError:
        quoted = quote(path.encode("utf-8"), safe=_PATH_SAFE)
    # A client may sign an empty query's "?" that the WSGI environ cannot show.
    forms = (path + suffix, quoted + suffix) if query else (path, quoted, f"{path}?")
    for candidate in forms:
        if candidate not in found:
            found.append(candidate)
    return found


def _response(reply: WechatReply) -> Response:
    response = Response(reply.body, status=reply.status)
    response.headers["Content-Type"] = reply.content_type
    for name, value in reply.headers:
        response.headers[name] = value
    return response


@wechat_blueprint.route("/v3/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def v3(rest: str) -> Response:
    sandbox = current_sandbox()
    reply = sandbox.wechat.engine.handle(
        method=request.method,
        path=request.path,
        targets=_targets(),
        query=dict(request.args.items()),
        authorization=request.headers.getlist("Authorization"),
        body=request.get_data(cache=True),
        base_url=sandbox.base_url or request.url_root,
        serial=request.headers.get("Wechatpay-Serial", ""),
    )
    return _response(reply)


def _system_error(fault: GatewayFault) -> BaseResponse:
    """A gateway fault's "system busy": signed, as WeChat Pay's own 500s are."""
    mch_id = MERCHANT_IDS["wechat"](request)
    return _response(
        current_sandbox().wechat.engine.error_reply(fault.code or "SYSTEM_ERROR", mch_id)
    )


SYSTEM_ERROR_RESPONDERS["wechat"] = _system_error


def _pay_page(trade: Trade, *, error: str | None = None, status: int = 200) -> Response:
    sandbox = current_sandbox()
    html = render_template(
        "wechat_pay.html",
        trade=trade,
        merchant=sandbox.wechat_merchant(trade.merchant_id),
        trade_state=wechat_trade_state(trade),
        amount=trade.amount.to_decimal_string(),
        qr_content=sandbox.wechat.engine.pay_url(trade, sandbox.base_url or request.url_root),
        openid=trade.buyer_id or DEFAULT_OPENID,
        error=error,
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


@wechat_blueprint.route("/wechat/pay/<token>", methods=["GET", "POST"])
def pay_page(token: str) -> BaseResponse:
    sandbox = current_sandbox()
    try:
        trade = sandbox.wechat.engine.trade_by_token(token)
    except TradeNotFoundError:
        abort(404)
    if request.method == "GET":
        return _pay_page(trade)
    openid = request.form.get("openid", "").strip() or None
    try:
        paid = sandbox.wechat.engine.pay(trade, openid=openid)
    except SandboxError as exc:
        return _pay_page(sandbox.wechat.engine.trade_by_token(token), error=exc.message, status=409)
    return _pay_page(paid)


@wechat_blueprint.get("/wechat/")
def wechat_console() -> Response:
    sandbox = current_sandbox()
    base = sandbox.base_url or request.url_root
    trades = [t for t in sandbox.trades if t.channel == "wechat"]
    html = render_template(
        "wechat_console.html",
        sandbox=sandbox,
        now=sandbox.clock.now(),
        merchants=sandbox.wechat_merchants,
        public_key_id=sandbox.wechat_public_key_id,
        certificates=sandbox.wechat.engine.certificates(),
        trades=[(t, wechat_trade_state(t), sandbox.wechat.engine.pay_url(t, base)) for t in trades],
        refunds=[r for r in sandbox.refunds if r.channel == "wechat"],
    )
    return Response(html, content_type="text/html; charset=utf-8")
