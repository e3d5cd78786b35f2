"""Test support for the WeChat Pay channel (no tests here): a fake APIv3 server
for httpx.MockTransport that checks the merchant's Authorization header on its
own (parse, rebuild the message, verify with cryptography) and signs answers
with a platform key; builders of signed, encrypted notifications."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from payhub.channels.wechat import WechatPayChannel

MCH_ID = "1900000109"
APP_ID = "wxd678efh567hg6787"
API_V3_KEY = "0123456789abcdefFEDCBA9876543210"  # 32 bytes
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PUB_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
NOW = 1_700_000_000
NOTIFY_URL = "https://shop.example/notify/wechat"
BASE_URL = "https://api.mch.weixin.qq.com"

_AUTH_PARAM_RE = re.compile(r'([a-z_]+)="([^"]*)"')


class Clock:
    """An injectable wall clock (seconds since the epoch) that tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@functools.cache
def second_platform_key() -> rsa.RSAPrivateKey:
    """A second legitimate platform key, for certificate rotation."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def make_certificate(
    key: rsa.RSAPrivateKey, serial: int, *, now: float = NOW, days: int = 365
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    start = datetime.fromtimestamp(now, UTC) - timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def encrypt(plaintext: bytes, *, associated_data: str = "transaction", key: str = API_V3_KEY,
            nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or secrets.token_hex(6)
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "nonce": nonce,
        "associated_data": associated_data,
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def signed_headers(
    key: rsa.RSAPrivateKey,
    serial: str,
    body: bytes,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
    clock: Clock | None = None,
) -> list[tuple[str, str]]:
    ts = timestamp if timestamp is not None else str(int((clock or Clock())()))
    nonce = nonce if nonce is not None else secrets.token_hex(16)
    signature = sign(key, f"{ts}\n{nonce}\n".encode() + body + b"\n")
    return [
        ("Wechatpay-Timestamp", ts),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", signature),
        ("Wechatpay-Serial", serial),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048"),
        ("Request-ID", "08F78BB5AF0610D302100218B5F9B0B11C"),
    ]


def transaction_resource(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "mchid": MCH_ID,
        "appid": APP_ID,
        "out_trade_no": "A100001",
        "transaction_id": "4200001234202311150000000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2023-11-15T06:13:20+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
    }
    resource.update(changes)
    return resource


def refund_resource(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "mchid": MCH_ID,
        "out_trade_no": "A100001",
        "transaction_id": "4200001234202311150000000001",
        "out_refund_no": "R1001",
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "success_time": "2023-11-15T07:13:20+08:00",
        "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 100, "refund": 40, "payer_total": 100, "payer_refund": 40},
    }
    resource.update(changes)
    return resource


def notification_body(
    resource: dict[str, Any] | bytes,
    *,
    event_type: str = "TRANSACTION.SUCCESS",
    notification_id: str = "EV-2018022511223320873",
    encrypted: dict[str, str] | None = None,
) -> bytes:
    plaintext = resource if isinstance(resource, bytes) else json.dumps(resource).encode()
    associated = "transaction" if event_type.startswith("TRANSACTION") else "refund"
    envelope = {
        "id": notification_id,
        "create_time": "2023-11-15T06:13:21+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction" if associated == "transaction" else "refund",
            **(encrypted or encrypt(plaintext, associated_data=associated)),
        },
    }
    return json.dumps(envelope, ensure_ascii=False).encode()


def config(
    merchant_key: rsa.RSAPrivateKey,
    platform_key: rsa.RSAPrivateKey | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A channel configuration: public-key mode with ``platform_key``, else certificate mode."""
    settings: dict[str, Any] = {
        "mch_id": MCH_ID,
        "app_id": APP_ID,
        "merchant_private_key": private_pem(merchant_key),
        "merchant_serial_no": MERCHANT_SERIAL,
        "api_v3_key": API_V3_KEY,
        "notify_url": NOTIFY_URL,
        "base_url": BASE_URL,
    }
    if platform_key is not None:
        settings["wechatpay_public_key"] = public_pem(platform_key)
        settings["wechatpay_public_key_id"] = PUB_KEY_ID
    settings.update(changes)
    return settings


def channel(config_: dict[str, Any], clock: Clock, name: str = "wechat") -> WechatPayChannel:
    """A channel with the test clock and a predictable nonce."""
    counter = iter(range(10**9))
    return WechatPayChannel(
        name, config_, clock=clock, nonce=lambda: f"{next(counter):032X}"
    )


