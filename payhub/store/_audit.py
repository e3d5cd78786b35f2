"""The one audit writer: every change of a payment's state leaves a row here.

Written in the transaction of the change (a new payment, or a transition the
lifecycle decided), never updated or deleted, each row linked into the audit
chain (:mod:`payhub.store._chain`) in that same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from payhub.lifecycle import PaymentState, TransitionCause
from payhub.store._chain import chain_insert
from payhub.store._schema import audit, risk_audit

__all__ = ["write_audit", "write_risk_audit"]

_SOURCE = 320  #: the column's size


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
    chain_insert(
        conn,
        audit,
        {
            "payment_id": payment_id,
            "from_status": None if before is None else before.value,
            "to_status": after.value,
            "cause": cause.value,
            "source": source[:_SOURCE],
            "at": at,
        },
    )


def write_risk_audit(
    conn: Connection,
    out_trade_no: str,
    *,
    action: str,
    rule: str | None,
    actor: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """Record a risk decision or review action (block, review, observe, approve,
    decline) on order ``out_trade_no``, in the transaction of what it records."""
    chain_insert(
        conn,
        risk_audit,
        {
            "out_trade_no": out_trade_no,
            "action": action,
            "rule": rule,
            "actor": actor[:128],
            "detail": detail,
            "at": at,
        },
    )
