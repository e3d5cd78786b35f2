"""Loading keys and certificates, once, at configuration time."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from payhub.errors import ConfigurationError

__all__ = [
    "load_certificate",
    "load_certificates",
    "load_pkcs12",
    "load_private_key",
    "load_public_key",
]

_PEM_BLOCK_RE = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL
)


def _as_bytes(data: str | bytes, what: str) -> bytes:
    try:
        return data.encode("ascii", "strict") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what}: not ASCII text or bytes") from None


def _bare_base64(data: bytes) -> bytes | None:
    """Decode a bare base64 body (what the Alipay console hands out), or None."""
    compact = b"".join(data.split())
    if not compact:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def load_private_key(data: str | bytes, *, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM (PKCS#1 or PKCS#8), DER, or a bare base64 body.

    The error never contains the key material.
    """
    raw = _as_bytes(data, "private key")
    key: object = None
    try:
        if b"-----BEGIN" in raw:
            key = serialization.load_pem_private_key(raw.strip(), password=password)
        else:
            der = _bare_base64(raw)
            key = serialization.load_der_private_key(
                der if der is not None else raw, password=password
            )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigurationError(
            "private key: not a readable PEM, DER or base64 RSA private key "
            "(or the password is wrong)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("private key: not an RSA key")
    if key.key_size < 2048:
        raise ConfigurationError(f"private key: RSA-{key.key_size} is too short (2048 minimum)")
    return key


def load_public_key(data: str | bytes | x509.Certificate) -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM/DER/base64 SubjectPublicKeyInfo or PKCS#1,
    or from an X.509 certificate (PEM, DER, or a loaded certificate)."""
    if isinstance(data, x509.Certificate):
        key: object = data.public_key()
    else:
        raw = _as_bytes(data, "public key")
        key = None
        if b"-----BEGIN CERTIFICATE-----" in raw:
            key = load_certificate(raw).public_key()
        elif b"-----BEGIN" in raw:
            try:
                key = serialization.load_pem_public_key(raw.strip())
            except (ValueError, UnsupportedAlgorithm):
                raise ConfigurationError("public key: unreadable PEM") from None
        else:
            der = _bare_base64(raw)
            der = der if der is not None else raw
            for loader in (serialization.load_der_public_key, _der_cert_key):
                try:
                    key = loader(der)
                    break
                except (ValueError, UnsupportedAlgorithm):
                    continue
            if key is None:
                raise ConfigurationError("public key: not a readable base64/DER public key")
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError("public key: not an RSA key")
    return key


def _der_cert_key(der: bytes) -> object:
    return x509.load_der_x509_certificate(der).public_key()


def load_certificate(data: str | bytes) -> x509.Certificate:
    """Load one X.509 certificate from PEM or DER (base64 DER accepted too)."""
    raw = _as_bytes(data, "certificate")
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificate(raw.strip())
        der = _bare_base64(raw)
        return x509.load_der_x509_certificate(der if der is not None else raw)
    except ValueError:
        raise ConfigurationError("certificate: not a readable X.509 certificate") from None


def load_certificates(data: str | bytes) -> list[x509.Certificate]:
    """Load every certificate of a PEM bundle, in order."""
    raw = _as_bytes(data, "certificate bundle")
    blocks = [
        m.group(0) for m in _PEM_BLOCK_RE.finditer(raw) if m.group(1) == b"CERTIFICATE"
    ]
    if not blocks:
        raise ConfigurationError("certificate bundle: no PEM certificate found")
    return [load_certificate(block) for block in blocks]


def load_pkcs12(
    data: bytes, password: str | bytes | None
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, Sequence[x509.Certificate]]:
    """Load a PKCS#12 (.pfx/.p12) file: its RSA key, its certificate and any others."""
    pw = password.encode("utf-8") if isinstance(password, str) else password
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(bytes(data), pw)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigurationError(
            "PKCS#12: unreadable file or wrong password"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
        raise ConfigurationError("PKCS#12: needs an RSA private key and its certificate")
    return key, cert, list(extra)
