"""The sandbox proves it: payhub's real Alipay channel and store against every delivery fault.

The sandbox (its own Alipay, written from PROTOCOLS.md) posts its notifications
straight into ``hub.handle_notification`` and takes the hub's exact ack as the
shop's answer; a fault shapes the delivery. Whatever the fault: exactly one
transition per real change, every event delivered once per id, the final state
right, and every genuine delivery acknowledged. Runs on SQLite, and on
PostgreSQL and MariaDB when their servers are configured (``store`` fixture).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from payhub_sandbox import DeliveryStatus, ManualClock, Sandbox, create_app

from payhub import PayHub, Store, models
from payhub.errors import ChannelTimeout, ErrorCode, NetworkError
from payhub.events import Event
from payhub.hub import NotificationOutcome
from payhub.money import Money
from payhub.store import InboxOutcome, PaymentState, RefundState

alipay = pytest.importorskip("payhub.channels.alipay")

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
NOTIFY_URL = "http://shop.test/alipay/notify"
ALIPAY_MINUTE = 1.0  # one Alipay minute at time factor 60


@dataclass
class Rig:
    box: Sandbox
    clock: ManualClock
    hub: PayHub
    store: Store
    link: _Lossy
    events: list[Event] = field(default_factory=list)
    outcomes: list[NotificationOutcome] = field(default_factory=list)

    def order(self, out_trade_no: str, minor: int = 10_000) -> None:
        self.hub.pay(
            models.PaymentRequest(
                out_trade_no=out_trade_no,
                amount=Money(minor),
                subject="Gift card 礼品卡",
                method="qr",
                notify_url=NOTIFY_URL,
                channel="alipay",
            )
        )

    def drive(self, *, limit: float = 3600) -> None:
        """Deliver, then move the clock to the next due attempt, until nothing is pending."""
        spent = 0.0
        while True:
            self.box.deliver_due()
            due = [
                n.next_at
                for n in self.box.notifications
                if n.status is DeliveryStatus.PENDING and n.next_at is not None
            ]
            if not due:
                return
            step = max((min(due) - self.clock.now()).total_seconds(), 0.0)
            spent += step
            assert spent <= limit, "deliveries never settled"
            self.clock.advance(step)

    def transitions(self, out_trade_no: str) -> list[str]:
        """The audited state changes after the payment's creation."""
        return [
            f"{a.from_status.value}->{a.to_status.value}"
            for a in self.store.audit(out_trade_no)
            if a.from_status is not None
        ]


class _Lossy(httpx.BaseTransport):
    """The shop's link to the gateway. For the named methods it can lose the
    answer (the gateway did the work; payhub sees a read timeout) or drop the
    request (it never reaches the gateway)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lose: set[str] = set()
        self.drop: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("method") in self.drop:
            raise httpx.ConnectError("the gateway cannot be reached", request=request)
        response = self.inner.handle_request(request)
        if request.url.params.get("method") in self.lose:
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


class _Endpoint:
    """The shop's notification endpoint: the hub, on an httpx transport."""

    def __init__(self) -> None:
        self.hub: PayHub | None = None
        self.outcomes: list[NotificationOutcome] = []
        self._lock = threading.Lock()
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        assert self.hub is not None
        outcome = self.hub.handle_notification("alipay", request.headers, request.read())
        with self._lock:
            self.outcomes.append(outcome)
        return httpx.Response(
            outcome.ack.status_code, content=outcome.ack.body, headers=outcome.ack.headers
        )


@pytest.fixture
def rig(store: Store, platform_keys, merchant_keys) -> Iterator[Rig]:
    # payhub stamps gateway requests with the real clock: start the manual one now.
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    endpoint = _Endpoint()
    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        clock=clock,
        notify_transport=endpoint.transport,
        base_url="http://sandbox.test",
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    link = _Lossy(httpx.WSGITransport(app=create_app(box)))
    http = httpx.Client(transport=link)
    channel = alipay.AlipayChannel.from_config(
        "alipay",
        {
            "app_id": APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "alipay_public_key": box.alipay_public_key_pem,
            "environment": "sandbox",
            "gateway": "http://sandbox.test/gateway.do",
            "seller_id": SELLER_ID,
            "notify_url": NOTIFY_URL,
        },
    )
    hub = PayHub(channels=[channel], store=store, http_client=http)
    endpoint.hub = hub
    rig = Rig(box=box, clock=clock, hub=hub, store=store, link=link, outcomes=endpoint.outcomes)
    lock = threading.Lock()

    def collect(event: Event) -> None:
        with lock:
            rig.events.append(event)

    hub.subscribe("*", collect)
    yield rig
    box.stop()
    http.close()


