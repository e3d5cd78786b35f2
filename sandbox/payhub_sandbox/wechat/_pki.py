"""The sandbox's WeChat Pay keys: the "WeChat Pay public key" (``PUB_KEY_ID_…``)
and platform certificates issued by a self-made CA.

The CA is made once per process, on first need (an RSA key costs tens of
milliseconds to generate); every :class:`~payhub_sandbox.Sandbox` of the
process issues its platform certificates from it.
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


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Guangdong"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Shenzhen"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payhub sandbox"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "payhub sandbox CA Center"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def sandbox_ca() -> _Authority:
    """The process's sandbox root CA (made on first call)."""
    global _ca  # noqa: PLW0603 - one lazily made CA per process
    with _ca_lock:
        if _ca is None:
            key = _new_key()
            name = _name("payhub sandbox Tenpay.com Root CA")
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
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def issue_platform_certificate(
    now: datetime, key: rsa.RSAPrivateKey | None = None
) -> PlatformCertificate:
    """A new platform certificate valid from ``now`` (to the second) for five years."""
    ca = sandbox_ca()
    key = key if key is not None else _new_key()
    start = now.replace(microsecond=0)
    # 160-bit serials print as 40 upper-hex digits, like WeChat's.
    serial = secrets.randbits(159) | (1 << 156)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("payhub sandbox WeChat Pay platform certificate"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + CERTIFICATE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return PlatformCertificate(serial_no=certificate_serial_hex(cert), certificate=cert, key=key)
