"""Anomalies: duplicate and late payments, amount mismatches and the like,
recorded by the store; found, listed and resolved here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from payhub.errors import InvalidRequestError
from payhub.store import AnomalyKind, AnomalyRecord, AnomalyStatus

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._base import BaseHub
    from payhub.hub._sync import PayHub


def find_anomaly(hub: BaseHub, anomaly: int | tuple[str, str]) -> AnomalyRecord:
    """An anomaly by id, or the one open duplicate/late payment of (channel,
    out_trade_no) (blocking)."""
    store = hub._require_store()
    if not isinstance(anomaly, tuple):
        return store.anomaly(anomaly)
    channel, out_trade_no = anomaly
    found = [
        a
        for a in store.anomalies(out_trade_no, status=AnomalyStatus.OPEN)
        if a.channel == channel
        and a.kind in (AnomalyKind.DUPLICATE_PAYMENT, AnomalyKind.LATE_PAYMENT)
    ]
    if len(found) != 1:
        which = "no" if not found else f"{len(found)}"
        raise InvalidRequestError(
            f"{which} open duplicate or late payment of {out_trade_no!r} at {channel!r}"
            + ("" if not found else ": name the anomaly by its id")
        )
    return found[0]


# -- the I/O calls, twice ------------------------------------------------------------


def anomalies(
    hub: PayHub,
    out_trade_no: str | None,
    status: AnomalyStatus | str | None,
    kind: AnomalyKind | str | None,
    limit: int | None,
) -> list[AnomalyRecord]:
    store = hub._require_store()
    return hub._call_store(store.anomalies, out_trade_no, status=status, kind=kind, limit=limit)


async def anomalies_async(
    hub: AsyncPayHub,
    out_trade_no: str | None,
    status: AnomalyStatus | str | None,
    kind: AnomalyKind | str | None,
    limit: int | None,
) -> list[AnomalyRecord]:
    store = hub._require_store()
    return await hub._call_store(
        store.anomalies, out_trade_no, status=status, kind=kind, limit=limit
    )


def resolve_anomaly(hub: PayHub, anomaly_id: int, operator: str, reason: str) -> AnomalyRecord:
    store = hub._require_store()
    return hub._call_store(store.resolve_anomaly, anomaly_id, operator=operator, reason=reason)


async def resolve_anomaly_async(
    hub: AsyncPayHub, anomaly_id: int, operator: str, reason: str
) -> AnomalyRecord:
    store = hub._require_store()
    return await hub._call_store(
        store.resolve_anomaly, anomaly_id, operator=operator, reason=reason
    )