def _check_events(rig: Rig, out_trade_no: str, expected: list[str]) -> None:
    """Each event delivered exactly once per id, the expected ones, none left pending."""
    counts = Counter(e.id for e in rig.events)
    assert all(n == 1 for n in counts.values()), counts
    assert sorted(e.type for e in rig.events) == sorted(expected)
    stored = rig.store.events(out_trade_no=out_trade_no)
    assert sorted(e.id for e in stored) == sorted(counts)
    assert rig.store.events(out_trade_no=out_trade_no, pending=True) == []


def _paid_once(rig: Rig, out_trade_no: str) -> None:
    record = rig.store.payment(out_trade_no)
    assert record is not None
    assert record.status is PaymentState.PAID
    assert record.refunded == Money(0)
    assert rig.transitions(out_trade_no) == ["pending->paid"]
    _check_events(rig, out_trade_no, ["payment.succeeded"])


def test_ten_concurrent_duplicates(rig: Rig) -> None:
    rig.order("F1")
    rig.box.add_delivery_fault(out_trade_no="F1", duplicates=10, concurrent=True)
    rig.box.alipay.pay(APP_ID, "F1")
    rig.drive()
    attempts = rig.box.deliveries
    assert len(attempts) == 10
    assert all("concurrent" in a.effects for a in attempts)
    assert all(a.acknowledged for a in attempts), [
        (a.status_code, a.response_body) for a in attempts
    ]
    outcomes = Counter(o.applied.outcome for o in rig.outcomes)
    assert outcomes == {InboxOutcome.APPLIED: 1, InboxOutcome.DUPLICATE: 9}
    _paid_once(rig, "F1")


def test_random_delay(rig: Rig) -> None:
    rig.order("F2")
    fault = rig.box.add_delivery_fault(merchant_id=APP_ID, delay=(2.0, 9.0), seed=42)
    rig.box.alipay.pay(APP_ID, "F2")
    (note,) = rig.box.notifications
    assert rig.box.deliver_due() == []
    assert rig.store.payment("F2").status is PaymentState.PENDING
    rig.drive()
    (attempt,) = rig.box.deliveries
    assert attempt.acknowledged
    assert (attempt.fault_id, attempt.effects) == (fault.id, ("delayed",))
    assert 2.0 <= (attempt.at - note.created_at).total_seconds() <= 9.0
    _paid_once(rig, "F2")


@pytest.mark.external_refunds
def test_refund_before_payment_is_deferred_then_applied(rig: Rig) -> None:
    rig.order("F3")
    rig.box.add_delivery_fault(out_trade_no="F3", reorder=True)
    rig.box.alipay.pay(APP_ID, "F3")
    rig.drive()  # the payment is held: nothing goes out
    assert rig.box.deliveries == []
    # The merchant refunds from Alipay's portal before payhub heard of the payment.
    rig.box.alipay.refund(APP_ID, "F3", "30.00", out_refund_no="RF3")
    rig.drive()
    refund, payment = rig.box.deliveries
    assert (refund.kind, payment.kind) == ("TRADE_SUCCESS (refund)", "TRADE_SUCCESS")
    assert refund.acknowledged
    assert payment.acknowledged
    assert [o.applied.outcome for o in rig.outcomes] == [
        InboxOutcome.DEFERRED,
        InboxOutcome.APPLIED,
    ]
    record = rig.store.payment("F3")
    assert record.status is PaymentState.PARTIALLY_REFUNDED
    assert record.refunded == Money(3000)
    (stored,) = rig.store.refunds("F3")
    assert (stored.out_refund_no, stored.amount, stored.status.value) == (
        "RF3",
        Money(3000),
        "succeeded",
    )
    assert rig.transitions("F3") == ["pending->paid", "paid->partially_refunded"]
    _check_events(rig, "F3", ["payment.succeeded", "payment.refunded"])


def test_first_three_attempts_dropped(rig: Rig) -> None:
    rig.order("F4")
    rig.box.add_delivery_fault(out_trade_no="F4", drop_first=3)
    rig.box.alipay.pay(APP_ID, "F4")
    start = rig.clock.now()
    rig.drive()
    attempts = rig.box.deliveries
    assert [a.sent for a in attempts] == [False, False, False, True]
    assert attempts[-1].acknowledged
    # Alipay's own schedule resumed: 4m + 10m + 10m later (time factor 60).
    assert (attempts[-1].at - start).total_seconds() == 24 * ALIPAY_MINUTE
    assert len(rig.outcomes) == 1
    _paid_once(rig, "F4")


