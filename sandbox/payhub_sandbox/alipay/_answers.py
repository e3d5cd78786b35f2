"""What ``gateway.do`` reads and answers: the methods it knows, request parsing,
error answers and the layout of answer nodes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from payhub.errors import AmountError
from payhub.money import Money
from payhub_sandbox.alipay._merchants import (
    AlipayMerchant,
)

__all__ = [
    "API_METHODS",
    "BROWSER_METHODS",
    "CERT_ONLY_METHODS",
    "DATE_RE",
    "KNOWN_METHODS",
    "OUT_NO_RE",
    "PAGE_METHODS",
    "UNSUPPORTED_METHODS",
    "ZERO_AMOUNTS",
    "AlipayFailure",
    "GatewayReply",
    "GatewayRequest",
    "bad_param",
    "biz_amount",
    "biz_text",
    "business_error",
    "busy",
    "invalid",
    "missing",
    "ordered_node",
    "parse_biz",
    "query_options",
]

OUT_NO_RE: Final = re.compile(r"[A-Za-z0-9_\-]{1,64}", re.ASCII)
DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


#: Methods a browser (or the app) brings to the gateway: answered with a
#: redirect to the cashier, or an HTML error page.
PAGE_METHODS: Final = frozenset(
    {"alipay.trade.page.pay", "alipay.trade.wap.pay", "alipay.trade.app.pay"}
)


API_METHODS: Final = frozenset(
    {
        "alipay.trade.precreate",
        "alipay.trade.query",
        "alipay.trade.refund",
        "alipay.trade.fastpay.refund.query",
        "alipay.trade.close",
        "alipay.data.dataservice.bill.downloadurl.query",
        "alipay.data.bill.accountlog.query",
        "alipay.trade.royalty.relation.bind",
        "alipay.trade.royalty.relation.unbind",
        "alipay.trade.royalty.relation.batchquery",
        "alipay.trade.order.settle",
        "alipay.trade.order.settle.query",
        "alipay.fund.trans.uni.transfer",
        "alipay.fund.trans.common.query",
    }
)

#: Methods Alipay answers only in certificate mode (fund APIs): without an
#: ``app_cert_sn`` they are refused as Alipay refuses them.
CERT_ONLY_METHODS: Final = frozenset(
    {"alipay.fund.trans.uni.transfer", "alipay.fund.trans.common.query"}
)


#: Real methods the sandbox does not implement: answered as for an app that
#: has not signed up for them (40006), not as unknown methods.
UNSUPPORTED_METHODS: Final = frozenset(
    {
        "alipay.trade.create",
        "alipay.trade.pay",
        "alipay.trade.cancel",
        "alipay.trade.orderinfo.sync",
        "alipay.system.oauth.token",
        "alipay.user.info.share",
    }
)


BROWSER_METHODS: Final = frozenset({"alipay.trade.page.pay", "alipay.trade.wap.pay"})
KNOWN_METHODS: Final = PAGE_METHODS | API_METHODS | UNSUPPORTED_METHODS


#: The keys an answer node opens with, in this order; every other key follows
#: sorted, as Alipay's own answers have them (see tests/fixtures/alipay/SOURCES.md).
_LEADING_KEYS: Final = ("code", "msg", "sub_code", "sub_msg")


def ordered_node(node: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with ``code``, ``msg``, ``sub_code``, ``sub_msg`` first, then the rest
    by key: the layout of Alipay's answer nodes."""
    lead = [k for k in _LEADING_KEYS if k in node]
    return {k: node[k] for k in [*lead, *sorted(k for k in node if k not in _LEADING_KEYS)]}


@dataclass(frozen=True)
class GatewayReply:
    """What ``gateway.do`` answers: signed JSON, a redirect, or an error page."""

    kind: Literal["json", "redirect", "page_error"]
    body: bytes = b""
    codec: str = "utf-8"
    location: str = ""
    node: Mapping[str, str] = field(default_factory=dict)


class AlipayFailure(Exception):
    """An error answer of the gateway (never escapes :class:`AlipaySimulator`)."""

    def __init__(
        self,
        code: str,
        msg: str,
        sub_code: str,
        sub_msg: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(sub_code)
        self.node: dict[str, str] = {
            "code": code,
            "msg": msg,
            "sub_code": sub_code,
            "sub_msg": sub_msg,
        }
        self.node.update(extra or {})


def missing(sub_code: str, sub_msg: str) -> AlipayFailure:
    return AlipayFailure("40001", "Missing Required Arguments", sub_code, sub_msg)


def invalid(sub_code: str, sub_msg: str) -> AlipayFailure:
    return AlipayFailure("40002", "Invalid Arguments", sub_code, sub_msg)


def business_error(
    sub_code: str, sub_msg: str, extra: Mapping[str, str] | None = None
) -> AlipayFailure:
    return AlipayFailure("40004", "Business Failed", sub_code, sub_msg, extra)


def bad_param(what: str) -> AlipayFailure:
    return business_error("ACQ.INVALID_PARAMETER", f"参数无效: {what}")


def busy(code: str) -> AlipayFailure:
    """The gateway's "system busy" answers: ``20000`` (gateway) or ``40004`` (trade system)."""
    if code == "40004":
        return business_error("ACQ.SYSTEM_ERROR", "系统错误")
    return AlipayFailure("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    codec: str
    params: Mapping[str, str]
    biz: Mapping[str, object]
    merchant: AlipayMerchant


ZERO_AMOUNTS: Final = ("buyer_pay_amount", "invoice_amount", "point_amount", "receipt_amount")


def query_options(biz: Mapping[str, object]) -> frozenset[str]:
    """``query_options``: the extra fields a query asks for (a JSON array of names)."""
    value = biz.get("query_options")
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


def parse_biz(text: str) -> dict[str, object]:
    """``biz_content`` as an object; numbers kept as their literal text (never floats)."""
    if not text:
        return {}
    try:
        value = json.loads(text, parse_float=str, parse_int=str, parse_constant=_no_constant)
    except ValueError:
        raise invalid("isv.invalid-parameter", "参数无效: biz_content不是合法的JSON对象") from None
    if not isinstance(value, dict):
        raise invalid("isv.invalid-parameter", "参数无效: biz_content不是合法的JSON对象")
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def biz_text(biz: Mapping[str, object], name: str) -> str:
    value = biz.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_param(f"{name}必须是字符串")
    return value


def biz_amount(biz: Mapping[str, object], name: str) -> Money:
    text = biz_text(biz, name)
    if not text:
        raise bad_param(f"{name}不能为空")
    try:
        return Money.parse(text, "CNY")
    except AmountError:
        raise bad_param(f"{name}格式错误") from None
