"""WeChat Pay APIv3 on the wire: the ``Authorization`` header, signed messages,
signed response headers, strict JSON, RFC 3339 times, error bodies.

Built from PROTOCOLS.md ("WeChat Pay APIv3"), never through ``payhub.channels``.
Only ``payhub.signing`` primitives are used.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.signing import rsa_sign
from payhub_sandbox._clock import CHINA_TZ

__all__ = [
    "AUTH_SCHEME",
    "ERROR_STATUS",
    "TIMESTAMP_TOLERANCE",
    "Authorization",
    "JsonFloat",
    "WechatFailure",
    "format_time",
    "new_nonce",
    "parse_authorization",
    "parse_json_object",
    "parse_time",
    "render_json",
    "request_message",
    "response_message",
    "signed_headers",
]

#: The scheme of the merchant's ``Authorization`` header and the value of
#: ``Wechatpay-Signature-Type``.
AUTH_SCHEME: Final = "WECHATPAY2-SHA256-RSA2048"

#: Seconds a request's (and a response's) timestamp may be away from now.
TIMESTAMP_TOLERANCE: Final = 300

#: HTTP status of every error code the sandbox answers (WeChat's own pairs).
ERROR_STATUS: Final[Mapping[str, int]] = {
    "PARAM_ERROR": 400,
    "INVALID_REQUEST": 400,
    "APPID_MCHID_NOT_MATCH": 400,
    "ORDER_CLOSED": 400,
    "MCH_NOT_EXISTS": 400,
    "NO_STATEMENT_EXIST": 400,
    "STATEMENT_CREATING": 400,
    "SIGN_ERROR": 401,
    "NO_AUTH": 403,
    "OUT_TRADE_NO_USED": 403,
    "ORDERPAID": 403,
    "TRADE_ERROR": 403,
    "RULE_LIMIT": 403,
    "NOT_ENOUGH": 403,
    "USER_ACCOUNT_ABNORMAL": 403,
    "ORDER_NOT_EXIST": 404,
    "RESOURCE_NOT_EXISTS": 404,
    "NOT_FOUND": 404,
    "FREQUENCY_LIMITED": 429,
    "SYSTEM_ERROR": 500,
    "BANK_ERROR": 500,
}

#: The message WeChat answers when a code is forced without one (fault injection).
DEFAULT_MESSAGES: Final[Mapping[str, str]] = {
    "PARAM_ERROR": "参数错误",
    "INVALID_REQUEST": "无效请求",
    "APPID_MCHID_NOT_MATCH": "appid和mch_id不匹配",
    "ORDER_CLOSED": "订单已关闭",
    "MCH_NOT_EXISTS": "商户号不存在",
    "NO_STATEMENT_EXIST": "账单文件不存在",
    "STATEMENT_CREATING": "账单生成中",
    "SIGN_ERROR": "签名错误",
    "NO_AUTH": "商户无权限",
    "OUT_TRADE_NO_USED": "商户订单号重复",
    "ORDERPAID": "该订单已支付",
    "TRADE_ERROR": "交易错误",
    "RULE_LIMIT": "业务规则限制",
    "NOT_ENOUGH": "余额不足",
    "USER_ACCOUNT_ABNORMAL": "退款请求失败",
    "ORDER_NOT_EXIST": "订单不存在",
    "RESOURCE_NOT_EXISTS": "资源不存在",
    "NOT_FOUND": "请求的资源不存在",
    "FREQUENCY_LIMITED": "频率超限",
    "SYSTEM_ERROR": "系统错误",
    "BANK_ERROR": "银行系统异常",
}


class WechatFailure(Exception):
    """An error answer (never escapes the simulator): ``{code, message, detail?}``."""

    def __init__(
        self, code: str, message: str | None = None, detail: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message if message is not None else DEFAULT_MESSAGES[code]
        self.detail = dict(detail) if detail else None

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            data["detail"] = self.detail
        return data


# -- the merchant's Authorization header ------------------------------------------

_PARAM_RE: Final = re.compile(r'\s*([A-Za-z_]+)\s*=\s*"([^"]*)"\s*(,|$)', re.ASCII)
_AUTH_FIELDS: Final = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


@dataclass(frozen=True)
class Authorization:
    """The five parameters of ``Authorization: WECHATPAY2-SHA256-RSA2048 k="v",...``."""

    mchid: str
    nonce_str: str
    signature: str = field(repr=False)
    timestamp: str
    serial_no: str


def parse_authorization(value: str) -> Authorization | str:
    """The header's parameters, in any order; or a message saying what is wrong."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != AUTH_SCHEME:
        return "Http头Authorization值格式错误：认证类型应为WECHATPAY2-SHA256-RSA2048"
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM_RE.match(rest, position)
        if match is None or match.end() == position:
            return "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
        name, text = match.group(1), match.group(2)
        if name in params:
            return f"Http头Authorization值格式错误：参数{name}重复"
        params[name] = text
        position = match.end()
    missing = [name for name in _AUTH_FIELDS if not params.get(name)]
    if missing:
        return f"Http头Authorization值格式错误：缺少参数{','.join(missing)}"
    return Authorization(
        mchid=params["mchid"],
        nonce_str=params["nonce_str"],
        signature=params["signature"],
        timestamp=params["timestamp"],
        serial_no=params["serial_no"],
    )


def request_message(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """``METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` over the exact body bytes."""
    head = f"{method}\n{target}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """``TIMESTAMP\\nNONCE\\nBODY\\n``: what a response or a notification is signed over."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


_NONCE_ALPHABET: Final = string.ascii_letters + string.digits


def new_nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def signed_headers(
    key: rsa.RSAPrivateKey, serial: str, body: bytes, now: datetime
) -> list[tuple[str, str]]:
    """The ``Wechatpay-*`` headers of a response or notification carrying ``body``."""
    timestamp = str(int(now.timestamp()))
    nonce = secrets.token_hex(16).upper()
    return [
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", rsa_sign(key, response_message(timestamp, nonce, body))),
        ("Wechatpay-Timestamp", timestamp),
        ("Wechatpay-Serial", serial),
        ("Wechatpay-Signature-Type", AUTH_SCHEME),
        ("Request-ID", f"{secrets.token_hex(20).upper()}-0"),
    ]


# -- JSON ------------------------------------------------------------------------


class JsonFloat(str):
    """The literal text of a JSON number with a fraction or an exponent (``100.0``, ``1e2``).

    Never turned into a float: an amount written that way is a parameter error.
    """


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object (numbers with a fraction kept as :class:`JsonFloat`), or None."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=JsonFloat, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def render_json(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept as is (as WeChat answers)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- time ------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """RFC 3339 in Asia/Shanghai, seconds precision: ``2024-03-01T10:00:00+08:00``."""
    return f"{moment.astimezone(CHINA_TZ):%Y-%m-%dT%H:%M:%S}+08:00"


_RFC3339_RE: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time with an offset (``yyyy-MM-DDTHH:mm:ss+08:00``), or None."""
    if not _RFC3339_RE.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None
