"""The hub's side of routing, with toy channels on a mock transport: configuration,
max attempts, the deadline, each attempt's timeout, probes, and what is recorded."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from routing_fakes import FakeChannel, ManualClock

from payhub import FailoverPolicy as TopLevelFailoverPolicy
from payhub import Router as TopLevelRouter
from payhub.channels import Flow
from payhub.errors import (
    ChannelTimeout,
    ConfigurationError,
    NoEligibleChannel,
    ProtocolError,
)
from payhub.hub import DEFAULT_TIMEOUT, AsyncPayHub, PayHub
from payhub.models import (
    AttemptOutcome,
    PaymentRequest,
    PaymentResult,
    PayMethod,
    ResultKind,
)
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    FailoverPolicy,
    InMemoryHealthStore,
    Outcome,
    Router,
    Strategy,
)

Behaviour = Callable[[httpx.Request], httpx.Response]


class Toy(FakeChannel):
    """A channel account whose pay flow makes one request to ``https://<name>.example/pay``."""

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        response = yield httpx.Request("POST", f"https://{self.name}.example/pay")
        if response.status_code != 200:
            raise ProtocolError(
                f"{self.name}: HTTP {response.status_code}",
                retryable=response.status_code >= 500,
            )
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.QR,
            qr_code=f"{self.name}://qr",
        )


class Bank:
    """Answers each toy account as told (200 by default); remembers each request's timeouts."""

    def __init__(self) -> None:
        self.answers: dict[str, int | Behaviour] = {}
        self.seen: list[tuple[str, dict[str, float | None]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        account = request.url.host.split(".")[0]
        self.seen.append((account, dict(request.extensions.get("timeout", {}))))
        answer = self.answers.get(account, 200)
        if callable(answer):
            return answer(request)
        return httpx.Response(answer)

    @property
    def tried(self) -> list[str]:
        return [account for account, _ in self.seen]

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle), timeout=DEFAULT_TIMEOUT)


def request(out_trade_no: str = "T1", **extra: Any) -> PaymentRequest:
    fields: dict[str, Any] = {"amount": Money(100_00), "subject": "Card", "method": PayMethod.QR}
    return PaymentRequest(out_trade_no=out_trade_no, **{**fields, **extra})


def priority_router(clock: ManualClock, names: str = "abc", **options: Any) -> Router:
    return Router(
        {name: ChannelAccountPolicy(priority=i) for i, name in enumerate(names)},
        strategy=Strategy.PRIORITY,
        clock=clock,
        **options,
    )


def toy_hub(bank: Bank, router: Router | None, names: str = "abc", **options: Any) -> PayHub:
    return PayHub(
        channels=[Toy(name) for name in names],
        http_client=bank.client(),
        router=router,
        **options,
    )


# -- configuration -------------------------------------------------------------------


def alipay_config(merchant_keys, platform_keys, app_id: str) -> dict[str, Any]:
    return {
        "type": "alipay",
        "app_id": app_id,
        "app_private_key": merchant_keys.private_pem,
        "alipay_public_key": platform_keys.public_pem,
        "environment": "sandbox",
        "gateway": "http://sandbox.test/gateway.do",
    }


