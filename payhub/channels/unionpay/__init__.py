"""UnionPay online payments (ACP 5.1.0, ``signMethod=01``) as a payhub channel.

>>> from payhub.channels.unionpay import UnionPayChannel, UnionPayConfig
>>> channel = UnionPayChannel(UnionPayConfig(mer_id="777290058110048",
...     environment="test", sign_cert={"$file": "acp_test_sign.pfx"},
...     sign_cert_password={"$env": "UNIONPAY_PFX_PASSWORD"},
...     root_cert={"$file": "acp_test_root.cer"},
...     middle_cert={"$file": "acp_test_middle.cer"},
...     back_url="https://shop.example/notify/unionpay"))  # doctest: +SKIP

See ``docs/channels/unionpay.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from payhub.channels._base import Channel
from payhub.channels.unionpay._channel import QUERY_BACKOFF, UnionPayChannel
from payhub.channels.unionpay._codes import RESP_CODES, RespCode
from payhub.channels.unionpay._config import UnionPayConfig
from payhub.channels.unionpay._grammar import parse_acp_body
from payhub.hookspecs import hookimpl

__all__ = [
    "QUERY_BACKOFF",
    "RESP_CODES",
    "RespCode",
    "UnionPayChannel",
    "UnionPayConfig",
    "parse_acp_body",
]

for _obj in (RespCode, UnionPayChannel, UnionPayConfig, parse_acp_body):
    _obj.__module__ = __name__


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    """The built-in UnionPay channel, registered like any plugin's."""
    register(UnionPayChannel)
