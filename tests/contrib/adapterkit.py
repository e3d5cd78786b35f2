"""A toy channel for the web-adapter tests.

It checks an HMAC-SHA256 of the raw body (header ``X-Toy-Signature``), records
exactly what reached it, and answers with a distinctive acknowledgement, so a
test can tell whether the adapter changed a single byte on the way in or out.
Only the body is signed; the trade fields come from ``X-Toy-*`` headers (these
tests are about transport, not about a protocol).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import httpx

from payhub import (
    Ack,
    Money,
    Notification,
    NotificationKind,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    ReturnInfo,
    SignatureError,
)
from payhub.channels import Channel, Flow

SECRET = b"toy-adapter-secret"

OK_ACK = Ack(status_code=200, body=b"toy-ok", content_type="text/x-toy; charset=ascii", ok=True)
FAIL_ACK = Ack(status_code=400, body=b"toy-fail", content_type="application/x-toy-fail", ok=False)
#: like WeChat Pay's: 204, no body, no content type
EMPTY_ACK = Ack(status_code=204, body=b"", ok=True)


def sign(data: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def signed(body: bytes, **headers: str) -> dict[str, str]:
    """Headers for a notification with this body (``trade="T1"`` -> ``X-Toy-Trade``)."""
    found = {f"X-Toy-{k.title()}": v for k, v in headers.items()}
    return {"X-Toy-Signature": sign(body), **found}


def return_params(out_trade_no: str, **extra: str) -> dict[str, str]:
    params = {"out_trade_no": out_trade_no, **extra}
    return {**params, "sign": sign(_canonical(params).encode())}


def _canonical(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")


@dataclass(frozen=True)
class Received:
    headers: httpx.Headers
    body: bytes


class ToyChannel(Channel):
    kind: ClassVar[str] = "toy-adapter"
    methods: ClassVar[frozenset[PayMethod]] = frozenset({PayMethod.QR})

    def __init__(self, name: str = "toy", *, empty_ack: bool = False) -> None:
        super().__init__(name)
        self.empty_ack = empty_ack
        self.received: list[Received] = []

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name)

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        self.received.append(Received(headers, body))
        if not hmac.compare_digest(headers.get("X-Toy-Signature", ""), sign(body)):
            raise SignatureError(f"{self.name}: signature does not verify")
        trade = headers.get("X-Toy-Trade", "T1")
        return Notification(
            channel=self.name,
            kind=NotificationKind(headers.get("X-Toy-Kind", "payment")),
            out_trade_no=trade,
            channel_trade_id=f"toy-{trade}",
            amount=Money(int(headers.get("X-Toy-Amount", "1000"))),
            status=PaymentStatus.PAID,
            event_key=hashlib.sha256(body).hexdigest(),
            raw={},
            raw_body=body,
        )

    def ack(self, ok: bool, message: str = "") -> Ack:
        if ok:
            return EMPTY_ACK if self.empty_ack else OK_ACK
        return FAIL_ACK

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo:
        if not hmac.compare_digest(params.get("sign", ""), sign(_canonical(params).encode())):
            raise SignatureError(f"{self.name}: return signature does not verify")
        return ReturnInfo(channel=self.name, out_trade_no=params["out_trade_no"], raw=dict(params))

    # The adapters never drive a flow.
    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        raise NotImplementedError

    def query(self, out_trade_no: str) -> Flow[PaymentQueryResult]:
        raise NotImplementedError

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        raise NotImplementedError

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        raise NotImplementedError

    def close(self, out_trade_no: str) -> Flow[None]:
        raise NotImplementedError


#: Bodies a framework would be tempted to decode: "+" (a space in a form),
#: "%2B" (a plus once decoded), bytes that are not UTF-8, a NUL, CRLFs.
RAW_BODIES = {
    "plus-and-percent": b"a=1+2&b=%2B&c=%20&sign=abc+def%2Fghi%3D%3D",
    "not-utf8": b"\xff\xfe\x00\xc3\x28 gbk:\xd6\xa7\xb8\xb6",
    "json-with-plus": b'{"amount": "+1.00", "memo": "a+b%2Bc"}',
    "trailing-crlf": b"x=1\r\n\r\n",
}
FORM_BODY = b"trade_status=TRADE_SUCCESS&total_amount=1%2B0&subject=%E5%8D%A1+key&sign=A%2FB%2B=="
MULTIPART_BODY = b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1+1\r\n--XyZ--\r\n'
MULTIPART_TYPE = "multipart/form-data; boundary=XyZ"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def alipay_config(merchant_keys: Any, platform_keys: Any) -> dict[str, Any]:
    """A real hub configuration (Alipay, public-key mode) for the from-config paths."""
    return {
        "channels": {
            "alipay": {
                "type": "alipay",
                "app_id": "2021000000000001",
                "app_private_key": merchant_keys.private_pem,
                "alipay_public_key": platform_keys.public_pem,
            }
        }
    }
