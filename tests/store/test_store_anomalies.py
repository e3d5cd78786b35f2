"""Anomalies: implausible paid times, held refunds with their amount, refunding a
duplicate payment where it was taken, and resolving anomalies by hand (issue 11,
points 11, 21 and 22)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from storekit import ToyBank, ToyChannel, notification

from payhub import (
    AsyncPayHub,
    ChannelTimeout,
    ConfigurationError,
    InvalidRequestError,
    Money,
    PayHub,
    PaymentRequest,
    PaymentStateError,
    PayMethod,
    RefundRequest,
    RefundStatus,
)
from payhub.store import (
    AnomalyKind,
    AnomalyStatus,
    InboxOutcome,
    PaymentState,
    RefundState,
    Store,
)


def pay(hub, out_trade_no: str, amount: int = 1000):  # type: ignore[no-untyped-def]
    return hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no, amount=Money(amount), subject="card", method=PayMethod.QR
        )
    )


def event_payloads(store: Store, out_trade_no: str, event_type: str) -> list[dict]:
    return [e.payload for e in store.events(out_trade_no=out_trade_no) if e.type == event_type]


# -- point 11: a paid time the payment cannot have -------------------------------


def test_paid_time_years_before_the_payment_is_flagged_and_still_credited(hub, store) -> None:
    pay(hub, "T1")
    created = store.payment("T1").created_at
    years_ago = created - timedelta(days=3 * 365)
    outcome = hub.handle_notification("toy-a", *notification("T1", paid_at=years_ago))
    assert outcome.ack.ok
    assert outcome.applied.outcome is InboxOutcome.APPLIED  # the money moved: credited
    record = store.payment("T1")
    assert record.status is PaymentState.PAID
    # The implausible time is not the payment's paid_at (settlement counts from it).
    assert abs(record.paid_at - datetime.now(UTC)) < timedelta(minutes=1)
    [anomaly] = store.anomalies("T1")
    assert anomaly.kind is AnomalyKind.PAID_TIME
    assert anomaly.status == AnomalyStatus.OPEN
    assert anomaly.amount == Money(1000)
    assert anomaly.detail["paid_at"] == years_ago.isoformat()
    assert "before the payment was created" in anomaly.detail["why"]
    [payload] = event_payloads(store, "T1", "payment.time_anomaly")
    assert payload["anomaly"] == "paid_time"
    assert payload["paid_at"] == years_ago.isoformat()
    # The shop still gets its card-delivery event.
    assert [e.type for e in store.events(out_trade_no="T1")] == [
        "payment.succeeded",
        "payment.time_anomaly",
    ]


def test_paid_time_in_the_future_is_flagged(hub, store) -> None:
    pay(hub, "T2")
    ahead = datetime.now(UTC) + timedelta(hours=2)
    assert hub.handle_notification("toy-a", *notification("T2", paid_at=ahead)).ack.ok
    assert store.payment("T2").status is PaymentState.PAID
    [anomaly] = store.anomalies("T2")
    assert anomaly.kind is AnomalyKind.PAID_TIME
    assert "in the future" in anomaly.detail["why"]


def test_paid_time_within_the_clock_skew_is_taken_as_is(hub, store) -> None:
    pay(hub, "T3")
    slightly_early = store.payment("T3").created_at - timedelta(minutes=9)
    assert hub.handle_notification("toy-a", *notification("T3", paid_at=slightly_early)).ack.ok
    record = store.payment("T3")
    assert record.paid_at == slightly_early
    assert store.anomalies("T3") == []


def test_the_clock_skew_is_configurable(store_url: str, bank: ToyBank) -> None:
    with pytest.raises(ConfigurationError, match="paid_time_skew"):
        Store(store_url, paid_time_skew=-1)
    with pytest.raises(ConfigurationError, match="paid_time_skew"):
        Store(store_url, paid_time_skew="10m")
    with (
        Store.from_config({"url": store_url, "paid_time_skew": 30}) as store,
        PayHub(channels=[ToyChannel("toy-a")], store=store, http_client=bank.client()) as hub,
    ):
        pay(hub, "T4")
        early = store.payment("T4").created_at - timedelta(minutes=1)
        assert hub.handle_notification("toy-a", *notification("T4", paid_at=early)).ack.ok
        assert [a.kind for a in store.anomalies("T4")] == [AnomalyKind.PAID_TIME]


# -- point 22: a refund made in the merchant console carries its amount ----------


def test_a_console_refund_held_for_review_carries_its_amount(hub, store) -> None:
    """Alipay's refund_fee is the trade's running total: the held refund's amount is
    what the new total adds to what is already recorded."""
    seen: list[dict] = []
    hub.subscribe("refund.review", lambda event: seen.append(event.payload))
    pay(hub, "C1")
    hub.handle_notification("toy-a", *notification("C1"))

    def console_refund(total: int, out_refund_no: str):  # type: ignore[no-untyped-def]
        return hub.handle_notification(
            "toy-a",
            *notification("C1", kind="refund", refunded_total=total, out_refund_no=out_refund_no),
        )

    assert console_refund(300, "CR1").applied.outcome is InboxOutcome.REVIEW
    assert console_refund(800, "CR2").applied.outcome is InboxOutcome.REVIEW
    amounts = [(a.detail["out_refund_no"], a.amount) for a in store.anomalies("C1")]
    assert amounts == [("CR1", Money(300)), ("CR2", Money(500))]
    assert [p["amount"] for p in seen] == [
        {"minor": 300, "currency": "CNY"},
        {"minor": 500, "currency": "CNY"},
    ]
    assert seen[1]["refunded_total"] == {"minor": 800, "currency": "CNY"}
    # Nothing was applied to the payment.
    assert store.payment("C1").refunded == Money(0)
    assert store.payment("C1").status is PaymentState.PAID


# -- point 21: refund a duplicate where it was taken; list and resolve ------------


def duplicate(hub, bank: ToyBank, out_trade_no: str) -> int:  # type: ignore[no-untyped-def]
    """Paid at toy-b (toy-a timed out), then also at toy-a: the anomaly's id."""
    bank.fail_pay["toy-a"] = "timeout"
    assert pay(hub, out_trade_no).channel == "toy-b"
    del bank.fail_pay["toy-a"]
    assert hub.handle_notification("toy-b", *bank.buyer_pays("toy-b", out_trade_no)).ack.ok
    assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", out_trade_no)).ack.ok
    [anomaly] = hub.anomalies(out_trade_no)
    assert anomaly.kind is AnomalyKind.DUPLICATE_PAYMENT
    return anomaly.id


