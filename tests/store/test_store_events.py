"""Outbox events: dispatched after commit, retried until a handler succeeds, stable ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from storekit import ToyBank, ToyChannel, notification

from payhub import AsyncPayHub, Event, EventType, Money, PayHub, PaymentRequest, PayMethod
from payhub.store import DEFAULT_EVENT_LEASE, InboxOutcome, PaymentState, Store
from payhub.store._schema import events


def pay(hub, out_trade_no: str) -> None:
    hub.pay(PaymentRequest(out_trade_no=out_trade_no, amount=Money(1000), subject="c", method="qr"))


def test_handlers_get_events_after_commit(hub, store: Store) -> None:
    seen: list[tuple[Event, PaymentState]] = []
    hub.subscribe(
        EventType.PAYMENT_SUCCEEDED,
        lambda e: seen.append((e, store.payment(e.out_trade_no).status)),
    )
    everything: list[str] = []
    hub.subscribe("*", lambda e: everything.append(e.type))
    pay(hub, "E1")
    hub.handle_notification("toy-a", *notification("E1"))
    [(event, status_seen)] = seen
    assert status_seen is PaymentState.PAID  # committed before the handler ran
    assert event.type == "payment.succeeded"
    assert event.out_trade_no == "E1"
    assert event.attempts == 1
    assert everything == ["payment.succeeded"]
    [stored] = store.events(out_trade_no="E1", pending=False)
    assert stored.id == event.id
    assert store.events(pending=True) == []


def test_failing_handler_keeps_the_event_and_the_ack(hub, store: Store) -> None:
    calls: list[str] = []

    def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) < 3:
            raise RuntimeError("mail server down")

    hub.subscribe("payment.succeeded", flaky)
    pay(hub, "E2")
    outcome = hub.handle_notification("toy-a", *notification("E2"))
    assert outcome.ack.ok
    [pending] = store.events(pending=True)
    assert hub.dispatch_events() == 0  # fails again
    assert hub.dispatch_events() == 1
    assert store.events(pending=True) == []
    assert calls == [pending.id] * 3
    assert store.events(out_trade_no="E2")[0].attempts == 3


def test_resend_dispatches_what_is_pending(hub, store: Store) -> None:
    pay(hub, "E3")
    headers, body = notification("E3")
    hub.handle_notification("toy-a", headers, body)  # no subscriber yet: stays pending
    assert len(store.events(pending=True)) == 1
    seen: list[str] = []
    hub.subscribe("*", lambda e: seen.append(e.id))
    hub.handle_notification("toy-a", headers, body)  # a duplicate, but the event goes out
    assert len(seen) == 1
    assert store.events(pending=True) == []


def test_a_claimed_event_is_not_delivered_twice(store: Store, bank: ToyBank, hub) -> None:
    pay(hub, "E4")
    hub.handle_notification("toy-a", *notification("E4"))
    [event] = store.events(pending=True)
    assert store.claim_event(event.id) is not None  # another dispatcher holds it
    seen: list[str] = []
    hub.subscribe("*", lambda e: seen.append(e.id))
    assert hub.dispatch_events() == 0
    assert seen == []
    assert store.claim_event(event.id) is None
    # That dispatcher died: after its lease, the event goes out again.
    store.release_event(event.id, "dispatcher died")
    assert hub.dispatch_events(lease=timedelta(seconds=30)) == 1
    assert seen == [event.id]


def test_many_events_are_dispatched_in_order(hub, store: Store) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:  # more than one listing batch (100)
        conn.execute(
            events.insert(),
            [
                {
                    "id": f"{n:032x}"[::-1],
                    "type": "payment.succeeded",
                    "out_trade_no": f"E5-{n}",
                    "payload": {},
                    "created_at": now,
                    "attempts": 0,
                }
                for n in range(110)
            ],
        )
    seen: list[str] = []
    hub.subscribe("payment.succeeded", lambda e: seen.append(e.out_trade_no))
    assert hub.dispatch_events(limit=20) == 20
    assert hub.dispatch_events() == 90
    assert seen == [f"E5-{n}" for n in range(110)]


def test_async_hub_with_a_store(store: Store, bank: ToyBank) -> None:
    async def main() -> None:
        seen: list[str] = []

        async def handler(event: Event) -> None:
            await asyncio.sleep(0)
            seen.append(event.type)

        async with AsyncPayHub(
            channels=[ToyChannel("toy-a")],
            store=store,
            http_client=__import__("httpx").AsyncClient(transport=bank.transport()),
        ) as hub:
            hub.subscribe("*", handler)
            result = await hub.pay(
                PaymentRequest(
                    out_trade_no="E6", amount=Money(1000), subject="c", method=PayMethod.QR
                )
            )
            assert result.attempts[0].outcome.value == "succeeded"
            outcome = await hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "E6"))
            assert outcome.ack.ok
            assert seen == ["payment.succeeded"]
            await hub.refund(
                None,
                __import__("payhub").RefundRequest(
                    out_trade_no="E6", out_refund_no="RE6", amount=Money(100)
                ),
            )
            assert seen == ["payment.succeeded", "payment.refunded"]
            pay_again = PaymentRequest(
                out_trade_no="E7", amount=Money(1000), subject="c", method=PayMethod.QR
            )
            await hub.pay(pay_again)
            bank.trades[("toy-a", "E7")].status = "paid"
            report = await hub.sync_pending(older_than=timedelta(0))
            assert report.changed == {"E7": PaymentState.PAID}
            assert await hub.dispatch_events() == 0
            await hub.close_trade("toy-a", "E6")

    asyncio.run(main())


def test_sync_handler_in_async_hub_and_async_handler_in_sync_hub(hub, store) -> None:
    async def handler(event: Event) -> None:
        raise AssertionError("never awaited by a sync hub")

    hub.subscribe("*", handler)
    pay(hub, "E8")
    assert hub.handle_notification("toy-a", *notification("E8")).ack.ok
    [event] = store.events(pending=True)
    assert event.type == "payment.succeeded"


def test_subscribe_needs_a_callable(hub) -> None:
    with pytest.raises(TypeError):
        hub.subscribe("*", "not callable")


def test_a_resent_notification_delivers_an_event_whose_claim_lapsed(
    store_url: str, bank: ToyBank
) -> None:
    """A process claimed the event and died: the channel's resend delivers it once the
    claim's lease is over, with no ``payhub events dispatch`` job (issue 11, point 18)."""
    now = [datetime.now(UTC)]
    with (
        Store(store_url, clock=lambda: now[0]) as store,
        PayHub(channels=[ToyChannel("toy-a")], store=store, http_client=bank.client()) as hub,
    ):
        pay(hub, "E9")
        headers, body = bank.buyer_pays("toy-a", "E9")
        assert hub.handle_notification("toy-a", headers, body).ack.ok
        [event] = store.events(pending=True)
        # The process that applied it claimed the event, then crashed before delivering.
        assert store.claim_event(event.id) is not None
        seen: list[str] = []
        hub.subscribe("*", lambda e: seen.append(e.id))
        # Resent while the dead process's claim holds: nothing yet.
        assert hub.handle_notification("toy-a", headers, body).ack.ok
        assert seen == []
        now[0] += DEFAULT_EVENT_LEASE + timedelta(seconds=1)  # the lease lapses
        resent = hub.handle_notification("toy-a", headers, body)
        assert resent.ack.ok
        assert resent.applied.outcome is InboxOutcome.DUPLICATE
        assert seen == [event.id]
        assert store.events(pending=True) == []
        # Resent again: delivered once, not twice.
        hub.handle_notification("toy-a", headers, body)
        assert seen == [event.id]


