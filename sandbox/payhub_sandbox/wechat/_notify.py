"""Fresh signatures on every notification attempt.

WeChat Pay signs each delivery of a notification when it sends it: a resend
carries the same body (same ``id``, same encrypted resource) but a new
``Wechatpay-Timestamp``, ``Wechatpay-Nonce`` and ``Wechatpay-Signature``, so a
receiver that rejects timestamps older than 300 s (as it must) still accepts
the resend an hour later.

The shared :class:`~payhub_sandbox.delivery._scheduler.DeliveryScheduler` posts the same
headers on every attempt; :class:`ResigningTransport` sits under its HTTP
client and, for a request marked with :data:`RESIGN_HEADER`, lets the
channel's signer replace the signature headers with new ones just before the
request leaves. Unmarked requests (Alipay's, UnionPay's) pass through as they are.

A signer refreshes only a genuine signature: a request whose signature does
not verify over the body being sent (a delivery fault forged it on purpose)
goes out as forged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Final

import httpx

__all__ = ["RESIGN_HEADER", "ResigningTransport", "Signer"]

#: ``<channel>:<argument>``; removed before the request is sent.
RESIGN_HEADER: Final = "X-Payhub-Sandbox-Resign"

#: ``signer(argument, headers, body)`` → the headers to set on this attempt (none
#: to leave the request as it is).
Signer = Callable[[str, httpx.Headers, bytes], Sequence[tuple[str, str]]]


class ResigningTransport(httpx.BaseTransport):
    """Wraps the notification transport (the network when ``inner`` is None)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner
        self._owned = inner is None
        self._lock = threading.Lock()
        self._signers: dict[str, Signer] = {}

    def register(self, channel: str, signer: Signer) -> None:
        with self._lock:
            self._signers[channel] = signer

    def _transport(self) -> httpx.BaseTransport:
        with self._lock:
            if self._inner is None:
                self._inner = httpx.HTTPTransport()
            return self._inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        marker = request.headers.get(RESIGN_HEADER)
        if marker is not None:
            del request.headers[RESIGN_HEADER]
            channel, _, argument = marker.partition(":")
            with self._lock:
                signer = self._signers.get(channel)
            if signer is not None:
                for name, value in signer(argument, request.headers, request.content):
                    request.headers[name] = value
        return self._transport().handle_request(request)

    def close(self) -> None:
        with self._lock:
            inner = self._inner
            if self._owned:
                self._inner = None  # a later client gets a new network transport
        if inner is not None:
            inner.close()
