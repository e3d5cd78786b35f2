"""What a web framework adapter needs, written once: body cap, raw headers, the ack.

The Flask extension and the Django app only translate their framework's
request and response objects; every decision about a notification request
is made here, so both adapters behave the same:

1. **The body cap.** A real notification is 1–2 KB. A body over the cap
   (default :data:`DEFAULT_MAX_NOTIFICATION_BYTES`, 64 KiB) is answered
   ``413`` *before it is read*: a declared ``Content-Length`` over the cap is
   refused without touching the stream, and a body of unknown length
   (chunked) is read at most ``cap + 1`` bytes.
2. **Raw bytes and headers.** The body goes to the hub exactly as received;
   headers as the bytes on the wire (see :func:`wire_headers`).
3. **The channel's exact acknowledgement** as a status, headers and body
   (:func:`ack_response`).
4. **GET notifications.** Some channels (EPay, 易支付 and its clones) notify
   with a GET whose query string is the signed form; its raw bytes are the
   body (:func:`handle_query_notification`), capped the same way. The
   signature is the proof either way: a GET is verified exactly like a POST.

>>> from io import BytesIO
>>> read_capped("3", BytesIO(b"abc").read, limit=8)
b'abc'
>>> read_capped("9", BytesIO(b"too long!").read, limit=8) is None
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx

from payhub.errors import ConfigurationError
from payhub.models import Ack

if TYPE_CHECKING:
    from payhub.client import PayHub

__all__ = [
    "DEFAULT_MAX_NOTIFICATION_BYTES",
    "TOO_LARGE",
    "WebResponse",
    "ack_response",
    "check_max_notification_bytes",
    "handle_notification",
    "handle_query_notification",
    "hub_config",
    "read_capped",
    "wire_headers",
]

#: The default body cap of a notification endpoint: 64 KiB (real ones are 1–2 KB).
DEFAULT_MAX_NOTIFICATION_BYTES: Final = 64 * 1024

#: The largest cap accepted in configuration (a cap is a guard, not a buffer size).
_MAX_CAP: Final = 16 * 1024 * 1024

_CHUNK: Final = 16 * 1024

#: ``read(n)``: up to ``n`` bytes from the request body; ``b""`` at its end.
Read = Callable[[int], bytes]


@dataclass(frozen=True)
class WebResponse:
    """A framework-neutral HTTP answer; each adapter turns it into its own response.

    ``headers`` are exactly the ones to send: an adapter adds no content type.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


#: The answer to a notification body over the cap.
TOO_LARGE: Final = WebResponse(
    413,
    (("Content-Type", "text/plain; charset=utf-8"),),
    b"notification body too large\n",
)


def check_max_notification_bytes(value: object, *, name: str = "max_notification_bytes") -> int:
    """The configured cap, checked: an int from 1 byte to 16 MiB (None: the default)."""
    if value is None:
        return DEFAULT_MAX_NOTIFICATION_BYTES
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_CAP:
        raise ConfigurationError(
            f"{name} must be a number of bytes from 1 to {_MAX_CAP}, not {value!r}"
        )
    return value


def read_capped(content_length: str | int | None, read: Read, *, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` bytes.

    A declared length over the limit is refused before anything is read. A
    body of unknown length (chunked transfer; an unreadable ``Content-Length``
    is treated the same) is read until its end or until ``limit + 1`` bytes,
    never further. A declared length within the limit is read in full (the
    server stops at that length).
    """
    declared = _declared_length(content_length)
    if declared is not None and declared > limit:
        return None
    wanted = limit + 1 if declared is None else declared
    chunks: list[bytes] = []
    got = 0
    while got < wanted:
        chunk = read(min(_CHUNK, wanted - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return None if got > limit else b"".join(chunks)


def _declared_length(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def wire_headers(items: Iterable[tuple[str, str]]) -> httpx.Headers:
    """Every header as the server received it, repeats included.

    WSGI servers (PEP 3333) and Django's ASGI handler hand header values over
    as ISO-8859-1 strings; encoding them back gives the bytes on the wire,
    where the core would re-encode a ``str`` as UTF-8.
    """
    return httpx.Headers([(_wire(k), _wire(v)) for k, v in items])


def _wire(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # a server outside PEP 3333: keep what it gave
        return text.encode("utf-8", "surrogateescape")


def ack_response(ack: Ack) -> WebResponse:
    """The channel's exact acknowledgement: status, body and content type (or none)."""
    return WebResponse(ack.status_code, tuple(ack.headers.items()), ack.body)


def handle_notification(
    hub: PayHub,
    channel: str,
    headers: Iterable[tuple[str, str]],
    content_length: str | int | None,
    read: Read,
    *,
    limit: int = DEFAULT_MAX_NOTIFICATION_BYTES,
) -> WebResponse:
    """One notification request, start to finish: cap, raw body and headers, ack.

    ``read`` reads the request body stream; it is called only as far as the
    cap allows. The hub is never called for a body over the cap.
    """
    body = read_capped(content_length, read, limit=limit)
    if body is None:
        return TOO_LARGE
    outcome = hub.handle_notification(channel, wire_headers(headers), body)
    return ack_response(outcome.ack)


def handle_query_notification(
    hub: PayHub,
    channel: str,
    headers: Iterable[tuple[str, str]],
    query: bytes,
    *,
    limit: int = DEFAULT_MAX_NOTIFICATION_BYTES,
) -> WebResponse:
    """A notification sent as a GET: the raw query string (without ``?``) is its
    form body, verified by the channel as it would verify a POSTed form."""
    if len(query) > limit:
        return TOO_LARGE
    outcome = hub.handle_notification(channel, wire_headers(headers), query)
    return ack_response(outcome.ack)


def hub_config(app_config: Mapping[str, Any], root_path: str) -> Mapping[str, Any]:
    """The hub configuration an app's config names: ``PAYHUB`` (the mapping) or
    ``PAYHUB_CONFIG_FILE`` (a JSON file, relative to ``root_path``); exactly one.

    Flask's extension reads its app's config so, and the ``payhub`` command an
    app named by ``--app``: one reading for both.
    """
    config = app_config.get("PAYHUB")
    path = app_config.get("PAYHUB_CONFIG_FILE")
    if config is not None and path:
        raise ConfigurationError("set app.config PAYHUB or PAYHUB_CONFIG_FILE, not both")
    if config is not None:
        if not isinstance(config, Mapping):
            raise ConfigurationError("app.config['PAYHUB'] must be a mapping")
        return config
    if not path:
        raise ConfigurationError(
            "set app.config['PAYHUB'] (the hub configuration) "
            "or app.config['PAYHUB_CONFIG_FILE'] (a JSON file)"
        )
    filename = os.path.join(root_path, os.fspath(path))
    try:
        with open(filename, encoding="utf-8") as file:
            loaded = json.load(file)
    except (OSError, ValueError) as exc:
        # Neither message quotes the file's content, so no secret can leak.
        raise ConfigurationError(f"PAYHUB_CONFIG_FILE {filename}: {exc}") from None
    if not isinstance(loaded, Mapping):
        raise ConfigurationError(f"PAYHUB_CONFIG_FILE {filename}: expected a JSON object")
    return loaded
