"""Digests, MACs, AES-256-GCM and canonical strings. Pure functions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payhub.errors import ConfigurationError, SignatureError

__all__ = [
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "canonical_query",
    "constant_time_equals",
    "hmac_sha256_hex",
    "md5_hex",
    "sha1_hex",
    "sha256_hex",
]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def hmac_sha256_hex(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets or digests without leaking where they differ."""
    ab = a.encode() if isinstance(a, str) else a
    bb = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


def canonical_query(params: Mapping[str, str], *, exclude: Iterable[str] = ("sign",)) -> str:
    """``k=v&k=v`` over non-empty values, keys sorted by code point, values raw.

    This is Alipay's string-to-sign (exclude ``sign``; notifications exclude
    ``sign_type`` too) and UnionPay's (exclude ``signature``).
    """
    skip = frozenset(exclude)
    return "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in skip and params[k] != ""
    )


def _aes_key(key: bytes) -> AESGCM:
    if len(key) != 32:
        raise ConfigurationError("AES-256-GCM key must be exactly 32 bytes")
    return AESGCM(key)


def aes_gcm_encrypt(key: bytes, nonce: bytes, associated_data: bytes, plaintext: bytes) -> str:
    """AES-256-GCM; returns base64(ciphertext || 16-byte tag)."""
    return base64.b64encode(_aes_key(key).encrypt(nonce, plaintext, associated_data)).decode()


def aes_gcm_decrypt(key: bytes, nonce: bytes, associated_data: bytes, ciphertext: str) -> bytes:
    """Decrypt base64(ciphertext || tag); any tampering raises :class:`SignatureError`.

    No partial plaintext is ever returned.
    """
    cipher = _aes_key(key)
    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("encrypted resource is not valid base64") from None
    try:
        return cipher.decrypt(nonce, raw, associated_data)
    except (InvalidTag, ValueError):
        raise SignatureError("encrypted resource failed authentication") from None
