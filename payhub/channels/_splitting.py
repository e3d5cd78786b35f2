"""The one interface of splits (分账) and transfers (转账), whatever the channel.

:class:`SplitOperations` is a mixin every built-in channel inherits: the hub
(``hub.split``, ``hub.payout``, ``payhub sync``) speaks only these names.
Alipay maps them to royalty relations, ``alipay.trade.order.settle`` and
``alipay.fund.trans.uni.transfer``; WeChat Pay to profit sharing and the
merchant transfer bills; UnionPay offers none and raises
:class:`~payhub.errors.InvalidRequestError` with code ``NOT_SUPPORTED``
(:class:`NoSplits`). Each method is a sans-I/O flow (``payhub.channels.Flow``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import httpx

from payhub.channels._base import Flow
from payhub.errors import ErrorCode, InvalidRequestError
from payhub.splits_models import (
    ReceiverBinding,
    SplitNotice,
    SplitRequest,
    SplitResult,
    TransferRequest,
    TransferResult,
)

__all__ = ["NoSplits", "SplitOperations", "not_supported"]


class SplitOperations(abc.ABC):
    """Splits and transfers under one set of names (see the module docstring)."""

    @abc.abstractmethod
    def bind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        """Allow splits to ``receivers`` (Alipay: one request of up to 20, under
        ``out_request_no``; WeChat Pay: one request per receiver, no number)."""

    @abc.abstractmethod
    def unbind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        """Remove ``receivers`` from the merchant's split relations."""

    @abc.abstractmethod
    def split(self, request: SplitRequest) -> Flow[SplitResult]:
        """Split a paid trade among bound receivers; idempotent by ``out_request_no``."""

    @abc.abstractmethod
    def split_query(self, out_request_no: str, channel_trade_id: str) -> Flow[SplitResult]:
        """Where a split stands; ``NOT_FOUND`` when the channel knows no such request."""

    @abc.abstractmethod
    def split_finish(
        self, out_request_no: str, channel_trade_id: str, description: str
    ) -> Flow[SplitResult]:
        """End the trade's splitting: the unsplit rest is unfrozen to the merchant
        (``out_request_no`` is a number of its own, not a split's)."""

    @abc.abstractmethod
    def transfer(self, request: TransferRequest) -> Flow[TransferResult]:
        """Pay from the merchant's balance to a person; idempotent by ``out_transfer_no``."""

    @abc.abstractmethod
    def transfer_query(self, out_transfer_no: str) -> Flow[TransferResult]:
        """Where a transfer stands; ``NOT_FOUND`` when the channel knows none."""

    def is_split_notification(self, headers: httpx.Headers, body: bytes) -> bool:
        """Whether a notification is about a split or transfer rather than a
        payment (a cheap look, nothing verified yet). Default: never."""
        return False

    def parse_split_notification(self, headers: httpx.Headers, body: bytes) -> SplitNotice:
        """Verify and parse a split or transfer notification; a PayhubError if bad."""
        raise not_supported(getattr(self, "name", "?"), "split notifications")


def not_supported(channel: str, what: str) -> InvalidRequestError:
    """The typed refusal of a channel that offers no splits or transfers."""
    return InvalidRequestError(
        f"channel {channel!r} does not support {what}", code=ErrorCode.NOT_SUPPORTED
    )


class NoSplits(SplitOperations):
    """For a channel without splits or transfers: every operation raises
    :func:`not_supported` before any I/O."""

    name: str

    def bind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        raise not_supported(self.name, "split receivers")

    def unbind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        raise not_supported(self.name, "split receivers")

    def split(self, request: SplitRequest) -> Flow[SplitResult]:
        raise not_supported(self.name, "splits")

    def split_query(self, out_request_no: str, channel_trade_id: str) -> Flow[SplitResult]:
        raise not_supported(self.name, "splits")

    def split_finish(
        self, out_request_no: str, channel_trade_id: str, description: str
    ) -> Flow[SplitResult]:
        raise not_supported(self.name, "splits")

    def transfer(self, request: TransferRequest) -> Flow[TransferResult]:
        raise not_supported(self.name, "transfers")

    def transfer_query(self, out_transfer_no: str) -> Flow[TransferResult]:
        raise not_supported(self.name, "transfers")
