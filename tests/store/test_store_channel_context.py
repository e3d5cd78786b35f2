"""A channel's ``channel_context`` is stored with the payment and handed back to
its queries, so a new process (after a restart, ``payhub sync``) finds the trade."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from storekit import ToyBank, ToyChannel

from payhub import AsyncPayHub, Money, PayHub, PaymentRequest, PayMethod, RefundRequest
from payhub.store import PaymentState, Store


def request(out_trade_no: str) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no=out_trade_no, amount=Money(1000), subject="top-up", method=PayMethod.QR
    )


def test_pay_stores_the_context_of_the_channel_that_took_it(
    hub, store: Store, bank: ToyBank
) -> None:
    bank.fail_pay["toy-a"] = "busy"
    assert hub.pay(request("C1")).channel_context == {"opened_by": "toy-b"}
    payment = store.payment("C1")
    assert payment is not None
    assert (payment.channel, payment.channel_context) == ("toy-b", {"opened_by": "toy-b"})


def test_a_new_hub_queries_with_the_stored_context(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "timeout"  # the trade may exist at toy-a too: sync asks both
    hub.pay(request("C2"))
    bank.trades[("toy-b", "C2")].status = "paid"  # its notification was lost
    # A restart: new channel objects, a new hub, the same database.
    fresh = [ToyChannel("toy-a"), ToyChannel("toy-b")]
    with type(hub)(channels=fresh, store=store, http_client=bank.client()) as restarted:
        assert restarted.query("toy-b", "C2").status.value == "paid"
        report = restarted.sync_pending(older_than=timedelta(0))
    assert report.changed == {"C2": PaymentState.PAID}
    assert report.errors == {}
    # toy-b took the payment: its context, every time; toy-a did not: no context at all.
    assert fresh[1].queried == [("C2", {"opened_by": "toy-b"})] * 2
    assert fresh[0].queried == [("C2", None)]


def test_a_new_async_hub_queries_with_the_stored_context(hub, store: Store, bank: ToyBank) -> None:
    hub.pay(request("C3"))
    bank.trades[("toy-a", "C3")].status = "paid"
    fresh = ToyChannel("toy-a")

    async def sync() -> None:
        async with AsyncPayHub(
            channels=[fresh], store=store, http_client=httpx.AsyncClient(transport=bank.transport())
        ) as restarted:
            record = await restarted.sync_payment("C3")
            assert record is not None
            assert record.status is PaymentState.PAID

    asyncio.run(sync())
    assert fresh.queried == [("C3", {"opened_by": "toy-a"})]


def test_refunds_carry_the_payment_context(hub, store: Store, bank: ToyBank) -> None:
    seen: list[RefundRequest] = []

    class Recording(ToyChannel):
        def refund(self, request):  # type: ignore[no-untyped-def]
            seen.append(request)
            return super().refund(request)

    hub.pay(request("C4"))
    bank.trades[("toy-a", "C4")].status = "paid"
    hub.sync_payment("C4")
    with type(hub)(
        channels=[Recording("toy-a")], store=store, http_client=bank.client()
    ) as restarted:
        restarted.refund(
            None, RefundRequest(out_trade_no="C4", out_refund_no="C4-R1", amount=Money(100))
        )
    assert seen[0].payment_context == {"opened_by": "toy-a"}
    assert seen[0].total == Money(1000)


def test_upgrade_from_0001_keeps_the_payments(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with Store(url) as old:
        old.upgrade("0001")
        assert old.current_revision() == "0001"
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO payhub_payments (out_trade_no, amount_minor, currency, subject,"
                    " method, status, channel, channel_trade_id, created_at, updated_at)"
                    " VALUES ('OLD1', 1000, 'CNY', 'top-up', 'qr', 'pending', 'toy-a', 'T1',"
                    " :now, :now)"
                ),
                {"now": now.replace(tzinfo=None).isoformat(sep=" ")},
            )
    with Store(url) as store:
        store.upgrade()
        assert store.current_revision() == "0010"
        payment = store.payment("OLD1")
        assert payment is not None
        assert (payment.channel, payment.channel_trade_id, payment.amount) == (
            "toy-a",
            "T1",
            Money(1000),
        )
        assert payment.channel_context == {}
        # an old payment is queried as before: without a context
        bank = ToyBank()
        fresh = ToyChannel("toy-a")
        with PayHub(channels=[fresh], store=store, http_client=bank.client()) as hub:
            hub.pay(request("NEW1"))
            hub.sync_payment("OLD1")
        assert store.payment("NEW1").channel_context == {"opened_by": "toy-a"}  # type: ignore[union-attr]
        assert fresh.queried == [("OLD1", None)]
