"""WeChat Pay (APIv3): native (QR), JSAPI, app and H5 payments, refunds, bills.

>>> from payhub import PayHub
>>> hub = PayHub.from_config({"channels": {"wechat": {
...     "type": "wechat", "mch_id": "1900000109", "app_id": "wxd678efh567hg6787",
...     "merchant_private_key": {"$file": "apiclient_key.pem"},
...     "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
...     "api_v3_key": {"$env": "WECHAT_API_V3_KEY"},
...     "wechatpay_public_key": {"$file": "pub_key.pem"},
...     "wechatpay_public_key_id": "PUB_KEY_ID_0114232134912410000000000000",
...     "notify_url": "https://shop.example/notify/wechat"}}})  # doctest: +SKIP

See ``docs/channels/wechat.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from payhub.channels._base import Channel
from payhub.hookspecs import hookimpl

from ._channel import WechatPayChannel
from ._config import WechatPayConfig
from ._errors import WECHAT_ERROR_CODES, WechatErrorCode

__all__ = [
    "WECHAT_ERROR_CODES",
    "WechatErrorCode",
    "WechatPayChannel",
    "WechatPayConfig",
    "register_channels",
]

for _export in (WechatErrorCode, WechatPayChannel, WechatPayConfig):
    _export.__module__ = __name__


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    """Register the ``wechat`` channel type (the built-in plugin hook)."""
    register(WechatPayChannel)
