"""ACP ``signMethod=01`` signatures and the platform-certificate check.

String to sign: every field but ``signature``, keys sorted, ``k=v`` joined
with ``&``, values raw. The RSA signature (SHA256withRSA, PKCS#1 v1.5) is over
the ASCII of the *lowercase hex SHA-256* of that string. Signing first drops the
empty values from the message (they are not sent at all); verifying a received
message keeps every field it carries, empty ones as ``k=``, as UnionPay's own
SDKs do (Java ``SDKUtil.coverMap2String``, Python ``SDKUtil.createLinkString``):
a field added to a signed message, even an empty one, breaks the signature.

Responses and notifications carry their signing certificate
(``signPubKeyCert``). It is trusted only if it chains to the configured middle
and root certificates (links signed ``sha1WithRSAEncryption``, as every real
UnionPay root, middle and signing certificate is, or ``sha256WithRSAEncryption``;
SHA-1 never for message signatures), every link is within its validity, and the
third ``@``-separated field of its subject CN is one accepted for the configured
environment. Any parsing failure of the certificate is a :class:`SignatureError`.
The chain check costs two RSA verifications and a certificate parse, several
times the signature check itself, so certificates that passed are cached by the
SHA-256 fingerprint of the bytes received (bounded, LRU), and their validity
window is checked again against the clock at every use.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from payhub.errors import ConfigurationError, SignatureError
from payhub.signing import (
    canonical_query,
    load_certificate,
    rsa_sign,
    rsa_verify,
    sha256_hex,
    verify_chain,
)

__all__ = [
    "CHAIN_ALGORITHMS",
    "AcpSigner",
    "AcpVerifier",
    "string_to_sign",
    "string_to_verify",
]

SIGN_METHOD_RSA = "01"

#: Signature algorithms accepted on the links of the platform certificate chain.
#: UnionPay's published roots and middles (test ``CFCA TEST CS CA``/``CFCA TEST
#: OCA1``, production ``CFCA CS CA``/``CFCA OCA1``) and its test signing
#: certificates are all ``sha1WithRSAEncryption``; SHA-256 is the one CFCA
#: alternative. Never used for message signatures.
CHAIN_ALGORITHMS: frozenset[x509.ObjectIdentifier] = frozenset(
    {x509.SignatureAlgorithmOID.RSA_WITH_SHA1, x509.SignatureAlgorithmOID.RSA_WITH_SHA256}
)


def string_to_sign(fields: Mapping[str, str]) -> bytes:
    """What the merchant's RSA key signs: the ASCII lowercase hex SHA-256 of the
    canonical query of the non-empty fields."""
    canonical = canonical_query(fields, exclude=("signature",))
    return sha256_hex(canonical.encode("utf-8")).encode("ascii")


def string_to_verify(fields: Mapping[str, str]) -> bytes:
    """What a received message's signature covers: as :func:`string_to_sign`, but
    every field but ``signature`` is kept, an empty one as ``k=``."""
    canonical = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")
    return sha256_hex(canonical.encode("utf-8")).encode("ascii")


class AcpSigner:
    """Signs requests with the merchant's PKCS#12 key; ``certId`` is its serial in decimal."""

    __slots__ = ("_key", "cert_id")

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.cert_id = str(certificate.serial_number)

    def sign(self, fields: Mapping[str, str]) -> dict[str, str]:
        """A new mapping: non-empty ``fields`` plus ``certId``, ``signMethod`` and ``signature``."""
        signed = {k: v for k, v in fields.items() if v != "" and k != "signature"}
        signed["certId"] = self.cert_id
        signed["signMethod"] = SIGN_METHOD_RSA
        signed["signature"] = rsa_sign(self._key, string_to_sign(signed))
        return signed

    def __repr__(self) -> str:
        return f"<AcpSigner certId={self.cert_id}>"


@dataclass(frozen=True)
class _Trusted:
    key: rsa.RSAPublicKey
    valid_from: datetime  #: the latest notBefore of the chain
    valid_until: datetime  #: the earliest notAfter of the chain


