"""The one audit writer: every change of a payment's state leaves a row here.

Written in the transaction of the change (a new payment, or a transition the
lifecycle decided), never updated or deleted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from payhub.lifecycle import PaymentState, TransitionCause
from payhub.store._schema import audit

__all__ = ["write_audit"]

_SOURCE = 320  #: the column's size
_INSERT = audit.insert()


def write_audit(
    conn: Connection,
    payment_id: int,
    *,
    before: PaymentState | None,
    after: PaymentState,
    cause: TransitionCause,
    source: str,
    at: datetime,
) -> None:
    """Record that payment ``payment_id`` went from ``before`` to ``after``, and why."""
    conn.execute(
        _INSERT,
        {
            "payment_id": payment_id,
            "from_status": None if before is None else before.value,
            "to_status": after.value,
            "cause": cause.value,
            "source": source[:_SOURCE],
            "at": at,
        },
    )
