"""An independent, minimal UnionPay ACP 5.1.0 client for testing the sandbox.

Written from PROTOCOLS.md with ``cryptography`` directly: it shares no code with
``payhub.signing``, ``payhub.channels`` or the sandbox's wire module, so a
misreading in any of them is not mirrored here.

Also the helpers the UnionPay test modules share: one PKI per test session
(RSA keys are slow to make) and a ready sandbox + client environment.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from payhub_sandbox import ManualClock, Sandbox, UnionPayPKI, create_app
from sandbox_support import BASE_URL, START, Shop

CST = timezone(timedelta(hours=8))
MER_ID = "777290058110048"
OTHER_MER_ID = "777290058110097"
BACK_URL = "http://shop.test/unionpay/notify"
FRONT_URL = "http://shop.test/unionpay/return"
TEST_CN_FIELD = "中国银联股份有限公司"
GATEWAY = "/gateway/api"

# -- the signature ---------------------------------------------------------------------


def acp_string(fields: Mapping[str, str]) -> str:
    """Every field but ``signature``, empty values dropped, sorted, ``k=v`` joined by ``&``."""
    return "&".join(
        f"{k}={fields[k]}" for k in sorted(fields) if k != "signature" and fields[k] != ""
    )


def acp_digest(fields: Mapping[str, str]) -> bytes:
    return hashlib.sha256(acp_string(fields).encode("utf-8")).hexdigest().encode("ascii")


def acp_sign(key: rsa.RSAPrivateKey, fields: Mapping[str, str]) -> str:
    raw = key.sign(acp_digest(fields), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


# -- the response grammar -----------------------------------------------------------------


def parse_body(text: str) -> dict[str, str]:
    """``k=v&…`` with raw values: split at the first ``=``; an ``&`` inside braces or
    inside a PEM block (``-----BEGIN …-----`` to ``-----END …-----``) belongs to the value."""
    fields: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        eq = text.index("=", i)
        key = text[i:eq]
        j, depth = eq + 1, 0
        while j < n:
            if text.startswith("-----BEGIN ", j):
                end = text.index("-----END ", j)
                j = text.index("-----", end + len("-----END ")) + len("-----")
                continue
            ch = text[j]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "&" and depth == 0:
                break
            j += 1
        assert key not in fields, f"{key} twice"
        fields[key] = text[eq + 1 : j]
        i = j + 1
    return fields


def parse_form(body: bytes) -> dict[str, str]:
    pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    fields = dict(pairs)
    assert len(fields) == len(pairs), "a repeated field"
    return fields


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = values.get("action", "")
        if tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")


def parse_html_form(html: str) -> tuple[str, dict[str, str]]:
    """The first form's action and its hidden fields (character references decoded)."""
    parser = _FormParser()
    parser.feed(html)
    return parser.action, parser.fields


# -- verifying what the platform signs ----------------------------------------------------


class VerifyError(Exception):
    pass


@dataclass(frozen=True)
class Trust:
    root: x509.Certificate
    middle: x509.Certificate
    cn_field: str = TEST_CN_FIELD


