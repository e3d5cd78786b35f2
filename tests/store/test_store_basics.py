"""Smoke: pay, notify, refund through the hub with a store."""

from __future__ import annotations

from storekit import ToyBank, notification

from payhub import Money, PaymentRequest, PayMethod
from payhub.store import PaymentState, Store


def test_pay_then_notification(hub, store: Store, bank: ToyBank) -> None:
    result = hub.pay(
        PaymentRequest(out_trade_no="A1", amount=Money(1000), subject="card", method=PayMethod.QR)
    )
    assert result.channel == "toy-a"
    headers, body = bank.buyer_pays("toy-a", "A1")
    outcome = hub.handle_notification("toy-a", headers, body)
    assert outcome.accepted, outcome.error
    assert outcome.ack.body == b"success"
    record = store.payment("A1")
    assert record is not None
    assert record.status is PaymentState.PAID
    again = hub.handle_notification("toy-a", headers, body)
    assert again.applied is not None
    assert again.applied.outcome.value == "duplicate"
    assert [e.type for e in store.events(out_trade_no="A1")] == ["payment.succeeded"]
    unknown = hub.handle_notification("toy-a", *notification("NOPE"))
    assert not unknown.accepted
    assert unknown.ack.body == b"fail"
