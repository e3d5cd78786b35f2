"""What a ``/v3/...`` handler is given and gives back, and the checks of request fields.

Every handler of the WeChat simulator takes a :class:`Call` (the authenticated
merchant, the query, the exact body, the route's groups) and returns an
:class:`Answer` or raises :class:`~payhub_sandbox.wechat._wire.WechatFailure`,
whose ``PARAM_ERROR`` bodies the helpers here shape as WeChat does
(``detail.location/field/value/issue``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from payhub_sandbox.wechat._merchants import WechatMerchant
from payhub_sandbox.wechat._wire import JsonFloat, WechatFailure, parse_json_object

__all__ = [
    "MAX_TOTAL",
    "Answer",
    "Call",
    "WechatReply",
    "body_param",
    "currency_field",
    "fen_field",
    "object_field",
    "query_param",
    "string_field",
    "url_field",
]

MAX_TOTAL: Final = 2**31 - 1


@dataclass(frozen=True)
class WechatReply:
    """What a ``/v3/...`` request is answered with."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    content_type: str = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Call:
    """One authenticated request, as a handler sees it."""

    merchant: WechatMerchant
    query: Mapping[str, str]
    body: bytes
    base_url: str
    groups: tuple[str, ...]
    serial: str = ""
    """``Wechatpay-Serial``: the platform key a field of the body is encrypted with."""

    def json(self) -> dict[str, Any]:
        data = parse_json_object(self.body)
        if data is None:
            raise WechatFailure("PARAM_ERROR", "请求体格式错误：不是合法的JSON对象")
        return data


@dataclass(frozen=True)
class Answer:
    """A handler's result: signed JSON ``data`` (None: an empty body), or an unsigned file."""

    status: int = 200
    data: Mapping[str, Any] | None = None
    raw: bytes | None = None
    """An unsigned file (the bill download)."""
    content_type: str = "application/octet-stream"


def body_param(path: str, value: object, issue: str) -> WechatFailure:
    """``PARAM_ERROR`` for the body field at JSON path ``path``."""
    shown = value if isinstance(value, str | int) and not isinstance(value, bool) else None
    detail: dict[str, Any] = {"location": "body", "field": path, "issue": issue}
    if shown is not None:
        detail["value"] = shown
    return WechatFailure("PARAM_ERROR", f"输入源“{path}”映射到字段校验失败：{issue}", detail)


def query_param(name: str, value: str, issue: str) -> WechatFailure:
    """``PARAM_ERROR`` for the query parameter ``name``."""
    return WechatFailure(
        "PARAM_ERROR",
        f"输入源“/query/{name}”映射到字段校验失败：{issue}",
        {"location": "query", "field": name, "value": value, "issue": issue},
    )


def string_field(
    data: Mapping[str, Any],
    name: str,
    where: str,
    *,
    required: bool = True,
    max_len: int = 256,
    min_len: int = 1,
) -> str:
    path = f"{where}/{name}"
    value = data.get(name)
    if value is None:
        if required:
            raise body_param(path, value, "字段缺失")
        return ""
    if not isinstance(value, str) or isinstance(value, JsonFloat):
        raise body_param(path, value, "必须是字符串")
    if not min_len <= len(value) <= max_len:
        raise body_param(path, value, f"长度必须在{min_len}到{max_len}之间")
    return value


def object_field(data: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> Any:
    path = f"{where}/{name}"
    value = data.get(name)
    if value is None:
        if required:
            raise body_param(path, value, "字段缺失")
        return {}
    if not isinstance(value, dict):
        raise body_param(path, None, "必须是JSON对象")
    return value


def fen_field(data: Mapping[str, Any], name: str, where: str) -> int:
    """A JSON integer > 0 (never ``100.0``, ``"100"``, ``true`` or a negative)."""
    path = f"{where}/{name}"
    value = data.get(name)
    if value is None:
        raise body_param(path, value, "字段缺失")
    if isinstance(value, JsonFloat):
        raise body_param(path, str(value), "必须是整数（单位：分）")
    if isinstance(value, bool) or not isinstance(value, int):
        raise body_param(path, value, "必须是整数（单位：分）")
    if not 0 < value <= MAX_TOTAL:
        raise body_param(path, value, f"必须大于等于1且小于等于{MAX_TOTAL}")
    return value


def currency_field(data: Mapping[str, Any], where: str, *, required: bool) -> str:
    currency = string_field(data, "currency", where, required=required, max_len=16) or "CNY"
    if currency != "CNY":
        raise body_param(f"{where}/currency", currency, "仅支持CNY")
    return currency


def url_field(data: Mapping[str, Any], name: str, where: str, *, required: bool) -> str:
    url = string_field(data, name, where, required=required, max_len=256)
    if url and (not re.fullmatch(r"https?://[^\s?#]+", url, re.ASCII)):
        raise body_param(f"{where}/{name}", url, "必须是不带参数的http(s)地址")
    return url
