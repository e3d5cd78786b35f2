"""The sandbox's WeChat Pay keys: the "WeChat Pay public key" (``PUB_KEY_ID_…``)
and platform certificates issued by a self-made CA.

The CA is made once per process, on first need (an RSA key costs tens of
milliseconds to generate); every :class:`~payhub_sandbox.Sandbox` of the
process issues its platform certificates from it.

Both are shaped after WeChat Pay's real ones (``tests/fixtures/wechat/``, the
platform certificate in wechatpay-java's test suite): the CA is named as WeChat's
root (``C=CN, O=Tenpay.com, OU=Tenpay.com CA Center, CN=Tenpay.com Root CA``)
because clients check the issuer's CN; a platform certificate is
``CN=Tenpay.com sign, O=Tenpay.com, OU=Tenpay.com CA Center, C=CN, L=ShenZhen``
(in that order), a 20-byte serial, five years (1,825 days) of
validity, ``CA:FALSE`` and the key usages of the real one (neither critical), and
its PEM has 64-character lines and no newline after ``-----END CERTIFICATE-----``,
as ``/v3/certificates`` hands it over. What differs on purpose: the CA is the
sandbox's own (a client that checks the chain against WeChat's real
``CertTrustChain.p7b`` refuses it), there is no CRL distribution point, and the
names' string types are ``cryptography``'s defaults (the real root's are
printable strings; choosing them needs a private API of ``cryptography``).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from payhub.signing import certificate_serial_hex

__all__ = [
    "PLATFORM_NAME",
    "ROOT_NAME",
    "PlatformCertificate",
    "issue_platform_certificate",
    "public_key_id",
    "public_key_pem",
    "sandbox_ca",
]

CERTIFICATE_LIFETIME: Final = timedelta(days=5 * 365)
_CA_LIFETIME: Final = timedelta(days=30 * 365)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_id(key: rsa.RSAPublicKey) -> str:
    """A ``PUB_KEY_ID_…`` derived from the key, so a configured key keeps its id."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    digits = str(int.from_bytes(hashlib.sha256(der).digest(), "big"))
    return f"PUB_KEY_ID_01{digits[:26]}"


@dataclass(frozen=True)
class _Authority:
    key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


_ca: _Authority | None = None
_ca_lock = threading.Lock()


#: WeChat Pay's root CA's name, which clients check as the issuer.
ROOT_NAME: Final = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tenpay.com CA Center"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA"),
    ]
)

#: A platform certificate's subject, in the real one's order (UTF-8 strings).
PLATFORM_NAME: Final = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sign"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tenpay.com CA Center"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "ShenZhen"),
    ]
)


def sandbox_ca() -> _Authority:
    """The process's sandbox root CA (made on first call)."""
    global _ca  # noqa: PLW0603 - one lazily made CA per process
    with _ca_lock:
        if _ca is None:
            key = _new_key()
            name = ROOT_NAME
            start = datetime(2020, 1, 1, tzinfo=UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + _CA_LIFETIME)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .sign(key, hashes.SHA256())
            )
            _ca = _Authority(key, cert)
        return _ca


@dataclass(frozen=True)
class PlatformCertificate:
    """One platform certificate and its private key (never shown)."""

    serial_no: str
    """Upper-case hex, as WeChat Pay names it."""
    certificate: x509.Certificate = field(repr=False)
    key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def effective_time(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def expire_time(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def pem(self) -> str:
        """As WeChat Pay hands it over: no newline after the last line."""
        pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return pem.rstrip("\n")


def issue_platform_certificate(
    now: datetime, key: rsa.RSAPrivateKey | None = None
) -> PlatformCertificate:
    """A new platform certificate valid from ``now`` (to the second) for five years."""
    ca = sandbox_ca()
    key = key if key is not None else _new_key()
    start = now.replace(microsecond=0)
    # A 20-byte serial (159 bits, the top ones set) prints as 40 upper-hex digits.
    serial = secrets.randbits(159) | (1 << 156)
    cert = (
        x509.CertificateBuilder()
        .subject_name(PLATFORM_NAME)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + CERTIFICATE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return PlatformCertificate(serial_no=certificate_serial_hex(cert), certificate=cert, key=key)