class AcpVerifier:
    """Verifies ACP signatures against certificates chaining to the configured trust."""

    def __init__(
        self,
        *,
        root: x509.Certificate,
        middle: x509.Certificate,
        expected_cn: str | Collection[str],
        clock: Callable[[], datetime],
        cache_size: int = 64,
    ) -> None:
        self._chain = (middle, root)
        accepted = {expected_cn} if isinstance(expected_cn, str) else expected_cn
        self._expected_cn = frozenset(accepted)
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _Trusted] = OrderedDict()
        self._lock = threading.Lock()
        try:
            verify_chain(middle, [root], at=clock(), algorithms=CHAIN_ALGORITHMS)
        except SignatureError as exc:
            raise ConfigurationError(
                f"unionpay: the middle certificate does not chain to the root ({exc.message})"
            ) from None

    @property
    def cached(self) -> int:
        """How many verified platform certificates are cached."""
        return len(self._cache)

    def verify(self, fields: Mapping[str, str]) -> None:
        """Raise :class:`SignatureError` unless ``fields`` carry a good signature."""
        signature = fields.get("signature", "")
        if not signature:
            raise SignatureError("UnionPay message: signature is missing")
        method = fields.get("signMethod", SIGN_METHOD_RSA)
        if method != SIGN_METHOD_RSA:
            raise SignatureError("UnionPay message: signMethod is not 01 (RSA)")
        pem = fields.get("signPubKeyCert", "")
        if not pem:
            raise SignatureError("UnionPay message: signPubKeyCert is missing")
        trusted, fingerprint = self._trusted(pem)
        rsa_verify(trusted.key, string_to_verify(fields), signature)
        if fingerprint is not None:  # learn a certificate only from a message that verified
            self._remember(fingerprint, trusted)

    def _trusted(self, pem: str) -> tuple[_Trusted, bytes | None]:
        """The checked certificate, and its fingerprint if it is not cached yet."""
        raw = pem.encode("utf-8")
        now = self._clock()
        fingerprint = hashlib.sha256(raw).digest()
        with self._lock:
            trusted = self._cache.get(fingerprint)
            if trusted is not None:
                self._cache.move_to_end(fingerprint)
        if trusted is None:
            return self._check(raw, now), fingerprint
        if not trusted.valid_from <= now <= trusted.valid_until:
            raise SignatureError("certificate is outside its validity period")
        return trusted, None

    def _check(self, raw: bytes, now: datetime) -> _Trusted:
        try:
            cert = load_certificate(raw)
            verify_chain(cert, self._chain, at=now, algorithms=CHAIN_ALGORITHMS)
            if _cn_field(cert, 2) not in self._expected_cn:
                raise SignatureError(
                    "signPubKeyCert is not a UnionPay signing certificate of the configured "
                    "environment (CN mismatch)"
                )
            key = cert.public_key()
        except (ConfigurationError, ValueError, TypeError, UnsupportedAlgorithm):
            # cryptography parses lazily: a damaged certificate may load and fail later.
            raise SignatureError("signPubKeyCert is not a readable certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("signPubKeyCert does not hold an RSA key")
        links = (cert, *self._chain)
        return _Trusted(
            key=key,
            valid_from=max(c.not_valid_before_utc for c in links),
            valid_until=min(c.not_valid_after_utc for c in links),
        )

    def _remember(self, fingerprint: bytes, trusted: _Trusted) -> None:
        if self._cache_size <= 0:
            return
        with self._lock:
            self._cache[fingerprint] = trusted
            self._cache.move_to_end(fingerprint)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def _cn_field(cert: x509.Certificate, index: int) -> str | None:
    """The ``index``-th ``@``-separated field of the subject's only CN, if any."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    text = value if isinstance(value, str) else value.decode("utf-8", "replace")
    parts = text.split("@")
    return parts[index] if len(parts) > index else None
