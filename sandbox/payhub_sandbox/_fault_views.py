"""Gateway faults on the wire: the hook that applies them, and their control API.

The hook runs before every request of the app. A request to a channel's
gateway (see :data:`GATEWAY_PATHS`) that a fault matches is answered by the
fault instead (or, for ``slow``, answered normally after the wait). With no
fault set, nothing is parsed and the request goes on untouched.

Each channel's "system busy" answer is built by a responder registered in
:data:`SYSTEM_ERROR_RESPONDERS`; a channel's simulator may register one that
signs its answer as the real platform does.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Callable
from typing import Final

from flask import Blueprint, Request, Response, jsonify, request
from werkzeug.wrappers import Response as BaseResponse

from payhub_sandbox._context import current_sandbox
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox._faults import GATEWAY_PATHS, FaultMode, GatewayFault
from payhub_sandbox._input import json_body as _body
from payhub_sandbox.alipay._views import gateway_params, gateway_response

__all__ = [
    "HTML_ERROR_PAGE",
    "MERCHANT_IDS",
    "SYSTEM_ERROR_RESPONDERS",
    "faults_blueprint",
]

faults_blueprint = Blueprint("faults", __name__, url_prefix="/_control")

#: What nginx answers when the service behind it fails.
HTML_ERROR_PAGE: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

_MCHID_RE: Final = re.compile(r'mchid="([^"]*)"')


def _alipay_app_id(req: Request) -> str | None:
    return gateway_params().get("app_id") or None


def _wechat_mchid(req: Request) -> str | None:
    # Every APIv3 call carries the merchant in its Authorization header.
    found = _MCHID_RE.search(req.headers.get("Authorization", ""))
    if found:
        return found.group(1) or None
    return req.args.get("mchid") or None


def _unionpay_mer_id(req: Request) -> str | None:
    return req.form.get("merId") or None


#: channel -> how to tell the merchant a gateway request is for.
MERCHANT_IDS: Final[dict[str, Callable[[Request], str | None]]] = {
    "alipay": _alipay_app_id,
    "wechat": _wechat_mchid,
    "unionpay": _unionpay_mer_id,
}


def _alipay_busy(fault: GatewayFault) -> BaseResponse:
    # Through the simulator: signed with the platform key, in the request's
    # charset, under the method's node, as real errors are.
    return gateway_response(system_error=fault.code)


def _wechat_busy(fault: GatewayFault) -> BaseResponse:
    body = {"code": fault.code or "SYSTEM_ERROR", "message": "系统错误，请稍后重试"}
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=500,
        content_type="application/json; charset=utf-8",
    )


_UNIONPAY_MESSAGES: Final = {
    "03": "交易通讯超时，请发起查询交易",
    "01": "交易失败。详情请咨询95516",
}


def _unionpay_busy(fault: GatewayFault) -> BaseResponse:
    code = fault.code or "03"
    return Response(
        f"respCode={code}&respMsg={_UNIONPAY_MESSAGES.get(code, '系统繁忙')}",
        status=200,
        content_type="text/plain; charset=utf-8",
    )


#: channel -> its "system busy" answer. The WeChat and UnionPay defaults are
#: unsigned; their simulators replace them with signed ones.
SYSTEM_ERROR_RESPONDERS: Final[dict[str, Callable[[GatewayFault], BaseResponse]]] = {
    "alipay": _alipay_busy,
    "wechat": _wechat_busy,
    "unionpay": _unionpay_busy,
}


def _channel_of(path: str) -> str | None:
    for channel, prefix in GATEWAY_PATHS.items():
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return channel
    return None


def _drop_connection() -> None:
    """Shut the request's socket, if a live werkzeug server gave us one."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # the client is gone already
            sock.shutdown(socket.SHUT_RDWR)


@faults_blueprint.before_app_request
def apply_gateway_fault() -> BaseResponse | None:
    """Fail (or slow) a gateway request that a fault matches."""
    faults = current_sandbox().gateway_faults
    if not faults:
        return None
    channel = _channel_of(request.path)
    if channel is None:
        return None
    taken = faults.take(channel, MERCHANT_IDS[channel](request))
    if taken is None:
        return None
    fault, wake = taken
    if fault.mode is FaultMode.SLOW:
        assert fault.seconds is not None
        wake.wait(fault.seconds)  # cut short when the fault is cleared
        return None
    if fault.mode is FaultMode.SYSTEM_ERROR:
        return SYSTEM_ERROR_RESPONDERS[channel](fault)
    if fault.mode is FaultMode.HTML_ERROR:
        return Response(HTML_ERROR_PAGE, status=502, content_type="text/html")
    if fault.close:
        # The answer below is written to a shut socket: the client sees the
        # connection end without a response.
        _drop_connection()
    return Response(b"", status=503)


# -- the control API ---------------------------------------------------------------


@faults_blueprint.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


@faults_blueprint.post("/faults")
def set_fault() -> tuple[Response, int]:
    """``{channel, mode, app_id?, seconds?, count?, close?, code?, duration?}`` -> the
    fault, 201."""
    data = _body()
    unknown = set(data) - {
        "channel",
        "mode",
        "app_id",
        "seconds",
        "count",
        "close",
        "code",
        "duration",
    }
    if unknown:
        raise InvalidInputError(f"unknown fields {sorted(unknown)}")
    fault = current_sandbox().set_fault(
        data.get("channel"),  # type: ignore[arg-type]  # checked by set_fault
        data.get("mode"),  # type: ignore[arg-type]
        app_id=data.get("app_id"),
        seconds=data.get("seconds"),
        count=data.get("count"),
        close=data.get("close", False),
        code=data.get("code"),
        duration=data.get("duration"),
    )
    return jsonify(fault.to_json()), 201


@faults_blueprint.get("/faults")
def list_faults() -> Response:
    return jsonify([fault.to_json() for fault in current_sandbox().gateway_faults.list()])


@faults_blueprint.delete("/faults")
def clear_faults() -> Response:
    """Every fault; ``?channel=…`` a channel's; ``?channel=…&app_id=…`` one merchant's."""
    data = _body()
    channel = request.args.get("channel", data.get("channel"))
    app_id = request.args.get("app_id", data.get("app_id"))
    for name, value in (("channel", channel), ("app_id", app_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{name} must be a string")
    return jsonify({"cleared": current_sandbox().clear_faults(channel, app_id=app_id)})