def test_replay_after_acknowledgement(rig: Rig) -> None:
    rig.order("F5")
    rig.box.add_delivery_fault(out_trade_no="F5", replay_after=120, replays=2)
    rig.box.alipay.pay(APP_ID, "F5")
    rig.drive()
    _paid_once(rig, "F5")
    for _ in range(2):
        rig.clock.advance(120)
        (replay,) = rig.box.deliver_due()
        assert replay.effects == ("replay",)
        assert replay.acknowledged  # a duplicate is acknowledged as success
    assert [o.applied.outcome for o in rig.outcomes] == [
        InboxOutcome.APPLIED,
        InboxOutcome.DUPLICATE,
        InboxOutcome.DUPLICATE,
    ]
    _paid_once(rig, "F5")


@pytest.mark.parametrize("tamper", ["amount", "signature"])
def test_tampered_notification_is_refused_then_the_genuine_resend_applies(
    rig: Rig, tamper: str
) -> None:
    rig.order("F6")
    options: dict[str, Any] = {"tamper": tamper}
    if tamper == "amount":
        options["tamper_amount"] = "0.01"  # pay a cent for a 100-yuan card
    rig.box.add_delivery_fault(out_trade_no="F6", **options)
    rig.box.alipay.pay(APP_ID, "F6")
    (forged,) = rig.box.deliver_due()
    assert forged.effects == (f"tampered-{tamper}",)
    assert (forged.acknowledged, forged.response_body) == (False, "fail")
    (rejected,) = rig.outcomes
    assert rejected.error is not None
    assert rejected.error.code is ErrorCode.SIGNATURE_INVALID
    assert rig.store.payment("F6").status is PaymentState.PENDING
    assert rig.store.inbox("F6") == []  # nothing written
    assert rig.events == []
    rig.drive()
    genuine = rig.box.deliveries[-1]
    assert (genuine.number, genuine.effects, genuine.acknowledged) == (2, (), True)
    _paid_once(rig, "F6")


def test_a_refund_whose_answer_was_lost_is_completed_once(rig: Rig) -> None:
    rig.order("F7")
    rig.box.alipay.pay(APP_ID, "F7")
    rig.drive()
    rig.link.lose.add("alipay.trade.refund")  # Alipay refunds; its answer never arrives
    request = models.RefundRequest(out_trade_no="F7", out_refund_no="RF7", amount=Money(2500))
    with pytest.raises(ChannelTimeout):
        rig.hub.refund(None, request)
    rig.link.lose.clear()
    assert rig.store.refund("RF7").status is RefundState.PENDING
    # 防掉单 for refunds: alipay.trade.fastpay.refund.query says REFUND_SUCCESS.
    report = rig.hub.sync_pending(older_than=timedelta(0))
    assert (report.refunds_changed, report.refund_errors) == ({"RF7": RefundState.SUCCEEDED}, {})
    # Alipay's own refund notification (TRADE_SUCCESS + refund_fee) then comes: a duplicate.
    rig.drive()
    assert [(d.kind, d.acknowledged) for d in rig.box.deliveries] == [
        ("TRADE_SUCCESS", True),
        ("TRADE_SUCCESS (refund)", True),
    ]
    assert [o.applied.outcome for o in rig.outcomes if o.applied is not None] == [
        InboxOutcome.APPLIED,
        InboxOutcome.DUPLICATE,
    ]
    record = rig.store.payment("F7")
    assert (record.status, record.refunded) == (PaymentState.PARTIALLY_REFUNDED, Money(2500))
    assert rig.transitions("F7") == ["pending->paid", "paid->partially_refunded"]
    _check_events(rig, "F7", ["payment.succeeded", "payment.refunded"])
    # The same number again gives the stored result; Alipay is not asked to refund twice.
    assert rig.hub.refund(None, request).status is models.RefundStatus.SUCCEEDED
    assert rig.store.payment("F7").refunded == Money(2500)