Route = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeWechat:
    """A fake WeChat Pay APIv3 host for httpx.MockTransport.

    It verifies every request's Authorization header independently and signs
    every answer with ``signer`` (a key and the serial it is known by).
    """

    merchant_public: rsa.RSAPublicKey
    signer_key: rsa.RSAPrivateKey
    signer_serial: str
    clock: Clock
    certificates: list[x509.Certificate] = field(default_factory=list)
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    bill: bytes = b""
    bill_hash: str | None = None

    # -- plumbing -------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    def check_authorization(self, request: httpx.Request) -> str | None:
        """Why the Authorization header is wrong, or None. Written from the protocol
        notes, not from payhub's code."""
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return "scheme"
        params = dict(_AUTH_PARAM_RE.findall(rest))
        if set(params) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            return "parameters"
        if params["mchid"] != MCH_ID or params["serial_no"] != MERCHANT_SERIAL:
            return "mchid/serial"
        if abs(int(params["timestamp"]) - self.clock()) > 300:
            return "timestamp"
        message = (
            f"{request.method}\n{request.url.raw_path.decode()}\n"
            f"{params['timestamp']}\n{params['nonce_str']}\n"
        ).encode() + request.content + b"\n"
        try:
            self.merchant_public.verify(
                base64.b64decode(params["signature"]), message,
                padding.PKCS1v15(), hashes.SHA256(),
            )
        except Exception:
            return "signature"
        return None

    def signed(
        self, status: int, body: bytes | dict[str, Any] | None = None, *,
        key: rsa.RSAPrivateKey | None = None, serial: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> httpx.Response:
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(
            body, ensure_ascii=False).encode()
        headers = signed_headers(
            key or self.signer_key, serial or self.signer_serial, raw, clock=self.clock
        )
        if raw:
            headers.append(("Content-Type", "application/json"))
        return httpx.Response(status, content=raw, headers=[*headers, *extra])

    def error(self, status: int, code: str, message: str) -> httpx.Response:
        return httpx.Response(
            status, json={"code": code, "message": message},
            headers={"Request-ID": "REQ-ERR-1"},
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        problem = self.check_authorization(request)
        if problem is not None:
            return self.error(401, "SIGN_ERROR", f"签名错误 ({problem})")
        route = self.routes.get((request.method, request.url.path))
        if route is not None:
            return route(request)
        if request.url.path == "/v3/billdownload/file":  # the one unsigned answer
            return httpx.Response(200, content=gzip.compress(self.bill))
        return self.default_route(request)

    # -- default answers ------------------------------------------------------

    def default_route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if request.method == "POST" and path == "/v3/pay/transactions/native":
            return self.signed(200, {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"})
        if request.method == "POST" and path in (
            "/v3/pay/transactions/jsapi", "/v3/pay/transactions/app"
        ):
            return self.signed(200, {"prepay_id": "wx201410272009395522657a690389285100"})
        if request.method == "POST" and path == "/v3/pay/transactions/h5":
            return self.signed(200, {"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2016"})
        if request.method == "GET" and path.startswith("/v3/pay/transactions/out-trade-no/"):
            no = path.rsplit("/", 1)[1]
            return self.signed(200, transaction_resource(out_trade_no=no))
        if request.method == "GET" and path.startswith("/v3/pay/transactions/id/"):
            return self.signed(200, transaction_resource(transaction_id=path.rsplit("/", 1)[1]))
        if request.method == "POST" and path.endswith("/close"):
            return self.signed(204)
        if request.method == "POST" and path == "/v3/refund/domestic/refunds":
            return self.signed(200, self.refund_answer(
                body["out_trade_no"], body["out_refund_no"], body["amount"]["refund"],
                body["amount"]["total"], "PROCESSING",
            ))
        if request.method == "GET" and path.startswith("/v3/refund/domestic/refunds/"):
            return self.signed(
                200, self.refund_answer("A100001", path.rsplit("/", 1)[1], 40, 100, "SUCCESS")
            )
        if request.method == "GET" and path == "/v3/certificates":
            return self.signed(200, self.certificate_list())
        if request.method == "GET" and path == "/v3/bill/tradebill":
            return self.signed(200, {
                "hash_type": "SHA1",
                "hash_value": self.bill_hash or hashlib.sha1(self.bill).hexdigest(),
                "download_url": f"{BASE_URL}/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd",
            })
        return self.error(404, "NOT_FOUND", "no such route")

    @staticmethod
    def refund_answer(
        out_trade_no: str, out_refund_no: str, refund: int, total: int, status: str
    ) -> dict[str, Any]:
        return {
            "refund_id": "50000000382019052709732678859",
            "out_refund_no": out_refund_no,
            "transaction_id": "4200001234202311150000000001",
            "out_trade_no": out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "招商银行信用卡0403",
            "create_time": "2023-11-15T07:13:20+08:00",
            "status": status,
            "amount": {
                "total": total, "refund": refund, "payer_total": total, "payer_refund": refund,
                "settlement_refund": refund, "settlement_total": total, "discount_refund": 0,
                "currency": "CNY",
            },
        }

    def certificate_list(
        self, certificates: Sequence[x509.Certificate] | None = None
    ) -> dict[str, Any]:
        data = []
        for cert in self.certificates if certificates is None else certificates:
            pem = cert.public_bytes(serialization.Encoding.PEM)
            data.append({
                "serial_no": serial_hex(cert),
                "effective_time": cert.not_valid_before_utc.isoformat(),
                "expire_time": cert.not_valid_after_utc.isoformat(),
                "encrypt_certificate": encrypt(pem, associated_data="certificate"),
            })
        return {"data": data}


@functools.cache
def platform_certificate(key: rsa.RSAPrivateKey, serial: int) -> x509.Certificate:
    return make_certificate(key, serial)


SERIAL_A = 0x5A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D
SERIAL_B = 0x6B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E


def world(
    mode: str, merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey,
    clock: Clock, **changes: Any,
) -> tuple[WechatPayChannel, FakeWechat]:
    """A channel and the fake host it talks to, in ``"public_key"`` or
    ``"certificates"`` mode."""
    if mode == "public_key":
        fake = FakeWechat(merchant_key.public_key(), platform_key, PUB_KEY_ID, clock)
        return channel(config(merchant_key, platform_key, **changes), clock), fake
    cert = platform_certificate(platform_key, SERIAL_A)
    fake = FakeWechat(
        merchant_key.public_key(), platform_key, serial_hex(cert), clock, certificates=[cert]
    )
    return channel(config(merchant_key, **changes), clock), fake


def secrets_of(merchant_key: rsa.RSAPrivateKey) -> list[str]:
    """Strings that must never appear in a message, a repr or a log record."""
    body = "".join(private_pem(merchant_key).strip().splitlines()[1:-1])
    return [API_V3_KEY, body[:40], body[200:240], body[-60:-20]]


def assert_no_secret(texts: Sequence[str], forbidden: Sequence[str]) -> None:
    for text in texts:
        for secret in forbidden:
            assert secret not in text, "a secret leaked"
