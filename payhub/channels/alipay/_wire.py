"""Alipay's wire format: times, URL encoding, response nodes, notification forms.

Pure functions, written for the hot paths (a signed page-pay request, a
verified notification): they lean on C-implemented primitives (``str.translate``,
``binascii.a2b_qp``, the ``json`` scanner) rather than per-character Python.
"""

from __future__ import annotations

import binascii
import codecs
import json
import re
from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Final, NamedTuple
from urllib.parse import unquote_to_bytes
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from payhub.errors import ProtocolError
from payhub.signing import canonical_query

_decode_form_c: Callable[[bytes], tuple[dict[str, str], bytes] | None] | None
try:
    from payhub._speedups import decode_form_utf8 as _decode_form_c
except ImportError:  # pragma: no cover - built without a C compiler: the Python decoders
    _decode_form_c = None

__all__ = [
    "SHANGHAI",
    "DecodedForm",
    "JsonMember",
    "decode_form",
    "form_charset",
    "format_time",
    "parse_time",
    "quote",
    "quote_base64",
    "signed_message",
    "top_level_members",
]


def _shanghai() -> tzinfo:
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tz database (bare Windows)
        return timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991


#: Alipay's time zone: every time on its wire is Asia/Shanghai wall-clock time.
SHANGHAI: Final = _shanghai()

# -- times -------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai, as Alipay's ``timestamp`` wants."""
    if moment.tzinfo is not SHANGHAI:
        if moment.utcoffset() is None:
            raise ValueError("a naive datetime has no place on the wire")
        moment = moment.astimezone(SHANGHAI)
    return moment.isoformat(" ", "seconds")[:19]


def parse_time(text: str) -> datetime:
    """Parse Alipay's ``yyyy-MM-dd HH:mm:ss`` (Asia/Shanghai) into an aware datetime.

    The result carries a fixed UTC+08:00 offset, which is Asia/Shanghai time
    (China has kept no daylight saving since 1991) and costs a quarter of
    attaching a ``ZoneInfo``. Raises :class:`ValueError` for anything else.
    """
    # The separators are checked here; ``fromisoformat`` then takes nothing but
    # ASCII digits between them (no signs, spaces or week dates at this length).
    if (
        len(text) != 19
        or text[4] != "-"
        or text[7] != "-"
        or text[10] != " "
        or text[13] != ":"
        or text[16] != ":"
        or not text.isascii()
    ):
        raise ValueError("not a yyyy-MM-dd HH:mm:ss time")
    return datetime.fromisoformat(text + "+08:00")


# -- URL encoding --------------------------------------------------------------

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
#: byte value -> its form encoding (application/x-www-form-urlencoded, space as '+').
_QUOTE_TABLE: Final = [
    chr(b) if b in _UNRESERVED else ("+" if b == 0x20 else f"%{b:02X}") for b in range(256)
]


def quote(text: str) -> str:
    """Form-encode ``text`` as UTF-8 (what ``urllib.parse.quote_plus`` does, faster)."""
    # Each UTF-8 byte becomes one code point below 256, which the table maps.
    return text.encode("utf-8").decode("latin-1").translate(_QUOTE_TABLE)


def quote_base64(text: str) -> str:
    """Form-encode a base64 string: only ``+``, ``/`` and ``=`` need escaping."""
    return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


# -- responses: the raw bytes of a top-level member ----------------------------


class JsonMember(NamedTuple):
    value: Any
    start: int  #: offset of the value's first character in the decoded text
    end: int  #: offset just past its last character


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)
_WS: Final = re.compile(r"[ \t\n\r]*")
#: json's own string scanner (C): (text, index after the quote, strict) -> (value, end)
_scanstring: Final[Callable[[str, int, bool], tuple[str, int]]] = json.decoder.scanstring  # type: ignore[attr-defined]


def _skip(text: str, idx: int) -> int:
    """The index of the first non-whitespace character at or after ``idx``."""
    found = _WS.match(text, idx)
    return found.end() if found else idx


