"""Listeners: a process that takes the sandbox's notifications in the shop's place.

``payhub-sandbox listen --forward-to URL`` subscribes here (``POST
/_control/listeners`` with the URL of its own local endpoint). While a listener
is subscribed, every notification of its channel (every channel, if it named
none) is POSTed to the listener instead of the trade's ``notify_url``: the same
method, headers and body bytes, plus the headers below naming what it is. The
listener forwards it to the shop and answers with the shop's answer, so the
channel's acknowledgement rule and retry schedule apply to what the shop said.

=================================  =================================================
``X-Payhub-Sandbox-Notify-Url``    the URL the channel would have POSTed to
``X-Payhub-Sandbox-Notification``  the notification's id (``N000001``)
``X-Payhub-Sandbox-Channel``       ``alipay``, ``wechat``, ``unionpay``
``X-Payhub-Sandbox-Kind``          the notification's kind, percent-encoded
=================================  =================================================

A listener that cannot be reached (its process died without unsubscribing) is
dropped at the first refused connection, and that attempt goes to the
``notify_url`` as if no listener had been there.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

from payhub_sandbox._errors import InvalidInputError, SandboxError

__all__ = [
    "CHANNEL_HEADER",
    "KIND_HEADER",
    "LISTENER_HEADERS",
    "NOTIFICATION_EXTENSION",
    "NOTIFICATION_HEADER",
    "NOTIFY_URL_HEADER",
    "Listener",
    "ListenerNotFoundError",
    "Listeners",
    "ListeningTransport",
]

logger = logging.getLogger("payhub_sandbox.delivery")

NOTIFY_URL_HEADER: Final = "X-Payhub-Sandbox-Notify-Url"
NOTIFICATION_HEADER: Final = "X-Payhub-Sandbox-Notification"
CHANNEL_HEADER: Final = "X-Payhub-Sandbox-Channel"
KIND_HEADER: Final = "X-Payhub-Sandbox-Kind"
#: The headers a listener removes before forwarding (lower case).
LISTENER_HEADERS: Final = frozenset(
    h.lower() for h in (NOTIFY_URL_HEADER, NOTIFICATION_HEADER, CHANNEL_HEADER, KIND_HEADER)
)
#: The request extension the scheduler tags each notification POST with:
#: ``{"id", "channel", "kind"}``.
NOTIFICATION_EXTENSION: Final = "payhub_sandbox.notification"
_MAX_LISTENERS: Final = 32


class ListenerNotFoundError(SandboxError, KeyError):
    status = 404
    code = "LISTENER_NOT_FOUND"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Listener:
    """One subscription: notifications (of ``channel``, or all) go to ``url``."""

    id: str
    url: str
    channel: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "channel": self.channel,
            "created_at": self.created_at.isoformat(),
        }


def _checked_url(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise InvalidInputError("url is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("url must be an http(s) URL with a host")
    return url


class Listeners:
    """The subscribed listeners; thread-safe. The newest matching one takes a notification."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, Listener] = {}
        self._ids = itertools.count(1)

    def add(self, url: object, channel: object, *, now: datetime) -> Listener:
        checked = _checked_url(url)
        if channel is not None and (not isinstance(channel, str) or not channel):
            raise InvalidInputError("channel must be a channel's name")
        with self._lock:
            if len(self._listeners) >= _MAX_LISTENERS:
                raise InvalidInputError(f"at most {_MAX_LISTENERS} listeners at once")
            listener = Listener(f"L{next(self._ids):04d}", checked, channel, now)
            self._listeners[listener.id] = listener
            return listener

    def remove(self, listener_id: str) -> Listener:
        with self._lock:
            try:
                return self._listeners.pop(listener_id)
            except KeyError:
                raise ListenerNotFoundError(f"no listener {listener_id!r}") from None

    def discard(self, listener_id: str) -> None:
        with self._lock:
            self._listeners.pop(listener_id, None)

    def list(self) -> list[Listener]:
        with self._lock:
            return list(self._listeners.values())

    def route(self, channel: str | None) -> Listener | None:
        """The listener a notification of ``channel`` goes to, if any."""
        with self._lock:
            for listener in reversed(self._listeners.values()):
                if listener.channel is None or listener.channel == channel:
                    return listener
        return None


class ListeningTransport(httpx.BaseTransport):
    """The notification transport: to a subscribed listener if there is one, else on to
    ``inner`` (the network when None). Listeners are always reached over the network."""

    def __init__(self, listeners: Listeners, inner: httpx.BaseTransport | None = None) -> None:
        self._listeners = listeners
        self._inner = inner
        self._lock = threading.Lock()
        self._network: httpx.HTTPTransport | None = None

    def _net(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._network is None:
                self._network = httpx.HTTPTransport()
            return self._network

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        tag = request.extensions.get(NOTIFICATION_EXTENSION)
        channel = tag.get("channel") if isinstance(tag, dict) else None
        listener = self._listeners.route(channel)
        if listener is not None:
            forwarded = self._to_listener(request, listener, tag if isinstance(tag, dict) else {})
            try:
                response = self._net().handle_request(forwarded)
            except httpx.ConnectError:
                logger.info("listener %s at %s is gone; dropped", listener.id, listener.url)
                self._listeners.discard(listener.id)
            else:
                return response
        if self._inner is None:
            return self._net().handle_request(request)
        return self._inner.handle_request(request)

    @staticmethod
    def _to_listener(
        request: httpx.Request, listener: Listener, tag: dict[str, Any]
    ) -> httpx.Request:
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
        headers += [
            (NOTIFY_URL_HEADER, str(request.url)),
            (NOTIFICATION_HEADER, str(tag.get("id", ""))),
            (CHANNEL_HEADER, str(tag.get("channel", ""))),
            (KIND_HEADER, quote(str(tag.get("kind", "")), safe=" ")),
        ]
        return httpx.Request(
            request.method,
            listener.url,
            headers=headers,
            content=request.content,
            extensions={k: v for k, v in request.extensions.items() if k == "timeout"},
        )

    def close(self) -> None:
        with self._lock:
            network, self._network = self._network, None
        if network is not None:
            network.close()
        if self._inner is not None:
            self._inner.close()
