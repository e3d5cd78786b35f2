"""A real third-party WeChat Pay APIv3 SDK, ``wechatpayv3`` (``WeChatPay``), against
the sandbox served live on a loopback port, in both key modes.

Any correct APIv3 client pointed at the sandbox must work unmodified except for
its base URL. None of the SDK's request signing (``Authorization``), answer
verification, certificate download/decryption or notification
verification/decryption is patched here.

What had to be set to point the SDK at the sandbox:

* the base URL. ``wechatpayv3.core.Core.__init__`` hard-codes
  ``self._gate_way = 'https://api.mch.weixin.qq.com'`` and ``WeChatPay`` has no
  argument for it; every request goes to ``self._gate_way + path``. We assign
  ``client._core._gate_way`` after construction, and nothing else.
* certificate mode only: because of that hard-coded host, a ``WeChatPay`` built
  with neither ``public_key`` nor a ``cert_dir`` holding a valid certificate
  downloads ``/v3/certificates`` from the real WeChat Pay *inside its
  constructor*, before the base URL can be changed. So the test hands it a
  ``cert_dir`` seeded with the sandbox's current platform certificate (the
  SDK's documented offline start: "平台证书存放目录", filled the way the
  official certificate downloader does). The SDK's own ``/v3/certificates``
  download and decryption is then proved against the sandbox by rotating the
  platform certificate: the next answer carries an unknown ``Wechatpay-Serial``
  and the SDK fetches, decrypts (API v3 key), stores and uses the new
  certificate by itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from payhub_sandbox import Sandbox, create_app
from sandbox_support import Shop
from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, spare_key
from werkzeug.serving import make_server

wechatpayv3 = pytest.importorskip("wechatpayv3", reason="wechatpayv3 is not installed")

SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
NOTIFY_URL = "http://shop.test/wechat/notify"
REAL_GATEWAY = "https://api.mch.weixin.qq.com"


@dataclass
class Live:
    box: Sandbox
    shop: Shop
    base: str
    mode: str
    cert_dir: Path
    merchant_pem: str

    def sdk(self, merchant_pem: str | None = None, **keys: str) -> wechatpayv3.WeChatPay:
        """A ``WeChatPay`` for this merchant (``merchant_pem``: sign with another
        private key); ``keys`` replace the platform key setup of the mode."""
        if not keys:
            if self.mode == "public_key":
                keys = {
                    "public_key": self.box.wechat_public_key_pem,
                    "public_key_id": self.box.wechat_public_key_id,
                }
            else:
                keys = {"cert_dir": str(self.cert_dir)}
        client = wechatpayv3.WeChatPay(
            wechatpay_type=wechatpayv3.WeChatPayType.NATIVE,
            mchid=MCHID,
            private_key=merchant_pem or self.merchant_pem,
            cert_serial_no=SERIAL,
            appid=APPID,
            apiv3_key=API_V3_KEY.decode(),
            notify_url=NOTIFY_URL,
            timeout=(5, 10),
            **keys,
        )
        assert client._core._gate_way == REAL_GATEWAY  # what we override, and only that
        client._core._gate_way = self.base
        return client


@pytest.fixture(params=["public_key", "certificate"])
def live(
    request, platform_keys, merchant_keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Live]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # requests honours *_proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    mode: str = request.param
    shop = Shop()
    box = Sandbox(  # the real clock: the SDK stamps requests with it
        time_factor=60,
        notify_transport=shop.transport,
        bills_ready_immediately=True,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=spare_key(),
    )
    box.add_wechat_merchant(MCHID, APPID, SERIAL, merchant_keys.public_pem, API_V3_KEY, mode)
    cert_dir = tmp_path / "wechatpay-certs"
    cert_dir.mkdir()
    for serial, pem in zip(
        box.wechat_platform_certificate_serials, box.wechat_platform_certificates_pem, strict=True
    ):
        (cert_dir / f"{serial}.pem").write_text(pem, encoding="utf-8")
    server = make_server("127.0.0.1", 0, create_app(box), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    box.base_url = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(box, shop, base, mode, cert_dir, merchant_keys.private_pem)
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
        box.stop()


def test_native_pay_query_notify_refund(live: Live) -> None:
    client, box, shop = live.sdk(), live.box, live.shop
    code, text = client.pay(
        description="礼品卡 / gift card", out_trade_no="TPWX-001", amount={"total": 1000}
    )
    assert code == 200, text
    code_url = json.loads(text)["code_url"]
    assert code_url.startswith(f"{live.base}/wechat/pay/")
    with httpx.Client(trust_env=False) as browser:
        assert browser.get(code_url).status_code == 200

    code, text = client.query(out_trade_no="TPWX-001")
    assert code == 200, text
    assert json.loads(text)["trade_state"] == "NOTPAY"

    box.wechat.pay(MCHID, "TPWX-001")
    code, text = client.query(out_trade_no="TPWX-001")
    assert code == 200, text
    paid = json.loads(text)
    assert paid["trade_state"] == "SUCCESS"
    assert paid["out_trade_no"] == "TPWX-001"
    assert paid["mchid"] == MCHID
    assert paid["appid"] == APPID
    assert paid["amount"]["total"] == 1000
    code, text = client.query(transaction_id=paid["transaction_id"])
    assert code == 200, text
    assert json.loads(text)["out_trade_no"] == "TPWX-001"

    box.deliver_due()
    (sent,) = shop.requests
    assert str(sent.url) == NOTIFY_URL
    note = client.callback(sent.headers, sent.content)  # verifies, then decrypts
    assert note is not None, "the SDK refused the notification"
    assert note["event_type"] == "TRANSACTION.SUCCESS"
    assert note["resource"]["out_trade_no"] == "TPWX-001"
    assert note["resource"]["trade_state"] == "SUCCESS"
    assert note["resource"]["amount"]["total"] == 1000
    assert note["resource"]["transaction_id"] == paid["transaction_id"]
    forged = sent.content.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCES5"')
    assert forged != sent.content
    assert client.callback(sent.headers, forged) is None

    code, text = client.refund(
        out_refund_no="TPWX-001-R1",
        amount={"refund": 400, "total": 1000, "currency": "CNY"},
        out_trade_no="TPWX-001",
        reason="partial",
    )
    assert code == 200, text
    refund = json.loads(text)
    assert refund["out_refund_no"] == "TPWX-001-R1"
    assert refund["amount"]["refund"] == 400
    assert refund["status"] in ("PROCESSING", "SUCCESS")
    code, text = client.refund(
        out_refund_no="TPWX-001-R2",
        amount={"refund": 601, "total": 1000, "currency": "CNY"},
        out_trade_no="TPWX-001",
    )
    assert code == 400, text  # more than is left to refund
    assert json.loads(text)["code"] == "INVALID_REQUEST"

    box.deliver_due()  # the refund settles; REFUND.SUCCESS goes to the SDK's notify_url
    refund_note = shop.requests[-1]
    assert refund_note is not sent
    parsed = client.callback(refund_note.headers, refund_note.content)
    assert parsed is not None, "the SDK refused the refund notification"
    assert parsed["event_type"] == "REFUND.SUCCESS"
    assert parsed["resource"]["out_refund_no"] == "TPWX-001-R1"
    assert parsed["resource"]["refund_status"] == "SUCCESS"

    code, text = client.query_refund(out_refund_no="TPWX-001-R1")
    assert code == 200, text
    assert json.loads(text)["status"] == "SUCCESS"


def test_close_an_unpaid_trade(live: Live) -> None:
    client = live.sdk()
    code, text = client.pay(description="gift card", out_trade_no="TPWX-002", amount={"total": 1})
    assert code == 200, text
    code, text = client.close(out_trade_no="TPWX-002")  # 204, its empty body signed and verified
    assert code == 204, text
    code, text = client.query(out_trade_no="TPWX-002")
    assert code == 200, text
    assert json.loads(text)["trade_state"] == "CLOSED"
    assert live.box.wechat_trade(MCHID, "TPWX-002").state.value == "CLOSED"


def test_unknown_trade(live: Live) -> None:
    code, text = live.sdk().query(out_trade_no="TPWX-NOPE")
    assert code == 404, text
    assert json.loads(text)["code"] == "ORDER_NOT_EXIST"


def _impostor_certificate(key: rsa.RSAPrivateKey, serial_hex: str) -> str:
    """A self-signed certificate carrying the sandbox's platform serial but another key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(serial_hex, 16))
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_the_sdk_rejects_answers_signed_by_another_key(live: Live, other_keys) -> None:
    """Answer verification is really on: with the wrong platform key the same SDK
    refuses the sandbox's (correctly signed) answers."""
    if live.mode == "public_key":
        wrong = live.sdk(
            public_key=other_keys.public_pem, public_key_id=live.box.wechat_public_key_id
        )
    else:  # the right serial, another key: the SDK picks the certificate by serial
        for seeded in live.cert_dir.iterdir():
            seeded.unlink()
        serial = live.box.wechat_platform_certificate_serials[-1]
        (live.cert_dir / f"{serial}.pem").write_text(
            _impostor_certificate(other_keys.private, serial), encoding="utf-8"
        )
        wrong = live.sdk()
    with pytest.raises(Exception, match="failed to verify the signature"):
        wrong.pay(description="gift card", out_trade_no="TPWX-003", amount={"total": 1})
    assert live.box.wechat_trade(MCHID, "TPWX-003").state.value == "PENDING"  # it was created