def top_level_members(text: str) -> dict[str, JsonMember]:
    """Parse a JSON object, keeping where each top-level value lies in ``text``.

    The JSON scanner walks the raw text, strings and escapes included, so each
    value's span is exactly the bytes the channel signed: nothing is
    re-serialized. Duplicate top-level keys (which make "the" node ambiguous),
    trailing data and ``NaN``-like constants are refused.
    """
    try:
        return _members(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"alipay: response is not a complete JSON object ({exc})") from None


def _members(text: str) -> dict[str, JsonMember]:
    ws = _skip
    idx = ws(text, 0)
    if text[idx : idx + 1] != "{":
        raise ValueError("no object")
    members: dict[str, JsonMember] = {}
    idx = ws(text, idx + 1)
    if text[idx : idx + 1] == "}":
        idx += 1
    else:
        while True:
            if text[idx : idx + 1] != '"':
                raise ValueError(f"expected a key at {idx}")
            key, idx = _scanstring(text, idx + 1, True)
            idx = ws(text, idx)
            if text[idx : idx + 1] != ":":
                raise ValueError(f"expected ':' at {idx}")
            start = ws(text, idx + 1)
            value, end = _DECODER.raw_decode(text, start)
            if key in members:
                raise ValueError(f"duplicate key {key!r}")
            members[key] = JsonMember(value, start, end)
            idx = ws(text, end)
            separator = text[idx : idx + 1]
            idx = ws(text, idx + 1)
            if separator == "}":
                break
            if separator != ",":
                raise ValueError(f"expected ',' or '}}' at {idx}")
    if ws(text, idx) != len(text):
        raise ValueError("data after the object")
    return members


# -- notifications: form bodies -------------------------------------------------

_CHARSETS: Final = frozenset({"utf-8", "gbk", "gb2312", "gb18030"})
_CHARSET_SPELLINGS: Final = {
    spelling.encode(): name
    for name in _CHARSETS
    for spelling in (name, name.upper(), name.replace("-", ""), name.replace("-", "").upper())
}
#: every byte but the ones that shape a form, for ``bytes.translate(None, delete)``
_NOT_SHAPE: Final = bytes(b for b in range(256) if b not in b"&=%\n\r")
#: raw '=' -> NUL (a separator no escape-free value holds), '+' -> space, '%XX' -> '=XX'
_TO_QP: Final = bytes.maketrans(b"=+%", b"\x00 =")


class DecodedForm(NamedTuple):
    """A decoded form body: its fields, the charset it declared, and (when the
    fast decoder ran) the bytes Alipay signed (see :func:`signed_message`)."""

    fields: dict[str, str]
    charset: str
    message: bytes | None


_form: Final = tuple.__new__  # DecodedForm(...) without its Python-level __new__


def form_charset(body: bytes) -> str:
    """The ``charset`` field of a form body, read from the raw (ASCII) bytes.

    The Content-Type header is not consulted: Alipay signs ``charset`` and
    encodes the values with it, whatever the header says. UTF-8 if absent.
    """
    at = body.find(b"charset=")
    while at > 0 and body[at - 1] != 0x26:  # not at a field start ('&')
        at = body.find(b"charset=", at + 8)
    if at < 0:
        return "utf-8"
    end = body.find(b"&", at)
    raw = body[at + 8 : end if end >= 0 else len(body)]
    known = _CHARSET_SPELLINGS.get(raw)
    if known is not None:
        return known
    try:
        name = codecs.lookup(unquote_to_bytes(raw.replace(b"+", b" ")).decode("ascii")).name
    except (LookupError, ValueError):  # ValueError: UnicodeError, or a NUL in the name
        raise ProtocolError("alipay: the form declares an unknown charset") from None
    if name not in _CHARSETS:
        raise ProtocolError(f"alipay: the form declares an unsupported charset {name!r}")
    return name


