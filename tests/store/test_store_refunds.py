"""Refunds through the hub: idempotent, and never more than was paid, also when racing."""

from __future__ import annotations

import threading

import pytest
from storekit import ToyBank, notification, paid

from payhub import (
    ChannelError,
    ChannelTimeout,
    ErrorCode,
    InvalidRequestError,
    Money,
    PaymentRequest,
    PaymentStateError,
    RefundRequest,
    RefundStatus,
)
from payhub.store import InboxOutcome, PaymentState, RefundState, Store


def refund(out_trade_no: str, out_refund_no: str, amount: int) -> RefundRequest:
    return RefundRequest(
        out_trade_no=out_trade_no, out_refund_no=out_refund_no, amount=Money(amount)
    )


def test_refund_applies_and_is_idempotent(hub, store: Store, bank: ToyBank) -> None:
    paid(hub, bank, "F1")
    result = hub.refund(None, refund("F1", "RF1", 300))
    assert result.status is RefundStatus.SUCCEEDED
    record = store.payment("F1")
    assert (record.status, record.refunded) == (PaymentState.PARTIALLY_REFUNDED, Money(300))
    again = hub.refund("toy-a", refund("F1", "RF1", 300))
    assert again.status is RefundStatus.SUCCEEDED
    assert again.amount == Money(300)
    assert len(bank.refunds) == 1  # the channel was asked once
    assert store.payment("F1").refunded == Money(300)
    with pytest.raises(InvalidRequestError, match="another refund"):
        hub.refund(None, refund("F1", "RF1", 301))
    events = [e.type for e in store.events(out_trade_no="F1")]
    assert events == ["payment.succeeded", "payment.refunded"]
    # The channel's notification of the same refund changes nothing.
    outcome = hub.handle_notification(
        "toy-a", *notification("F1", kind="refund", refund_amount=300, out_refund_no="RF1")
    )
    assert outcome.applied.outcome is InboxOutcome.DUPLICATE
    assert store.payment("F1").refunded == Money(300)


def test_refund_never_exceeds_the_paid_amount(hub, store: Store, bank: ToyBank) -> None:
    paid(hub, bank, "F2")
    hub.refund(None, refund("F2", "RF2a", 700))
    with pytest.raises(PaymentStateError) as info:
        hub.refund(None, refund("F2", "RF2b", 301))
    assert info.value.code is ErrorCode.REFUND_EXCEEDS_PAID
    hub.refund(None, refund("F2", "RF2c", 300))
    record = store.payment("F2")
    assert (record.status, record.refunded) == (PaymentState.REFUNDED, Money(1000))


def test_refund_of_an_unpaid_or_unknown_payment(hub, store: Store) -> None:
    hub.pay(PaymentRequest(out_trade_no="F3", amount=Money(100), subject="x", method="qr"))
    with pytest.raises(PaymentStateError):
        hub.refund(None, refund("F3", "RF3", 50))
    with pytest.raises(PaymentStateError) as info:
        hub.refund(None, refund("NOPE", "RF3", 50))
    assert info.value.code is ErrorCode.UNKNOWN_PAYMENT
    hub.pay(PaymentRequest(out_trade_no="F3b", amount=Money(100), subject="x", method="qr"))
    hub.handle_notification("toy-a", *notification("F3b", amount=100))
    with pytest.raises(InvalidRequestError, match="toy-a"):
        hub.refund("toy-b", refund("F3b", "RF3b", 50))


def test_refused_refund_releases_its_reservation(hub, store: Store, bank: ToyBank) -> None:
    paid(hub, bank, "F4")
    bank.fail_refund["toy-a"] = "refuse"
    with pytest.raises(ChannelError):
        hub.refund(None, refund("F4", "RF4a", 1000))
    assert store.refund("RF4a").status is RefundState.FAILED
    assert "refund.failed" in [e.type for e in store.events(out_trade_no="F4")]
    bank.fail_refund.clear()
    hub.refund(None, refund("F4", "RF4b", 1000))
    assert store.payment("F4").status is PaymentState.REFUNDED


def test_timed_out_refund_stays_reserved_and_retries(hub, store: Store, bank: ToyBank) -> None:
    paid(hub, bank, "F5")
    bank.fail_refund["toy-a"] = "timeout"
    with pytest.raises(ChannelTimeout):
        hub.refund(None, refund("F5", "RF5", 600))
    assert store.refund("RF5").status is RefundState.PENDING
    with pytest.raises(PaymentStateError):  # the 600 are reserved
        hub.refund(None, refund("F5", "RF5x", 600))
    bank.fail_refund.clear()
    result = hub.refund(None, refund("F5", "RF5", 600))  # the same number: retried
    assert result.status is RefundStatus.SUCCEEDED
    assert store.payment("F5").refunded == Money(600)


def test_refund_failed_notification_releases_it(hub, store: Store, bank: ToyBank) -> None:
    paid(hub, bank, "F6")
    bank.fail_refund["toy-a"] = "timeout"
    with pytest.raises(ChannelTimeout):
        hub.refund(None, refund("F6", "RF6", 500))
    outcome = hub.handle_notification(
        "toy-a", *notification("F6", kind="refund_failed", refund_amount=500, out_refund_no="RF6")
    )
    assert outcome.applied.outcome is InboxOutcome.APPLIED
    assert store.refund("RF6").status is RefundState.FAILED
    assert store.payment("F6").refunded == Money(0)


def test_two_refunds_racing_never_exceed_the_paid_amount(hub, store: Store, bank: ToyBank) -> None:
    for round_ in range(3):
        out_trade_no = f"F7-{round_}"
        paid(hub, bank, out_trade_no)
        barrier = threading.Barrier(2)
        results: list[object] = []

        def race(
            n: int, out_trade_no: str = out_trade_no, barrier=barrier, results=results
        ) -> None:
            barrier.wait()
            try:
                results.append(hub.refund(None, refund(out_trade_no, f"R{out_trade_no}-{n}", 600)))
            except PaymentStateError as exc:
                results.append(exc)

        threads = [threading.Thread(target=race, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        errors = [r for r in results if isinstance(r, PaymentStateError)]
        assert len(errors) == 1, results
        assert errors[0].code is ErrorCode.REFUND_EXCEEDS_PAID
        record = store.payment(out_trade_no)
        assert record.refunded == Money(600)
        assert [r.status for r in store.refunds(out_trade_no)] == [RefundState.SUCCEEDED]


def test_same_refund_number_racing_is_asked_once_per_call(hub, store, bank) -> None:
    paid(hub, bank, "F8")
    barrier = threading.Barrier(4)
    results = []

    def race() -> None:
        barrier.wait()
        results.append(hub.refund(None, refund("F8", "RF8", 400)))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.status is RefundStatus.SUCCEEDED for r in results)
    assert store.payment("F8").refunded == Money(400)
    assert [e.type for e in store.events(out_trade_no="F8")].count("payment.refunded") == 1