def test_the_sandbox_rejects_a_request_signed_by_another_key(live: Live, other_keys) -> None:
    """And the other way: the sandbox checks the SDK's ``Authorization`` signature."""
    code, text = live.sdk(merchant_pem=other_keys.private_pem).query(out_trade_no="TPWX-004")
    assert code == 401, text
    assert json.loads(text)["code"] == "SIGN_ERROR"


@pytest.mark.parametrize("live", ["certificate"], indirect=True)
def test_certificate_rotation_is_followed_by_the_sdk(live: Live) -> None:
    """Certificate mode: the SDK downloads ``/v3/certificates`` from the sandbox itself
    (and decrypts it with the API v3 key) when an answer is signed by a certificate
    it does not know yet, then verifies that answer with it."""
    client = live.sdk()
    code, text = client.pay(description="gift card", out_trade_no="TPWX-005", amount={"total": 1})
    assert code == 200, text
    new_serial = live.box.rotate_wechat_platform_certificate()
    assert not (live.cert_dir / f"{new_serial}.pem").exists()
    code, text = client.query(out_trade_no="TPWX-005")
    assert code == 200, text
    assert json.loads(text)["trade_state"] == "NOTPAY"
    stored = (live.cert_dir / f"{new_serial}.pem").read_text(encoding="utf-8")
    assert stored.strip() == live.box.wechat_platform_certificates_pem[-1].strip()
    live.box.wechat.pay(MCHID, "TPWX-005")
    live.box.deliver_due()
    (sent,) = live.shop.requests
    assert sent.headers["Wechatpay-Serial"] == new_serial
    note = client.callback(sent.headers, sent.content)
    assert note is not None
    assert note["resource"]["trade_state"] == "SUCCESS"
