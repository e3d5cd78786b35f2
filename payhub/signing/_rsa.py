"""RSA PKCS#1 v1.5 signatures and RSA-OAEP encryption, base64 on the wire."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payhub.errors import SignatureError

__all__ = ["HashName", "rsa_oaep_decrypt", "rsa_oaep_encrypt", "rsa_sign", "rsa_verify"]

HashName = Literal["SHA256", "SHA1"]

_PADDING = padding.PKCS1v15()
_HASHES: dict[str, hashes.HashAlgorithm] = {"SHA256": hashes.SHA256(), "SHA1": hashes.SHA1()}  # noqa: S303


def _hash(name: HashName) -> hashes.HashAlgorithm:
    try:
        return _HASHES[name]
    except KeyError:
        raise SignatureError(f"unsupported signature hash {name!r}") from None


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes, hash_name: HashName = "SHA256") -> str:
    """Sign ``message`` with SHA256withRSA (or SHA1withRSA); standard base64, no line breaks."""
    return base64.b64encode(key.sign(message, _PADDING, _hash(hash_name))).decode("ascii")


def rsa_verify(
    key: rsa.RSAPublicKey, message: bytes, signature: str | bytes, hash_name: HashName = "SHA256"
) -> None:
    """Verify a base64 signature; raise :class:`SignatureError` if it does not match.

    The message of the error never repeats the signature or the key.
    """
    if not signature:
        raise SignatureError("signature is missing")
    try:
        # base64.b64decode(signature, validate=True), less a Python-level call
        raw = binascii.a2b_base64(signature, strict_mode=True)
    except (binascii.Error, ValueError):
        raise SignatureError("signature is not valid base64") from None
    algorithm = _HASHES.get(hash_name) or _hash(hash_name)
    try:
        key.verify(raw, message, _PADDING, algorithm)
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None


#: RSA-OAEP with SHA-1 and MGF1(SHA-1): what WeChat Pay APIv3 uses for sensitive
#: fields (a receiver's or payee's name) encrypted with the platform public key.
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303


def rsa_oaep_encrypt(key: rsa.RSAPublicKey, plaintext: bytes) -> str:
    """Encrypt with RSA-OAEP (SHA-1, MGF1 SHA-1); standard base64.

    Each call gives a different ciphertext (OAEP is randomised).
    """
    limit = key.key_size // 8 - 2 * 20 - 2
    if len(plaintext) > limit:
        raise SignatureError(f"RSA-OAEP takes at most {limit} bytes with this key")
    return base64.b64encode(key.encrypt(plaintext, _OAEP)).decode("ascii")


def rsa_oaep_decrypt(key: rsa.RSAPrivateKey, ciphertext: str) -> bytes:
    """Decrypt :func:`rsa_oaep_encrypt`'s output; :class:`SignatureError` if it fails."""
    try:
        raw = binascii.a2b_base64(ciphertext, strict_mode=True)
        return key.decrypt(raw, _OAEP)
    except (binascii.Error, ValueError):
        raise SignatureError("the RSA-OAEP ciphertext does not decrypt with this key") from None
