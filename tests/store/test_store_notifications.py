"""Applying notifications: each legal and illegal transition, on every database."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from storekit import ToyBank, notification

from payhub import ErrorCode, Money, NotificationRejected, PaymentRequest, PayMethod, StoreError
from payhub.store import AnomalyKind, InboxOutcome, PaymentState, Store, TransitionCause
from payhub.store._schema import events, notifications


def pay(hub, out_trade_no: str, amount: int = 1000, channel: str | None = None, currency="CNY"):
    return hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no,
            amount=Money(amount, currency),
            subject="gift card",
            method=PayMethod.QR,
            channel=channel,
        )
    )


def count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def event_types(store: Store, out_trade_no: str) -> list[str]:
    return [e.type for e in store.events(out_trade_no=out_trade_no)]


def test_payment_notification_credits_once(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "N1")
    headers, body = bank.buyer_pays("toy-a", "N1")
    first = hub.handle_notification("toy-a", headers, body)
    assert first.accepted
    assert first.ack.ok
    assert first.applied is not None
    assert first.applied.outcome is InboxOutcome.APPLIED
    assert first.applied.transition == (PaymentState.PENDING, PaymentState.PAID)
    record = store.payment("N1")
    assert record is not None
    assert record.status is PaymentState.PAID
    assert record.channel == "toy-a"
    assert record.channel_trade_id == "toy-a-T-N1"
    assert record.paid_at is not None
    assert record.paid_at.utcoffset() is not None
    for _ in range(3):
        again = hub.handle_notification("toy-a", headers, body)
        assert again.ack.ok
        assert again.applied is not None
        assert again.applied.outcome is InboxOutcome.DUPLICATE
    assert store.payment("N1") == record
    assert event_types(store, "N1") == ["payment.succeeded"]
    assert [(a.from_status, a.to_status, a.cause) for a in store.audit("N1")] == [
        (None, PaymentState.PENDING, TransitionCause.PAY),
        (PaymentState.PENDING, PaymentState.PAID, TransitionCause.NOTIFICATION),
    ]
    [inbox] = store.inbox("N1")
    assert inbox.outcome is InboxOutcome.APPLIED
    assert inbox.raw_body == body


def test_event_carries_what_the_shop_needs(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "N2", 1234)
    hub.handle_notification("toy-a", *notification("N2", amount=1234))
    [event] = store.events(out_trade_no="N2")
    assert len(event.id) == 32
    assert event.payload["amount"] == {"minor": 1234, "currency": "CNY"}
    assert event.payload["channel"] == "toy-a"
    assert event.payload["status"] == "paid"
    assert event.payload["cause"] == "notification"


def test_unknown_payment_is_rejected_and_nothing_written(hub, store: Store) -> None:
    outcome = hub.handle_notification("toy-a", *notification("NOT-OURS"))
    assert not outcome.ack.ok
    assert outcome.ack.body == b"fail"
    assert isinstance(outcome.error, NotificationRejected)
    assert outcome.error.code is ErrorCode.UNKNOWN_PAYMENT
    assert count(store, notifications) == 0
    assert count(store, events) == 0


def test_forged_notification_is_rejected_and_nothing_written(hub, store: Store) -> None:
    pay(hub, "N3")
    headers, body = notification("N3", secret=b"not the key")
    outcome = hub.handle_notification("toy-a", headers, body)
    assert not outcome.ack.ok
    assert outcome.notification is None
    assert count(store, notifications) == 0
    assert store.payment("N3").status is PaymentState.PENDING


@pytest.mark.parametrize(("amount", "currency"), [(999, "CNY"), (1000, "USD")])
def test_amount_mismatch_goes_to_review_never_credited(
    hub, store: Store, amount: int, currency: str
) -> None:
    pay(hub, "N4")
    outcome = hub.handle_notification(
        "toy-a", *notification("N4", amount=amount, currency=currency)
    )
    assert outcome.ack.ok  # recorded: the channel need not resend
    assert outcome.applied.outcome is InboxOutcome.REVIEW
    record = store.payment("N4")
    assert record.status is PaymentState.REVIEW
    assert record.paid_at is None
    [anomaly] = store.anomalies("N4")
    assert anomaly.kind is AnomalyKind.AMOUNT_MISMATCH
    assert anomaly.amount == Money(amount, currency)
    assert event_types(store, "N4") == ["payment.amount_mismatch"]
    # A second, correct-looking notification of the same trade does not credit it.
    later = hub.handle_notification("toy-a", *notification("N4", event_key="again"))
    assert later.ack.ok
    assert store.payment("N4").status is PaymentState.REVIEW
    assert "payment.succeeded" not in event_types(store, "N4")
    # Nor can it be refunded or paid again.
    with pytest.raises(Exception, match="review"):
        pay(hub, "N4")


def test_duplicate_payment_through_another_channel(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "timeout"  # the trade exists at toy-a, we never heard
    result = pay(hub, "N5")
    assert result.channel == "toy-b"
    attempts = store.attempts("N5")
    assert [(a.channel, a.outcome.value, a.may_exist) for a in attempts] == [
        ("toy-a", "timeout", True),
        ("toy-b", "succeeded", False),
    ]
    assert hub.handle_notification("toy-b", *bank.buyer_pays("toy-b", "N5")).ack.ok
    # The buyer also paid the QR code of toy-a (it was shown before the timeout).
    late = hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "N5"))
    assert late.ack.ok
    assert late.applied.outcome is InboxOutcome.REVIEW
    record = store.payment("N5")
    assert record.status is PaymentState.PAID
    assert record.channel == "toy-b"
    [anomaly] = store.anomalies("N5")
    assert anomaly.kind is AnomalyKind.DUPLICATE_PAYMENT
    assert anomaly.channel == "toy-a"
    assert anomaly.status == "open"
    assert event_types(store, "N5") == ["payment.succeeded", "payment.duplicate"]
    # The same duplicate seen again (resend, or sync) is recorded once.
    hub.handle_notification("toy-a", *notification("N5", event_key="TRADE_FINISHED"))
    assert len(store.anomalies("N5")) == 1


def test_late_payment_after_close(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "N6")
    closed = hub.handle_notification("toy-a", *notification("N6", kind="closed"))
    assert closed.applied.transition == (PaymentState.PENDING, PaymentState.CLOSED)
    late = hub.handle_notification("toy-a", *notification("N6"))
    assert late.ack.ok
    assert late.applied.outcome is InboxOutcome.REVIEW
    assert store.payment("N6").status is PaymentState.CLOSED
    [anomaly] = store.anomalies("N6")
    assert anomaly.kind is AnomalyKind.LATE_PAYMENT
    assert event_types(store, "N6") == ["payment.closed", "payment.late"]


def test_close_of_another_channels_trade_does_not_close(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "timeout"
    pay(hub, "N7")  # taken by toy-b; toy-a may hold a trade too
    outcome = hub.handle_notification("toy-a", *notification("N7", kind="closed"))
    assert outcome.applied.outcome is InboxOutcome.IGNORED
    assert store.payment("N7").status is PaymentState.PENDING


@pytest.mark.external_refunds
def test_refund_before_payment_is_deferred_then_applied(hub, store: Store) -> None:
    pay(hub, "N8")
    refund = hub.handle_notification(
        "toy-a", *notification("N8", kind="refund", refund_amount=300, out_refund_no="R8")
    )
    assert refund.ack.ok
    assert refund.applied.outcome is InboxOutcome.DEFERRED
    record = store.payment("N8")
    assert record.status is PaymentState.PENDING
    assert record.refunded == Money(0)
    assert store.refunds("N8") == []
    paid = hub.handle_notification("toy-a", *notification("N8"))
    assert paid.applied.outcome is InboxOutcome.APPLIED
    record = store.payment("N8")
    assert record.status is PaymentState.PARTIALLY_REFUNDED
    assert record.refunded == Money(300)
    [stored] = store.refunds("N8")
    assert (stored.out_refund_no, stored.status.value, stored.origin) == (
        "R8",
        "succeeded",
        "notification",
    )
    assert [i.outcome for i in store.inbox("N8")] == [InboxOutcome.APPLIED, InboxOutcome.APPLIED]
    assert event_types(store, "N8") == ["payment.succeeded", "payment.refunded"]
    # The refund notification resent changes nothing.
    again = hub.handle_notification(
        "toy-a", *notification("N8", kind="refund", refund_amount=300, out_refund_no="R8")
    )
    assert again.applied.outcome is InboxOutcome.DUPLICATE
    assert store.payment("N8").refunded == Money(300)


def test_a_refund_payhub_did_not_ask_for_is_held_for_review(hub, store: Store) -> None:
    """By default an unknown refund changes no payment: recorded, alerted, acked."""
    seen: list[str] = []
    hub.subscribe("*", lambda event: seen.append(event.type))
    pay(hub, "N11")
    hub.handle_notification("toy-a", *notification("N11"))
    outcome = hub.handle_notification(
        "toy-a", *notification("N11", kind="refund", refund_amount=300, out_refund_no="R-X")
    )
    assert outcome.ack.ok  # recorded for review: the channel need not resend
    assert outcome.applied.outcome is InboxOutcome.REVIEW
    record = store.payment("N11")
    assert record.status is PaymentState.PAID
    assert record.refunded == Money(0)
    assert store.refunds("N11") == []
    assert [a.kind.value for a in store.anomalies("N11")] == ["orphan_refund"]
    assert seen == ["payment.succeeded", "refund.review"]


@pytest.mark.external_refunds
def test_running_refund_totals_apply_each_refund_once(hub, store: Store) -> None:
    """Alipay reports refund_fee as the trade's running total, not the refund itself."""
    pay(hub, "N10")
    hub.handle_notification("toy-a", *notification("N10"))

    def refund(total: int, out_refund_no: str) -> Any:
        return hub.handle_notification(
            "toy-a",
            *notification("N10", kind="refund", refunded_total=total, out_refund_no=out_refund_no),
        )

    assert refund(300, "R10a").applied.outcome is InboxOutcome.APPLIED
    assert store.payment("N10").refunded == Money(300)
    # The second refund's notification says 800 in all: it refunded 500, not 800.
    assert refund(800, "R10b").applied.outcome is InboxOutcome.APPLIED
    record = store.payment("N10")
    assert record.refunded == Money(800)
    assert record.status is PaymentState.PARTIALLY_REFUNDED
    amounts = {r.out_refund_no: r.amount for r in store.refunds("N10")}
    assert amounts == {"R10a": Money(300), "R10b": Money(500)}
    # A new refund number whose total adds nothing is not a refund: held, never applied.
    assert refund(800, "R10c").applied.outcome is not InboxOutcome.APPLIED
    assert store.payment("N10").refunded == Money(800)
    # The rest, in full.
    assert refund(1000, "R10d").applied.outcome is InboxOutcome.APPLIED
    assert store.payment("N10").status is PaymentState.REFUNDED


