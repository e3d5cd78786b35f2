"""payhub: Alipay, WeChat Pay and UnionPay behind one typed interface.

>>> from payhub import PayHub, PaymentRequest, Money, PayMethod
>>> hub = PayHub.from_config({"channels": {"alipay": {"type": "alipay", ...}}})  # doctest: +SKIP
>>> hub.pay(PaymentRequest(out_trade_no="A1", amount=Money(1000), subject="Gift card",
...                        method=PayMethod.QR))  # doctest: +SKIP
"""

from payhub.channels import Channel, Flow
from payhub.client import AsyncPayHub, BaseHub, NotificationOutcome, PayHub
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
    ProtocolError,
    SignatureError,
    SplitError,
    UnknownChannelError,
)
from payhub.hookspecs import hookimpl
from payhub.models import (
    Ack,
    BillRecord,
    BillRecordKind,
    BuyerHints,
    Notification,
    NotificationKind,
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

__version__ = "0.1.0"

__all__ = [
    "Ack",
    "AmountError",
    "AsyncPayHub",
    "BaseHub",
    "BillRecord",
    "BillRecordKind",
    "BuyerHints",
    "Channel",
    "ChannelError",
    "ChannelTimeout",
    "ConfigurationError",
    "CurrencyMismatchError",
    "ErrorCode",
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
    "PaymentQueryResult",
    "PaymentRequest",
    "PaymentResult",
    "PaymentStatus",
    "ProtocolError",
    "RefundQueryRequest",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "ResultKind",
    "ReturnInfo",
    "Secret",
    "SignatureError",
    "SplitError",
    "UnknownChannelError",
    "__version__",
    "hookimpl",
    "resolve_secret",
]