def test_refund_a_duplicate_on_the_channel_that_took_it(hub, store, bank: ToyBank) -> None:
    anomaly_id = duplicate(hub, bank, "D1")
    # The payment's own refund path still refuses another channel: that is its payment.
    with pytest.raises(InvalidRequestError, match="taken by 'toy-b'"):
        hub.refund("toy-a", RefundRequest(out_trade_no="D1", out_refund_no="X", amount=Money(1)))
    result = hub.refund_duplicate(anomaly_id, out_refund_no="D1-R", reason="paid twice")
    assert (result.channel, result.status, result.amount) == (
        "toy-a",
        RefundStatus.SUCCEEDED,
        Money(1000),
    )
    assert bank.refunds == [("toy-a", "D1-R", 1000)]
    # The payment itself is untouched: still paid in full at toy-b, refundable there.
    record = store.payment("D1")
    assert (record.status, record.channel, record.refunded) == (
        PaymentState.PAID,
        "toy-b",
        Money(0),
    )
    [refund] = store.refunds("D1")
    assert (refund.channel, refund.status, refund.anomaly_id) == (
        "toy-a",
        RefundState.SUCCEEDED,
        anomaly_id,
    )
    anomaly = store.anomaly(anomaly_id)
    assert anomaly.status == AnomalyStatus.RESOLVED
    assert anomaly.resolved_by == "payhub"
    assert "D1-R" in anomaly.resolution
    types = [e.type for e in store.events(out_trade_no="D1")]
    assert "payment.refunded" not in types  # the shop must not take back the card
    assert types[-2:] == ["payment.duplicate_refunded", "anomaly.resolved"]
    assert hub.anomalies("D1") == []  # nothing open
    # Exactly once: the same number again is the stored result, no second refund.
    again = hub.refund_duplicate(anomaly_id, out_refund_no="D1-R")
    assert again.status is RefundStatus.SUCCEEDED
    assert len(bank.refunds) == 1
    # Another number: nothing left to refund of that duplicate.
    with pytest.raises(PaymentStateError, match="resolved"):
        hub.refund_duplicate(anomaly_id, out_refund_no="D1-R2")
    # The payment's own money can still be refunded in full, at toy-b.
    own_request = RefundRequest(out_trade_no="D1", out_refund_no="D1-O", amount=Money(1000))
    own = hub.refund(None, own_request)
    assert own.channel == "toy-b"
    assert store.payment("D1").status is PaymentState.REFUNDED


