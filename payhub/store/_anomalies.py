"""Anomalies: what a channel said that payhub recorded instead of crediting,
listed for refund or review and resolved by a person.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import (
    ErrorCode,
    InvalidRequestError,
    PaymentStateError,
)
from payhub.money import Money
from payhub.store._base import StoreBase, _lock_payment, logger
from payhub.store._records import (
    AnomalyKind,
    AnomalyRecord,
    AnomalyStatus,
    RefundState,
)
from payhub.store._schema import (
    anomalies,
    refunds,
)


class AnomaliesJob(StoreBase):
    """Anomalies: list, read, resolve (part of :class:`~payhub.store.Store`)."""

    # -- anomalies ----------------------------------------------------------

    def anomalies(
        self,
        out_trade_no: str | None = None,
        *,
        status: AnomalyStatus | str | None = None,
        kind: AnomalyKind | str | None = None,
        limit: int | None = None,
    ) -> list[AnomalyRecord]:
        """Recorded anomalies, oldest first; only of one payment, status or kind if given."""
        stmt = sa.select(anomalies).order_by(anomalies.c.id).limit(limit)
        if out_trade_no is not None:
            stmt = stmt.where(anomalies.c.out_trade_no == out_trade_no)
        if status is not None:
            stmt = stmt.where(anomalies.c.status == _enum_value(AnomalyStatus, status, "status"))
        if kind is not None:
            stmt = stmt.where(anomalies.c.kind == _enum_value(AnomalyKind, kind, "kind"))
        return self._read(
            lambda conn: [_anomaly_record(r) for r in conn.execute(stmt).mappings()]
        )

    def anomaly(self, anomaly_id: int) -> AnomalyRecord:
        """One anomaly; :class:`InvalidRequestError` if there is none of that id."""
        return self._read(lambda conn: _anomaly_record(_anomaly_row(conn, anomaly_id)))

    def resolve_anomaly(self, anomaly_id: int, *, operator: str, reason: str) -> AnomalyRecord:
        """Close an open anomaly by hand (reviewed, refunded outside payhub…).

        ``operator`` (who) and ``reason`` (why) are required and kept with it,
        and an ``anomaly.resolved`` event carries both. Refused while a refund
        of it (``hub.refund_duplicate``) is pending: its outcome decides.
        """
        operator = _required_text(operator, "operator", 128)
        reason = _required_text(reason, "reason", 512)

        def fn(conn: Connection) -> AnomalyRecord:
            row = _anomaly_row(conn, anomaly_id)
            _lock_payment(conn, str(row["out_trade_no"]))
            row = _anomaly_row(conn, anomaly_id, lock=True)
            if row["status"] != AnomalyStatus.OPEN.value:
                raise PaymentStateError(
                    f"anomaly {anomaly_id} is already resolved", code=ErrorCode.PAYMENT_STATE
                )
            pending = conn.execute(
                sa.select(refunds.c.out_refund_no).where(
                    refunds.c.anomaly_id == anomaly_id,
                    refunds.c.status == RefundState.PENDING.value,
                )
            ).first()
            if pending is not None:
                raise PaymentStateError(
                    f"anomaly {anomaly_id}: refund {pending[0]!r} of it is pending; "
                    "settle it first (payhub sync)",
                    code=ErrorCode.PAYMENT_STATE,
                )
            self._applier(conn).resolve_anomaly(row, operator, reason)
            logger.info("anomaly %s resolved by %s", anomaly_id, operator)
            return _anomaly_record(_anomaly_row(conn, anomaly_id))

        return self.run(fn)


def _enum_value(
    enum_type: type[AnomalyStatus] | type[AnomalyKind], value: str, what: str
) -> str:
    try:
        return str(enum_type(value).value)
    except ValueError:
        known = ", ".join(member.value for member in enum_type)
        raise InvalidRequestError(f"unknown anomaly {what} {value!r} (known: {known})") from None


def _required_text(value: object, what: str, size: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"resolving an anomaly needs a non-empty {what}")
    value = value.strip()
    if len(value) > size or any(ord(ch) < 32 for ch in value):
        raise InvalidRequestError(
            f"the {what} must be one line of at most {size} characters"
        )
    return value


def _anomaly_row(conn: Connection, anomaly_id: int, *, lock: bool = False) -> Any:
    if isinstance(anomaly_id, bool) or not isinstance(anomaly_id, int):
        raise InvalidRequestError(f"an anomaly id is a number, not {anomaly_id!r}")
    stmt = sa.select(anomalies).where(anomalies.c.id == anomaly_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise InvalidRequestError(f"no anomaly {anomaly_id}")
    return row


def _anomaly_record(r: Any) -> AnomalyRecord:
    return AnomalyRecord(
        id=int(r["id"]),
        kind=AnomalyKind(r["kind"]),
        out_trade_no=r["out_trade_no"],
        channel=r["channel"],
        channel_trade_id=r["channel_trade_id"],
        amount=None if r["amount_minor"] is None else Money(int(r["amount_minor"]), r["currency"]),
        source=r["source"],
        detail=dict(r["detail"]),
        status=r["status"],
        created_at=r["created_at"],
        resolved_at=r["resolved_at"],
        resolved_by=r["resolved_by"],
        resolution=r["resolution"],
    )
