"""Loading keys and certificates, once, at configuration time."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from payhub.errors import ConfigurationError

__all__ = [
    "RSA_SIGNATURE_OID_PREFIX",
    "certificate_signature_oid",
    "load_certificate",
    "load_certificates",
    "load_pkcs12",
    "load_private_key",
    "load_public_key",
]

_PEM_BLOCK_RE = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL
)
_PEM_BODY_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END", re.DOTALL)
#: Signature algorithms of the RSA family (PKCS#1: 1.2.840.113549.1.1.*).
RSA_SIGNATURE_OID_PREFIX = "1.2.840.113549.1.1."

_log = logging.getLogger("payhub.signing")


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


def load_certificates(data: str | bytes, *, rsa_only: bool = False) -> list[x509.Certificate]:
    """Load every certificate of a PEM bundle, in order, each block on its own.

    With ``rsa_only`` the blocks whose signature algorithm is not of the RSA
    family are skipped *without being parsed* (a debug log line says which):
    the algorithm is read from the DER by a short, bounded walk. Alipay's
    ``alipayRootCert.crt`` needs it: besides two RSA roots it holds an SM2
    root and an ECDSA root encoded with an explicit NULL in its algorithm
    parameters, which ``cryptography`` 43+ refuses to parse (and 42 parses
    with a deprecation warning). A block whose algorithm cannot be read is
    parsed like any other, and an unreadable RSA block is refused. With
    ``rsa_only`` the list is empty when the bundle holds no RSA certificate.
    """
    raw = _as_bytes(data, "certificate bundle")
    blocks = [
        m.group(0) for m in _PEM_BLOCK_RE.finditer(raw) if m.group(1) == b"CERTIFICATE"
    ]
    if not blocks:
        raise ConfigurationError("certificate bundle: no PEM certificate found")
    certs: list[x509.Certificate] = []
    for number, block in enumerate(blocks, start=1):
        if rsa_only:
            oid = _pem_signature_algorithm(block)
            if oid is not None and not oid.startswith(RSA_SIGNATURE_OID_PREFIX):
                _log.debug(
                    "certificate bundle: skipped certificate %d, signature algorithm %s "
                    "(not RSA)",
                    number,
                    oid,
                )
                continue
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            raise ConfigurationError(
                f"certificate {number}: not a readable X.509 certificate"
            ) from None
    return certs  # empty when rsa_only found no RSA certificate


def _pem_signature_algorithm(block: bytes) -> str | None:
    """The dotted signatureAlgorithm OID of one PEM certificate, or None."""
    body = _PEM_BODY_RE.search(block)
    if body is None:
        return None
    try:
        der = base64.b64decode(b"".join(body.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return certificate_signature_oid(der)


#: DER lengths beyond four bytes (4 GiB) are not a certificate's.
_MAX_LENGTH_BYTES = 4


def _der_header(der: bytes, at: int, tag: int) -> tuple[int, int] | None:
    """(start of content, end of content) of the element at ``at``, if its tag is ``tag``."""
    if at + 2 > len(der) or der[at] != tag:
        return None
    first = der[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 0 < count <= _MAX_LENGTH_BYTES or at + count > len(der):
            return None
        length = int.from_bytes(der[at : at + count], "big")
        at += count
    end = at + length
    return (at, end) if end <= len(der) else None


def certificate_signature_oid(der: bytes) -> str | None:
    """The signatureAlgorithm OID (dotted) of a DER certificate, read without a full parse.

    A bounded walk: ``Certificate ::= SEQUENCE { tbsCertificate SEQUENCE,
    signatureAlgorithm SEQUENCE { OID, parameters }, signature BIT STRING }``.
    Nothing is trusted from it: it only decides whether an unparseable
    certificate may be skipped. None when the bytes do not have that shape.
    """
    cert = _der_header(der, 0, 0x30)
    if cert is None:
        return None
    tbs = _der_header(der, cert[0], 0x30)
    if tbs is None:
        return None
    algorithm = _der_header(der, tbs[1], 0x30)
    if algorithm is None or algorithm[1] > cert[1]:
        return None
    oid = _der_header(der, algorithm[0], 0x06)
    if oid is None or oid[1] > algorithm[1] or not 0 < oid[1] - oid[0] <= 64:
        return None
    return _oid_text(der[oid[0] : oid[1]])


def _oid_text(content: bytes) -> str | None:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80 or not arcs:
        return None
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


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
