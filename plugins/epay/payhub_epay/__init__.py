"""payhub-epay: EPay (易支付) as a payhub channel, from outside payhub.

Installed, it registers the channel type ``epay`` through the ``payhub``
entry-point group; configure an account with ``{"type": "epay", "pid": …,
"key": …, "gateway": "https://pay.example.com/"}``. See
``docs/channels/epay.md`` for the protocol, its sources and the settings.
"""

from __future__ import annotations

from collections.abc import Callable

from payhub.channels import Channel
from payhub.hookspecs import hookimpl
from payhub_epay._channel import PARAM_PREFIX, EpayChannel
from payhub_epay._config import DEFAULT_LATE_WINDOW, DEFAULT_MAX_AMOUNT, EpayConfig
from payhub_epay._redact import REDACTED, register_secret
from payhub_epay._signing import sign_md5, string_to_sign, verify_md5

__all__ = [
    "DEFAULT_LATE_WINDOW",
    "DEFAULT_MAX_AMOUNT",
    "PARAM_PREFIX",
    "REDACTED",
    "EpayChannel",
    "EpayConfig",
    "register_channels",
    "register_secret",
    "sign_md5",
    "string_to_sign",
    "verify_md5",
]

__version__ = "0.1.0"


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    register(EpayChannel)
