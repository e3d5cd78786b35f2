"""WeChat Pay APIv3 error codes and what payhub makes of them.

An error answer is JSON ``{"code", "message", "detail"?}`` with an HTTP status
of 4xx or 5xx. One table serves the code (which unified code to raise, whether
a retry can help) and the documentation (``docs/channels/wechat.md`` lists the
same rows). A code missing from the table is judged by its HTTP status: 5xx is
a retryable ``CHANNEL_UNAVAILABLE``, 429 a retryable ``RATE_LIMITED``, anything
else a non-retryable ``CHANNEL_ERROR`` that keeps the channel's own code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import httpx

from payhub.errors import ChannelError, ErrorCode, PayhubError, ProtocolError

__all__ = ["WECHAT_ERROR_CODES", "WechatErrorCode", "error_from_response", "shown"]


@dataclass(frozen=True)
class WechatErrorCode:
    """One row of the table: WeChat's code, its usual HTTP status, payhub's code."""

    code: str
    http_status: int
    meaning: str  #: what WeChat Pay's documentation says it means (in English)
    error: ErrorCode
    retryable: bool


def _rows(*rows: tuple[str, int, str, ErrorCode, bool]) -> Mapping[str, WechatErrorCode]:
    return MappingProxyType({r[0]: WechatErrorCode(*r) for r in sorted(rows)})


_E = ErrorCode

#: WeChat Pay APIv3 error ``code`` → unified code and retryable flag.
WECHAT_ERROR_CODES: Final[Mapping[str, WechatErrorCode]] = _rows(
    ("ACCOUNT_ERROR", 400, "the buyer's account is abnormal", _E.BUYER_ERROR, False),
    ("APPID_MCHID_NOT_MATCH", 400, "app id and merchant id do not belong together",
     _E.CONFIGURATION, False),
    ("BANK_ERROR", 500, "the bank's system is failing", _E.CHANNEL_UNAVAILABLE, True),
    ("FREQUENCY_LIMITED", 429, "too many requests", _E.RATE_LIMITED, True),
    ("INVALID_REQUEST", 400, "the request breaks a rule of the API or of the trade",
     _E.INVALID_REQUEST, False),
    ("INVALID_TRANSACTIONID", 400, "malformed transaction id", _E.INVALID_REQUEST, False),
    ("MCH_NOT_EXISTS", 400, "no such merchant id", _E.CONFIGURATION, False),
    ("NOT_ENOUGH", 403, "the merchant balance cannot cover the refund",
     _E.INSUFFICIENT_BALANCE, False),
    ("NOT_FOUND", 404, "no such transfer bill (merchant transfer query)",
     _E.TRADE_NOT_FOUND, False),
    ("RATELIMIT_EXCEED", 429, "profit-sharing requests are too frequent", _E.RATE_LIMITED,
     True),
    ("NO_AUTH", 403, "the merchant lacks permission for this API", _E.PERMISSION_DENIED, False),
    ("OPENID_MISMATCH", 400, "the openid does not belong to the app id", _E.INVALID_REQUEST,
     False),
    ("ORDERPAID", 403, "the order is already paid", _E.TRADE_ALREADY_PAID, False),
    ("ORDER_CLOSED", 400, "the order is closed", _E.TRADE_CLOSED, False),
    ("ORDER_NOT_EXIST", 404, "no such order", _E.TRADE_NOT_FOUND, False),
    ("OUT_TRADE_NO_USED", 403, "out_trade_no was used for another order",
     _E.ORDER_NUMBER_USED, False),
    ("PARAM_ERROR", 400, "a parameter is missing or malformed", _E.INVALID_REQUEST, False),
    ("REQUEST_BLOCKED", 403, "the request was blocked by risk control",
     _E.PERMISSION_DENIED, False),
    ("RESOURCE_NOT_EXISTS", 404, "no such refund or resource", _E.TRADE_NOT_FOUND, False),
    ("RULE_LIMIT", 403, "a business rule forbids it", _E.CHANNEL_ERROR, False),
    ("NO_STATEMENT_EXIST", 400, "no bill for that day: nothing was traded",
     _E.TRADE_NOT_FOUND, False),
    ("STATEMENT_CREATING", 400, "the bill is still being made (ready from 10:00 next day)",
     _E.CHANNEL_UNAVAILABLE, True),
    ("SIGN_ERROR", 401, "WeChat Pay could not verify the request signature",
     _E.SIGNATURE_INVALID, False),
    ("SYSTEM_ERROR", 500, "WeChat Pay's system is failing", _E.CHANNEL_UNAVAILABLE, True),
    ("TRADE_ERROR", 403, "the trade failed for a business reason", _E.CHANNEL_ERROR, False),
    ("USER_ACCOUNT_ABNORMAL", 403, "the buyer's account was closed or frozen",
     _E.BUYER_ERROR, False),
)


def _unlisted(status: int) -> tuple[ErrorCode, bool]:
    if status >= 500:
        return ErrorCode.CHANNEL_UNAVAILABLE, True
    if status == 429:
        return ErrorCode.RATE_LIMITED, True
    return ErrorCode.CHANNEL_ERROR, False


def shown(value: object, limit: int = 64) -> str:
    """A short, safe rendering of untrusted input for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_from_response(response: httpx.Response) -> PayhubError:
    """The typed error for a non-2xx answer (not raised: the caller raises it)."""
    status = response.status_code
    request_id = response.headers.get("Request-ID")
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        kind = "an HTML page" if b"<html" in response.content[:512].lower() else "a non-JSON body"
        suffix = f" (Request-ID {shown(request_id)})" if request_id else ""
        return ProtocolError(f"wechat: HTTP {status} with {kind}{suffix}", retryable=status >= 500)
    message = data.get("message") if isinstance(data, dict) else None
    text = message if isinstance(message, str) else ""
    row = WECHAT_ERROR_CODES.get(code)
    unified, retryable = (row.error, row.retryable) if row else _unlisted(status)
    return ChannelError(
        f"wechat: {code[:64]}: {text[:200]} (HTTP {status})",
        channel="wechat",
        channel_code=code,
        channel_message=text,
        code=unified,
        retryable=retryable,
        http_status=status,
        request_id=request_id,
    )
