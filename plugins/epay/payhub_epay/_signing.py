"""EPay's MD5 signature: one canonical string, one digest. Pure functions.

The string to sign: every parameter except ``sign`` and ``sign_type`` whose
value is not empty, keys sorted by byte order, ``k=v`` joined with ``&``,
values raw (not URL-encoded); the merchant key is appended (no separator) and
the lowercase hex MD5 of the UTF-8 bytes is the signature.

彩虹易支付 counts a value as empty when PHP's ``trim()`` leaves nothing, so a
value of spaces is dropped too; other clones drop only ``""``. Such a value
never occurs in the fields payhub sends or reads, so both readings agree there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from payhub.signing import constant_time_equals, md5_hex

__all__ = ["is_md5_hex", "sign_md5", "string_to_sign", "verify_md5"]

_EXCLUDED = frozenset({"sign", "sign_type"})
_PHP_TRIM = " \t\n\r\0\x0b"
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}", re.ASCII)


def string_to_sign(params: Mapping[str, str]) -> str:
    """``k=v&k=v`` over the non-empty parameters but ``sign`` and ``sign_type``."""
    return "&".join(
        f"{k}={params[k]}"
        for k in sorted(params)
        if k not in _EXCLUDED and params[k].strip(_PHP_TRIM) != ""
    )


def sign_md5(params: Mapping[str, str], key: bytes) -> str:
    """The lowercase hex MD5 of the string to sign followed by the merchant key."""
    return md5_hex(string_to_sign(params).encode("utf-8") + key)


def is_md5_hex(value: str) -> bool:
    return _MD5_HEX.fullmatch(value) is not None


def verify_md5(params: Mapping[str, str], sign: str, key: bytes) -> bool:
    """Whether ``sign`` is the MD5 signature of ``params`` under ``key``.

    Hex case is not significant (the digest is the same number; some clones
    send it in capitals); anything but 32 hex digits never verifies.
    """
    if not is_md5_hex(sign):
        return False
    return constant_time_equals(sign.lower(), sign_md5(params, key))
