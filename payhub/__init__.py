"""payhub: Alipay, WeChat Pay and UnionPay behind one typed interface.

>>> from payhub import PayHub, PaymentRequest, Money, PayMethod
>>> hub = PayHub.from_config({"channels": {"alipay": {"type": "alipay", ...}}})  # doctest: +SKIP
>>> hub.pay(PaymentRequest(out_trade_no="A1", amount=Money(1000), subject="Gift card",
...                        method=PayMethod.QR))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

# ``import payhub`` stays light: each public name is imported from its module
# on first use (module ``__getattr__``, PEP 562), so ``import payhub.money``
# does not pull in SQLAlchemy, httpx, the channels or the CLI.
if TYPE_CHECKING:
    from payhub.channels import Channel, Flow
    from payhub.config import Secret, resolve_secret
    from payhub.errors import (
        AmountError,
        ChannelError,
        ChannelTimeout,
        ConfigurationError,
        CurrencyMismatchError,
        ErrorCode,
        InvalidRequestError,
        LedgerError,
        NetworkError,
        NoEligibleChannel,
        NotificationRejected,
        PayhubError,
        PaymentStateError,
        ProtocolError,
        SignatureError,
        SplitError,
        StoreError,
        StoreValueError,
        UnknownChannelError,
    )
    from payhub.events import Event, EventType
    from payhub.hookspecs import hookimpl
    from payhub.hub import (
        AsyncPayHub,
        BaseHub,
        NotificationOutcome,
        PayHub,
        SyncReport,
    )
    from payhub.ledger import Ledger
    from payhub.models import (
        Ack,
        AttemptOutcome,
        BillRecord,
        BillRecordKind,
        BuyerHints,
        Notification,
        NotificationKind,
        PaymentAttempt,
        PaymentQueryResult,
        PaymentRequest,
        PaymentResult,
        PaymentStatus,
        PayMethod,
        RefundQueryRequest,
        RefundRequest,
        RefundResult,
        RefundStatus,
        ResultKind,
        ReturnInfo,
    )
    from payhub.money import Money
    from payhub.routing import (
        BreakerConfig,
        ChannelAccountPolicy,
        FailoverPolicy,
        Router,
        RoutingDecision,
        RoutingRule,
        Strategy,
    )
    from payhub.store import PaymentRecord, PaymentState, Store

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "Ack": "payhub.models",
    "AmountError": "payhub.errors",
    "AsyncPayHub": "payhub.hub",
    "AttemptOutcome": "payhub.models",
    "BaseHub": "payhub.hub",
    "BillRecord": "payhub.models",
    "BillRecordKind": "payhub.models",
    "BreakerConfig": "payhub.routing",
    "BuyerHints": "payhub.models",
    "Channel": "payhub.channels",
    "ChannelAccountPolicy": "payhub.routing",
    "ChannelError": "payhub.errors",
    "ChannelTimeout": "payhub.errors",
    "ConfigurationError": "payhub.errors",
    "CurrencyMismatchError": "payhub.errors",
    "ErrorCode": "payhub.errors",
    "Event": "payhub.events",
    "EventType": "payhub.events",
    "FailoverPolicy": "payhub.routing",
    "Flow": "payhub.channels",
    "InvalidRequestError": "payhub.errors",
    "Ledger": "payhub.ledger",
    "LedgerError": "payhub.errors",
    "Money": "payhub.money",
    "NetworkError": "payhub.errors",
    "NoEligibleChannel": "payhub.errors",
    "Notification": "payhub.models",
    "NotificationKind": "payhub.models",
    "NotificationOutcome": "payhub.hub",
    "NotificationRejected": "payhub.errors",
    "PayHub": "payhub.hub",
    "PayMethod": "payhub.models",
    "PayhubError": "payhub.errors",
    "PaymentAttempt": "payhub.models",
    "PaymentQueryResult": "payhub.models",
    "PaymentRecord": "payhub.store",
    "PaymentRequest": "payhub.models",
    "PaymentResult": "payhub.models",
    "PaymentState": "payhub.store",
    "PaymentStateError": "payhub.errors",
    "PaymentStatus": "payhub.models",
    "ProtocolError": "payhub.errors",
    "RefundQueryRequest": "payhub.models",
    "RefundRequest": "payhub.models",
    "RefundResult": "payhub.models",
    "RefundStatus": "payhub.models",
    "ResultKind": "payhub.models",
    "ReturnInfo": "payhub.models",
    "RiskBlocked": "payhub.errors",
    "RiskEngine": "payhub.risk",
    "Router": "payhub.routing",
    "RoutingDecision": "payhub.routing",
    "RoutingRule": "payhub.routing",
    "Secret": "payhub.config",
    "SignatureError": "payhub.errors",
    "SplitError": "payhub.errors",
    "Store": "payhub.store",
    "StoreError": "payhub.errors",
    "StoreValueError": "payhub.errors",
    "Strategy": "payhub.routing",
    "SyncReport": "payhub.hub",
    "UnknownChannelError": "payhub.errors",
    "hookimpl": "payhub.hookspecs",
    "resolve_secret": "payhub.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # a subpackage not imported yet (``payhub.store`` after ``import payhub``)
        if importlib.util.find_spec(f"payhub.{name}") is None:
            raise AttributeError(f"module 'payhub' has no attribute {name!r}")
        return importlib.import_module(f"payhub.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "Ack",
    "AmountError",
    "AsyncPayHub",
    "AttemptOutcome",
    "BaseHub",
    "BillRecord",
    "BillRecordKind",
    "BreakerConfig",
    "BuyerHints",
    "Channel",
    "ChannelAccountPolicy",
    "ChannelError",
    "ChannelTimeout",
    "ConfigurationError",
    "CurrencyMismatchError",
    "ErrorCode",
    "Event",
    "EventType",
    "FailoverPolicy",
    "Flow",
    "InvalidRequestError",
    "Ledger",
    "LedgerError",
    "Money",
    "NetworkError",
    "NoEligibleChannel",
    "Notification",
    "NotificationKind",
    "NotificationOutcome",
    "NotificationRejected",
    "PayHub",
    "PayMethod",
    "PayhubError",
    "PaymentAttempt",
    "PaymentQueryResult",
    "PaymentRecord",
    "PaymentRequest",
    "PaymentResult",
    "PaymentState",
    "PaymentStateError",
    "PaymentStatus",
    "ProtocolError",
    "RefundQueryRequest",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "ResultKind",
    "ReturnInfo",
    "RiskBlocked",
    "RiskEngine",
    "Router",
    "RoutingDecision",
    "RoutingRule",
    "Secret",
    "SignatureError",
    "SplitError",
    "Store",
    "StoreError",
    "StoreValueError",
    "Strategy",
    "SyncReport",
    "UnknownChannelError",
    "__version__",
    "hookimpl",
    "resolve_secret",
]
