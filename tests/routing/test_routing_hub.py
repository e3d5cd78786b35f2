"""Failover in ``hub.pay``, end to end: two Alipay apps in one sandbox, one made to fail.

The router ranks app A first (its fee is lower). The sandbox makes A's gateway
fail on purpose (down, busy, an HTML error page, slower than the attempt's
timeout); payments flow to B, each result listing A's failed attempt and B's
success; after two failures A's circuit opens and A is no longer tried; after
the cool-down (the router's manual clock) a probe goes to A, and once A has
recovered, payments come back to A. The sync hub runs in-process (WSGI) and
over a live server; the async hub over a live server (``slow`` always needs
one: the WSGI transport ignores timeouts).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from payhub_sandbox import Sandbox, TradeNotFoundError, create_app
from routing_fakes import FakeChannel, ManualClock
from werkzeug.serving import WSGIRequestHandler, make_server

from payhub.channels.alipay import AlipayChannel
from payhub.errors import ChannelError, ErrorCode, NoEligibleChannel, PayhubError
from payhub.fees import PercentageFee
from payhub.hub import AsyncPayHub, PayHub
from payhub.models import AttemptOutcome, PaymentRequest, PaymentResult, PayMethod
from payhub.money import Money
from payhub.routing import BreakerConfig, ChannelAccountPolicy, HealthStore, Router
from payhub.store import InboxOutcome, PaymentState, Store

A, B = "alipay-a", "alipay-b"
APP = {A: "2021000000000001", B: "2021000000000002"}
SELLER = {A: "2088000000000001", B: "2088000000000002"}
SANDBOX_URL = "http://sandbox.test"
#: The per-attempt timeout of the live hubs; a ``slow`` fault waits longer.
ATTEMPT_TIMEOUT = 1.0
SLOW = 5.0

Pay = Callable[[PaymentRequest], PaymentResult]
#: (outcome, unified code, Alipay code, may_exist) of A's failed attempt
Failed = tuple[AttemptOutcome, str, str | None, bool]


def request(out_trade_no: str) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no=out_trade_no, amount=Money(100_00), subject="Card", method=PayMethod.QR
    )


def summary(
    result: PaymentResult,
) -> list[tuple[str, AttemptOutcome, str | None, str | None, bool]]:
    return [(a.channel, a.outcome, a.code, a.channel_code, a.may_exist) for a in result.attempts]


OK_A = (A, AttemptOutcome.SUCCEEDED, None, None, False)
OK_B = (B, AttemptOutcome.SUCCEEDED, None, None, False)


class Shop:
    """The shop's notification endpoints, ``/notify/<account>``, on a mock transport."""

    def __init__(self) -> None:
        self.received: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, req: httpx.Request) -> httpx.Response:
        req.read()
        self.received.append(req)
        return httpx.Response(200, text="success")


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: object) -> None:
        pass


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """The app on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def box(platform_keys, merchant_keys, other_keys, shop: Shop) -> Iterator[Sandbox]:
    """One sandbox on the real clock (the channels stamp requests with it), two apps."""
    sandbox = Sandbox(
        alipay_platform_key=platform_keys.private,
        notify_transport=shop.transport,
        base_url=SANDBOX_URL,
    )
    sandbox.add_alipay_merchant(APP[A], merchant_keys.public_pem, SELLER[A])
    sandbox.add_alipay_merchant(APP[B], other_keys.public_pem, SELLER[B])
    yield sandbox
    sandbox.stop()


@pytest.fixture
def app(box: Sandbox) -> Flask:
    return create_app(box)


@pytest.fixture
def live_url(app: Flask, box: Sandbox) -> Iterator[str]:
    with serve(app) as url:
        yield url
        box.clear_faults()  # release the requests a slow fault holds before the server stops


def lowest_fee_router(clock: ManualClock, health: HealthStore | None = None) -> Router:
    """Lowest fee first: A (0.38 %) before B (0.6 %). Two failures in a row open a circuit."""
    return Router(
        {
            A: ChannelAccountPolicy(fee=PercentageFee(Decimal("0.0038"))),
            B: ChannelAccountPolicy(fee=PercentageFee(Decimal("0.006"))),
        },
        breaker=BreakerConfig(consecutive_failures=2, cool_down=timedelta(seconds=30)),
        clock=clock,
        health=health,
    )


@pytest.fixture
def router(clock: ManualClock) -> Router:
    return lowest_fee_router(clock)


def make_channels(
    gateway_root: str, box: Sandbox, merchant_keys, other_keys
) -> list[AlipayChannel]:
    keys = {A: merchant_keys, B: other_keys}
    return [
        AlipayChannel.from_config(
            name,
            {
                "app_id": APP[name],
                "app_private_key": keys[name].private_pem,
                "alipay_public_key": box.alipay_public_key_pem,
                "environment": "sandbox",
                "gateway": f"{gateway_root}/gateway.do",
                "seller_id": SELLER[name],
                "notify_url": f"http://shop.test/notify/{name}",
            },
        )
        for name in (A, B)
    ]


@pytest.fixture
def in_process_hub(
    app: Flask, box: Sandbox, router: Router, merchant_keys, other_keys
) -> Iterator[PayHub]:
    http = httpx.Client(transport=httpx.WSGITransport(app=app))
    channels = make_channels(SANDBOX_URL, box, merchant_keys, other_keys)
    with PayHub(channels=channels, http_client=http, router=router) as hub:
        yield hub
    http.close()


@contextmanager
def live_sync_hub(
    url: str, box: Sandbox, router: Router, keys: tuple[Any, Any], store: Store | None = None
) -> Iterator[Pay]:
    channels = make_channels(url, box, *keys)
    with PayHub(
        channels=channels, router=router, attempt_timeout=ATTEMPT_TIMEOUT, store=store
    ) as hub:
        yield hub.pay


@contextmanager
def live_async_hub(
    url: str, box: Sandbox, router: Router, keys: tuple[Any, Any], store: Store | None = None
) -> Iterator[Pay]:
    """An ``AsyncPayHub`` on one event loop, driven from this thread."""
    channels = make_channels(url, box, *keys)
    with asyncio.Runner() as runner:
        hub = AsyncPayHub(
            channels=channels, router=router, attempt_timeout=ATTEMPT_TIMEOUT, store=store
        )
        try:
            yield lambda req: runner.run(hub.pay(req))
        finally:
            runner.run(hub.aclose())


LIVE_HUBS = {"sync": live_sync_hub, "async": live_async_hub}


def has_trade(box: Sandbox, account: str, out_trade_no: str) -> bool:
    try:
        box.alipay_trade(APP[account], out_trade_no)
    except TradeNotFoundError:
        return False
    return True


def trades_at(box: Sandbox, account: str) -> set[str]:
    return {t.out_trade_no for t in box.trades if t.merchant_id == APP[account]}


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def fault_hits(box: Sandbox) -> int:
    return sum(fault.hits for fault in box.gateway_faults.list())


def fail_over_and_back(
    pay: Pay,
    box: Sandbox,
    router: Router,
    clock: ManualClock,
    fault: dict[str, Any],
    failed: Failed,
) -> None:
    """The story of the module docstring, for one kind of fault."""
    a_failed = (A, *failed)
    first = pay(request("P1"))
    assert (first.channel, summary(first)) == (A, [OK_A])

    box.set_fault("alipay", app_id=APP[A], **fault)
    for number in ("P2", "P3"):
        result = pay(request(number))
        assert result.channel == B
        assert result.qr_code is not None
        assert summary(result) == [a_failed, OK_B]
    assert fault_hits(box) == 2

    # Two failures in a row: A's circuit is open, payments go straight to B.
    excluded = router.route(request("X"), [FakeChannel(A), FakeChannel(B)]).excluded
    assert excluded[A].startswith("circuit open")
    result = pay(request("P4"))
    assert summary(result) == [OK_B]
    assert fault_hits(box) == 2  # A was not tried

    # After the cool-down one payment probes A; A still fails: open again.
    clock.advance(30)
    result = pay(request("P5"))
    assert summary(result) == [a_failed, OK_B]
    assert fault_hits(box) == 3
    assert summary(pay(request("P6"))) == [OK_B]

    # A recovers; after the next cool-down the probe succeeds and A is back.
    assert box.clear_faults("alipay", app_id=APP[A]) == 1
    clock.advance(30)
    for number in ("P7", "P8"):
        result = pay(request(number))
        assert (result.channel, summary(result)) == (A, [OK_A])

    assert trades_at(box, B) == {"P2", "P3", "P4", "P5", "P6"}
    if failed[0] is AttemptOutcome.TIMEOUT:
        # The slow gateway did the work the hub stopped waiting for: trades
        # exist at A for the timed-out attempts (hence may_exist).
        wait_for(lambda: trades_at(box, A) == {"P1", "P2", "P3", "P5", "P7", "P8"})
    else:
        assert trades_at(box, A) == {"P1", "P7", "P8"}


DOWN: Failed = (AttemptOutcome.RETRYABLE_FAILURE, "PROTOCOL", None, True)
BUSY_20000: Failed = (AttemptOutcome.RETRYABLE_FAILURE, "CHANNEL_UNAVAILABLE", "20000", True)
BUSY_40004: Failed = (AttemptOutcome.RETRYABLE_FAILURE, "CHANNEL_UNAVAILABLE", "40004", True)
DROPPED: Failed = (AttemptOutcome.RETRYABLE_FAILURE, "NETWORK", None, True)
TIMED_OUT: Failed = (AttemptOutcome.TIMEOUT, "TIMEOUT", None, True)

IN_PROCESS_FAULTS = {
    "down": ({"mode": "down"}, DOWN),
    "system_error": ({"mode": "system_error"}, BUSY_20000),
    "acq_system_error": ({"mode": "system_error", "code": "40004"}, BUSY_40004),
    "html_error": ({"mode": "html_error"}, DOWN),
}
LIVE_FAULTS = {
    "down": ({"mode": "down"}, DOWN),
    "dropped": ({"mode": "down", "close": True}, DROPPED),
    "system_error": ({"mode": "system_error"}, BUSY_20000),
    "html_error": ({"mode": "html_error"}, DOWN),
    "slow": ({"mode": "slow", "seconds": SLOW}, TIMED_OUT),
}


@pytest.mark.parametrize("kind", IN_PROCESS_FAULTS)
def test_failover_in_process(
    kind: str, in_process_hub: PayHub, box: Sandbox, router: Router, clock: ManualClock
) -> None:
    fault, failed = IN_PROCESS_FAULTS[kind]
    fail_over_and_back(in_process_hub.pay, box, router, clock, fault, failed)


@pytest.mark.parametrize("hub_kind", LIVE_HUBS)
@pytest.mark.parametrize("kind", LIVE_FAULTS)
def test_failover_over_a_live_server(
    kind: str,
    hub_kind: str,
    live_url: str,
    box: Sandbox,
    router: Router,
    clock: ManualClock,
    merchant_keys,
    other_keys,
) -> None:
    fault, failed = LIVE_FAULTS[kind]
    with LIVE_HUBS[hub_kind](live_url, box, router, (merchant_keys, other_keys)) as pay:
        started = time.monotonic()
        fail_over_and_back(pay, box, router, clock, fault, failed)
    if kind == "slow":
        # Three attempts at A timed out, each after the per-attempt timeout, not SLOW.
        assert time.monotonic() - started < 3 * SLOW


@pytest.mark.redis
@pytest.mark.parametrize("hub_kind", LIVE_HUBS)
def test_failover_with_the_redis_health_store(
    hub_kind: str,
    live_url: str,
    box: Sandbox,
    clock: ManualClock,
    redis_store: HealthStore,
    merchant_keys,
    other_keys,
) -> None:
    """The same story with the health every process and machine shares (async: its
    calls run in worker threads)."""
    router = lowest_fee_router(clock, redis_store)
    fault, failed = LIVE_FAULTS["system_error"]
    with LIVE_HUBS[hub_kind](live_url, box, router, (merchant_keys, other_keys)) as pay:
        fail_over_and_back(pay, box, router, clock, fault, failed)
    # Another process (a router of its own on the same store) sees the same
    # accounts: A took P1, P7 and P8, B the five payments in between.
    other = lowest_fee_router(clock, redis_store)
    now = other.now()
    health = redis_store.read(
        [A, B], now=now, breaker=other.breaker, currency="CNY", period=other.period(now)
    )
    assert [h.daily_volume for h in health] == [3 * 100_00, 5 * 100_00]
    assert [h.opened_at for h in health] == [None, None]


def test_a_business_error_is_raised_at_once(
    in_process_hub: PayHub, box: Sandbox, router: Router
) -> None:
    assert in_process_hub.pay(request("B1")).channel == A
    box.alipay.pay(APP[A], "B1")
    with pytest.raises(ChannelError) as caught:
        in_process_hub.pay(request("B1"))  # already paid at A: ACQ.TRADE_HAS_SUCCESS
    assert caught.value.code is ErrorCode.TRADE_ALREADY_PAID
    assert caught.value.channel_sub_code == "ACQ.TRADE_HAS_SUCCESS"
    assert not has_trade(box, B, "B1")  # B was not tried
    # The channel answered: a business error is no failure of A's.
    assert [c.name for c in in_process_hub.candidates(request("B2"))] == [A, B]


def test_when_every_account_fails_the_last_failure_is_raised(
    in_process_hub: PayHub, box: Sandbox
) -> None:
    box.set_fault("alipay", "system_error")  # both apps
    with pytest.raises(ChannelError) as caught:
        in_process_hub.pay(request("E1"))
    error = caught.value
    assert error.code is ErrorCode.CHANNEL_UNAVAILABLE
    assert error.retryable
    assert error.channel == B
    assert error.__notes__ == [
        "payhub tried 2 channel accounts: alipay-a retryable_failure (the trade may exist "
        "there), alipay-b retryable_failure (the trade may exist there)"
    ]
    # Once both circuits are open, nothing is tried and the reasons say why.
    with pytest.raises(ChannelError):
        in_process_hub.pay(request("E2"))
    with pytest.raises(NoEligibleChannel) as none:
        in_process_hub.pay(request("E3"))
    assert set(none.value.reasons) == {A, B}
    assert all(why.startswith("circuit open") for why in none.value.reasons.values())
    assert fault_hits(box) == 4


@pytest.fixture
def payment_store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'payhub.db'}") as store:
        store.upgrade()
        yield store


@pytest.mark.parametrize("hub_kind", LIVE_HUBS)
def test_a_timed_out_attempt_is_stored_and_its_late_payment_flagged(
    hub_kind: str,
    live_url: str,
    box: Sandbox,
    router: Router,
    payment_store: Store,
    shop: Shop,
    merchant_keys,
    other_keys,
) -> None:
    store = payment_store
    box.set_fault("alipay", "slow", app_id=APP[A], seconds=SLOW)
    with LIVE_HUBS[hub_kind](live_url, box, router, (merchant_keys, other_keys), store) as pay:
        result = pay(request("S1"))
    assert summary(result) == [(A, *TIMED_OUT), OK_B]
    stored = store.attempts("S1")
    assert [(a.seq, a.channel, a.outcome, a.may_exist) for a in stored] == [
        (1, A, AttemptOutcome.TIMEOUT, True),
        (2, B, AttemptOutcome.SUCCEEDED, False),
    ]
    payment = store.payment("S1")
    assert payment is not None
    assert payment.channel == B
    assert store.sync_channels("S1") == [B, A]  # where a trade may exist

    # The slow gateway finishes the work: a trade exists at A as well, and the
    # buyer pays both. B's notification pays the payment; A's is a duplicate.
    box.clear_faults()
    wait_for(lambda: has_trade(box, A, "S1"))
    box.alipay.pay(APP[B], "S1")
    box.alipay.pay(APP[A], "S1")
    box.deliver_due()
    by_account = {str(req.url).rsplit("/", 1)[1]: req for req in shop.received}
    with PayHub(
        channels=make_channels(live_url, box, merchant_keys, other_keys), store=store
    ) as hub:
        paid = hub.handle_notification(B, by_account[B].headers, by_account[B].content)
        late = hub.handle_notification(A, by_account[A].headers, by_account[A].content)
    assert paid.applied is not None
    assert paid.applied.outcome is InboxOutcome.APPLIED
    # A's is acknowledged, so Alipay stops resending, and flagged for a refund.
    assert late.accepted
    assert late.applied is not None
    assert late.applied.outcome is InboxOutcome.REVIEW
    assert late.applied.reason == "paid twice: the payment was taken by another trade"
    record = store.payment("S1")
    assert record is not None
    assert (record.status, record.channel) == (PaymentState.PAID, B)


def test_without_a_router_the_hub_does_not_fail_over(
    app: Flask, box: Sandbox, merchant_keys, other_keys
) -> None:
    box.set_fault("alipay", "down", app_id=APP[A])
    channels = make_channels(SANDBOX_URL, box, merchant_keys, other_keys)
    with httpx.Client(transport=httpx.WSGITransport(app=app)) as http:
        hub = PayHub(channels=channels, http_client=http)
        with pytest.raises(PayhubError) as caught:
            hub.pay(request("N1"))  # the first eligible account, A, and only A
    assert caught.value.retryable
    assert not has_trade(box, B, "N1")
