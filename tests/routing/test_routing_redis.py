"""What only the Redis store has to show: one view for many clients and processes,
an exclusive probe under concurrency, one round trip per read, and failing open.

Run against the real server named by ``PAYHUB_TEST_REDIS_URL``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from routing_fakes import FakeChannel, ManualClock

from payhub.errors import NoEligibleChannel
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    CircuitState,
    Outcome,
    RedisHealthStore,
    Router,
    VolumePeriod,
)

pytestmark = pytest.mark.redis

REQUEST = PaymentRequest(
    out_trade_no="T1", amount=Money(100_00), subject="Card", method=PayMethod.QR
)
BREAKER = BreakerConfig(consecutive_failures=3, cool_down=timedelta(seconds=30))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def open_stores(redis_url: str, redis_prefix: str) -> Iterator[list[RedisHealthStore]]:
    """Stores with their own clients (connection pools), as separate processes would have.

    Starts with one; :func:`new_store` adds more, all closed at the end.
    """
    stores = [RedisHealthStore.from_url(redis_url, prefix=redis_prefix)]
    yield stores
    for store in stores:
        store.close()


def new_store(redis_url: str, prefix: str, stores: list[RedisHealthStore]) -> RedisHealthStore:
    store = RedisHealthStore.from_url(redis_url, prefix=prefix)
    stores.append(store)
    return store


def run_python(code: str, **env: str) -> subprocess.Popen[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(Path(__file__).parent)])
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_clients_share_one_view(
    redis_url: str, redis_prefix: str, open_stores: list[RedisHealthStore]
) -> None:
    clock = ManualClock()
    one = Router(health=open_stores[0], breaker=BREAKER, clock=clock, fail_open=False)
    other = Router(
        health=new_store(redis_url, redis_prefix, open_stores),
        breaker=BREAKER,
        clock=clock,
        fail_open=False,
    )
    for _ in range(3):
        one.record("a", Outcome.FAILURE)
    decision = other.route(REQUEST, [FakeChannel("a"), FakeChannel("b")])
    assert decision.names == ["b"]
    assert "circuit open" in decision.excluded["a"]
    clock.advance(30)
    (probe,) = other.route(REQUEST, [FakeChannel("a")]).candidates
    assert other.admit(probe)
    assert not one.admit(probe)  # the other router holds the lease
    assert other.record("a", Outcome.SUCCESS) is CircuitState.CLOSED
    assert one.route(REQUEST, [FakeChannel("a")]).names == ["a"]


def test_another_process_shares_the_view(redis_url: str, redis_store: RedisHealthStore) -> None:
    process = run_python(
        """
        import os
        from datetime import timedelta
        from payhub.money import Money
        from payhub.routing import BreakerConfig, Outcome, RedisHealthStore, Router

        breaker = BreakerConfig(consecutive_failures=3, cool_down=timedelta(seconds=30))
        with RedisHealthStore.from_url(os.environ["URL"], prefix=os.environ["PREFIX"]) as store:
            router = Router(health=store, breaker=breaker, fail_open=False)
            states = [router.record("a", Outcome.FAILURE) for _ in range(3)]
            router.record("b", Outcome.SUCCESS, amount=Money(70_00))
            print(states[-1].value)
        """,
        URL=redis_url,
        PREFIX=redis_store.prefix,
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip() == "open"
    router = Router(
        {"b": ChannelAccountPolicy(daily_limit=Money(100_00))},
        health=redis_store,
        breaker=BREAKER,
        fail_open=False,
    )
    decision = router.route(
        REQUEST.model_copy(update={"amount": Money(30_00)}), [FakeChannel("a"), FakeChannel("b")]
    )
    assert decision.names == ["b"]
    assert "circuit open" in decision.excluded["a"]
    bigger = REQUEST.model_copy(update={"amount": Money(30_01)})
    with pytest.raises(NoEligibleChannel, match=r"30\.00 CNY left today"):
        router.route(bigger, [FakeChannel("b")])


def test_exactly_one_probe_among_concurrent_clients(
    redis_url: str, redis_prefix: str, open_stores: list[RedisHealthStore]
) -> None:
    clock = ManualClock()
    routers = [
        Router(
            health=new_store(redis_url, redis_prefix, open_stores),
            breaker=BREAKER,
            clock=clock,
            fail_open=False,
        )
        for _ in range(8)
    ]
    for round_number in range(10):
        for _ in range(3):
            routers[0].record("a", Outcome.FAILURE)
        clock.advance(30)
        candidates = [r.route(REQUEST, [FakeChannel("a")]).candidates[0] for r in routers]
        assert all(candidate.probe for candidate in candidates)
        barrier = threading.Barrier(len(routers))
        admitted: list[bool] = [False] * len(routers)

        def attempt(index: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            admitted[index] = routers[index].admit(candidates[index])  # noqa: B023

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(routers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(admitted) == 1, (round_number, admitted)
        winner = admitted.index(True)
        assert routers[winner].record("a", Outcome.FAILURE) is CircuitState.OPEN


def test_exactly_one_probe_among_processes(redis_url: str, redis_store: RedisHealthStore) -> None:
    # Open the circuit long ago (real clock), so it is half-open now.
    past = ManualClock(time.time() - 120)
    opener = Router(health=redis_store, breaker=BREAKER, clock=past, fail_open=False)
    for _ in range(3):
        opener.record("a", Outcome.FAILURE)
    code = """
        import os, sys
        from datetime import timedelta
        from payhub.routing import BreakerConfig, Candidate, RedisHealthStore, Router
        from routing_fakes import FakeChannel

        breaker = BreakerConfig(consecutive_failures=3, cool_down=timedelta(seconds=30))
        with RedisHealthStore.from_url(os.environ["URL"], prefix=os.environ["PREFIX"]) as store:
            router = Router(health=store, breaker=breaker, fail_open=False)
            candidate = Candidate("a", FakeChannel("a"), None, True)
            store.read(["a"], now=router.now(), breaker=breaker, currency="CNY",
                       period=router.period(router.now()))  # connected before the start
            print("ready", flush=True)
            sys.stdin.readline()  # the start signal: every process is waiting for it
            print(router.admit(candidate), flush=True)
        """
    processes = [run_python(code, URL=redis_url, PREFIX=redis_store.prefix) for _ in range(4)]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.communicate()[1]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append(out.strip())
    assert sorted(results) == ["False"] * 3 + ["True"]


def test_reading_ten_accounts_is_one_round_trip(redis_url: str, redis_prefix: str) -> None:
    commands: list[str] = []

    class CountingRedis(redis.Redis):  # type: ignore[type-arg]
        def execute_command(self, *args: Any, **options: Any) -> Any:
            commands.append(str(args[0]))
            return super().execute_command(*args, **options)

    client = CountingRedis.from_url(redis_url)
    try:
        store = RedisHealthStore(client, prefix=redis_prefix)
        names = [f"acct-{i}" for i in range(10)]
        router = Router(
            {name: ChannelAccountPolicy(daily_limit=Money(10**9)) for name in names},
            health=store,
            fail_open=False,
        )
        for name in names:
            router.record(name, Outcome.SUCCESS, amount=Money(1))
        router.route(REQUEST, [FakeChannel(name) for name in names])  # loads the script
        commands.clear()
        decision = router.route(REQUEST, [FakeChannel(name) for name in names])
        assert len(decision.candidates) == 10
        assert commands == ["EVALSHA"]
        commands.clear()
        router.route(REQUEST, [FakeChannel(name) for name in names], strategy="success_rate")
        assert commands == ["EVALSHA"]
    finally:
        client.close()


def test_prefixes_isolate_stores(
    redis_url: str, redis_prefix: str, open_stores: list[RedisHealthStore]
) -> None:
    clock = ManualClock()
    one = Router(health=open_stores[0], breaker=BREAKER, clock=clock, fail_open=False)
    other_store = new_store(redis_url, redis_prefix + "-other", open_stores)
    other = Router(health=other_store, breaker=BREAKER, clock=clock, fail_open=False)
    try:
        for _ in range(3):
            one.record("a", Outcome.FAILURE)
        assert other.route(REQUEST, [FakeChannel("a")]).names == ["a"]
    finally:
        other_store.reset("a")


def test_keys_expire(redis_url: str, redis_store: RedisHealthStore) -> None:
    clock = ManualClock(time.time())
    router = Router(health=redis_store, breaker=BREAKER, clock=clock, fail_open=False)
    for _ in range(3):
        router.record("a", Outcome.FAILURE)
    router.record("b", Outcome.SUCCESS, amount=Money(5_00))
    clock.advance(30)
    assert router.admit(router.route(REQUEST, [FakeChannel("a")]).candidates[0])
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    try:
        tag = f"{{{redis_store.prefix}}}"
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{tag}:*"))
        # The routing hash, the windows of a and b, the probe lease of a.
        assert keys == [f"{tag}:h", f"{tag}:p:a", f"{tag}:w:a", f"{tag}:w:b"]
        for key in keys:
            assert client.pttl(key) > 0, key
        period = router.period(router.now())
        assert client.hget(f"{tag}:h", f"dv:CNY:{period.day}:b") == b"500"
        assert client.hget(f"{tag}:h", "d:CNY:b") == period.day.encode()
    finally:
        client.close()


def test_decoded_responses_client(redis_url: str, redis_prefix: str) -> None:
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        router = Router(
            health=RedisHealthStore(client, prefix=redis_prefix), breaker=BREAKER, fail_open=False
        )
        assert router.record("a", Outcome.FAILURE) is CircuitState.CLOSED
        assert router.route(REQUEST, [FakeChannel("a")]).names == ["a"]
    finally:
        client.close()


def test_large_volumes_stay_exact(redis_store: RedisHealthStore) -> None:
    # Beyond 2**53 a Lua double would round; the read returns the stored digits.
    big = Money(2**53 + 1)
    period = VolumePeriod("20260101", "202601")
    redis_store.add_volume("a", big, period=period)
    (health,) = redis_store.read(["a"], now=1, breaker=BREAKER, currency="CNY", period=period)
    assert health.daily_volume == 2**53 + 1


def test_an_old_days_volume_is_deleted(redis_url: str, redis_store: RedisHealthStore) -> None:
    clock = ManualClock()
    router = Router(health=redis_store, clock=clock, fail_open=False)
    router.record("b", Outcome.SUCCESS, amount=Money(5_00))
    clock.advance(86_400)
    router.record("b", Outcome.SUCCESS, amount=Money(7_00))
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    try:
        fields = sorted(f.decode() for f in client.hkeys(f"{{{redis_store.prefix}}}:h"))
    finally:
        client.close()
    # Only the second day (2026-01-02) is left; the month is the same.
    assert fields == [
        "c:b",
        "d:CNY:b",
        "dv:CNY:20260102:b",
        "m:CNY:b",
        "mv:CNY:202601:b",
    ]
