"""payhub: Alipay, WeChat Pay and UnionPay behind one typed interface.

>>> from payhub import PayHub, PaymentRequest, Money, PayMethod
>>> hub = PayHub.from_config({"channels": {"alipay": {"type": "alipay", ...}}})  # doctest: +SKIP
>>> hub.pay(PaymentRequest(out_trade_no="A1", amount=Money(1000), subject="Gift card",
...                        method=PayMethod.QR))  # doctest: +SKIP
"""

from payhub.channels import Channel, Flow
from payhub.client import AsyncPayHub, BaseHub, NotificationOutcome, PayHub, SyncReport
from payhub.config import Secret, resolve_secret
from payhub.errors import (
    AmountError,
    ChannelError,
    ChannelTimeout,
    ConfigurationError,
    CurrencyMismatchError,
    ErrorCode,
    InvalidRequestError,
    NetworkError,
    NoEligibleChannel,
    NotificationRejected,
    PayhubError,
    PaymentStateError,
    ProtocolError,
    SignatureError,
    SplitError,
    StoreError,
    UnknownChannelError,
)
from payhub.events import Event, EventType
from payhub.hookspecs import hookimpl
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
    "Router",
    "RoutingDecision",
    "RoutingRule",
    "Secret",
    "SignatureError",
    "SplitError",
    "Store",
    "StoreError",
    "Strategy",
    "SyncReport",
    "UnknownChannelError",
    "__version__",
    "hookimpl",
    "resolve_secret",
]