@pytest.mark.external_refunds
def test_refunds_by_notification_partial_then_full(hub, store: Store) -> None:
    pay(hub, "N9")
    hub.handle_notification("toy-a", *notification("N9"))
    hub.handle_notification(
        "toy-a", *notification("N9", kind="refund", refund_amount=400, out_refund_no="R9a")
    )
    assert store.payment("N9").status is PaymentState.PARTIALLY_REFUNDED
    hub.handle_notification(
        "toy-a", *notification("N9", kind="refund", refund_amount=600, out_refund_no="R9b")
    )
    record = store.payment("N9")
    assert record.status is PaymentState.REFUNDED
    assert record.refunded == Money(1000)
    # More than was paid is never applied: recorded for review.
    over = hub.handle_notification(
        "toy-a", *notification("N9", kind="refund", refund_amount=1, out_refund_no="R9c")
    )
    assert over.ack.ok
    assert over.applied.outcome is InboxOutcome.REVIEW
    assert store.payment("N9").refunded == Money(1000)
    assert [a.kind for a in store.anomalies("N9")] == [AnomalyKind.ORPHAN_REFUND]


def test_refund_of_a_duplicate_payment_resolves_it(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "timeout"
    pay(hub, "N10")
    hub.handle_notification("toy-b", *bank.buyer_pays("toy-b", "N10"))
    hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "N10"))
    outcome = hub.handle_notification(
        "toy-a", *notification("N10", kind="refund", refund_amount=1000, out_refund_no="D10")
    )
    assert outcome.applied.outcome is InboxOutcome.IGNORED
    assert store.payment("N10").refunded == Money(0)
    assert store.payment("N10").status is PaymentState.PAID
    [anomaly] = store.anomalies("N10")
    assert anomaly.status == "resolved"


