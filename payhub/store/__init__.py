"""The payment store: exactly-once notifications, refunds, outbox events, audit.

>>> from payhub import PayHub
>>> from payhub.store import Store
>>> store = Store("sqlite:///payhub.db")  # doctest: +SKIP
>>> store.upgrade()  # doctest: +SKIP
>>> hub = PayHub(channels=[...], store=store)  # doctest: +SKIP

See ``docs/store.md`` for the databases, migrations and guarantees.
"""

from payhub.store._apply import Checkpoint, Fact, Transition, TransitionHook
from payhub.store._backlog import Backlog
from payhub.store._chain import ChainBreak, ChainHead, ChainReport
from payhub.store._crypt import FieldKeys
from payhub.store._records import (
    AnomalyKind,
    AnomalyRecord,
    AnomalyStatus,
    ApplyResult,
    AttemptRecord,
    AuditRecord,
    InboxOutcome,
    InboxRecord,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    TransitionCause,
)
from payhub.store._reviews import ReviewRecord, ReviewStatus, RiskAuditRecord
from payhub.store._roles import grant_statements
from payhub.store._splits import (
    PayoutRecord,
    PayoutState,
    SplitLineRecord,
    SplitRecord,
    SplitState,
)
from payhub.store._store import DEFAULT_EVENT_LEASE, Store

__all__ = [
    "DEFAULT_EVENT_LEASE",
    "AnomalyKind",
    "AnomalyRecord",
    "AnomalyStatus",
    "ApplyResult",
    "AttemptRecord",
    "AuditRecord",
    "Backlog",
    "ChainBreak",
    "ChainHead",
    "ChainReport",
    "Checkpoint",
    "Fact",
    "FieldKeys",
    "InboxOutcome",
    "InboxRecord",
    "PaymentRecord",
    "PaymentState",
    "PayoutRecord",
    "PayoutState",
    "RefundRecord",
    "RefundState",
    "ReviewRecord",
    "ReviewStatus",
    "RiskAuditRecord",
    "SplitLineRecord",
    "SplitRecord",
    "SplitState",
    "Store",
    "Transition",
    "TransitionCause",
    "TransitionHook",
    "grant_statements",
]