def test_from_config_reads_the_routing_section(merchant_keys, platform_keys) -> None:
    config = {
        "channels": {
            "alipay-a": alipay_config(merchant_keys, platform_keys, "2021000000000001"),
            "alipay-b": alipay_config(merchant_keys, platform_keys, "2021000000000002"),
        },
        "routing": {
            "strategy": "priority",
            "accounts": {"alipay-a": {"priority": 2}, "alipay-b": {"priority": 1}},
            "failover": {"max_attempts": 2, "deadline": 5},
            "attempt_timeout": 3,
        },
    }
    with PayHub.from_config(config) as hub:
        assert isinstance(hub.router, Router)
        assert hub.router.strategy is Strategy.PRIORITY
        assert hub.failover == FailoverPolicy(max_attempts=2, deadline=timedelta(seconds=5))
        assert hub.attempt_timeout == 3.0
        assert [c.name for c in hub.candidates(request())] == ["alipay-b", "alipay-a"]
        assert hub.select_channel(request()).name == "alipay-b"
    mine = Router()
    with PayHub.from_config(config, router=mine) as hub:
        assert hub.router is mine  # router= replaces the whole section
        assert hub.failover == FailoverPolicy()
    without = {"channels": config["channels"]}
    with PayHub.from_config(without) as hub:
        assert hub.router is None
        assert hub.select_channel(request()).name == "alipay-a"  # the first eligible


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"failover": {"max_attempts": 0}}, "routing.failover: max_attempts"),
        ({"failover": {"deadline": 0}}, "routing.failover: deadline must be positive"),
        ({"attempt_timeout": 0}, "attempt_timeout must be a positive number"),
        ({"attempt_timeout": "5"}, "attempt_timeout must be a positive number"),
        ({"stratgy": "priority"}, "routing: unknown keys ['stratgy']"),
        ({"accounts": {"alipay-x": {}}}, "not configured channels: alipay-x"),
        (
            {"rules": [{"name": "r", "action": "pin", "accounts": ["alipay-y"]}]},
            "not configured channels: alipay-y",
        ),
        ([], "routing: expected a mapping"),
    ],
)
def test_routing_configuration_mistakes(
    routing: object, message: str, merchant_keys, platform_keys
) -> None:
    config = {
        "channels": {"alipay-a": alipay_config(merchant_keys, platform_keys, "2021000000000001")},
        "routing": routing,
    }
    with pytest.raises(ConfigurationError) as caught:
        PayHub.from_config(config)
    assert message in caught.value.message


def test_failover_needs_a_router() -> None:
    with pytest.raises(ConfigurationError, match="failover= needs router="):
        PayHub(channels=[Toy("a")], failover=FailoverPolicy())


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, True, "5"])
def test_attempt_timeout_must_be_a_positive_number(value: object) -> None:
    with pytest.raises(ConfigurationError, match="attempt_timeout"):
        PayHub(channels=[Toy("a")], attempt_timeout=value)  # type: ignore[arg-type]


def test_routing_is_exported_at_the_top() -> None:
    assert TopLevelRouter is Router
    assert TopLevelFailoverPolicy is FailoverPolicy


# -- candidates and attempts -----------------------------------------------------------


def test_candidates_are_the_routers_ranking(clock: ManualClock) -> None:
    hub = toy_hub(Bank(), priority_router(clock, "cab"))
    assert [c.name for c in hub.candidates(request())] == ["c", "a", "b"]
    with pytest.raises(NoEligibleChannel) as caught:
        hub.candidates(request(amount=Money(100, "USD")))
    assert caught.value.reasons == dict.fromkeys("abc", "it does not support USD")


def test_the_next_account_is_tried_on_a_retryable_failure(clock: ManualClock) -> None:
    bank = Bank()
    bank.answers["a"] = 503
    router = priority_router(clock)
    result = toy_hub(bank, router).pay(request())
    assert result.channel == "b"
    assert [(a.channel, a.seq, a.outcome, a.code) for a in result.attempts] == [
        ("a", 1, AttemptOutcome.RETRYABLE_FAILURE, "PROTOCOL"),
        ("b", 2, AttemptOutcome.SUCCEEDED, None),
    ]
    # Told to the router: a's failure streak, b's volume.
    now = router.now()
    health = router.health.read(
        ["a", "b"], now=now, breaker=router.breaker, currency="CNY", period=router.period(now)
    )
    assert health[0].consecutive_failures == 1
    assert (health[1].consecutive_failures, health[1].daily_volume) == (0, 100_00)


