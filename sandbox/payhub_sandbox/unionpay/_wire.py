"""UnionPay ACP 5.1.0's wire format, built and parsed here from PROTOCOLS.md — never
through ``payhub.channels``, so a misreading there is not mirrored here.

Pure functions: the string to sign, ``signMethod=01`` signatures, the
non-URL-encoded ``k=v&…`` response body, form bodies, ACP times and amounts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import SignatureError
from payhub.money import Money
from payhub.signing import rsa_sign, rsa_verify, sha256_hex
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox.unionpay._pki import PlatformSigner

__all__ = [
    "SIGN_METHOD",
    "TRAILING",
    "VERSION",
    "amount_text",
    "digest_to_sign",
    "encode_form",
    "field_order",
    "format_txn_time",
    "parse_form",
    "parse_txn_amt",
    "parse_txn_time",
    "render_body",
    "settle_date",
    "sign_fields",
    "signature_verifies",
    "string_to_sign",
]

VERSION: Final = "5.1.0"
SIGN_METHOD: Final = "01"
TXN_TIME_FORMAT: Final = "%Y%m%d%H%M%S"

_TXN_TIME_RE: Final = re.compile(r"[0-9]{14}", re.ASCII)
#: Fen: 1 to 12 ASCII digits, no sign, no leading zero, no decimal point.
_TXN_AMT_RE: Final = re.compile(r"[1-9][0-9]{0,11}", re.ASCII)
#: UnionPay's clearing day turns at 23:00 Beijing time.
_CUTOFF_SHIFT: Final = timedelta(hours=1)


def string_to_sign(fields: Mapping[str, str]) -> str:
    """Every field but ``signature``, keys sorted, ``k=v`` joined by ``&``, values
    raw (no URL-encoding). Empty values are kept as ``k=``: UnionPay's SDKs verify
    a received message over every field it carries (``SDKUtil.coverMap2String``),
    and signers leave empty fields out of the message itself (:func:`sign_fields`).
    """
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")


def digest_to_sign(fields: Mapping[str, str]) -> bytes:
    """What RSA signs: the ASCII of the lowercase hex SHA-256 of :func:`string_to_sign`."""
    return sha256_hex(string_to_sign(fields).encode("utf-8")).encode("ascii")


def signature_verifies(fields: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    """Whether ``fields["signature"]`` is the SHA256withRSA signature of :func:`digest_to_sign`."""
    try:
        rsa_verify(key, digest_to_sign(fields), fields.get("signature", ""), "SHA256")
    except SignatureError:
        return False
    return True


def sign_fields(fields: Mapping[str, str], signer: PlatformSigner) -> dict[str, str]:
    """``fields`` (empty values dropped) with ``signMethod``, ``signPubKeyCert`` and
    ``signature`` added, signed by ``signer`` (left unsigned by the ``unsigned`` fault)."""
    signed = {k: v for k, v in fields.items() if v != "" and k != "signature"}
    signed["signMethod"] = SIGN_METHOD
    if signer.key is None:
        signed.pop("signPubKeyCert", None)
        return signed
    signed["signPubKeyCert"] = signer.cert_pem
    signed["signature"] = rsa_sign(signer.key, digest_to_sign(signed), "SHA256")
    return signed


#: The fields UnionPay writes last, in this order, after the others sorted by name.
TRAILING: Final = ("signPubKeyCert", "signature")


def field_order(fields: Mapping[str, str], first: tuple[str, ...] = ()) -> list[str]:
    """UnionPay's layout of a message: the ``first`` names, the rest sorted by name,
    then ``signPubKeyCert`` and ``signature`` (as its answers and notifications are)."""
    lead = [k for k in first if k in fields]
    tail = [k for k in TRAILING if k in fields and k not in lead]
    return lead + sorted(k for k in fields if k not in lead and k not in tail) + tail


def render_body(fields: Mapping[str, str], *, first: tuple[str, ...] = ()) -> bytes:
    """A synchronous answer: ``k=v&…`` laid out by :func:`field_order`, values NOT
    URL-encoded, UTF-8. The order carries no meaning in ACP.

    Values may hold ``&``, ``=``, braces and the CRLF-broken PEM of
    ``signPubKeyCert``, as UnionPay's do.
    """
    order = field_order(fields, first)
    return "&".join(f"{k}={fields[k]}" for k in order if fields[k] != "").encode("utf-8")


def encode_form(fields: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` UTF-8 laid out by :func:`field_order`: a
    notification body."""
    return urlencode([(k, fields[k]) for k in field_order(fields)], encoding="utf-8").encode(
        "ascii"
    )


def parse_form(raw: bytes) -> dict[str, str] | None:
    """A form-urlencoded UTF-8 request body; None if it is not one.

    When a name appears twice the first value wins (a Java servlet's
    ``getParameter``).
    """
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def format_txn_time(moment: datetime) -> str:
    """``yyyyMMddHHmmss`` in Beijing time."""
    return moment.astimezone(CHINA_TZ).strftime(TXN_TIME_FORMAT)


def parse_txn_time(text: str) -> datetime | None:
    """Strictly parse ``yyyyMMddHHmmss`` (Beijing time); None if malformed or impossible."""
    if _TXN_TIME_RE.fullmatch(text) is None:
        return None
    try:
        return datetime.strptime(text, TXN_TIME_FORMAT).replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


def parse_txn_amt(text: str) -> Money | None:
    """``txnAmt`` in fen: 1-12 ASCII digits without a leading zero; None otherwise
    (``"1.00"``, ``"-1"``, ``"0"``, ``"+5"``, ``"１"`` are all refused)."""
    if _TXN_AMT_RE.fullmatch(text) is None:
        return None
    return Money(int(text), "CNY")


def amount_text(value: Money) -> str:
    return str(value.minor)


def settle_date(moment: datetime) -> date:
    """The clearing day of a moment: Beijing date, turning at 23:00."""
    return (moment.astimezone(CHINA_TZ) + _CUTOFF_SHIFT).date()
