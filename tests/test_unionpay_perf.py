"""Verifying a UnionPay notification: payhub ÷ (raw chain check + raw verify), same bytes.

Target ≤ 1.5 with payhub's defaults. The chain check (a certificate parse and
two RSA verifications) dominates, so payhub caches verified platform
certificates by fingerprint; the uncached ratio is measured too and printed
(``pytest -s tests/test_unionpay_perf.py``).
"""

from __future__ import annotations

import base64
import timeit
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
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


def _best(fn: Callable[[], object], number: int = 200, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def measure() -> dict[str, float]:
    p = pki()
    body = form_body(platform_signed(notification()))

    def raw() -> None:
        fields = dict(parse_qsl(body.decode("utf-8")))
        cert = x509.load_pem_x509_certificate(fields["signPubKeyCert"].encode())
        cert.verify_directly_issued_by(p.middle)
        p.middle.verify_directly_issued_by(p.root)
        cert.public_key().verify(  # an RSA key: the test PKI makes nothing else
            base64.b64decode(fields["signature"]), string_to_sign(fields),
            padding.PKCS1v15(), hashes.SHA256(),
        )

    cached = UnionPayChannel(config(), clock=clock)
    uncached = UnionPayChannel(config(cert_cache_size=0), clock=clock)
    for fn in (raw, lambda: cached.parse_notification(HEADERS, body)):
        fn()  # warm up (and fill the cache)
    baseline = _best(raw)
    with_cache = _best(lambda: cached.parse_notification(HEADERS, body))
    without_cache = _best(lambda: uncached.parse_notification(HEADERS, body))
    return {
        "raw_us": baseline * 1e6,
        "cached_us": with_cache * 1e6,
        "uncached_us": without_cache * 1e6,
        "ratio_cached": with_cache / baseline,
        "ratio_uncached": without_cache / baseline,
    }


def test_notification_verification_is_within_target() -> None:
    result = measure()
    print(
        "\nunionpay notification verify: raw {raw_us:.0f} us, payhub cached {cached_us:.0f} us "
        "(ratio {ratio_cached:.2f}), uncached {uncached_us:.0f} us "
        "(ratio {ratio_uncached:.2f})".format(**result)
    )
    assert result["ratio_cached"] <= 1.5
    assert result["ratio_cached"] < result["ratio_uncached"]
