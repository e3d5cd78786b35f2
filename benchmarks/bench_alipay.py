"""Alipay: building a signed page-pay request, and verifying + parsing a notification.

1. Building a signed page-pay request: payhub ÷ the raw ``cryptography`` sign
   of the same canonical string, same run. Target ≤ 1.15.
2. Verifying and parsing a notification: payhub ÷ the raw verify of the same
   string, same run. Printed for information; ceiling 2.0. Measured two ways, both printed:
   - strict: the raw side is only the RSA verify of the already-built string
     to sign, with the signature already base64-decoded;
   - like-for-like: the raw side also decodes the form body and builds the
     string to sign (``parse_qsl`` + sort + join + base64), as the WeChat
     benchmark's raw side includes ``json.loads`` of the same bytes.

Both ratios are printed for information (issue 12 removed the compiled
decoder; about 1.7 is expected); the number users feel is the end-to-end one
of ``bench_e2e_flask.py``.

Run: ``.venv/bin/python benchmarks/bench_alipay.py``
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, main_exit
from test_alipay_fake import make_channel, notification_body, notification_fields, string_to_sign

from payhub import Money, PayHub, PaymentRequest, PayMethod
from payhub.channels import run_flow_sync


class _Keys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


def _no_io(request: httpx.Request) -> httpx.Response:
    raise AssertionError("page pay must not do I/O")


@dataclass(frozen=True)
class NotificationCase:
    """One signed notification, the hub to parse it, and what a raw verify needs."""

    hub: PayHub
    body: bytes
    headers: httpx.Headers
    message: bytes  #: the string Alipay signed, already built
    signature: bytes  #: ``sign``, already base64-decoded
    public: rsa.RSAPublicKey


def notification_case(merchant: _Keys, platform: _Keys) -> NotificationCase:
    body = notification_body(notification_fields(), platform.private)
    signed = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return NotificationCase(
        hub=PayHub(channels=[make_channel(merchant, platform)]),
        body=body,
        headers=httpx.Headers(
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        ),
        message=string_to_sign(signed, exclude=("sign", "sign_type")).encode(),
        signature=base64.b64decode(signed["sign"]),
        public=platform.private.public_key(),
    )


#: Issue 12 removed the compiled form decoder and accepted about 1.7 here.
_ACCEPTED = 2.0


def main() -> None:
    merchant, platform = _Keys(), _Keys()
    channel = make_channel(merchant, platform)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    request = PaymentRequest(
        out_trade_no="BENCH-20261125-000001",
        amount=Money(3000),
        subject="Steam 礼品卡 30 元",
        method=PayMethod.PAGE,
        return_url="https://shop.example/return",
    )
    result = run_flow_sync(channel.pay(request), _no_io)
    assert result.redirect_url is not None
    params = dict(parse_qsl(httpx.URL(result.redirect_url).query.decode(), keep_blank_values=True))
    page_message = string_to_sign(params).encode()
    merchant_key = merchant.private

    def raw_sign() -> None:
        merchant_key.sign(page_message, pkcs1, sha256)

    def payhub_page_pay() -> None:
        run_flow_sync(channel.pay(request), _no_io)

    case = notification_case(merchant, platform)
    hub, body, headers = case.hub, case.body, case.headers
    notify_message, notify_signature, platform_public = case.message, case.signature, case.public

    def raw_verify() -> None:
        platform_public.verify(notify_signature, notify_message, pkcs1, sha256)

    def raw_decode_and_verify() -> None:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        message = string_to_sign(form, exclude=("sign", "sign_type")).encode()
        platform_public.verify(base64.b64decode(form["sign"]), message, pkcs1, sha256)

    main_exit(
        [
            compare("alipay signed page-pay request", payhub_page_pay, raw_sign, target=1.15),
            compare(
                "alipay notification verify+parse via hub (strict: raw = verify only)",
                lambda: hub.parse_notification("alipay", headers, body),
                raw_verify,
                target=_ACCEPTED,
                batch=200,
            ),
            compare(
                "alipay notification verify+parse via hub (raw = decode + verify)",
                lambda: hub.parse_notification("alipay", headers, body),
                raw_decode_and_verify,
                target=_ACCEPTED,
                batch=200,
            ),
        ]
    )


if __name__ == "__main__":
    main()
