"""payhub-sandbox: payment channels' servers, local, speaking their real protocols.

>>> from payhub_sandbox import ManualClock, Sandbox, create_app
>>> sandbox = Sandbox(clock=ManualClock(), time_factor=60)  # doctest: +SKIP
>>> app = create_app(sandbox)  # doctest: +SKIP

Alipay's ``gateway.do`` with its cashier, notifications on Alipay's retry
schedule, bill downloads; a JSON control API under ``/_control/`` and a web
console at ``/``. See ``docs/sandbox.md``.
"""

from contextlib import suppress as _suppress

from payhub_sandbox._alipay import (
    ALIPAY_RETRY_DELAYS,
    DEFAULT_BUYER_ID,
    AlipayMerchant,
    AlipaySimulator,
    alipay_trade_status,
)
from payhub_sandbox._app import create_app
from payhub_sandbox._bills import (
    ALIPAY_BILL_COLUMNS,
    alipay_bill_csvs,
    alipay_bill_filename,
    build_alipay_bill_zip,
)
from payhub_sandbox._clock import CHINA_TZ, Clock, ManualClock, SystemClock
from payhub_sandbox._config import SandboxConfig, build_sandbox, load_config
from payhub_sandbox._delivery import DeliveryAttempt, DeliveryStatus, OutboundNotification
from payhub_sandbox._errors import (
    InvalidInputError,
    SandboxError,
    TradeNotFoundError,
    TradeStateError,
    UnknownMerchantError,
)
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._state import Refund, Trade, TradeState

__all__ = [
    "ALIPAY_BILL_COLUMNS",
    "ALIPAY_RETRY_DELAYS",
    "CHINA_TZ",
    "DEFAULT_BUYER_ID",
    "AlipayMerchant",
    "AlipaySimulator",
    "Clock",
    "DeliveryAttempt",
    "DeliveryStatus",
    "InvalidInputError",
    "ManualClock",
    "OutboundNotification",
    "Refund",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SystemClock",
    "Trade",
    "TradeNotFoundError",
    "TradeState",
    "TradeStateError",
    "UnknownMerchantError",
    "alipay_bill_csvs",
    "alipay_bill_filename",
    "alipay_trade_status",
    "build_alipay_bill_zip",
    "build_sandbox",
    "create_app",
    "load_config",
]

# Tracebacks and reprs name the public package, not the private modules.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
