"""WeChat Pay APIv3: handling a notification, and building a signed native-pay request.

1. Handling a notification (verify + decrypt + parse) through the hub:
   payhub ÷ raw ``cryptography`` RSA verify + AES-GCM decrypt + ``json.loads``
   of the same bytes, same run. Target ≤ 1.3.
2. Building a signed native-pay request: payhub ÷ one raw RSA sign of the
   same message. Target ≤ 1.15.

Run: ``.venv/bin/python benchmarks/bench_wechat.py``
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, main_exit
from test_wechat_support import (
    API_V3_KEY,
    PUB_KEY_ID,
    Clock,
    channel,
    config,
    notification_body,
    signed_headers,
    transaction_resource,
)

from payhub import Money, PayHub, PaymentRequest, PayMethod


def main() -> None:
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    clock = Clock()
    ch = channel(config(merchant, platform), clock)
    hub = PayHub(channels=[ch])

    body = notification_body(transaction_resource())
    headers = httpx.Headers(signed_headers(platform, PUB_KEY_ID, body, clock=clock))
    platform_public = platform.public_key()
    aes = AESGCM(API_V3_KEY.encode())
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def raw_notification() -> None:
        message = (
            headers["Wechatpay-Timestamp"].encode() + b"\n"
            + headers["Wechatpay-Nonce"].encode() + b"\n" + body + b"\n"
        )
        platform_public.verify(
            base64.b64decode(headers["Wechatpay-Signature"]), message, pkcs1, sha256
        )
        resource = json.loads(body)["resource"]
        plain = aes.decrypt(
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"]),
            resource["associated_data"].encode(),
        )
        json.loads(plain)

    request = PaymentRequest(
        out_trade_no="BENCH20261125000001",
        amount=Money(3000),
        subject="Steam 礼品卡 30 元",
        method=PayMethod.QR,
        notify_url="https://shop.example/notify/wechat",
    )
    sample = next(ch.pay(request))
    message = (
        f"POST\n{sample.url.raw_path.decode()}\n1700000000\n{'0' * 32}\n".encode()
        + sample.content + b"\n"
    )

    def raw_sign() -> None:
        merchant.sign(message, pkcs1, sha256)

    def payhub_native() -> None:
        flow = ch.pay(request)
        next(flow)
        flow.close()

    main_exit(
        [
            compare(
                "wechat notification (verify+decrypt+parse) via hub",
                lambda: hub.parse_notification("wechat", headers, body),
                raw_notification,
                target=1.3,
            ),
            compare("wechat signed native-pay request", payhub_native, raw_sign, target=1.15),
        ]
    )


if __name__ == "__main__":
    main()