def test_refund_a_duplicate_named_by_channel_and_order(hub, store, bank: ToyBank) -> None:
    duplicate(hub, bank, "D2")
    with pytest.raises(InvalidRequestError, match="no open duplicate"):
        hub.refund_duplicate(("toy-b", "D2"), out_refund_no="D2-R")
    result = hub.refund_duplicate(("toy-a", "D2"), out_refund_no="D2-R", amount=Money(400))
    assert result.amount == Money(400)
    # Partly refunded: still open, for the rest.
    [anomaly] = hub.anomalies("D2")
    with pytest.raises(PaymentStateError, match="exceeds what is left"):
        hub.refund_duplicate(anomaly.id, out_refund_no="D2-R2", amount=Money(601))
    rest = hub.refund_duplicate(anomaly.id, out_refund_no="D2-R2")
    assert rest.amount == Money(600)
    assert store.anomaly(anomaly.id).status == AnomalyStatus.RESOLVED
    assert sorted(r[2] for r in bank.refunds) == [400, 600]


def test_a_duplicate_refund_whose_answer_was_lost_is_settled_by_query(
    hub, store, bank: ToyBank
) -> None:
    anomaly_id = duplicate(hub, bank, "D3")
    bank.fail_refund["toy-a"] = "lost"  # made at the channel, the answer lost
    with pytest.raises(ChannelTimeout):
        hub.refund_duplicate(anomaly_id, out_refund_no="D3-R")
    [refund] = store.refunds("D3")
    assert refund.status is RefundState.PENDING
    # While its outcome is unknown nobody closes the anomaly by hand, and the
    # reservation holds: no second refund of the same money.
    with pytest.raises(PaymentStateError, match="pending"):
        hub.resolve_anomaly(anomaly_id, operator="ops", reason="looks done")
    with pytest.raises(PaymentStateError, match="exceeds"):
        hub.refund_duplicate(anomaly_id, out_refund_no="D3-R2")
    del bank.fail_refund["toy-a"]
    assert hub.sync_refund("D3-R").status is RefundState.SUCCEEDED
    assert store.anomaly(anomaly_id).status == AnomalyStatus.RESOLVED
    assert bank.refunds == [("toy-a", "D3-R", 1000)]


def test_a_refused_duplicate_refund_releases_its_reservation(hub, store, bank) -> None:
    anomaly_id = duplicate(hub, bank, "D4")
    bank.fail_refund["toy-a"] = "refuse"
    with pytest.raises(Exception, match="no balance"):
        hub.refund_duplicate(anomaly_id, out_refund_no="D4-R")
    assert store.refund("D4-R").status is RefundState.FAILED
    del bank.fail_refund["toy-a"]
    assert hub.refund_duplicate(anomaly_id, out_refund_no="D4-R2").status is (
        RefundStatus.SUCCEEDED
    )


def test_refund_a_late_payment_of_a_closed_order(hub, store, bank: ToyBank) -> None:
    pay(hub, "D5")
    hub.handle_notification("toy-a", *notification("D5", kind="closed"))
    late = hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "D5"))
    assert late.applied.outcome is InboxOutcome.REVIEW
    [anomaly] = hub.anomalies("D5")
    assert anomaly.kind is AnomalyKind.LATE_PAYMENT
    result = hub.refund_duplicate(anomaly.id, out_refund_no="D5-R")
    assert result.status is RefundStatus.SUCCEEDED
    assert store.payment("D5").status is PaymentState.CLOSED
    assert store.anomaly(anomaly.id).status == AnomalyStatus.RESOLVED


def test_only_duplicates_are_refunded_this_way(hub, store) -> None:
    pay(hub, "D6")
    hub.handle_notification("toy-a", *notification("D6", amount=999))  # amount mismatch
    [anomaly] = hub.anomalies("D6")
    with pytest.raises(InvalidRequestError, match="amount_mismatch"):
        hub.refund_duplicate(anomaly.id, out_refund_no="D6-R")
    with pytest.raises(InvalidRequestError, match="no anomaly 424242"):
        hub.refund_duplicate(424242, out_refund_no="D6-R")
    assert store.refunds("D6") == []


