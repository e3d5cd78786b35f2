"""Alipay's wire format, built and parsed here from PROTOCOLS.md — never through
``payhub.channels``, so a misreading there is not mirrored here.

Pure functions: charsets, form parsing, strings to sign, signed responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.money import Money
from payhub.signing import HashName, canonical_query, rsa_sign
from payhub_sandbox._clock import CHINA_TZ

__all__ = [
    "SIGN_HASHES",
    "TIME_FORMAT",
    "amount_text",
    "encode_form",
    "format_time",
    "merge_params",
    "node_name",
    "normalize_charset",
    "parse_pairs",
    "parse_time",
    "render_response",
    "sign_params",
    "string_to_sign",
    "transcode",
]

#: ``sign_type`` → the hash of its RSA PKCS#1 v1.5 signature.
SIGN_HASHES: Final[dict[str, HashName]] = {"RSA2": "SHA256", "RSA": "SHA1"}

TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)

# What the gateway accepts in ``charset``, mapped to the codec it decodes with
# (GBK is a superset of GB2312).
_CHARSETS: Final[dict[str, str]] = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "gbk": "gbk",
    "gb2312": "gbk",
}


def normalize_charset(name: str | None) -> str | None:
    """The codec for a ``charset`` value (``utf-8`` when absent), or None if unsupported."""
    if name is None or name == "":
        return "utf-8"
    return _CHARSETS.get(name.strip().lower())


def parse_pairs(raw: bytes) -> list[tuple[str, str]]:
    """Split a query string or form body into percent-decoded pairs.

    Values come back as *latin-1 text*: one character per decoded byte, so the
    caller can re-decode them with the charset the request names (which it
    only knows after parsing).
    """
    return parse_qsl(
        raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1", errors="strict"
    )


def merge_params(*sources: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Merge parameter sources, earlier ones winning; within one source the first
    occurrence wins (a Java servlet's ``getParameter``: query string, then body)."""
    merged: dict[str, str] = {}
    for source in sources:
        for key, value in source:
            merged.setdefault(key, value)
    return merged


def transcode(params: Mapping[str, str], codec: str) -> dict[str, str]:
    """Re-decode latin-1 carried bytes with ``codec``; raises UnicodeDecodeError."""
    return {
        k.encode("latin-1").decode(codec): v.encode("latin-1").decode(codec)
        for k, v in params.items()
    }


def string_to_sign(params: Mapping[str, str], *, notification: bool = False) -> str:
    """The canonical ``k=v&…`` string: every non-empty parameter but ``sign`` (and,
    for notifications and returns, ``sign_type``), keys sorted, values raw."""
    exclude = ("sign", "sign_type") if notification else ("sign",)
    return canonical_query(params, exclude=exclude)


def sign_params(
    params: Mapping[str, str],
    key: rsa.RSAPrivateKey,
    *,
    sign_type: str,
    codec: str,
    notification: bool = True,
) -> str:
    content = string_to_sign(params, notification=notification)
    return rsa_sign(key, content.encode(codec, "replace"), SIGN_HASHES[sign_type])


def node_name(method: str) -> str:
    return method.replace(".", "_") + "_response"


def render_response(
    name: str,
    node: Mapping[str, Any],
    key: rsa.RSAPrivateKey,
    *,
    sign_type: str = "RSA2",
    codec: str = "utf-8",
    escape_slashes: bool = True,
    cert_sn: str | None = None,
) -> bytes:
    """``{"<name>":<node>,"sign":"…"}`` with the signature over the node's exact bytes.

    ``cert_sn`` (certificate mode) adds ``"alipay_cert_sn"`` before the signature.

    The node is serialised once and spliced in; with ``escape_slashes`` every
    ``/`` is written ``\\/`` as Alipay's own serializer does, so a client that
    re-serialises the parsed node instead of keeping its raw bytes fails to verify.
    """
    text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
    if escape_slashes:
        text = text.replace("/", "\\/")  # outside strings JSON has no "/"
    node_bytes = text.encode(codec, "replace")
    signature = rsa_sign(key, node_bytes, SIGN_HASHES.get(sign_type, "SHA256"))
    return b"".join(
        [
            b'{"',
            name.encode("ascii"),
            b'":',
            node_bytes,
            b"" if cert_sn is None else b',"alipay_cert_sn":"' + cert_sn.encode("ascii") + b'"',
            b',"sign":"',
            signature.encode("ascii"),
            b'"}',
        ]
    )


def encode_form(fields: Iterable[tuple[str, str]], codec: str) -> bytes:
    """``application/x-www-form-urlencoded`` with values encoded in ``codec``."""
    return urlencode(list(fields), encoding=codec, errors="replace").encode("ascii")


def format_time(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai."""
    return moment.astimezone(CHINA_TZ).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime | None:
    """Strictly parse ``yyyy-MM-dd HH:mm:ss`` as Asia/Shanghai; None if malformed."""
    if not _TIME_RE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


def amount_text(value: Money) -> str:
    return value.to_decimal_string()
