"""Events: handing outbox events to the subscribed handlers.

Names, one per meaning: :func:`run_handlers` runs one event's handlers;
:func:`dispatch_events` sweeps the outbox (claim, run the handlers, mark or
release); :func:`dispatch_after_commit` is that sweep for one payment right
after its transaction committed, and never raises. Each is written twice (sync
and async: the async hub awaits coroutine handlers), kept in step by
``tests/test_hub_twins.py``.
"""

from __future__ import annotations

import inspect
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from payhub.errors import PayhubError
from payhub.events import Event

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._sync import PayHub

logger = logging.getLogger("payhub.hub")

#: How many pending events one store read returns.
BATCH = 100


def handler_failed(event: Event, exc: Exception) -> str:
    """Log a handler's failure; what is stored on the event for its retry."""
    logger.exception("event %s (%s): handler failed", event.id, event.type)
    return f"{type(exc).__name__}: {exc}"


def refuse_awaitable(result: object) -> None:
    """The sync hub cannot await a coroutine handler: close it and say so."""
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError("an async handler needs AsyncPayHub")


def run_handlers(hub: PayHub, event: Event) -> str | None:
    """Run the handlers of one event; the first failure, or None."""
    for handler in hub._subscribers.for_type(event.type):
        try:
            refuse_awaitable(handler(event))
        except Exception as exc:
            return handler_failed(event, exc)
    return None


async def run_handlers_async(hub: AsyncPayHub, event: Event) -> str | None:
    """Run the handlers of one event; the first failure, or None."""
    for handler in hub._subscribers.for_type(event.type):
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            return handler_failed(event, exc)
    return None


def dispatch_events(
    hub: PayHub, out_trade_no: str | None, limit: int | None, lease: timedelta
) -> int:
    store = hub._require_store()
    if not hub._subscribers:
        return 0
    delivered = tried = 0
    after: Event | None = None
    while limit is None or tried < limit:
        batch = hub._call_store(
            store.events, out_trade_no=out_trade_no, pending=True, limit=BATCH, after=after
        )
        if not batch:
            break
        for event in batch:
            after = event
            if limit is not None and tried >= limit:
                break
            tried += 1
            claimed = hub._call_store(store.claim_event, event.id, lease)
            if claimed is None:
                continue
            error = run_handlers(hub, claimed)
            if error is None:
                hub._call_store(store.mark_dispatched, event.id)
                delivered += 1
            else:
                hub._call_store(store.release_event, event.id, error)
    return delivered


async def dispatch_events_async(
    hub: AsyncPayHub, out_trade_no: str | None, limit: int | None, lease: timedelta
) -> int:
    store = hub._require_store()
    if not hub._subscribers:
        return 0
    delivered = tried = 0
    after: Event | None = None
    while limit is None or tried < limit:
        batch = await hub._call_store(
            store.events, out_trade_no=out_trade_no, pending=True, limit=BATCH, after=after
        )
        if not batch:
            break
        for event in batch:
            after = event
            if limit is not None and tried >= limit:
                break
            tried += 1
            claimed = await hub._call_store(store.claim_event, event.id, lease)
            if claimed is None:
                continue
            error = await run_handlers_async(hub, claimed)
            if error is None:
                await hub._call_store(store.mark_dispatched, event.id)
                delivered += 1
            else:
                await hub._call_store(store.release_event, event.id, error)
    return delivered


def dispatch_after_commit(hub: PayHub, out_trade_no: str, lease: timedelta) -> None:
    try:
        dispatch_events(hub, out_trade_no, None, lease)
    except PayhubError as exc:
        logger.warning("events of %s not dispatched now: %s", out_trade_no, exc.message)


async def dispatch_after_commit_async(
    hub: AsyncPayHub, out_trade_no: str, lease: timedelta
) -> None:
    try:
        await dispatch_events_async(hub, out_trade_no, None, lease)
    except PayhubError as exc:
        logger.warning("events of %s not dispatched now: %s", out_trade_no, exc.message)