def test_resolve_an_anomaly_by_hand_is_audited(hub, store) -> None:
    pay(hub, "D7")
    hub.handle_notification("toy-a", *notification("D7", amount=999))
    [anomaly] = hub.anomalies("D7")
    for operator, reason in (("", "checked"), ("ops", " "), ("ops", "a\nb")):
        with pytest.raises(InvalidRequestError):
            hub.resolve_anomaly(anomaly.id, operator=operator, reason=reason)
    assert store.anomaly(anomaly.id).status == AnomalyStatus.OPEN
    resolved = hub.resolve_anomaly(
        anomaly.id, operator="li.wei", reason="buyer paid 9.99 by mistake; refunded by bank"
    )
    assert (resolved.status, resolved.resolved_by, resolved.resolution) == (
        "resolved",
        "li.wei",
        "buyer paid 9.99 by mistake; refunded by bank",
    )
    assert resolved.resolved_at is not None
    [payload] = event_payloads(store, "D7", "anomaly.resolved")
    assert (payload["resolved_by"], payload["anomaly_id"]) == ("li.wei", anomaly.id)
    assert payload["resolution"].startswith("buyer paid")
    with pytest.raises(PaymentStateError, match="already resolved"):
        hub.resolve_anomaly(anomaly.id, operator="li.wei", reason="again")
    assert hub.anomalies("D7") == []
    assert [a.id for a in hub.anomalies("D7", status=None)] == [anomaly.id]
    assert [a.id for a in store.anomalies(status="resolved", kind="amount_mismatch")] == [
        anomaly.id
    ]
    with pytest.raises(InvalidRequestError, match="unknown anomaly status"):
        store.anomalies(status="closed")


def test_async_hub_refunds_and_resolves(store: Store, bank: ToyBank) -> None:
    async def main() -> None:
        async with AsyncPayHub(
            channels=[ToyChannel("toy-a"), ToyChannel("toy-b")],
            store=store,
            http_client=httpx.AsyncClient(transport=bank.transport()),
        ) as hub:
            await hub.pay(
                PaymentRequest(out_trade_no="D8", amount=Money(1000), subject="c", method="qr")
            )
            bank.trades[("toy-b", "D8")] = bank.trades[("toy-a", "D8")].__class__(
                "D8", 1000, "CNY", "toy-b-T-D8"
            )
            await hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "D8"))
            await hub.handle_notification("toy-b", *bank.buyer_pays("toy-b", "D8"))
            [anomaly] = await hub.anomalies("D8")
            assert anomaly.channel == "toy-b"
            result = await hub.refund_duplicate(anomaly.id, out_refund_no="D8-R")
            assert result.status is RefundStatus.SUCCEEDED
            assert await hub.anomalies("D8") == []
            hub_anomaly = store.anomalies("D8")[0]
            assert hub_anomaly.resolved_by == "payhub"
            pay_twice = await hub.pay(
                PaymentRequest(out_trade_no="D9", amount=Money(500), subject="c", method="qr")
            )
            assert pay_twice.channel == "toy-a"
            await hub.handle_notification("toy-a", *notification("D9", amount=1))
            [mismatch] = await hub.anomalies("D9")
            done = await hub.resolve_anomaly(mismatch.id, operator="ops", reason="reviewed")
            assert done.resolved_by == "ops"

    asyncio.run(main())


@pytest.mark.parametrize("refuses_repeats", [False, True], ids=["repeat-ok", "repeat-refused"])
def test_a_duplicate_refund_retried_with_its_number_is_made_once(
    hub, store, bank: ToyBank, refuses_repeats: bool
) -> None:
    """A timed-out refund of a duplicate is retried as the same transaction; a channel
    that calls the resend a duplicate (UnionPay) is asked where the refund stands."""
    anomaly_id = duplicate(hub, bank, "D10")
    bank.reused_refund_numbers_refused = refuses_repeats
    bank.fail_refund["toy-a"] = "lost"
    with pytest.raises(ChannelTimeout):
        hub.refund_duplicate(anomaly_id, out_refund_no="D10-R")
    del bank.fail_refund["toy-a"]
    again = hub.refund_duplicate(anomaly_id, out_refund_no="D10-R")
    assert again.status is RefundStatus.SUCCEEDED
    assert bank.refunds == [("toy-a", "D10-R", 1000)]
    assert [c[1] for c in bank.contexts_seen if c[0] == "/refund"] == ["D10-R", "D10-R"]
    assert store.anomaly(anomaly_id).status == AnomalyStatus.RESOLVED
    assert store.payment("D10").refunded == Money(0)