def test_finished_credits_a_pending_payment_and_informational_is_ignored(hub, store) -> None:
    pay(hub, "N11")
    pending = hub.handle_notification("toy-a", *notification("N11", kind="pending"))
    assert pending.applied.outcome is InboxOutcome.IGNORED
    finished = hub.handle_notification("toy-a", *notification("N11", kind="finished"))
    assert finished.applied.transition == (PaymentState.PENDING, PaymentState.PAID)


def test_long_event_keys_are_hashed(hub, store: Store) -> None:
    pay(hub, "N12")
    key = "k" * 500
    assert hub.handle_notification("toy-a", *notification("N12", event_key=key)).ack.ok
    dup = hub.handle_notification("toy-a", *notification("N12", event_key=key))
    assert dup.applied.outcome is InboxOutcome.DUPLICATE
    [inbox] = store.inbox("N12")
    assert inbox.event_key.startswith("sha256:")


def test_out_trade_no_is_case_sensitive(hub, store: Store) -> None:
    pay(hub, "Case1")
    pay(hub, "case1", amount=500)
    hub.handle_notification("toy-a", *notification("case1", amount=500))
    assert store.payment("Case1").status is PaymentState.PENDING
    assert store.payment("case1").status is PaymentState.PAID


def test_transition_hook_runs_inside_the_transaction(hub, store: Store) -> None:
    seen = []

    def ledger(conn, transition) -> None:
        seen.append((transition.from_state, transition.to_state, transition.amount))
        if transition.out_trade_no == "N14":
            raise RuntimeError("ledger down")

    store.add_transition_hook(ledger)
    pay(hub, "N13")
    hub.handle_notification("toy-a", *notification("N13"))
    assert seen == [(PaymentState.PENDING, PaymentState.PAID, Money(1000))]
    pay(hub, "N14")
    with pytest.raises(RuntimeError):
        hub.handle_notification("toy-a", *notification("N14"))
    # The hook failed: the whole transaction rolled back.
    assert store.payment("N14").status is PaymentState.PENDING
    assert store.inbox("N14") == []


def test_store_errors_are_typed_and_say_nothing_secret() -> None:
    with (
        Store("postgresql+psycopg://shop:hunter2@127.0.0.1:1/x") as store,
        pytest.raises(StoreError) as info,
    ):
        store.payment("x")
    assert "hunter2" not in str(info.value)
    assert info.value.retryable
