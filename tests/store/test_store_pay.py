"""Taking a payment: the payment row and every attempt are stored."""

from __future__ import annotations

import pytest
from storekit import ToyBank, ToyChannel, notification

from payhub import (
    AttemptOutcome,
    ChannelError,
    ChannelTimeout,
    ErrorCode,
    InvalidRequestError,
    Money,
    NetworkError,
    PayHub,
    PaymentRequest,
    PaymentStateError,
    PayMethod,
)
from payhub.store import PaymentState, Store


def request(out_trade_no: str, amount: int = 1000, **extra) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no=out_trade_no,
        amount=Money(amount),
        subject="licence key",
        method=PayMethod.QR,
        **extra,
    )


def test_payment_row_and_attempt(hub, store: Store) -> None:
    result = hub.pay(request("P1"))
    assert result.channel == "toy-a"
    assert [(a.channel, a.seq, a.outcome) for a in result.attempts] == [
        ("toy-a", 1, AttemptOutcome.SUCCEEDED)
    ]
    record = store.payment("P1")
    assert record.status is PaymentState.PENDING
    assert record.amount == Money(1000)
    assert record.subject == "licence key"
    assert record.method is PayMethod.QR
    assert record.channel == "toy-a"
    assert record.channel_trade_id == "toy-a-T-P1"
    assert record.created_at.utcoffset() is not None
    [attempt] = store.attempts("P1")
    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert attempt.channel_trade_id == "toy-a-T-P1"


def test_retryable_failure_tries_the_next_channel(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "busy"
    result = hub.pay(request("P2"))
    assert result.channel == "toy-b"
    assert [(a.channel, a.outcome, a.code, a.may_exist) for a in result.attempts] == [
        ("toy-a", AttemptOutcome.RETRYABLE_FAILURE, "CHANNEL_UNAVAILABLE", True),
        ("toy-b", AttemptOutcome.SUCCEEDED, None, False),
    ]
    assert [(a.channel, a.outcome) for a in store.attempts("P2")] == [
        ("toy-a", AttemptOutcome.RETRYABLE_FAILURE),
        ("toy-b", AttemptOutcome.SUCCEEDED),
    ]
    assert store.payment("P2").channel == "toy-b"


def test_a_request_that_never_left_cannot_exist_there(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "connect"
    hub.pay(request("P3"))
    first = store.attempts("P3")[0]
    assert (first.outcome, first.may_exist) == (AttemptOutcome.RETRYABLE_FAILURE, False)
    assert store.sync_channels("P3") == ["toy-b"]


def test_timeout_is_recorded_as_may_exist(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "timeout"
    result = hub.pay(request("P4"))
    assert result.attempts[0].outcome is AttemptOutcome.TIMEOUT
    assert result.attempts[0].may_exist
    assert store.sync_channels("P4") == ["toy-b", "toy-a"]


def test_business_error_is_raised_at_once(hub, store: Store, bank: ToyBank) -> None:
    bank.fail_pay["toy-a"] = "refuse"
    with pytest.raises(ChannelError) as info:
        hub.pay(request("P5"))
    assert info.value.code is ErrorCode.BUYER_ERROR
    assert [(a.channel, a.outcome, a.channel_code) for a in store.attempts("P5")] == [
        ("toy-a", AttemptOutcome.BUSINESS_ERROR, "BUYER_ERROR")
    ]
    assert store.payment("P5").status is PaymentState.PENDING


def test_when_every_channel_fails_the_last_error_is_raised(
    hub, store: Store, bank: ToyBank
) -> None:
    bank.fail_pay.update({"toy-a": "busy", "toy-b": "timeout"})
    with pytest.raises(ChannelTimeout):
        hub.pay(request("P6"))
    assert [a.outcome for a in store.attempts("P6")] == [
        AttemptOutcome.RETRYABLE_FAILURE,
        AttemptOutcome.TIMEOUT,
    ]


def test_paying_again(hub, store: Store) -> None:
    hub.pay(request("P7"))
    again = hub.pay(request("P7"))  # a fresh QR code for the same pending order
    assert [a.seq for a in again.attempts] == [2]  # this call's attempts
    assert [a.seq for a in store.attempts("P7")] == [1, 2]
    with pytest.raises(InvalidRequestError) as info:
        hub.pay(request("P7", amount=2000))
    assert info.value.code is ErrorCode.ORDER_NUMBER_USED
    hub.handle_notification("toy-a", *notification("P7"))
    with pytest.raises(PaymentStateError) as paid:
        hub.pay(request("P7"))
    assert paid.value.code is ErrorCode.TRADE_ALREADY_PAID
    assert isinstance(paid.value, InvalidRequestError)


def test_paying_a_closed_payment(hub, store: Store, bank: ToyBank) -> None:
    hub.pay(request("P8"))
    hub.close_trade("toy-a", "P8")
    assert store.payment("P8").status is PaymentState.CLOSED
    assert [e.type for e in store.events(out_trade_no="P8")] == ["payment.closed"]
    with pytest.raises(PaymentStateError) as info:
        hub.pay(request("P8"))
    assert info.value.code is ErrorCode.TRADE_CLOSED


def test_hub_without_store_still_pays_and_verifies(bank: ToyBank) -> None:
    with PayHub(channels=[ToyChannel("toy-a")], http_client=bank.client()) as hub:
        result = hub.pay(request("P9"))
        assert [a.outcome for a in result.attempts] == [AttemptOutcome.SUCCEEDED]
        outcome = hub.handle_notification("toy-a", *notification("P9"))
        assert outcome.accepted
        assert outcome.applied is None
        bank.fail_pay["toy-a"] = "connect"
        with pytest.raises(NetworkError):
            hub.pay(request("P10"))
        with pytest.raises(Exception, match="store"):
            hub.sync_pending()


def test_closing_a_trade_the_channel_never_opened(hub, store: Store, bank: ToyBank) -> None:
    """Alipay answers ACQ.TRADE_NOT_EXIST when closing a QR code nobody scanned:
    the stored payment is closed all the same (a later scan is a late payment)."""
    hub.pay(request("P8U"))
    del bank.trades[("toy-a", "P8U")]
    hub.close_trade("toy-a", "P8U")
    assert store.payment("P8U").status is PaymentState.CLOSED
    assert [e.type for e in store.events(out_trade_no="P8U")] == ["payment.closed"]
