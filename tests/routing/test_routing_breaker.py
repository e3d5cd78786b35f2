"""The circuit breaker, driven by a manual clock, against every health store.

Each test runs twice: with the in-memory store and with the Redis store
(real server, ``PAYHUB_TEST_REDIS_URL``), so both implement one behaviour.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from routing_fakes import FakeChannel, ManualClock

from payhub.errors import NoEligibleChannel
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    Candidate,
    CircuitState,
    HealthStore,
    Outcome,
    Router,
)

REQUEST = PaymentRequest(
    out_trade_no="T1", amount=Money(100_00), subject="Card", method=PayMethod.QR
)
ACCOUNT = [FakeChannel("a")]


def make_router(store: HealthStore, clock: ManualClock, **breaker: object) -> Router:
    config = {
        "consecutive_failures": 3,
        "failure_rate": 0.5,
        "min_samples": 10,
        "window": timedelta(seconds=60),
        "buckets": 12,
        "cool_down": timedelta(seconds=30),
        "probe_lease": timedelta(seconds=10),
    }
    config.update(breaker)
    return Router(
        health=store, breaker=BreakerConfig.model_validate(config), clock=clock, fail_open=False
    )


def state(router: Router) -> str:
    """closed / open / half_open / probing, as routing sees the account."""
    try:
        (candidate,) = router.route(REQUEST, ACCOUNT).candidates
    except NoEligibleChannel as exc:
        reason = exc.reasons["a"]
        return "probing" if "probe is in flight" in reason else "open"
    return "half_open" if candidate.probe else "closed"


def probe(router: Router) -> Candidate:
    (candidate,) = router.route(REQUEST, ACCOUNT).candidates
    assert candidate.probe
    return candidate


def fail(router: Router, times: int, outcome: Outcome = Outcome.FAILURE) -> CircuitState:
    result = CircuitState.CLOSED
    for _ in range(times):
        result = router.record("a", outcome)
    return result


def test_opens_after_consecutive_failures(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    assert fail(router, 2) is CircuitState.CLOSED
    assert state(router) == "closed"
    assert fail(router, 1) is CircuitState.OPEN
    assert state(router) == "open"


def test_a_success_ends_the_streak(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 2)
    router.record("a", Outcome.SUCCESS)
    assert fail(router, 2) is CircuitState.CLOSED


def test_timeouts_count_as_failures(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 2, Outcome.TIMEOUT)
    assert fail(router, 1, Outcome.TIMEOUT) is CircuitState.OPEN


def test_business_errors_are_not_failures(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock, min_samples=2)
    assert fail(router, 20, Outcome.BUSINESS_ERROR) is CircuitState.CLOSED
    # Nor do they count in the failure rate: 1 failure, 1 success, 20 business errors.
    router.record("a", Outcome.SUCCESS)
    assert fail(router, 1) is CircuitState.CLOSED
    assert state(router) == "closed"


def test_a_business_error_ends_the_streak(store: HealthStore, clock: ManualClock) -> None:
    # The channel answered: it is up, whatever it thought of the request.
    router = make_router(store, clock)
    fail(router, 2)
    router.record("a", Outcome.BUSINESS_ERROR)
    assert fail(router, 2) is CircuitState.CLOSED


def test_opens_on_failure_rate_above_threshold(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock, consecutive_failures=100)
    for _ in range(5):  # 10 samples, 5 failures: 50 % is not above 50 %
        router.record("a", Outcome.SUCCESS)
        router.record("a", Outcome.FAILURE)
    assert state(router) == "closed"
    assert fail(router, 1) is CircuitState.OPEN  # 6 of 11


def test_failure_rate_needs_the_minimum_sample(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock, consecutive_failures=100, min_samples=10)
    assert fail(router, 9) is CircuitState.CLOSED  # 100 % of 9
    assert fail(router, 1) is CircuitState.OPEN  # 100 % of 10


def test_failures_leave_the_window(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock, consecutive_failures=100, min_samples=10)
    fail(router, 9)
    clock.advance(60)  # the window is 12 buckets of 5 s: all 9 failures have left it
    router.record("a", Outcome.SUCCESS)
    assert fail(router, 8) is CircuitState.CLOSED  # 8 of 9 in the window
    assert state(router) == "closed"


def test_window_keeps_recent_failures(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock, consecutive_failures=100, min_samples=10)
    fail(router, 5)
    clock.advance(50)  # still inside the window
    assert fail(router, 5) is CircuitState.OPEN


def test_cool_down_then_half_open(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(29.999)
    assert state(router) == "open"
    clock.advance(0.001)
    assert state(router) == "half_open"


def test_half_open_lets_exactly_one_probe_through(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(30)
    first, second = probe(router), probe(router)  # both saw it half-open
    assert router.admit(first) is True
    assert router.admit(second) is False  # the probe is out: skip it
    assert state(router) == "probing"


def test_probe_success_closes(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(30)
    assert router.admit(probe(router))
    assert router.record("a", Outcome.SUCCESS) is CircuitState.CLOSED
    assert state(router) == "closed"
    # Counting starts afresh: two failures do not reopen it.
    assert fail(router, 2) is CircuitState.CLOSED


def test_probe_failure_opens_again_for_a_full_cool_down(
    store: HealthStore, clock: ManualClock
) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(30)
    assert router.admit(probe(router))
    clock.advance(5)
    assert router.record("a", Outcome.TIMEOUT) is CircuitState.OPEN
    clock.advance(29.9)
    assert state(router) == "open"
    clock.advance(0.1)
    assert state(router) == "half_open"
    assert router.admit(probe(router))  # the old lease went with the failure


def test_probe_business_error_closes(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(30)
    assert router.admit(probe(router))
    assert router.record("a", Outcome.BUSINESS_ERROR) is CircuitState.CLOSED


def test_a_lost_probe_lease_expires(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(30)
    assert router.admit(probe(router))
    clock.advance(9.999)  # the lease is 10 s; the probe never reported
    assert state(router) == "probing"
    clock.advance(0.001)
    assert router.admit(probe(router))


def test_admit_refuses_a_circuit_no_longer_half_open(
    store: HealthStore, clock: ManualClock
) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(30)
    stale = probe(router)
    router.reset("a")  # meanwhile an operator closed it
    assert router.admit(stale) is False
    assert state(router) == "closed"


def test_late_outcomes_do_not_extend_the_cool_down(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    clock.advance(20)
    assert fail(router, 2) is CircuitState.OPEN  # attempts that started before it opened
    clock.advance(10)
    assert state(router) == "half_open"


def test_accounts_are_independent(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    fail(router, 3)
    decision = router.route(REQUEST, [FakeChannel("a"), FakeChannel("b")])
    assert decision.names == ["b"]
    assert "circuit open" in decision.excluded["a"]


def test_volume_counts_successes_per_day(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock)
    router.record("a", Outcome.SUCCESS, amount=Money(30_00))
    router.add_volume("a", Money(20_00))
    period = router.period(router.now())
    (health,) = store.read(
        ["a"], now=router.now(), breaker=router.breaker, currency="CNY", period=period
    )
    assert (health.daily_volume, health.monthly_volume) == (50_00, 50_00)
    clock.advance(86_400)
    period = router.period(router.now())
    (health,) = store.read(
        ["a"], now=router.now(), breaker=router.breaker, currency="CNY", period=period
    )
    assert (health.daily_volume, health.monthly_volume) == (0, 50_00)


def test_window_counts_are_read_on_request(store: HealthStore, clock: ManualClock) -> None:
    router = make_router(store, clock, consecutive_failures=100, min_samples=100)
    for outcome in ("success", "success", "failure", "timeout", "business_error"):
        router.record("a", Outcome(outcome))
    now = router.now()
    period = router.period(now)
    args = {"now": now, "breaker": router.breaker, "currency": "CNY", "period": period}
    (plain,) = store.read(["a"], **args)  # type: ignore[arg-type]
    (counted,) = store.read(["a"], window=True, **args)  # type: ignore[arg-type]
    assert (plain.successes, plain.failures) == (0, 0)
    assert (counted.successes, counted.failures) == (2, 2)
    assert counted.consecutive_failures == 0


@pytest.mark.parametrize("unknown", ["never-seen"])
def test_unknown_account_reads_closed(store: HealthStore, clock: ManualClock, unknown: str) -> None:
    router = make_router(store, clock)
    now = router.now()
    (health,) = store.read(
        [unknown], now=now, breaker=router.breaker, currency="CNY", period=router.period(now)
    )
    assert health.opened_at is None
    assert health.probe_until == 0
    assert health.daily_volume == 0
