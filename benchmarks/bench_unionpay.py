"""UnionPay: verifying a notification, certificate chain check included.

payhub ÷ (raw chain check + raw verify) of the same bytes, same run. Target ≤ 1.5.
The chain check (a certificate parse and two RSA verifications) dominates, so
payhub caches verified platform certificates by fingerprint; the uncached
ratio is printed too, for information.

Run: ``.venv/bin/python benchmarks/bench_unionpay.py``
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, main_exit
from test_unionpay_pki import (
    clock,
    config,
    form_body,
    notification,
    pki,
    platform_signed,
    string_to_sign,
)

from payhub.channels.unionpay import UnionPayChannel

HEADERS = httpx.Headers({"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})


def main() -> None:
    p = pki()
    body = form_body(platform_signed(notification()))

    def raw() -> None:
        fields = dict(parse_qsl(body.decode("utf-8")))
        cert = x509.load_pem_x509_certificate(fields["signPubKeyCert"].encode())
        cert.verify_directly_issued_by(p.middle)
        p.middle.verify_directly_issued_by(p.root)
        key = cert.public_key()
        assert hasattr(key, "verify")
        key.verify(  # type: ignore[call-arg]
            base64.b64decode(fields["signature"]),
            string_to_sign(fields),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    cached = UnionPayChannel(config(), clock=clock)
    uncached = UnionPayChannel(config(cert_cache_size=0), clock=clock)
    results = [
        compare(
            "unionpay notify verify (cached certs)",
            lambda: cached.parse_notification(HEADERS, body),
            raw,
            target=1.5,
        )
    ]
    info = compare(
        "unionpay notify verify (no cert cache, info only)",
        lambda: uncached.parse_notification(HEADERS, body),
        raw,
        target=float("inf"),
    )
    print(info.line())
    main_exit(results)


if __name__ == "__main__":
    main()