def test_a_timeout_is_recorded_as_such(clock: ManualClock) -> None:
    bank = Bank()

    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=req)

    bank.answers["a"] = slow
    router = priority_router(clock, breaker=BreakerConfig(consecutive_failures=1))
    result = toy_hub(bank, router).pay(request())
    [timed_out, _] = result.attempts
    assert (timed_out.outcome, timed_out.code, timed_out.may_exist) == (
        AttemptOutcome.TIMEOUT,
        "TIMEOUT",
        True,
    )
    with pytest.raises(NoEligibleChannel) as caught:  # one timeout opened a's circuit
        router.route(request(), [Toy("a")])
    assert caught.value.reasons["a"].startswith("circuit open")


def test_a_business_error_after_a_failover_stops_there(clock: ManualClock) -> None:
    bank = Bank()
    bank.answers.update(a=503, b=400)
    with pytest.raises(ProtocolError) as caught:
        toy_hub(bank, priority_router(clock)).pay(request())
    assert not caught.value.retryable
    assert bank.tried == ["a", "b"]  # not c
    assert caught.value.__notes__ == [
        "payhub tried 2 channel accounts: a retryable_failure (the trade may exist there), "
        "b business_error"
    ]


def test_max_attempts_is_honoured(clock: ManualClock) -> None:
    bank = Bank()
    bank.answers.update(a=503, b=502, c=500)
    hub = toy_hub(bank, priority_router(clock), failover=FailoverPolicy(max_attempts=2))
    with pytest.raises(ProtocolError) as caught:
        hub.pay(request())
    assert bank.tried == ["a", "b"]
    assert "HTTP 502" in caught.value.message  # the last failure
    assert caught.value.__notes__ == [
        "payhub tried 2 channel accounts: a retryable_failure (the trade may exist there), "
        "b retryable_failure (the trade may exist there)"
    ]


def test_no_attempt_starts_after_the_deadline(clock: ManualClock) -> None:
    bank = Bank()

    def twenty_seconds_then_busy(req: httpx.Request) -> httpx.Response:
        clock.advance(20)
        return httpx.Response(503)

    bank.answers["a"] = twenty_seconds_then_busy
    failover = FailoverPolicy(deadline=timedelta(seconds=15))
    with pytest.raises(ProtocolError):
        toy_hub(bank, priority_router(clock), failover=failover).pay(request())
    assert bank.tried == ["a"]


