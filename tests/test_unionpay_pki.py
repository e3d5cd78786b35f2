"""A small UnionPay-shaped PKI and wire helpers for the UnionPay tests.

Everything here is written from PROTOCOLS.md with ``cryptography`` and the
standard library directly, never through ``payhub.channels.unionpay``: a
misreading of the protocol in the channel must not be mirrored by its tests.
The PKI is built once per test session (module-level cache).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

#: The moment every test runs at (the channel's injected clock).
NOW = datetime(2025, 6, 1, 2, 0, 0, tzinfo=UTC)  # 10:00 in Shanghai
MER_ID = "777290058110048"
PFX_PASSWORD = "pfx-Pa55-s3cret-9f1c"
MERCHANT_SERIAL = 69629715588
TEST_CN = "041@Z12@00040000:SIGN@00000062"
PRODUCTION_CN = "041@Z12@中国银联股份有限公司@00000001"
GATEWAY = "https://gateway.test.95516.com"


def clock() -> datetime:
    return NOW


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China Financial Test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue(
    cn: str,
    key: rsa.RSAPublicKey,
    *,
    issuer: x509.Name | None = None,
    issuer_key: rsa.RSAPrivateKey,
    serial: int,
    ca: bool = False,
    not_before: datetime = datetime(2020, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2035, 1, 1, tzinfo=UTC),
) -> x509.Certificate:
    subject = _name(cn)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    middle: x509.Certificate
    middle_key: rsa.RSAPrivateKey
    platform_key: rsa.RSAPrivateKey
    platform: x509.Certificate  #: test-environment CN, chains to middle → root
    production: x509.Certificate  #: production CN, same chain
    expired: x509.Certificate  #: test CN, same chain, expired in 2024
    self_signed: x509.Certificate  #: test CN, signs itself
    foreign: x509.Certificate  #: test CN, chains to another root
    merchant_key: rsa.RSAPrivateKey
    merchant: x509.Certificate
    pfx: bytes

    @property
    def root_pem(self) -> str:
        return pem(self.root)

    @property
    def middle_pem(self) -> str:
        return pem(self.middle)

    def extra_platform(self, serial: int) -> x509.Certificate:
        """Another valid test-CN platform certificate (for cache tests)."""
        return issue(
            TEST_CN,
            self.platform_key.public_key(),
            issuer=self.middle.subject,
            issuer_key=self.middle_key,
            serial=serial,
        )


@functools.cache
def pki() -> Pki:
    root_key, middle_key, platform_key, merchant_key, other_key = (_key() for _ in range(5))
    root = issue("UnionPay Test Root", root_key.public_key(), issuer_key=root_key,
                 serial=1, ca=True)
    middle = issue("UnionPay Test Middle", middle_key.public_key(), issuer=root.subject,
                   issuer_key=root_key, serial=2, ca=True)
    other_root = issue("UnionPay Test Root", other_key.public_key(), issuer_key=other_key,
                       serial=1, ca=True)
    other_middle = issue("UnionPay Test Middle", other_key.public_key(),
                         issuer=other_root.subject, issuer_key=other_key, serial=2, ca=True)

    def platform(cn: str, serial: int, **kw: Any) -> x509.Certificate:
        return issue(cn, platform_key.public_key(), issuer=middle.subject,
                     issuer_key=middle_key, serial=serial, **kw)

    merchant = issue(f"041@Z12@{MER_ID}@00000001", merchant_key.public_key(),
                     issuer=middle.subject, issuer_key=middle_key, serial=MERCHANT_SERIAL)
    pfx = pkcs12.serialize_key_and_certificates(
        b"acp_test_sign", merchant_key, merchant, None,
        serialization.BestAvailableEncryption(PFX_PASSWORD.encode()),
    )
    return Pki(
        root=root,
        middle=middle,
        middle_key=middle_key,
        platform_key=platform_key,
        platform=platform(TEST_CN, 1001),
        production=platform(PRODUCTION_CN, 1002),
        expired=platform(TEST_CN, 1003, not_after=datetime(2024, 1, 1, tzinfo=UTC)),
        self_signed=issue(TEST_CN, platform_key.public_key(), issuer_key=platform_key,
                          serial=1004),
        foreign=issue(TEST_CN, platform_key.public_key(), issuer=other_middle.subject,
                      issuer_key=other_key, serial=1005),
        merchant_key=merchant_key,
        merchant=merchant,
        pfx=pfx,
    )


# -- configuration -------------------------------------------------------------


def config(**overrides: Any) -> dict[str, Any]:
    p = pki()
    settings: dict[str, Any] = {
        "mer_id": MER_ID,
        "environment": "test",
        "sign_cert": p.pfx,
        "sign_cert_password": PFX_PASSWORD,
        "root_cert": p.root_pem,
        "middle_cert": p.middle_pem,
        "front_url": "https://shop.example/return",
        "back_url": "https://shop.example/notify/unionpay",
    }
    settings.update(overrides)
    return settings


def secrets() -> list[str]:
    """Strings that must never appear in a message, a repr or an ack."""
    key_pem = pki().merchant_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    lines = [line for line in key_pem.splitlines() if "-----" not in line]
    return [PFX_PASSWORD, *lines[1:4]]


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        shown = text if isinstance(text, str) else repr(text)
        for secret in secrets():
            assert secret not in shown, "a secret leaked into a message"


# -- signing, independently ----------------------------------------------------


def string_to_sign(fields: Mapping[str, str], *, keep_empty: bool = False) -> bytes:
    """Merchants sign their non-empty fields; a received message's signature covers
    every field it carries, empty ones as ``k=`` (UnionPay's SDKs' ``validate``)."""
    joined = "&".join(
        f"{k}={fields[k]}"
        for k in sorted(fields)
        if k != "signature" and (keep_empty or fields[k] != "")
    )
    return hashlib.sha256(joined.encode("utf-8")).hexdigest().encode("ascii")


def acp_sign(
    fields: Mapping[str, str], key: rsa.RSAPrivateKey, *, keep_empty: bool = True
) -> str:
    raw = key.sign(string_to_sign(fields, keep_empty=keep_empty), padding.PKCS1v15(),
                   hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def platform_signed(
    fields: Mapping[str, str],
    *,
    cert: x509.Certificate | None = None,
    cert_pem: str | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> dict[str, str]:
    """``fields`` plus signPubKeyCert and signature, as UnionPay sends them."""
    p = pki()
    message = dict(fields)
    message["signPubKeyCert"] = cert_pem or pem(cert or p.platform)
    message["signature"] = acp_sign(message, key or p.platform_key)
    return message


def acp_body(fields: Mapping[str, str]) -> bytes:
    """A synchronous answer: k=v joined by &, NOT URL-encoded."""
    return "&".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8")


def form_body(fields: Mapping[str, str]) -> bytes:
    return urlencode(list(fields.items())).encode("ascii")


def verify_merchant_request(request: httpx.Request) -> dict[str, str]:
    """Check a request the channel sent: form body, certId, merchant signature."""
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    fields = dict(parse_qsl(request.content.decode("ascii"), keep_blank_values=True))
    verify_merchant_fields(fields)
    return fields


def verify_merchant_fields(fields: Mapping[str, str]) -> None:
    p = pki()
    assert fields["certId"] == str(MERCHANT_SERIAL)
    assert fields["signMethod"] == "01"
    assert fields["version"] == "5.1.0"
    assert all(v != "" for v in fields.values()), "empty values must be dropped"
    signature = base64.b64decode(fields["signature"], validate=True)
    p.merchant.public_key().verify(
        signature, string_to_sign(fields), padding.PKCS1v15(), hashes.SHA256()
    )


def notification(**overrides: str) -> dict[str, str]:
    """The unsigned fields of a successful consume notification."""
    fields = {
        "accessType": "0",
        "bizType": "000201",
        "currencyCode": "156",
        "encoding": "UTF-8",
        "merId": MER_ID,
        "orderId": "ORDER20250601",
        "queryId": "512506011000001234567",
        "respCode": "00",
        "respMsg": "Success!",
        "settleAmt": "1234",
        "settleCurrencyCode": "156",
        "settleDate": "0601",
        "signMethod": "01",
        "traceNo": "123456",
        "traceTime": "0601100000",
        "txnAmt": "1234",
        "txnSubType": "01",
        "txnTime": "20250601095900",
        "txnType": "01",
        "version": "5.1.0",
    }
    fields.update(overrides)
    return fields


# -- the PKI itself ------------------------------------------------------------


def test_pki_chain_is_sound() -> None:
    p = pki()
    p.middle.verify_directly_issued_by(p.root)
    p.platform.verify_directly_issued_by(p.middle)
    p.production.verify_directly_issued_by(p.middle)
    try:
        p.foreign.verify_directly_issued_by(p.middle)
    except (InvalidSignature, ValueError):
        pass
    else:  # pragma: no cover
        raise AssertionError("the foreign certificate must not verify against our middle")


def test_pfx_holds_the_merchant_key() -> None:
    p = pki()
    key, cert, _ = pkcs12.load_key_and_certificates(p.pfx, PFX_PASSWORD.encode())
    assert cert is not None
    assert cert.serial_number == MERCHANT_SERIAL
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.private_numbers() == p.merchant_key.private_numbers()
