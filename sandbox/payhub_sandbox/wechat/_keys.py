"""The WeChat simulator's signing side: the WeChat Pay public key, the platform
certificates (rotation with overlap, ``GET /v3/certificates``), the ``Wechatpay-*``
headers of answers and notifications, and fresh signatures on each delivery."""

from __future__ import annotations

import secrets

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import SignatureError
from payhub.signing import aes_gcm_encrypt, rsa_verify
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox.wechat._api import Answer, Call
from payhub_sandbox.wechat._core import WechatCore
from payhub_sandbox.wechat._merchants import WechatMerchant, private_key
from payhub_sandbox.wechat._pki import (
    PlatformCertificate,
    issue_platform_certificate,
    public_key_id,
    public_key_pem,
    sandbox_ca,
)
from payhub_sandbox.wechat._wire import format_time, response_message, signed_headers

__all__ = ["WechatKeys"]


class WechatKeys:
    """Keys and certificates of one sandbox (made on first need)."""

    def __init__(
        self,
        core: WechatCore,
        *,
        public_key: rsa.RSAPrivateKey | str | bytes | None = None,
        platform_key: rsa.RSAPrivateKey | str | bytes | None = None,
    ) -> None:
        self._core = core
        self._public_key = private_key(public_key, "wechat_public_key")
        self._first_platform_key = private_key(platform_key, "wechat_platform_key")
        self._certificates: list[PlatformCertificate] = []
        self._retired: list[PlatformCertificate] = []

    def wechatpay_key(self) -> rsa.RSAPrivateKey:
        with self._core.lock:
            if self._public_key is None:
                self._public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._public_key

    @property
    def public_key_pem(self) -> str:
        return public_key_pem(self.wechatpay_key().public_key())

    @property
    def public_key_id(self) -> str:
        return public_key_id(self.wechatpay_key().public_key())

    def certificates(self) -> list[PlatformCertificate]:
        with self._core.lock:
            if not self._certificates:
                self._certificates.append(
                    issue_platform_certificate(self._core.now(), self._first_platform_key)
                )
                self._first_platform_key = None
            return list(self._certificates)

    def newest_certificate(self) -> PlatformCertificate:
        return self.certificates()[-1]

    @property
    def ca_certificate_pem(self) -> str:
        return sandbox_ca().pem

    def rotate(self, key: rsa.RSAPrivateKey | str | bytes | None = None) -> PlatformCertificate:
        new_key = private_key(key, "key")
        with self._core.lock:
            self.certificates()
            cert = issue_platform_certificate(self._core.now(), new_key)
            self._certificates.append(cert)
            return cert

    def retire(self, serial_no: str) -> None:
        with self._core.lock:
            certs = self.certificates()
            kept = [c for c in certs if c.serial_no != serial_no.upper()]
            if len(kept) == len(certs):
                raise InvalidInputError(f"no platform certificate {serial_no!r}")
            if not kept:
                raise InvalidInputError("the last platform certificate cannot be retired")
            self._retired.extend(c for c in certs if c not in kept)
            self._certificates = kept

    def _signer(self, merchant: WechatMerchant | None) -> tuple[rsa.RSAPrivateKey, str]:
        if merchant is not None and merchant.key_mode == "certificate":
            cert = self.newest_certificate()
            return cert.key, cert.serial_no
        return self.wechatpay_key(), self.public_key_id

    def sign(self, merchant: WechatMerchant | None, body: bytes) -> list[tuple[str, str]]:
        """The ``Wechatpay-*`` headers for ``body``, in the merchant's key mode, now."""
        key, serial = self._signer(merchant)
        return signed_headers(key, serial, body, self._core.now())

    def resign(self, mch_id: str, headers: httpx.Headers, body: bytes) -> list[tuple[str, str]]:
        """Fresh signature headers for a notification attempt, if its current
        signature is genuine (a forged one, from a delivery fault, stays forged)."""
        with self._core.lock:
            merchant = self._core.merchants.get(mch_id)
            keys = [c.key.public_key() for c in [*self._certificates, *self._retired]]
        if self._public_key is not None:
            keys.append(self._public_key.public_key())
        message = response_message(
            headers.get("Wechatpay-Timestamp", ""), headers.get("Wechatpay-Nonce", ""), body
        )
        signature = headers.get("Wechatpay-Signature", "")
        for key in keys:
            try:
                rsa_verify(key, message, signature)
            except SignatureError:
                continue
            return self.sign(merchant, body)
        return []

    def list_certificates(self, call: Call) -> Answer:
        """``GET /v3/certificates``: every certificate in force, encrypted with the API v3
        key. Keys in alphabetical order and a 12-hex-digit nonce, as in the real answer
        wechatpay-java keeps (``tests/fixtures/wechat/certificates_answer_wechatpay_java.json``)."""
        items = []
        for cert in self.certificates():
            nonce = secrets.token_hex(6)
            items.append(
                {
                    "effective_time": format_time(cert.effective_time),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "associated_data": "certificate",
                        "ciphertext": aes_gcm_encrypt(
                            call.merchant.api_v3_key,
                            nonce.encode("ascii"),
                            b"certificate",
                            cert.pem.encode("ascii"),
                        ),
                        "nonce": nonce,
                    },
                    "expire_time": format_time(cert.expire_time),
                    "serial_no": cert.serial_no,
                }
            )
        return Answer(data={"data": items})
