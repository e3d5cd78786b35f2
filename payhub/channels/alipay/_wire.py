"""Alipay's wire format: times, URL encoding, response nodes, notification forms.

Pure functions over the standard library's public APIs.
"""

from __future__ import annotations

import codecs
import json
import re
from datetime import datetime
from typing import Any, Final, NamedTuple
from urllib.parse import unquote_to_bytes

from payhub.errors import ProtocolError
from payhub.signing import canonical_query
from payhub.tz import SHANGHAI as _SHANGHAI

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


#: Alipay's time zone (:data:`payhub.tz.SHANGHAI`): every time on its wire is
#: Asia/Shanghai wall-clock time.
SHANGHAI: Final = _SHANGHAI

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
            key, idx = _DECODER.raw_decode(text, idx)
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


class DecodedForm(NamedTuple):
    """A decoded form body: its fields and the charset it declared."""

    fields: dict[str, str]
    charset: str


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

    ``urllib.parse.parse_qsl`` semantics with blank values kept; a field that
    appears twice is refused (which one would the signature cover?), and so
    is a body that is not valid in its declared charset.
    """
    form = DecodedForm(_decode_fields(body, (charset := form_charset(body))), charset)
    return form.fields, signed_message(form)


def _decode_fields(body: bytes, charset: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for segment in body.split(b"&"):
            if not segment:
                continue
            raw_key, _, raw_value = segment.partition(b"=")
            if b"%" in segment or b"+" in segment:
                key = unquote_to_bytes(raw_key.replace(b"+", b" ")).decode(charset)
                value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode(charset)
            else:  # most fields (ids, amounts, codes) hold no escape: only decoded
                key = raw_key.decode(charset)
                value = raw_value.decode(charset)
            if key in fields:
                raise ProtocolError("alipay: the form repeats a field")
            fields[key] = value
    except UnicodeDecodeError:
        raise ProtocolError(f"alipay: the form is not valid {charset}") from None
    return fields


def signed_message(form: DecodedForm) -> bytes:
    """The bytes Alipay signed: :func:`payhub.signing.canonical_query` over the
    fields less ``sign`` and ``sign_type``, in the form's charset."""
    return canonical_query(form.fields, exclude=("sign", "sign_type")).encode(form.charset)
