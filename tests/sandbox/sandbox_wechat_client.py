"""An independent, minimal WeChat Pay APIv3 client for testing the sandbox, and
the test environment the WeChat sandbox tests share.

Written from PROTOCOLS.md with ``cryptography`` directly: it shares no code
with ``payhub.signing``, ``payhub.channels`` or the sandbox, so a misreading in
any of them is not mirrored here.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

SCHEME = "WECHATPAY2-SHA256-RSA2048"
MCHID = "1900000001"
APPID = "wxd678efh567hg6787"
API_V3_KEY = b"0123456789abcdefABCDEF0123456789"
NOTIFY_URL = "http://shop.test/wechat/notify"
REFUND_NOTIFY_URL = "http://shop.test/wechat/refund-notify"
AUTH_ORDER = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
#: Keyword arguments of :meth:`V3Client.authorization`.
AUTH_KEYS = frozenset(
    {"timestamp", "nonce", "order", "mchid", "serial_no", "key", "sign_body", "separator"}
)


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verifies(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_message(headers: Mapping[str, str], body: bytes) -> bytes:
    return (
        headers["Wechatpay-Timestamp"].encode()
        + b"\n"
        + headers["Wechatpay-Nonce"].encode()
        + b"\n"
        + body
        + b"\n"
    )


def verify_platform(
    headers: httpx.Headers, body: bytes, keys: Mapping[str, rsa.RSAPublicKey]
) -> str:
    """Check a response's or notification's signature; return the serial used."""
    for name in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature"):
        assert len(headers.get_list(name)) == 1, name
    assert headers["Wechatpay-Signature-Type"] == SCHEME
    serial = headers["Wechatpay-Serial"]
    assert serial in keys, f"unknown serial {serial}"
    assert verifies(keys[serial], signed_message(headers, body), headers["Wechatpay-Signature"])
    return serial


def decrypt(api_v3_key: bytes, block: Mapping[str, str]) -> bytes:
    assert block["algorithm"] == "AEAD_AES_256_GCM"
    return AESGCM(api_v3_key).decrypt(
        block["nonce"].encode(),
        base64.b64decode(block["ciphertext"]),
        block["associated_data"].encode(),
    )


def decrypt_fails(api_v3_key: bytes, block: Mapping[str, str]) -> bool:
    try:
        decrypt(api_v3_key, block)
    except InvalidTag:
        return True
    return False


def public_key_of(pem: str) -> rsa.RSAPublicKey:
    if "CERTIFICATE" in pem:
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    else:
        key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def merchant_certificate(key: rsa.RSAPrivateKey, serial: int) -> x509.Certificate:
    """A self-made stand-in for the merchant's API certificate (apiclient_cert.pem)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop API certificate")])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