def test_a_refund_alipay_never_got_stays_reserved(rig: Rig) -> None:
    rig.order("F8")
    rig.box.alipay.pay(APP_ID, "F8")
    rig.drive()
    rig.link.drop.add("alipay.trade.refund")  # the request never reaches Alipay
    request = models.RefundRequest(out_trade_no="F8", out_refund_no="RF8", amount=Money(10_000))
    with pytest.raises(NetworkError):
        rig.hub.refund(None, request)
    rig.link.drop.clear()
    report = rig.hub.sync_pending(older_than=timedelta(0))
    assert report.refunds_changed == {}
    assert "knows no such refund" in report.refund_errors["RF8"]
    assert rig.store.refund("RF8").status is RefundState.PENDING
    assert rig.store.payment("F8").refunded == Money(0)
    # Repeating the refund with the same number, as the report says, completes it.
    assert rig.hub.refund(None, request).status is models.RefundStatus.SUCCEEDED
    rig.drive()
    record = rig.store.payment("F8")
    assert (record.status, record.refunded) == (PaymentState.REFUNDED, Money(10_000))
    _check_events(rig, "F8", ["payment.succeeded", "payment.refunded"])


def test_a_refund_retried_after_a_lost_answer_is_settled_at_once(rig: Rig) -> None:
    """Alipay answers a repeated out_request_no with fund_change N ("no money moved
    by this call") and advises a refund query: the hub asks at once."""
    rig.order("F9")
    rig.box.alipay.pay(APP_ID, "F9")
    rig.drive()
    rig.link.lose.add("alipay.trade.refund")
    request = models.RefundRequest(out_trade_no="F9", out_refund_no="RF9", amount=Money(4000))
    with pytest.raises(ChannelTimeout):
        rig.hub.refund(None, request)
    rig.link.lose.clear()
    result = rig.hub.refund(None, request)
    assert result.status is models.RefundStatus.SUCCEEDED
    assert rig.store.refund("RF9").status is RefundState.SUCCEEDED
    rig.drive()
    record = rig.store.payment("F9")
    assert (record.status, record.refunded) == (PaymentState.PARTIALLY_REFUNDED, Money(4000))
    _check_events(rig, "F9", ["payment.succeeded", "payment.refunded"])


def test_console_refunds_held_for_review_carry_their_amounts(rig: Rig) -> None:
    """Refunds made in Alipay's merchant console: each notification's refund_fee is
    the trade's running total; the held refund carries its own amount (point 22)."""
    rig.order("F9")
    rig.box.alipay.pay(APP_ID, "F9")
    rig.drive()
    rig.box.alipay.refund(APP_ID, "F9", "30.00", out_refund_no="RF9a")
    rig.drive()
    rig.box.alipay.refund(APP_ID, "F9", "20.00", out_refund_no="RF9b")
    rig.drive()
    assert all(d.acknowledged for d in rig.box.deliveries)
    held = rig.store.anomalies("F9")
    assert [(a.kind.value, a.detail["out_refund_no"], a.amount) for a in held] == [
        ("orphan_refund", "RF9a", Money(3000)),
        ("orphan_refund", "RF9b", Money(2000)),
    ]
    reviews = [e.payload for e in rig.events if e.type == "refund.review"]
    assert [(p["amount"], p["refunded_total"]) for p in reviews] == [
        ({"minor": 3000, "currency": "CNY"}, {"minor": 3000, "currency": "CNY"}),
        ({"minor": 2000, "currency": "CNY"}, {"minor": 5000, "currency": "CNY"}),
    ]
    record = rig.store.payment("F9")
    assert (record.status, record.refunded) == (PaymentState.PAID, Money(0))


def test_a_gateway_clock_hours_ahead_is_flagged_and_the_payment_credited(rig: Rig) -> None:
    """gmt_payment two hours in payhub's future (the gateway's clock is off): credited,
    with a paid_time anomaly and a payment.time_anomaly event (point 11)."""
    rig.order("F10")
    rig.clock.advance(2 * 3600)
    rig.box.alipay.pay(APP_ID, "F10")
    rig.drive()
    [outcome] = rig.outcomes
    assert outcome.ack.ok
    assert outcome.applied.outcome is InboxOutcome.APPLIED
    record = rig.store.payment("F10")
    assert record.status is PaymentState.PAID
    assert record.paid_at < outcome.notification.occurred_at - timedelta(hours=1)
    [anomaly] = rig.store.anomalies("F10")
    assert anomaly.kind.value == "paid_time"
    assert "in the future" in anomaly.detail["why"]
    assert sorted(e.type for e in rig.events) == ["payment.succeeded", "payment.time_anomaly"]
