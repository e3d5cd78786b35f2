"""payhub-sandbox: payment channels' servers, local, speaking their real protocols.

>>> from payhub_sandbox import ManualClock, Sandbox, create_app
>>> sandbox = Sandbox(clock=ManualClock(), time_factor=60)  # doctest: +SKIP
>>> app = create_app(sandbox)  # doctest: +SKIP

Alipay's ``gateway.do`` with its cashier, notifications on Alipay's retry
schedule, bill downloads; WeChat Pay APIv3 under ``/v3/`` (signed answers in
public-key or platform-certificate mode, encrypted notifications on WeChat's
schedule, trade bills); a JSON control API under ``/_control/`` and a web
console at ``/``. Every channel offers the same verbs through the facade:
``sandbox.alipay.pay(...)``, ``sandbox.wechat.refund(...)``,
``sandbox.unionpay.notify(...)`` (see :class:`SandboxChannel`). See ``docs/sandbox.md``.
"""

from contextlib import suppress as _suppress

from payhub_sandbox._app import create_app
from payhub_sandbox._channel import VERBS, SandboxChannel, UnsupportedVerbError
from payhub_sandbox._clock import CHINA_TZ, Clock, ManualClock, SystemClock
from payhub_sandbox._config import SandboxConfig, build_sandbox, load_config
from payhub_sandbox._console import CONSOLE_TZ_KEY
from payhub_sandbox._errors import (
    InvalidInputError,
    SandboxError,
    TradeNotFoundError,
    TradeStateError,
    UnknownMerchantError,
)
from payhub_sandbox._faults import FaultMode, GatewayFault, GatewayFaults
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox._state import Refund, Trade, TradeState
from payhub_sandbox._triggers import SCENARIOS, TriggerRequest, run_trigger
from payhub_sandbox.alipay._bills import (
    ALIPAY_BILL_COLUMNS,
    alipay_bill_csvs,
    alipay_bill_filename,
    build_alipay_bill_zip,
)
from payhub_sandbox.alipay._channel import AlipayChannel
from payhub_sandbox.alipay._simulator import (
    ALIPAY_RETRY_DELAYS,
    DEFAULT_BUYER_ID,
    AlipayMerchant,
    AlipaySimulator,
    alipay_trade_status,
)
from payhub_sandbox.delivery._faults import (
    DeliveryFault,
    DeliveryFaultOptions,
    FormTamperer,
    HeaderSignatureTamperer,
    Tamperer,
    register_tamperer,
)
from payhub_sandbox.delivery._listeners import Listener, Listeners
from payhub_sandbox.delivery._scheduler import (
    DeliveryAttempt,
    DeliveryStatus,
    OutboundNotification,
    event_type_of,
)
from payhub_sandbox.unionpay._channel import UnionPayChannel
from payhub_sandbox.unionpay._pki import FAULT_KINDS as UNIONPAY_FAULT_KINDS
from payhub_sandbox.unionpay._pki import UnionPayPKI
from payhub_sandbox.unionpay._simulator import (
    UNIONPAY_RETRY_DELAYS,
    UnionPayMerchant,
    UnionPaySimulator,
    unionpay_orig_resp_code,
)
from payhub_sandbox.wechat._bills import (
    WECHAT_BILL_COLUMNS,
    WECHAT_BILL_SUMMARY_COLUMNS,
    wechat_bill_csv,
)
from payhub_sandbox.wechat._channel import WechatChannel
from payhub_sandbox.wechat._simulator import (
    DEFAULT_OPENID,
    WECHAT_RETRY_DELAYS,
    WechatMerchant,
    WechatSimulator,
    wechat_trade_state,
)

__all__ = [
    "ALIPAY_BILL_COLUMNS",
    "ALIPAY_RETRY_DELAYS",
    "CHINA_TZ",
    "CONSOLE_TZ_KEY",
    "DEFAULT_BUYER_ID",
    "DEFAULT_OPENID",
    "SCENARIOS",
    "UNIONPAY_FAULT_KINDS",
    "UNIONPAY_RETRY_DELAYS",
    "VERBS",
    "WECHAT_BILL_COLUMNS",
    "WECHAT_BILL_SUMMARY_COLUMNS",
    "WECHAT_RETRY_DELAYS",
    "AlipayChannel",
    "AlipayMerchant",
    "AlipaySimulator",
    "Clock",
    "DeliveryAttempt",
    "DeliveryFault",
    "DeliveryFaultOptions",
    "DeliveryStatus",
    "FaultMode",
    "FormTamperer",
    "GatewayFault",
    "GatewayFaults",
    "HeaderSignatureTamperer",
    "InvalidInputError",
    "Listener",
    "Listeners",
    "ManualClock",
    "OutboundNotification",
    "Refund",
    "Sandbox",
    "SandboxChannel",
    "SandboxConfig",
    "SandboxError",
    "SystemClock",
    "Tamperer",
    "Trade",
    "TradeNotFoundError",
    "TradeState",
    "TradeStateError",
    "TriggerRequest",
    "UnionPayChannel",
    "UnionPayMerchant",
    "UnionPayPKI",
    "UnionPaySimulator",
    "UnknownMerchantError",
    "UnsupportedVerbError",
    "WechatChannel",
    "WechatMerchant",
    "WechatSimulator",
    "alipay_bill_csvs",
    "alipay_bill_filename",
    "alipay_trade_status",
    "build_alipay_bill_zip",
    "build_sandbox",
    "create_app",
    "event_type_of",
    "load_config",
    "register_tamperer",
    "run_trigger",
    "unionpay_orig_resp_code",
    "wechat_bill_csv",
    "wechat_trade_state",
]

# Tracebacks and reprs name the public package, not the private modules.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
