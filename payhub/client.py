"""The facade: :class:`PayHub` (sync) and :class:`AsyncPayHub` (async).

Both share everything that does no I/O in :class:`BaseHub`; they differ only
in how they drive a channel's flow (``httpx.Client`` or ``httpx.AsyncClient``).

>>> hub = PayHub.from_config({"channels": {"alipay": {"type": "alipay", ...}}})
... # doctest: +SKIP
>>> result = hub.pay(PaymentRequest(...))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import pluggy

from payhub.channels._base import (
    Channel,
    Flow,
    HeadersInput,
    as_headers,
    run_flow_async,
    run_flow_sync,
)
from payhub.errors import (
    ChannelTimeout,
    ConfigurationError,
    NetworkError,
    NoEligibleChannel,
    PayhubError,
    UnknownChannelError,
)
from payhub.models import (
    Ack,
    BillRecord,
    Notification,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    ReturnInfo,
)
from payhub.plugins import channel_types, get_plugin_manager

__all__ = ["AsyncPayHub", "BaseHub", "NotificationOutcome", "PayHub"]

T = TypeVar("T")
logger = logging.getLogger("payhub.client")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class NotificationOutcome:
    """What handling one notification came to.

    ``ack`` is what to answer the channel, always set. ``notification`` is the
    verified notification, or None if it was rejected, with ``error`` saying why.
    """

    ack: Ack
    notification: Notification | None = None
    error: PayhubError | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


@contextlib.contextmanager
def map_network_errors(channel: str) -> Iterator[None]:
    """Translate httpx's transport errors into payhub's, at the boundary."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ChannelTimeout(
            f"{channel}: no answer in time ({type(exc).__name__}); the trade may exist"
        ) from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"{channel}: request failed ({type(exc).__name__})") from exc


def build_channels(
    config: Mapping[str, Mapping[str, Any]], pm: pluggy.PluginManager | None = None
) -> list[Channel]:
    """Build channel accounts from ``{name: {"type": kind, ...settings}}``."""
    types = channel_types(pm or get_plugin_manager())
    channels: list[Channel] = []
    for name, settings in config.items():
        kind = settings.get("type", name)
        cls = types.get(kind)
        if cls is None:
            raise ConfigurationError(
                f"channel {name!r}: unknown type {kind!r} (known: {', '.join(sorted(types))})"
            )
        channels.append(cls.from_config(name, {k: v for k, v in settings.items() if k != "type"}))
    return channels


class BaseHub:
    """Everything of the hub that does no I/O."""

    def __init__(self, *, channels: Sequence[Channel]) -> None:
        self._channels: dict[str, Channel] = {}
        for channel in channels:
            if channel.name in self._channels:
                raise ConfigurationError(f"two channel accounts named {channel.name!r}")
            self._channels[channel.name] = channel

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build a hub from ``{"channels": {name: {"type": kind, ...}}}``."""
        channels = config.get("channels")
        if not isinstance(channels, Mapping) or not channels:
            raise ConfigurationError("configuration needs a non-empty 'channels' mapping")
        return cls(channels=build_channels(channels, plugin_manager), **kwargs)

    @property
    def channels(self) -> Mapping[str, Channel]:
        return dict(self._channels)

    def channel(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise UnknownChannelError(f"no channel account named {name!r}") from None

    def select_channel(self, request: PaymentRequest) -> Channel:
        """The channel account a payment goes to: pinned, else the first that can take it."""
        if request.channel is not None:
            return self.channel(request.channel)
        reasons: dict[str, str] = {}
        for channel in self._channels.values():
            if channel.supports(request.method, request.amount.currency):
                return channel
            reasons[channel.name] = (
                f"does not support {request.method.value} in {request.amount.currency}"
            )
        raise NoEligibleChannel("no configured channel can take this payment", reasons=reasons)

    # -- notifications: pure, the same for sync and async ---------------------

    def parse_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> Notification:
        """Verify and parse a notification; raise a typed :class:`PayhubError` if bad."""
        return self.channel(channel).parse_notification(as_headers(headers), bytes(body))

    def handle_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """Verify and parse a notification and say what to answer the channel.

        Never raises for a bad notification: the outcome carries a failure ack
        (so the channel resends) and the typed error.
        """
        target = self.channel(channel)
        try:
            notification = target.parse_notification(as_headers(headers), bytes(body))
        except PayhubError as exc:
            logger.warning("%s: notification rejected: %s", channel, exc.message)
            return NotificationOutcome(ack=target.ack(False, exc.code.name), error=exc)
        return NotificationOutcome(ack=target.ack(True), notification=notification)

    def verify_return(self, channel: str, params: Mapping[str, str]) -> ReturnInfo:
        """Verify a browser return. It is never proof of payment: query or await the
        notification before delivering goods."""
        return self.channel(channel).parse_return(params)


class PayHub(BaseHub):
    """The synchronous hub.

    >>> with PayHub.from_config(config) as hub:  # doctest: +SKIP
    ...     hub.pay(request)
    """

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        http_client: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channels=channels)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def _run(self, channel: Channel, flow: Flow[T]) -> T:
        def send(request: httpx.Request) -> httpx.Response:
            with map_network_errors(channel.name):
                response = self._http.send(request)
                response.read()
                return response

        return run_flow_sync(flow, send)

    def pay(self, request: PaymentRequest) -> PaymentResult:
        channel = self.select_channel(request)
        return self._run(channel, channel.pay(request))

    def query(self, channel: str, out_trade_no: str) -> PaymentQueryResult:
        target = self.channel(channel)
        return self._run(target, target.query(out_trade_no))

    def refund(self, channel: str, request: RefundRequest) -> RefundResult:
        target = self.channel(channel)
        return self._run(target, target.refund(request))

    def refund_query(self, channel: str, request: RefundQueryRequest) -> RefundResult:
        target = self.channel(channel)
        return self._run(target, target.refund_query(request))

    def close_trade(self, channel: str, out_trade_no: str) -> None:
        target = self.channel(channel)
        self._run(target, target.close(out_trade_no))

    def download_bill(self, channel: str, bill_date: date) -> list[BillRecord]:
        target = self.channel(channel)
        return self._run(target, target.download_bill(bill_date))

    def close(self) -> None:
        """Release the HTTP client if the hub created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPayHub(BaseHub):
    """The asynchronous hub; the same channel flows, driven by ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(channels=channels)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def _run(self, channel: Channel, flow: Flow[T]) -> T:
        async def send(request: httpx.Request) -> httpx.Response:
            with map_network_errors(channel.name):
                response = await self._http.send(request)
                await response.aread()
                return response

        return await run_flow_async(flow, send)

    async def pay(self, request: PaymentRequest) -> PaymentResult:
        channel = self.select_channel(request)
        return await self._run(channel, channel.pay(request))

    async def query(self, channel: str, out_trade_no: str) -> PaymentQueryResult:
        target = self.channel(channel)
        return await self._run(target, target.query(out_trade_no))

    async def refund(self, channel: str, request: RefundRequest) -> RefundResult:
        target = self.channel(channel)
        return await self._run(target, target.refund(request))

    async def refund_query(self, channel: str, request: RefundQueryRequest) -> RefundResult:
        target = self.channel(channel)
        return await self._run(target, target.refund_query(request))

    async def close_trade(self, channel: str, out_trade_no: str) -> None:
        target = self.channel(channel)
        await self._run(target, target.close(out_trade_no))

    async def download_bill(self, channel: str, bill_date: date) -> list[BillRecord]:
        target = self.channel(channel)
        return await self._run(target, target.download_bill(bill_date))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
