"""The ``k=v&k=v`` grammar of UnionPay ACP synchronous responses.

The values are *not* URL-encoded, so a value may itself hold ``&`` and ``=``:

* a pair is split at its **first** ``=``: ``a=b=c`` is ``{"a": "b=c"}``;
* inside ``{…}`` (braces nest) an ``&`` belongs to the value:
  ``reserved={x=1&y={z=2}}`` is one pair;
* inside a PEM block, from ``-----BEGIN X-----`` to ``-----END X-----``, nothing
  is special: ``signPubKeyCert`` holds a PEM with newlines and ``=`` padding,
  and PEM header lines may hold ``&``;
* an empty value (``k=``) is kept as ``""``; empty segments (a trailing ``&``,
  ``&&``) are skipped.

Anything else is a :class:`~payhub.errors.ProtocolError`: a segment without
``=``, an empty or non-ASCII-word key, a key given twice (two values for one
signed field would make the signature ambiguous), a brace or PEM block left
open (a truncated body).

>>> parse_acp_body("respCode=00&reserved={a=1&b=2}&tn=")
{'respCode': '00', 'reserved': '{a=1&b=2}', 'tn': ''}
"""

from __future__ import annotations

import re
from typing import Final

from payhub.errors import ProtocolError

__all__ = ["parse_acp_body"]

_KEY_RE: Final = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
#: What matters inside a value; everything between two matches is plain text.
_VALUE_TOKEN_RE: Final = re.compile(r"[&{}]|-----BEGIN ")
_PEM_LABEL_RE: Final = re.compile(r"([A-Z0-9 ]*)-----")


def parse_acp_body(body: str | bytes) -> dict[str, str]:
    """Parse a synchronous ACP response body into its fields, in order.

    ``bytes`` are decoded as UTF-8 (what payhub asks for with ``encoding=UTF-8``).
    """
    text = _decode(body)
    fields: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == "&":  # empty segment: trailing or doubled '&'
            pos += 1
            continue
        eq = text.find("=", pos)
        amp = text.find("&", pos)
        if eq < 0 or 0 <= amp < eq:
            raise ProtocolError(f"UnionPay response: segment at offset {pos} has no '='")
        key = text[pos:eq]
        if _KEY_RE.fullmatch(key) is None:
            raise ProtocolError(f"UnionPay response: malformed field name at offset {pos}")
        if key in fields:
            raise ProtocolError(f"UnionPay response: field {key!r} appears twice")
        value_end = _value_end(text, eq + 1)
        fields[key] = text[eq + 1 : value_end]
        pos = value_end + 1
    return fields


def _decode(body: str | bytes) -> str:
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("UnionPay response: body is not UTF-8") from None


def _value_end(text: str, start: int) -> int:
    """Index of the '&' ending the value that starts at ``start`` (or len(text))."""
    depth = 0
    pos = start
    while True:
        match = _VALUE_TOKEN_RE.search(text, pos)
        if match is None:
            if depth:
                raise ProtocolError("UnionPay response: a '{' is never closed")
            return len(text)
        mark = match.group()
        pos = match.end()
        if mark == "&":
            if depth == 0:
                return match.start()
        elif mark == "{":
            depth += 1
        elif mark == "}":
            depth = max(depth - 1, 0)  # a stray '}' is plain text
        else:
            pos = _pem_end(text, match.end())


def _pem_end(text: str, after_begin: int) -> int:
    """Index just past the ``-----END label-----`` matching a ``-----BEGIN label-----``."""
    label = _PEM_LABEL_RE.match(text, after_begin)
    if label is None:
        raise ProtocolError("UnionPay response: malformed PEM header")
    marker = f"-----END {label.group(1)}-----"
    close = text.find(marker, label.end())
    if close < 0:
        raise ProtocolError("UnionPay response: a PEM block is never closed")
    return close + len(marker)
