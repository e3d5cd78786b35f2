"""The Alipay channel (OpenAPI ``gateway.do``), registered as a payhub plugin.

>>> from payhub.channels.alipay import AlipayChannel, AlipayConfig  # doctest: +SKIP

See ``docs/channels/alipay.md`` for configuration, operations, notifications
and the error-code table.
"""

from __future__ import annotations

from collections.abc import Callable

from payhub.channels._base import Channel
from payhub.channels.alipay._channel import AlipayChannel
from payhub.channels.alipay._codes import ALIPAY_ERROR_CODES
from payhub.channels.alipay._config import (
    ALIPAY_BILL_HOSTS,
    ALIPAY_PRODUCTION_GATEWAY,
    ALIPAY_SANDBOX_BILL_HOSTS,
    ALIPAY_SANDBOX_GATEWAY,
    ALIPAY_TEST_HOSTS,
    AlipayConfig,
)
from payhub.hookspecs import hookimpl

__all__ = [
    "ALIPAY_BILL_HOSTS",
    "ALIPAY_ERROR_CODES",
    "ALIPAY_PRODUCTION_GATEWAY",
    "ALIPAY_SANDBOX_BILL_HOSTS",
    "ALIPAY_SANDBOX_GATEWAY",
    "ALIPAY_TEST_HOSTS",
    "AlipayChannel",
    "AlipayConfig",
    "register_channels",
]


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    """Register :class:`AlipayChannel` (configuration ``"type": "alipay"``)."""
    register(AlipayChannel)


# Tracebacks and reprs name the public module, not the private one (as httpx does).
for _cls in (AlipayChannel, AlipayConfig):
    _cls.__module__ = __name__
del _cls
