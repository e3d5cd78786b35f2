"""Request models refuse what a shop should never send; parsed models keep what they must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from payhub.models import (
    Ack,
    Notification,
    NotificationKind,
    PaymentRequest,
    PaymentStatus,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
)
from payhub.money import Money

SHANGHAI = timezone(timedelta(hours=8))


def pay(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "out_trade_no": "ORDER-2024_0001",
        "amount": Money(1000),
        "subject": "Gift card",
        "method": PayMethod.QR,
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


def refund(**overrides: Any) -> RefundRequest:
    fields: dict[str, Any] = {
        "out_trade_no": "ORDER-1",
        "out_refund_no": "REFUND-1",
        "amount": Money(500),
    }
    fields.update(overrides)
    return RefundRequest(**fields)


# -- PaymentRequest -------------------------------------------------------------


def test_payment_request_valid() -> None:
    request = pay(expires_at=datetime(2024, 5, 1, 12, tzinfo=SHANGHAI), method="page")
    assert request.method is PayMethod.PAGE
    assert request.amount == Money(1000)
    assert request.expires_at is not None
    assert request.expires_at.utcoffset() == timedelta(hours=8)
    assert pay(out_trade_no="a" * 64).out_trade_no == "a" * 64


def test_payment_request_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        pay(total_amount="10.00")
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate({**pay().model_dump(), "sign": "forged"})


def test_payment_request_rejects_naive_expires_at() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        pay(expires_at=datetime(2024, 5, 1, 12))
    with pytest.raises(ValidationError, match="timezone"):
        pay(expires_at="2024-05-01T12:00:00")
    assert pay(expires_at="2024-05-01T12:00:00+08:00").expires_at == datetime(
        2024, 5, 1, 4, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "out_trade_no",
    [
        "",
        "a" * 65,
        "订单001",
        "ORDER 1",
        " ORDER1",
        "ORDER1\n",
        "ORDER#1",
        "ORDER/1",
        "ORDER.1",
        "ＯＲＤＥＲ1",  # full-width letters
        "ORDER١",  # Arabic-Indic digit
    ],
)
def test_payment_request_rejects_bad_out_trade_no(out_trade_no: str) -> None:
    with pytest.raises(ValidationError, match="out_trade_no"):
        pay(out_trade_no=out_trade_no)


@pytest.mark.parametrize("amount", [Money(0), Money(-1), Money(-1000, "USD")])
def test_payment_request_rejects_non_positive_amount(amount: Money) -> None:
    with pytest.raises(ValidationError, match="positive"):
        pay(amount=amount)


@pytest.mark.parametrize("amount", [10.0, "10.00", 1000, {"minor": 10.0, "currency": "CNY"}])
def test_payment_request_refuses_floats_and_strings_as_amount(amount: object) -> None:
    with pytest.raises(ValidationError):
        pay(amount=amount)


def test_payment_request_accepts_money_as_dict() -> None:
    assert pay(amount={"minor": 1000, "currency": "CNY"}).amount == Money(1000)


@pytest.mark.parametrize("subject", ["", "x" * 257])
def test_payment_request_subject_length(subject: str) -> None:
    with pytest.raises(ValidationError, match="subject"):
        pay(subject=subject)


def test_payment_request_unknown_method() -> None:
    with pytest.raises(ValidationError, match="method"):
        pay(method="bitcoin")


def test_payment_request_is_frozen() -> None:
    request = pay()
    with pytest.raises(ValidationError, match="frozen"):
        request.amount = Money(1)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        request.out_trade_no = "OTHER"  # type: ignore[misc]
    assert request.amount == Money(1000)


def test_payment_request_round_trips_through_json() -> None:
    request = pay(
        expires_at=datetime(2024, 5, 1, 12, tzinfo=SHANGHAI),
        metadata={"sku": "GC-100"},
        channel="alipay_main",
    )
    assert PaymentRequest.model_validate_json(request.model_dump_json()) == request


def test_buyer_hints_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        pay(buyer={"ip": "127.0.0.1", "password": "x"})
    assert pay(buyer={"openid": "o-123"}).buyer is not None


# -- RefundRequest ----------------------------------------------------------------


def test_refund_request_valid() -> None:
    request = refund(total=Money(1000), reason="customer asked")
    assert request.amount == Money(500)
    assert request.total == Money(1000)


def test_refund_request_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        refund(refund_amount="5.00")


@pytest.mark.parametrize("field", ["out_trade_no", "out_refund_no"])
@pytest.mark.parametrize("value", ["", "a" * 65, "退款1", "R 1"])
def test_refund_request_rejects_bad_numbers(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        refund(**{field: value})


@pytest.mark.parametrize("field", ["amount", "total"])
@pytest.mark.parametrize("amount", [Money(0), Money(-500)])
def test_refund_request_rejects_non_positive_amounts(field: str, amount: Money) -> None:
    with pytest.raises(ValidationError, match="positive"):
        refund(**{field: amount})


def test_refund_request_reason_length() -> None:
    with pytest.raises(ValidationError, match="reason"):
        refund(reason="x" * 257)


def test_refund_request_is_frozen() -> None:
    request = refund()
    with pytest.raises(ValidationError, match="frozen"):
        request.amount = Money(10**6)  # type: ignore[misc]
    assert request.amount == Money(500)


def test_refund_query_request() -> None:
    with pytest.raises(ValidationError):
        RefundQueryRequest(out_trade_no="A1", out_refund_no="R 1")
    with pytest.raises(ValidationError):
        RefundQueryRequest(out_trade_no="A1", out_refund_no="R1", extra="x")  # type: ignore[call-arg]


# -- Notification -------------------------------------------------------------------


def notification(**overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "channel": "alipay",
        "kind": NotificationKind.PAYMENT,
        "out_trade_no": "ORDER-1",
        "channel_trade_id": "2024050122001",
        "amount": Money(1000),
        "status": PaymentStatus.PAID,
        "event_key": "notify-id-1",
        "raw": {"trade_status": "TRADE_SUCCESS"},
    }
    fields.update(overrides)
    return Notification(**fields)


def test_notification_valid() -> None:
    n = notification(occurred_at=datetime(2024, 5, 1, tzinfo=SHANGHAI), raw_body=b"a=1")
    assert n.event_key == "notify-id-1"
    assert n.raw_body == b"a=1"


def test_notification_requires_event_key() -> None:
    with pytest.raises(ValidationError, match="event_key"):
        notification(event_key="")
    fields = notification().model_dump()
    del fields["event_key"]
    with pytest.raises(ValidationError, match="event_key"):
        Notification.model_validate(fields)


def test_notification_rejects_naive_time_and_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        notification(occurred_at=datetime(2024, 5, 1))
    with pytest.raises(ValidationError):
        notification(surprise=True)


def test_notification_is_frozen() -> None:
    n = notification()
    with pytest.raises(ValidationError):
        n.amount = Money(1)  # type: ignore[misc]


def test_ack_headers() -> None:
    ok = Ack(status_code=200, body=b"success", content_type="text/plain", ok=True)
    assert dict(ok.headers) == {"Content-Type": "text/plain"}
    assert dict(Ack(status_code=204, ok=True).headers) == {}