@functools.cache
def spare_key() -> rsa.RSAPrivateKey:
    """One more RSA key per test run (the sandbox's first platform certificate's)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class V3Client:
    """Signs requests as a merchant; every knob of the Authorization header is open."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        mchid: str,
        serial_no: str,
        key: rsa.RSAPrivateKey,
        now: Callable[[], datetime],
        order: Sequence[str] = AUTH_ORDER,
    ) -> None:
        self.http = http
        self.mchid = mchid
        self.serial_no = serial_no
        self.key = key
        self.now = now
        self.order = tuple(order)

    def authorization(
        self,
        method: str,
        target: str,
        body: bytes,
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        order: Sequence[str] | None = None,
        mchid: str | None = None,
        serial_no: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        sign_body: bytes | None = None,
        separator: str = ",",
    ) -> str:
        stamp = timestamp if timestamp is not None else str(int(self.now().timestamp()))
        nonce_str = nonce if nonce is not None else secrets.token_hex(16).upper()
        signed = sign_body if sign_body is not None else body
        message = f"{method}\n{target}\n{stamp}\n{nonce_str}\n".encode() + signed + b"\n"
        params = {
            "mchid": mchid if mchid is not None else self.mchid,
            "nonce_str": nonce_str,
            "signature": sign(key or self.key, message),
            "timestamp": stamp,
            "serial_no": serial_no if serial_no is not None else self.serial_no,
        }
        parts = [f'{name}="{params[name]}"' for name in (order or self.order)]
        return f"{SCHEME} {separator.join(parts)}"

    def request(
        self,
        method: str,
        target: str,
        data: Any = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **auth: Any,
    ) -> httpx.Response:
        if raw is not None:
            body = raw
        elif data is not None:
            body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        else:
            body = b""
        sent = {
            "Accept": "application/json",
            "User-Agent": "sandbox-test-client/1.0",
            "Authorization": self.authorization(method, target, body, **auth),
        }
        if body:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return self.http.request(method, target, content=body, headers=sent)

    def get(self, target: str, **auth: Any) -> httpx.Response:
        return self.request("GET", target, **auth)

    def post(self, target: str, data: Any = None, **auth: Any) -> httpx.Response:
        return self.request("POST", target, data, **auth)

    # -- a few calls ---------------------------------------------------------------

    def native(self, out_trade_no: str, total: Any = 100, **extra: Any) -> httpx.Response:
        """A native order; ``extra`` adds body fields, or Authorization knobs (AUTH_KEYS)."""
        auth = {k: extra.pop(k) for k in list(extra) if k in AUTH_KEYS}
        body = {
            "appid": APPID,
            "mchid": self.mchid,
            "description": "Gift card 礼品卡",
            "out_trade_no": out_trade_no,
            "notify_url": NOTIFY_URL,
            "amount": {"total": total, "currency": "CNY"},
            **extra,
        }
        return self.post("/v3/pay/transactions/native", body, **auth)

    def query(self, out_trade_no: str) -> httpx.Response:
        return self.get(f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.mchid}")

    def refund(
        self, out_refund_no: str, refund: int, total: int = 100, **ids: str
    ) -> httpx.Response:
        body: dict[str, Any] = {
            **(ids or {"out_trade_no": "ORDER-0001"}),
            "out_refund_no": out_refund_no,
            "notify_url": REFUND_NOTIFY_URL,
            "amount": {"refund": refund, "total": total, "currency": "CNY"},
        }
        return self.post("/v3/refund/domestic/refunds", body)


@dataclass
class WechatEnv:
    """A sandbox with one WeChat merchant, a manual clock, a fake shop and a client."""

    sandbox: Any
    clock: Any
    shop: Any
    http: httpx.Client
    client: V3Client
    merchant_key: rsa.RSAPrivateKey
    serial_no: str

    def platform_keys(self) -> dict[str, rsa.RSAPublicKey]:
        """Every key the sandbox may sign with, by the serial it names."""
        keys = {
            self.sandbox.wechat_public_key_id: public_key_of(self.sandbox.wechat_public_key_pem)
        }
        for serial, pem in zip(
            self.sandbox.wechat_platform_certificate_serials,
            self.sandbox.wechat_platform_certificates_pem,
            strict=True,
        ):
            keys[serial] = public_key_of(pem)
        return keys

    def verify(self, response: httpx.Response) -> str:
        return verify_platform(response.headers, response.content, self.platform_keys())

    def pay(self, out_trade_no: str) -> None:
        self.sandbox.wechat.pay(MCHID, out_trade_no)


def wechat_env(
    merchant_key: rsa.RSAPrivateKey,
    public_key: rsa.RSAPrivateKey,
    *,
    key_mode: str = "public_key",
    time_factor: float = 60,
    start: datetime | None = None,
    refund_delay: float = 0.0,
    bills_ready_immediately: bool = False,
) -> Iterator[WechatEnv]:
    from payhub_sandbox import ManualClock, Sandbox, create_app
    from sandbox_support import BASE_URL, START, Shop

    clock = ManualClock(start or START)
    shop = Shop()
    sandbox = Sandbox(
        time_factor=time_factor,
        clock=clock,
        notify_transport=shop.transport,
        base_url=BASE_URL,
        bills_ready_immediately=bills_ready_immediately,
        alipay_platform_key=public_key,  # not used here; spares generating one
        wechat_public_key=public_key,
        wechat_platform_key=spare_key(),
    )
    serial = "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F"
    sandbox.add_wechat_merchant(
        MCHID,
        APPID,
        serial,
        merchant_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        API_V3_KEY,
        key_mode,
        refund_delay=refund_delay,
    )
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(sandbox)), base_url=BASE_URL)
    client = V3Client(http, mchid=MCHID, serial_no=serial, key=merchant_key, now=clock.now)
    try:
        yield WechatEnv(sandbox, clock, shop, http, client, merchant_key, serial)
    finally:
        http.close()
        sandbox.stop()
