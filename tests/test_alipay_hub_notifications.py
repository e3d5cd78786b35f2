"""Signed Alipay notifications that must change nothing, through a PayHub with a
SQLite store (issue 11 points 6, 7 and 10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_alipay_fake import FORM, make_channel, notification_body, notification_fields

from payhub.channels.alipay import AlipayChannel
from payhub.errors import AmountError, ErrorCode, NotificationRejected
from payhub.hub import PayHub
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.store import PaymentState, Store

ORDER = "ORDER-0001"


@pytest.fixture
def channel(merchant_keys: Any, platform_keys: Any) -> AlipayChannel:
    return make_channel(merchant_keys, platform_keys)


@pytest.fixture
def hub(channel: AlipayChannel, tmp_path: Path) -> Iterator[PayHub]:
    store = Store(f"sqlite:///{tmp_path / 'payhub.db'}")
    store.upgrade()
    with PayHub(channels=[channel], store=store) as hub:
        hub.pay(
            PaymentRequest(
                out_trade_no=ORDER, amount=Money(8888), subject="card", method=PayMethod.PAGE
            )
        )
        yield hub
    store.close()


def _post(hub: PayHub, platform_keys: Any, **fields: str) -> Any:
    body = notification_body(notification_fields(**fields), platform_keys.private)
    return hub.handle_notification("alipay", httpx.Headers(FORM), body)


def _unchanged(hub: PayHub, out_trade_no: str = ORDER) -> None:
    assert hub.store is not None
    record = hub.store.payment(ORDER)
    assert record is not None
    assert record.status is PaymentState.PENDING
    assert hub.store.inbox() == []
    assert hub.store.anomalies() == []


def test_a_valid_notification_still_pays(hub: PayHub, platform_keys: Any) -> None:
    outcome = _post(hub, platform_keys)
    assert outcome.ack.ok
    assert hub.store is not None
    record = hub.store.payment(ORDER)
    assert record is not None
    assert record.status is PaymentState.PAID


# -- point 6: a signed total of zero ------------------------------------------------------


@pytest.mark.parametrize("total", ["0", "0.00", "0.0"])
@pytest.mark.parametrize("status", ["TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED"])
def test_a_signed_zero_total_is_refused(
    hub: PayHub, platform_keys: Any, total: str, status: str
) -> None:
    outcome = _post(hub, platform_keys, total_amount=total, trade_status=status)
    assert not outcome.ack.ok
    assert outcome.ack.body == b"fail"
    assert isinstance(outcome.error, AmountError)
    assert outcome.error.retryable is False
    _unchanged(hub)


# -- point 7: amounts above the configured limit --------------------------------------------


def test_max_amount_minor_is_the_configured_limit(
    merchant_keys: Any, platform_keys: Any, channel: AlipayChannel
) -> None:
    assert channel.max_amount_minor() == 10_000_000_000  # 100,000,000.00 CNY
    small = make_channel(merchant_keys, platform_keys, max_amount="500.00")
    assert small.max_amount_minor() == 50_000
    request = PaymentRequest(
        out_trade_no="BIG-1", amount=Money(50_001), subject="x", method=PayMethod.PAGE
    )
    assert small.request_problem(request) is not None
    assert small.request_problem(request.model_copy(update={"amount": Money(50_000)})) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"total_amount": "100000000.01"},
        {"total_amount": "92233720368547758.08"},
        {"trade_status": "TRADE_SUCCESS", "refund_fee": "100000000.01", "out_biz_no": "R1"},
    ],
)
def test_amounts_above_the_limit_are_refused(
    hub: PayHub, platform_keys: Any, fields: dict[str, str]
) -> None:
    outcome = _post(hub, platform_keys, **fields)
    assert not outcome.ack.ok
    assert isinstance(outcome.error, AmountError)
    assert outcome.error.retryable is False
    _unchanged(hub)


# -- point 10: identifiers -----------------------------------------------------------------

BAD_VALUES = {
    "nul": "ORDER\x000001",
    "control": "ORDER\x1b0001",
    "newline": "ORDER-0001\n",
    "trailing space": "ORDER-0001 ",
    "leading space": " ORDER-0001",
    "inner space": "ORDER 0001",
    "huge": "A" * 100_000,
    "non-ascii": "ORDER-０００１",
}


@pytest.mark.parametrize("field", ["out_trade_no", "trade_no", "notify_id", "out_biz_no"])
@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
def test_identifiers_outside_their_grammar_are_refused(
    hub: PayHub, platform_keys: Any, field: str, bad: str
) -> None:
    extra = {"refund_fee": "1.00"} if field == "out_biz_no" else {}
    outcome = _post(hub, platform_keys, **{field: BAD_VALUES[bad]}, **extra)
    assert not outcome.ack.ok
    assert isinstance(outcome.error, NotificationRejected)
    assert outcome.error.code is ErrorCode.INVALID_REQUEST
    assert outcome.error.retryable is False
    assert len(str(outcome.error)) < 300  # the 100,000 characters are not repeated
    _unchanged(hub)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("out_trade_no", "A" * 65),
        ("out_trade_no", "ORDER.0001"),
        ("trade_no", "2024010222001446880500001234X"),
        ("trade_no", "9" * 65),
        ("seller_id", "2088 0000"),
    ],
)
def test_grammar_details(
    merchant_keys: Any, platform_keys: Any, field: str, value: str
) -> None:
    channel = make_channel(merchant_keys, platform_keys, seller_id=None)  # seller_id unchecked
    body = notification_body(notification_fields(**{field: value}), platform_keys.private)
    with pytest.raises(NotificationRejected, match=f"{field} is not a valid identifier"):
        channel.parse_notification(httpx.Headers(FORM), body)


def test_real_shaped_identifiers_pass(channel: AlipayChannel, platform_keys: Any) -> None:
    fields = notification_fields(
        out_trade_no="20150320010101001",
        trade_no="2013112011001004330000121536",
        notify_id="ac05099524730693a8b330c5ecf72da9786",
        refund_fee="1.00",
        out_biz_no="HZ01RF001",
    )
    parsed = channel.parse_notification(
        httpx.Headers(FORM), notification_body(fields, platform_keys.private)
    )
    assert parsed.out_refund_no == "HZ01RF001"
    assert parsed.channel_trade_id == "2013112011001004330000121536"