def test_each_attempt_gets_what_is_left_before_the_deadline(clock: ManualClock) -> None:
    bank = Bank()

    def ten_seconds_then_busy(req: httpx.Request) -> httpx.Response:
        clock.advance(10)
        return httpx.Response(503)

    bank.answers["a"] = ten_seconds_then_busy
    failover = FailoverPolicy(deadline=timedelta(seconds=14))
    toy_hub(bank, priority_router(clock), failover=failover).pay(request())
    (_, first), (_, second) = bank.seen
    # The client's timeouts (connect 5 s, others 10 s) capped to what is left.
    assert first == pytest.approx({"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0})
    assert second == pytest.approx(
        dict.fromkeys(("connect", "read", "write", "pool"), 4.0), abs=0.05
    )


def test_attempt_timeout_caps_every_request(clock: ManualClock) -> None:
    bank = Bank()
    toy_hub(bank, priority_router(clock), attempt_timeout=7).pay(request())
    [(_, timeouts)] = bank.seen
    assert timeouts == pytest.approx(
        {"connect": 5.0, "read": 7.0, "write": 7.0, "pool": 7.0}, abs=0.05
    )


def test_attempt_timeout_without_a_router() -> None:
    bank = Bank()
    toy_hub(bank, None, attempt_timeout=2).pay(request())
    [(_, timeouts)] = bank.seen
    assert timeouts == pytest.approx(
        dict.fromkeys(("connect", "read", "write", "pool"), 2.0), abs=0.05
    )


def test_without_a_router_or_attempt_timeout_the_client_timeouts_stand() -> None:
    bank = Bank()
    toy_hub(bank, None).pay(request())
    assert bank.seen == [("a", DEFAULT_TIMEOUT.as_dict())]


def test_a_request_sent_with_no_time_left_times_out() -> None:
    bank = Bank()

    def check(req: httpx.Request) -> httpx.Response:
        timeouts = req.extensions["timeout"]
        if timeouts["read"] <= 0.001:
            raise httpx.ReadTimeout("too late", request=req)
        return httpx.Response(200)

    bank.answers["a"] = check
    hub = toy_hub(bank, None, names="a", attempt_timeout=1e-9)
    with pytest.raises(ChannelTimeout):
        hub.pay(request())


class _TakenProbes(InMemoryHealthStore):
    """Another process holds every probe."""

    def acquire_probe(self, name: str, *, now: int, breaker: BreakerConfig) -> bool:
        return False


def test_a_probe_held_by_another_payment_is_skipped(clock: ManualClock) -> None:
    router = priority_router(
        clock, health=_TakenProbes(), breaker=BreakerConfig(consecutive_failures=1)
    )
    router.record("a", Outcome.FAILURE)
    clock.advance(30)  # half-open: a would be the probe
    bank = Bank()
    result = toy_hub(bank, router).pay(request())
    assert bank.tried == ["b"]
    assert [a.channel for a in result.attempts] == ["b"]
    # Alone, a cannot be tried at all: no attempt, and the reason says why.
    lone = toy_hub(bank, priority_router(clock, "a", health=router.health), names="a")
    with pytest.raises(NoEligibleChannel) as caught:
        lone.pay(request())
    assert caught.value.reasons == {"a": "circuit half-open and its one probe is in flight"}


class _SlowReads(InMemoryHealthStore):
    """Reading health takes longer than the whole failover deadline."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self._clock = clock

    def read(self, *args: Any, **kwargs: Any) -> Any:
        self._clock.advance(31)
        return super().read(*args, **kwargs)


def test_no_attempt_when_the_deadline_passed_while_routing(clock: ManualClock) -> None:
    router = priority_router(clock, health=_SlowReads(clock))
    bank = Bank()
    with pytest.raises(NoEligibleChannel) as caught:
        toy_hub(bank, router).pay(request())
    assert caught.value.reasons == dict.fromkeys("abc", "the failover deadline passed")
    assert bank.tried == []


# -- the async hub ---------------------------------------------------------------------


class _RemoteStore:
    """A health store that is not the in-memory one (as Redis): notes the threads it runs on."""

    def __init__(self) -> None:
        self._inner = InMemoryHealthStore()
        self.threads: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.threads.add(threading.get_ident())
            return method(*args, **kwargs)

        return call


@pytest.mark.parametrize("remote", [False, True])
def test_async_hub_fails_over_and_keeps_a_remote_store_off_the_loop(
    clock: ManualClock, remote: bool
) -> None:
    bank = Bank()
    bank.answers["a"] = 503
    health = _RemoteStore() if remote else InMemoryHealthStore()
    router = priority_router(clock, health=health)  # type: ignore[arg-type]

    async def main() -> tuple[PaymentResult, int]:
        async with AsyncPayHub(
            channels=[Toy(n) for n in "abc"],
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(bank.handle)),
            router=router,
            attempt_timeout=3,
        ) as hub:
            return await hub.pay(request()), threading.get_ident()

    result, loop_thread = asyncio.run(main())
    assert [(a.channel, a.outcome) for a in result.attempts] == [
        ("a", AttemptOutcome.RETRYABLE_FAILURE),
        ("b", AttemptOutcome.SUCCEEDED),
    ]
    assert [timeouts["read"] for _, timeouts in bank.seen] == pytest.approx([3.0, 3.0], abs=0.05)
    if isinstance(health, _RemoteStore):
        assert health.threads
        assert loop_thread not in health.threads
