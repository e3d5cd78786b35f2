"""An independent fake of Alipay's gateway and notifier, for the Alipay tests.

Built from PROTOCOLS.md with ``urllib`` and ``cryptography`` only: it shares no
code with ``payhub.channels.alipay`` (a misreading of the protocol there must
not be mirrored here). The other ``test_alipay_*`` modules import it; the
tests at the bottom check the fake itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payhub.channels.alipay import AlipayChannel, AlipayConfig

APP_ID = "2021000000000001"
SELLER_ID = "2088102177846881"
GATEWAY = "http://127.0.0.1:8000/gateway.do"
NOW = datetime(2024, 1, 2, 10, 30, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
_HASHES = {"RSA2": hashes.SHA256, "RSA": hashes.SHA1}


def sign_bytes(key: rsa.RSAPrivateKey, message: bytes, sign_type: str = "RSA2") -> str:
    digest = _HASHES[sign_type]()
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), digest)).decode()


def verifies(
    key: rsa.RSAPublicKey, message: bytes, signature: str, sign_type: str = "RSA2"
) -> bool:
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), _HASHES[sign_type]())
    except InvalidSignature:
        return False
    return True


def string_to_sign(params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """Alipay's string to sign, written out from PROTOCOLS.md."""
    kept = sorted((k, v) for k, v in params.items() if k not in exclude and v != "")
    return "&".join(f"{k}={v}" for k, v in kept)


def make_channel(
    merchant: Any,
    platform: Any,
    *,
    name: str = "alipay",
    clock: Callable[[], datetime] | None = lambda: NOW,
    **settings: Any,
) -> AlipayChannel:
    config = {
        "app_id": APP_ID,
        "app_private_key": merchant.private_pem,
        "alipay_public_key": platform.public_pem,
        "environment": "sandbox",
        "gateway": GATEWAY,
        "seller_id": SELLER_ID,
        "notify_url": "https://shop.example/alipay/notify",
        "return_url": "https://shop.example/alipay/return",
    }
    config.update(settings)
    return AlipayChannel(name, AlipayConfig.model_validate(config), clock=clock)


# -- requests, as a gateway sees them -------------------------------------------


@dataclass
class SeenRequest:
    method: str  #: the HTTP method
    params: dict[str, str]  #: query and form fields merged, decoded with their charset
    signature_ok: bool
    biz: dict[str, Any]


def read_request(request: httpx.Request, merchant_public: rsa.RSAPublicKey) -> SeenRequest:
    """Merge query and form fields as a gateway does, and verify the signature."""
    query = urlsplit(str(request.url)).query
    params = dict(parse_qsl(query, keep_blank_values=True, encoding="utf-8"))
    body = request.content.decode("ascii")
    for key, value in parse_qsl(body, keep_blank_values=True, encoding="utf-8"):
        assert key not in params, f"{key} sent twice"
        params[key] = value
    message = string_to_sign(params).encode(params.get("charset", "utf-8"))
    ok = verifies(merchant_public, message, params["sign"], params.get("sign_type", "RSA2"))
    return SeenRequest(request.method, params, ok, json.loads(params.get("biz_content", "{}")))


def response_body(
    api: str,
    node: Mapping[str, Any] | str,
    key: rsa.RSAPrivateKey | None,
    *,
    node_name: str | None = None,
    cert_sn: str | None = None,
    sign: str | None = None,
    sign_type: str = "RSA2",
) -> bytes:
    """``{"<api>_response": {...}, "sign": "..."}`` signed over the node's raw bytes.

    ``node`` may be given as raw JSON text (to control escapes such as ``\\/``).
    """
    text = node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)
    name = node_name or api.replace(".", "_") + "_response"
    parts = [f'"{name}":{text}']
    if sign is None and key is not None:
        sign = sign_bytes(key, text.encode("utf-8"), sign_type)
    if sign is not None:
        parts.append(f'"sign":"{sign}"')
    if cert_sn is not None:
        parts.append(f'"alipay_cert_sn":"{cert_sn}"')
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def success(**fields: Any) -> dict[str, Any]:
    return {"code": "10000", "msg": "Success", **fields}


def failure(code: str, sub_code: str, sub_msg: str = "failed") -> dict[str, Any]:
    msg = {"40004": "Business Failed", "20000": "Service Currently Unavailable"}.get(
        code, "Invalid Arguments"
    )
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