def decode_form(body: bytes) -> tuple[dict[str, str], bytes]:
    """Decode an ``application/x-www-form-urlencoded`` body with its own ``charset``:
    its fields, and the bytes Alipay signed (see :func:`signed_message`).

    Duplicate fields are refused (which one would the signature cover?).

    The compiled decoder of ``payhub._speedups``, where it was built, takes
    a UTF-8 body in one C call; whatever it declines (another charset, an odd
    shape, an error) goes to the Python decoders, which give the same answers
    and raise the typed errors.
    """
    if _decode_form_c is not None:
        native = _decode_form_c(body)
        if native is not None:
            return native
    charset = form_charset(body)
    form = _decode_form_fast(body, charset)
    if form is None:
        form = DecodedForm(_decode_form_slow(body, charset), charset, None)
    return form.fields, signed_message(form)


def _decode_form_fast(body: bytes, charset: str) -> DecodedForm | None:
    """Decode the common shape in a few C calls, or return None for the slow path.

    The body qualifies when every ``&``-segment holds exactly one raw ``=`` and
    every ``%`` starts a valid escape. The raw ``=`` become NUL and ``%XX``
    becomes ``=XX``, so that one ``binascii.a2b_qp`` call percent-decodes the
    whole body; if an escape decoded to a separator (``%26``, ``%00``) the
    token count tells, and the slow path takes over.

    For UTF-8 the string to sign is cut from the decoded bytes as well: the
    ``key NUL value`` segments sorted bytewise are sorted by key (UTF-8 keeps
    code-point order, NUL sorts first); less ``sign`` and ``sign_type``, joined,
    NUL back to ``=``, they are :func:`payhub.signing.canonical_query` of the
    fields, already encoded. Other charsets, and forms with empty (unsigned)
    values, leave it to :func:`signed_message`.
    """
    shape = body.translate(None, _NOT_SHAPE)  # e.g. b"=&=%%%&=%%"
    escapes = shape.count(b"%")
    if escapes:
        shape = shape.translate(None, b"%")
    pairs = (len(shape) + 1) // 2
    # one '=' per '&'-segment, and no CR/LF (quoted-printable soft line breaks)
    if shape != b"=&" * (pairs - 1) + b"=":
        return None
    coded = body.translate(_TO_QP)
    decoded = binascii.a2b_qp(coded)
    # each valid escape shrinks by exactly two bytes; anything else by less
    if len(coded) - len(decoded) != 2 * escapes:
        return None
    try:
        tokens = decoded.replace(b"\x00", b"&").decode(charset).split("&")
    except UnicodeDecodeError:
        raise ProtocolError(f"alipay: the form is not valid {charset}") from None
    if len(tokens) != 2 * pairs:
        return None
    it = iter(tokens)
    fields = dict(zip(it, it, strict=True))
    if len(fields) != pairs:
        raise ProtocolError("alipay: the form repeats a field")
    if charset != "utf-8" or "" in fields.values():
        return _form(DecodedForm, (fields, charset, None))
    segments = decoded.split(b"&")
    segments.sort()
    for prefix in (b"sign_type\x00", b"sign\x00"):  # sign_type sorts after sign
        at = bisect_left(segments, prefix)
        if at < len(segments) and segments[at].startswith(prefix):
            del segments[at]
    return _form(DecodedForm, (fields, charset, b"&".join(segments).replace(b"\x00", b"=")))


def _decode_form_slow(body: bytes, charset: str) -> dict[str, str]:
    """The general decoder (``urllib.parse.parse_qsl`` semantics, blanks kept)."""
    fields: dict[str, str] = {}
    try:
        for segment in body.split(b"&"):
            if not segment:
                continue
            raw_key, _, raw_value = segment.partition(b"=")
            key = unquote_to_bytes(raw_key.replace(b"+", b" ")).decode(charset)
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode(charset)
            if key in fields:
                raise ProtocolError("alipay: the form repeats a field")
            fields[key] = value
    except UnicodeDecodeError:
        raise ProtocolError(f"alipay: the form is not valid {charset}") from None
    return fields


def signed_message(form: DecodedForm) -> bytes:
    """The bytes Alipay signed: :func:`payhub.signing.canonical_query` over the
    fields less ``sign`` and ``sign_type``, in the form's charset.

    The fast decoder cut them from the body already (the same bytes: the tests
    hold the two to equality); otherwise they are built here.
    """
    if form.message is not None:
        return form.message
    return canonical_query(form.fields, exclude=("sign", "sign_type")).encode(form.charset)