def test_a_resent_refund_notification_naming_its_own_number_delivers_a_lapsed_claim(
    store_url: str, bank: ToyBank
) -> None:
    """UnionPay names a refund by its own order number and the payment only by the
    channel's trade id: its resend still finds the payment's events (point 18)."""
    now = [datetime.now(UTC)]
    with (
        Store(store_url, clock=lambda: now[0], external_refunds=True) as store,
        PayHub(channels=[ToyChannel("toy-a")], store=store, http_client=bank.client()) as hub,
    ):
        pay(hub, "E10")
        assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "E10")).ack.ok
        headers, body = notification(
            "RF-E10", kind="refund", trade_id="toy-a-T-E10", refund_amount=300,
            out_refund_no="RF-E10",
        )
        first = hub.handle_notification("toy-a", headers, body)
        assert first.applied.outcome is InboxOutcome.APPLIED
        assert first.applied.out_trade_no == "E10"
        events_now = store.events(pending=True)
        assert [e.type for e in events_now] == ["payment.succeeded", "payment.refunded"]
        for event in events_now:  # the process died holding both
            assert store.claim_event(event.id) is not None
        seen: list[str] = []
        hub.subscribe("*", lambda e: seen.append(e.type))
        now[0] += DEFAULT_EVENT_LEASE + timedelta(seconds=1)
        resent = hub.handle_notification("toy-a", headers, body)
        assert resent.applied.outcome is InboxOutcome.DUPLICATE
        assert resent.applied.out_trade_no == "E10"
        assert seen == ["payment.succeeded", "payment.refunded"]
        hub.handle_notification("toy-a", headers, body)
        assert len(seen) == 2


def test_the_async_hub_also_delivers_a_lapsed_claim_on_a_resend(
    store_url: str, bank: ToyBank
) -> None:
    now = [datetime.now(UTC)]

    async def main(store: Store) -> list[str]:
        seen: list[str] = []
        async with AsyncPayHub(
            channels=[ToyChannel("toy-a")],
            store=store,
            http_client=__import__("httpx").AsyncClient(transport=bank.transport()),
        ) as hub:
            await hub.pay(
                PaymentRequest(out_trade_no="E11", amount=Money(1000), subject="c", method="qr")
            )
            headers, body = bank.buyer_pays("toy-a", "E11")
            await hub.handle_notification("toy-a", headers, body)
            [event] = store.events(pending=True)
            assert store.claim_event(event.id) is not None  # then that process died
            hub.subscribe("*", lambda e: seen.append(e.id))
            now[0] += DEFAULT_EVENT_LEASE + timedelta(seconds=1)
            await hub.handle_notification("toy-a", headers, body)
            await hub.handle_notification("toy-a", headers, body)
            assert seen == [event.id]
        return seen

    with Store(store_url, clock=lambda: now[0]) as store:
        assert len(asyncio.run(main(store))) == 1
        assert store.events(pending=True) == []
