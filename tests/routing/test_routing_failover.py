"""How the hub drives a decision: attempts(), admit(), record(), Outcome.of()."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from routing_fakes import FakeChannel, ManualClock

from payhub.errors import (
    ChannelError,
    ChannelTimeout,
    ConfigurationError,
    ErrorCode,
    InvalidRequestError,
    NetworkError,
    ProtocolError,
)
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    CircuitState,
    FailoverPolicy,
    InMemoryHealthStore,
    Outcome,
    Router,
    Strategy,
)

REQUEST = PaymentRequest(
    out_trade_no="T1", amount=Money(100_00), subject="Card", method=PayMethod.QR
)
ACCOUNTS = [FakeChannel(name) for name in ("a", "b", "c", "d")]


def priority_router(clock: ManualClock, **options: object) -> Router:
    return Router(
        {name: ChannelAccountPolicy(priority=i) for i, name in enumerate("abcd")},
        strategy=Strategy.PRIORITY,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def test_attempts_stop_at_max_attempts(clock: ManualClock) -> None:
    router = priority_router(clock)
    decision = router.route(REQUEST, ACCOUNTS)
    tried = [c.name for c in router.attempts(decision, FailoverPolicy(max_attempts=2))]
    assert tried == ["a", "b"]


def test_attempts_stop_at_the_deadline(clock: ManualClock) -> None:
    router = priority_router(clock)
    decision = router.route(REQUEST, ACCOUNTS)
    tried = []
    for candidate in router.attempts(decision, FailoverPolicy(deadline=timedelta(seconds=10))):
        tried.append(candidate.name)
        clock.advance(6)  # each attempt takes 6 s
    assert tried == ["a", "b"]  # at 12 s the deadline has passed


def test_attempts_skip_a_probe_someone_else_holds(clock: ManualClock) -> None:
    router = priority_router(clock, breaker=BreakerConfig(consecutive_failures=1))
    router.record("a", Outcome.FAILURE)
    clock.advance(30)
    decision = router.route(REQUEST, ACCOUNTS)
    assert decision.candidates[0].probe
    other_process = priority_router(clock, health=router.health)
    assert other_process.admit(decision.candidates[0])
    tried = [c.name for c in router.attempts(decision, FailoverPolicy(max_attempts=2))]
    assert tried == ["b", "c"]  # a skipped candidate is not an attempt


def test_the_hub_loop(clock: ManualClock) -> None:
    """The loop hub.pay runs (docs/routing.md, "Failover in hub.pay"), with a and b
    down and c up; tests/routing/test_routing_hub*.py run the hub itself."""
    router = priority_router(clock, breaker=BreakerConfig(consecutive_failures=2))
    answers: dict[str, Exception | None] = {
        "a": ChannelTimeout("a: no answer in time"),
        "b": ProtocolError("b: HTML error page"),
        "c": None,
    }

    def pay_once() -> tuple[str | None, list[tuple[str, Outcome]]]:
        decision = router.route(REQUEST, ACCOUNTS)
        attempts: list[tuple[str, Outcome]] = []
        for candidate in router.attempts(decision, FailoverPolicy(max_attempts=3)):
            error = answers.get(candidate.name)
            outcome = Outcome.of(error)
            router.record(
                candidate.name,
                outcome,
                amount=REQUEST.amount if outcome is Outcome.SUCCESS else None,
            )
            attempts.append((candidate.name, outcome))
            if outcome is Outcome.SUCCESS:
                return candidate.name, attempts
            if outcome is Outcome.BUSINESS_ERROR:
                raise error  # type: ignore[misc]
        return None, attempts

    assert pay_once() == (
        "c",
        [("a", Outcome.TIMEOUT), ("b", Outcome.FAILURE), ("c", Outcome.SUCCESS)],
    )
    # Two failures each: a and b are open, the next payment goes straight to c.
    assert pay_once() == (
        "c",
        [("a", Outcome.TIMEOUT), ("b", Outcome.FAILURE), ("c", Outcome.SUCCESS)],
    )
    assert pay_once() == ("c", [("c", Outcome.SUCCESS)])
    # a recovers; after the cool-down one payment probes it and closes it.
    answers["a"] = None
    clock.advance(30)
    assert pay_once() == ("a", [("a", Outcome.SUCCESS)])
    decision = router.route(REQUEST, ACCOUNTS)
    assert decision.names == ["a", "b", "c", "d"]
    assert [c.probe for c in decision.candidates] == [False, True, False, False]  # b half-open
    # A business error is raised at once and no other account is tried.
    answers["a"] = ChannelError("a: bad parameter", channel="a", code=ErrorCode.INVALID_REQUEST)
    with pytest.raises(ChannelError):
        pay_once()


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, Outcome.SUCCESS),
        (ChannelTimeout("slow"), Outcome.TIMEOUT),
        (NetworkError("refused"), Outcome.FAILURE),
        (ProtocolError("HTML page"), Outcome.FAILURE),
        (ChannelError("busy", channel="a", code=ErrorCode.CHANNEL_UNAVAILABLE), Outcome.FAILURE),
        (
            ChannelError("paid", channel="a", code=ErrorCode.TRADE_ALREADY_PAID),
            Outcome.BUSINESS_ERROR,
        ),
        (InvalidRequestError("bad"), Outcome.BUSINESS_ERROR),
    ],
)
def test_outcome_of_an_error(error: Exception | None, outcome: Outcome) -> None:
    assert Outcome.of(error) is outcome


def test_outcome_of_a_bug_is_no_outcome() -> None:
    with pytest.raises(KeyError):
        Outcome.of(KeyError("bug"))


def test_record_accepts_outcome_values(clock: ManualClock) -> None:
    router = priority_router(clock, breaker=BreakerConfig(consecutive_failures=1))
    assert router.record("a", "timeout") is CircuitState.OPEN  # type: ignore[arg-type]


def test_transitions_are_logged(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    router = priority_router(clock, breaker=BreakerConfig(consecutive_failures=1))
    with caplog.at_level("INFO", logger="payhub.routing"):
        router.record("a", Outcome.FAILURE)
        clock.advance(30)
        router.record("a", Outcome.SUCCESS)
    assert [r.getMessage() for r in caplog.records] == [
        "a: circuit closed -> open after failure",
        "a: circuit half_open -> closed after success",
    ]
    assert caplog.records[0].levelname == "WARNING"


def test_in_memory_probe_is_exclusive_across_threads(clock: ManualClock) -> None:
    store = InMemoryHealthStore()
    breaker = BreakerConfig(consecutive_failures=1)
    routers = [Router(health=store, breaker=breaker, clock=clock) for _ in range(16)]
    routers[0].record("a", Outcome.FAILURE)
    clock.advance(30)
    candidates = [r.route(REQUEST, [FakeChannel("a")]).candidates[0] for r in routers]
    barrier = threading.Barrier(len(routers))
    admitted = [False] * len(routers)

    def attempt(index: int) -> None:
        barrier.wait()
        admitted[index] = routers[index].admit(candidates[index])

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(routers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 1


def test_failover_policy_validation() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        FailoverPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="deadline must be positive"):
        FailoverPolicy(deadline=timedelta(0))
    assert FailoverPolicy.model_validate({"max_attempts": 2, "deadline": 5}).deadline == timedelta(
        seconds=5
    )


def test_time_left_caps_attempt_timeouts(clock: ManualClock) -> None:
    router = priority_router(clock)
    decision = router.route(REQUEST, ACCOUNTS)
    failover = FailoverPolicy(deadline=timedelta(seconds=8))
    assert router.time_left(decision, failover) == 8.0
    clock.advance(5.5)
    assert router.time_left(decision, failover) == 2.5
    clock.advance(10)
    assert router.time_left(decision, failover) == 0.0
