"""Alipay's certificate mode (公钥证书模式) in the sandbox.

In certificate mode an app signs as before but sends ``app_cert_sn`` (the
serial of its public-key certificate) and ``alipay_root_cert_sn`` (the serials
of Alipay's root bundle); Alipay answers with ``alipay_cert_sn``, the serial of
the certificate whose key signed the answer. A serial is the lowercase hex MD5
of the issuer's distinguished name (RFC 2253 order) followed by the decimal
serial number, as Alipay's SDKs compute it. Fund APIs
(``alipay.fund.trans.uni.transfer``, ``alipay.fund.trans.common.query``) are
answered only in certificate mode.

:class:`AlipayCertificates` makes a root (self-signed, ``sha256WithRSA``), the
platform's "alipayCertPublicKey_RSA2" certificate for the sandbox's platform key
and, on request, an app's "appCertPublicKey" certificate, all issued by that root.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["AlipayCertificates", "cert_sn"]

_VALIDITY: Final = timedelta(days=3650)


def cert_sn(cert: x509.Certificate) -> str:
    """Alipay's certificate serial (see the module)."""
    text = cert.issuer.rfc4514_string() + str(cert.serial_number)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payhub sandbox"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Alipay Sandbox CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class AlipayCertificates:
    """The sandbox's Alipay root and platform certificates, made on first use."""

    def __init__(self, platform_key: rsa.RSAPrivateKey) -> None:
        self._platform_key = platform_key
        self._lock = threading.Lock()
        self._root_key: rsa.RSAPrivateKey | None = None
        self._root: x509.Certificate | None = None
        self._alipay: x509.Certificate | None = None

    def _issue(self, subject: x509.Name, key: rsa.RSAPublicKey, *, ca: bool) -> x509.Certificate:
        assert self._root_key is not None
        now = datetime.now(UTC).replace(microsecond=0)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(_name("Alipay Sandbox Root") if not ca else subject)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        return builder.sign(self._root_key, hashes.SHA256())

    def _ready(self) -> tuple[x509.Certificate, x509.Certificate]:
        with self._lock:
            if self._root is None or self._alipay is None:
                self._root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._root = self._issue(
                    _name("Alipay Sandbox Root"), self._root_key.public_key(), ca=True
                )
                self._alipay = self._issue(
                    _name("Alipay Sandbox Platform"), self._platform_key.public_key(), ca=False
                )
            return self._root, self._alipay

    @property
    def root_cert_pem(self) -> str:
        """``alipayRootCert.crt``."""
        return _pem(self._ready()[0])

    @property
    def alipay_cert_pem(self) -> str:
        """``alipayCertPublicKey_RSA2.crt``: the platform key's certificate."""
        return _pem(self._ready()[1])

    @property
    def root_cert_sn(self) -> str:
        return cert_sn(self._ready()[0])

    @property
    def alipay_cert_sn(self) -> str:
        return cert_sn(self._ready()[1])

    def issue_app_cert(self, public_key: rsa.RSAPublicKey, app_id: str) -> str:
        """``appCertPublicKey_<app_id>.crt`` for an app's public key, PEM."""
        self._ready()
        with self._lock:
            return _pem(self._issue(_name(f"appCert {app_id}"), public_key, ca=False))