def cn_third_field(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    parts = (value if isinstance(value, str) else value.decode()).split("@")
    return parts[2] if len(parts) > 2 else None


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert child.signature_hash_algorithm is not None
    try:
        key.verify(
            child.signature,
            child.tbs_certificate_bytes,
            padding.PKCS1v15(),
            child.signature_hash_algorithm,
        )
    except InvalidSignature:
        return False
    return True


def verify_message(fields: Mapping[str, str], trust: Trust, now: datetime) -> x509.Certificate:
    """Check a platform-signed message the way PROTOCOLS.md says; return its certificate."""
    signature = fields.get("signature", "")
    if not signature:
        raise VerifyError("no signature")
    pem = fields.get("signPubKeyCert", "")
    if not pem:
        raise VerifyError("no signPubKeyCert")
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    if not _issued_by(cert, trust.middle) or not _issued_by(trust.middle, trust.root):
        raise VerifyError("not in the chain")
    for link in (cert, trust.middle, trust.root):
        if not link.not_valid_before_utc <= now <= link.not_valid_after_utc:
            raise VerifyError("outside validity")
    if cn_third_field(cert) != trust.cn_field:
        raise VerifyError("CN")
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(
            base64.b64decode(signature), acp_digest(fields), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise VerifyError("signature") from None
    return cert


# -- the client -------------------------------------------------------------------------------


class UnionPayWireClient:
    """Builds, signs and posts ACP requests; parses and verifies the answers."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        mer_id: str,
        key: rsa.RSAPrivateKey,
        cert_id: str,
        trust: Trust,
        now: Callable[[], datetime],
    ) -> None:
        self.http = http
        self.mer_id = mer_id
        self.key = key
        self.cert_id = cert_id
        self.trust = trust
        self.now = now

    def txn_time(self) -> str:
        return self.now().astimezone(CST).strftime("%Y%m%d%H%M%S")

    def base(
        self, txn_type: str, sub_type: str, biz_type: str, order_id: str, **extra: str
    ) -> dict[str, str]:
        fields = {
            "version": "5.1.0",
            "encoding": "UTF-8",
            "signMethod": "01",
            "txnType": txn_type,
            "txnSubType": sub_type,
            "bizType": biz_type,
            "accessType": "0",
            "merId": self.mer_id,
            "orderId": order_id,
            "txnTime": self.txn_time(),
        }
        fields.update(extra)
        return fields

    def sign(self, fields: Mapping[str, str]) -> dict[str, str]:
        signed = {k: v for k, v in fields.items() if v != ""}
        signed.setdefault("certId", self.cert_id)
        signed["signature"] = acp_sign(self.key, signed)
        return signed

    def post(self, endpoint: str, fields: Mapping[str, str]) -> httpx.Response:
        return self.http.post(
            f"{GATEWAY}/{endpoint}",
            content=urlencode(list(fields.items())).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
        )

    def call(
        self, endpoint: str, fields: Mapping[str, str], *, sign: bool = True
    ) -> dict[str, str]:
        """POST, then parse and verify the answer (raises VerifyError)."""
        response = self.post(endpoint, self.sign(fields) if sign else fields)
        assert response.status_code == 200, response.text
        answer = parse_body(response.content.decode("utf-8"))
        verify_message(answer, self.trust, self.now())
        return answer

    # -- the operations -----------------------------------------------------------

    def consume_fields(self, order_id: str, amount: str = "1000", **extra: str) -> dict[str, str]:
        fields = self.base(
            "01",
            "01",
            "000201",
            order_id,
            channelType="07",
            txnAmt=amount,
            currencyCode="156",
            backUrl=BACK_URL,
        )
        fields.update(extra)
        return fields

    def front_consume(self, order_id: str, amount: str = "1000", **extra: str) -> httpx.Response:
        extra.setdefault("frontUrl", FRONT_URL)
        return self.post(
            "frontTransReq.do", self.sign(self.consume_fields(order_id, amount, **extra))
        )

    def app_consume(self, order_id: str, amount: str = "1000", **extra: str) -> dict[str, str]:
        extra.setdefault("channelType", "08")
        return self.call("appTransReq.do", self.consume_fields(order_id, amount, **extra))

    def query(self, order_id: str, txn_time: str) -> dict[str, str]:
        fields = self.base("00", "00", "000000", order_id)
        fields["txnTime"] = txn_time
        return self.call("queryTrans.do", fields)

    def back(
        self, txn_type: str, order_id: str, orig_qry_id: str, amount: str, **extra: str
    ) -> dict[str, str]:
        fields = self.base(
            txn_type,
            "00",
            "000201",
            order_id,
            channelType="07",
            txnAmt=amount,
            currencyCode="156",
            backUrl=BACK_URL,
            origQryId=orig_qry_id,
        )
        fields.update(extra)
        return self.call("backTransReq.do", fields)

    def refund(self, order_id: str, orig_qry_id: str, amount: str, **extra: str) -> dict[str, str]:
        return self.back("04", order_id, orig_qry_id, amount, **extra)

    def undo(self, order_id: str, orig_qry_id: str, amount: str, **extra: str) -> dict[str, str]:
        return self.back("31", order_id, orig_qry_id, amount, **extra)


# -- one PKI and one environment per test ---------------------------------------------------


@functools.cache
def session_alipay_key() -> rsa.RSAPrivateKey:
    """An Alipay platform key for the sandboxes here (else each makes one: ~0.1 s)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def session_pki() -> UnionPayPKI:
    """The sandbox's PKI, made once for the whole test session."""
    return UnionPayPKI.generate(now=START)


def trust_of(pki: UnionPayPKI) -> Trust:
    return Trust(
        root=x509.load_pem_x509_certificate(pki.root_cert_pem.encode()),
        middle=x509.load_pem_x509_certificate(pki.middle_cert_pem.encode()),
    )


@dataclass
class Env:
    sandbox: Sandbox
    clock: ManualClock
    shop: Shop
    app: Flask
    http: httpx.Client
    client: UnionPayWireClient
    pfx: bytes

    def notifications(self) -> list[dict[str, str]]:
        return [parse_form(r.content) for r in self.shop.requests]


@contextmanager
def unionpay_env(key: rsa.RSAPrivateKey, *, password: str = "000000") -> Iterator[Env]:
    """A sandbox on a manual clock, a merchant with a certificate issued for ``key``,
    and a client for it, all in-process."""
    clock = ManualClock(START)
    shop = Shop()
    pki = session_pki()
    sandbox = Sandbox(
        alipay_platform_key=session_alipay_key(),
        time_factor=60,
        clock=clock,
        notify_transport=shop.transport,
        base_url=BASE_URL,
        unionpay_pki=pki,
    )
    pfx, cert = sandbox.issue_unionpay_merchant(MER_ID, password, key=key)
    app = create_app(sandbox)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE_URL) as http:
        client = UnionPayWireClient(
            http,
            mer_id=MER_ID,
            key=key,
            cert_id=str(cert.serial_number),
            trust=trust_of(pki),
            now=clock.now,
        )
        try:
            yield Env(sandbox, clock, shop, app, http, client, pfx)
        finally:
            sandbox.stop()