@dataclass
class FakeGateway:
    """An ``httpx.MockTransport`` handler answering API calls by method name."""

    merchant_public: rsa.RSAPublicKey
    platform: rsa.RSAPrivateKey
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, httpx.Response] = field(default_factory=dict)
    downloads: dict[str, bytes] = field(default_factory=dict)
    seen: list[SeenRequest] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  #: every GET (bill download) URL
    cert_sn: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.fetched.append(str(request.url))
            if str(request.url) in self.downloads:
                return httpx.Response(200, content=self.downloads[str(request.url)])
            return httpx.Response(404)
        seen = read_request(request, self.merchant_public)
        self.seen.append(seen)
        api = seen.params["method"]
        if not seen.signature_ok:
            node = failure("40002", "isv.invalid-signature", "验签出错")
            return httpx.Response(200, content=response_body(api, node, self.platform))
        if api in self.raw:
            return self.raw[api]
        node = self.nodes[api]
        body = response_body(api, node, self.platform, cert_sn=self.cert_sn)
        return httpx.Response(200, content=body, headers={"trace_id": "0b3c7a1f17000000"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


# -- notifications -------------------------------------------------------------------


def notification_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "notify_time": "2024-01-02 10:31:05",
        "notify_type": "trade_status_sync",
        "notify_id": "2024010200222103105000001234567890",
        "app_id": APP_ID,
        "auth_app_id": APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": "2024010222001446880500001234",
        "out_trade_no": "ORDER-0001",
        "seller_id": SELLER_ID,
        "seller_email": "shop@example.com",
        "buyer_id": "2088102177846880",
        "buyer_logon_id": "abc***@example.com",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.88",
        "receipt_amount": "88.88",
        "invoice_amount": "88.88",
        "buyer_pay_amount": "88.88",
        "point_amount": "0.00",
        "gmt_create": "2024-01-02 10:30:58",
        "gmt_payment": "2024-01-02 10:31:04",
        "subject": "Game card 100",
        "fund_bill_list": '[{"amount":"88.88","fundChannel":"ALIPAYACCOUNT"}]',
    }
    fields.update(overrides)
    return fields


def notification_body(
    fields: Mapping[str, str],
    key: rsa.RSAPrivateKey,
    *,
    charset: str | None = None,
    sign_with: str | None = None,
) -> bytes:
    """Sign (less sign and sign_type) and form-encode, both in the form's charset."""
    charset = charset or fields.get("charset", "utf-8")
    message = string_to_sign(fields, exclude=("sign", "sign_type")).encode(charset)
    signed = dict(fields)
    signed["sign"] = sign_bytes(key, message, sign_with or fields.get("sign_type", "RSA2"))
    return urlencode(signed, encoding=charset).encode("ascii")


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


# -- tests of the fake itself -------------------------------------------------------------


def test_string_to_sign_sorts_and_drops_empty_values() -> None:
    params = {"b": "2", "a": "1", "sign": "x", "c": "", "sign_type": "RSA2"}
    assert string_to_sign(params) == "a=1&b=2&sign_type=RSA2"
    assert string_to_sign(params, exclude=("sign", "sign_type")) == "a=1&b=2"


def test_response_body_signs_the_raw_node(platform_keys: Any) -> None:
    body = response_body(
        "alipay.trade.query", '{"code":"10000","u":"a\\/b"}', platform_keys.private
    )
    assert body.startswith(b'{"alipay_trade_query_response":{"code":"10000","u":"a\\/b"},"sign":"')
    sign = json.loads(body)["sign"]
    assert verifies(platform_keys.public, b'{"code":"10000","u":"a\\/b"}', sign)


def test_notification_body_round_trips(platform_keys: Any) -> None:
    fields = notification_fields(subject="点卡", charset="gbk")
    body = notification_body(fields, platform_keys.private)
    decoded = dict(parse_qsl(body.decode("ascii"), encoding="gbk"))
    assert decoded["subject"] == "点卡"
    message = string_to_sign(decoded, exclude=("sign", "sign_type")).encode("gbk")
    assert verifies(platform_keys.public, message, decoded["sign"])


def test_fixture_keys_are_distinct(merchant_keys: Any, platform_keys: Any, other_keys: Any) -> None:
    numbers = {k.public.public_numbers().n for k in (merchant_keys, platform_keys, other_keys)}
    assert len(numbers) == 3


@pytest.mark.parametrize("sign_type", ["RSA2", "RSA"])
def test_sign_bytes_matches_its_hash(platform_keys: Any, sign_type: str) -> None:
    sig = sign_bytes(platform_keys.private, b"x", sign_type)
    assert verifies(platform_keys.public, b"x", sig, sign_type)
    other = "RSA" if sign_type == "RSA2" else "RSA2"
    assert not verifies(platform_keys.public, b"x", sig, other)
