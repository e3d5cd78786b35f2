"""What a routing decision costs, next to the RSA signature every payment pays anyway.

Run: ``.venv/bin/python benchmarks/bench_routing.py`` (from the repository root).

Measured in one run, interleaved so that both see the same machine load:

* one raw RSA-2048 PKCS#1 v1.5 SHA-256 signature of a ~300-byte message
  (``cryptography``), the signature of a typical Alipay request;
* one ``Router.route()`` across 10 channel accounts with fee rules, amount
  and daily limits and health lookups (one account's circuit is open), with
  the in-memory store and, when ``PAYHUB_TEST_REDIS_URL`` is set, the Redis
  store. Before each timed decision one outcome is recorded (untimed), so
  the store's cached snapshot of that account is invalidated as in production.

Each figure is the median, over batches, of the mean time of a call in the
batch (``time.perf_counter_ns``). Targets (issue 5): routing / signing
<= 0.1 with the in-memory store and <= 1.0 with Redis, for the default
strategy (lowest fee). The other strategies, and amounts the fee cache has
never seen, are shown for information. Exits 1 if a target is missed.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from payhub.channels._base import Channel, Flow
from payhub.fees import FixedPlusPercentageFee, PercentageFee
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    ChannelAccountPolicy,
    HealthStore,
    InMemoryHealthStore,
    Outcome,
    RedisHealthStore,
    Router,
    Strategy,
)

IN_MEMORY_TARGET = 0.1
REDIS_TARGET = 1.0
ROUNDS = 41  # batches of each measurement, interleaved
SIGN_BATCH = 20
ROUTE_BATCH = {"memory": 200, "redis": 20}
ACCOUNTS = 10

# A typical Alipay string-to-sign: ~300 bytes.
MESSAGE = (
    b'app_id=2021000000000001&biz_content={"out_trade_no":"20260101120000123456",'
    b'"total_amount":"100.00","subject":"Steam Wallet Card 100",'
    b'"product_code":"FAST_INSTANT_TRADE_PAY"}&charset=utf-8&format=JSON'
    b"&method=alipay.trade.precreate&notify_url=https://shop.example/notify/alipay"
    b"&sign_type=RSA2&timestamp=2026-01-01 12:00:00&version=1.0"
)


class BenchChannel(Channel):
    """A channel account that only answers ``supports()``: routing never runs a flow."""

    kind: ClassVar[str] = "bench"
    methods: ClassVar[frozenset[PayMethod]] = frozenset(
        {PayMethod.QR, PayMethod.PAGE, PayMethod.WAP}
    )

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name)

    def _no_io(self, *args: object) -> Flow[Any]:
        raise NotImplementedError

    pay = query = refund = refund_query = close = _no_io  # type: ignore[assignment]
    parse_notification = ack = _no_io  # type: ignore[assignment]


def build_router(store: HealthStore) -> tuple[Router, list[Channel]]:
    channels: list[Channel] = [BenchChannel(f"account-{i}") for i in range(ACCOUNTS)]
    policies = {}
    for i, channel in enumerate(channels):
        fee = (
            PercentageFee(Decimal("0.0060") - Decimal(i) / 10_000, minimum=Money(1))
            if i % 2
            else FixedPlusPercentageFee(Money(i), Decimal("0.0038"))
        )
        policies[channel.name] = ChannelAccountPolicy(
            priority=i,
            min_amount=Money(1_00),
            max_amount=Money(50_000_00),
            daily_limit=Money(10_000_000_00),
            fee=fee,
            weight=1 + i % 3,
        )
    router = Router(policies, health=store)
    for channel in channels:
        router.record(channel.name, Outcome.SUCCESS, amount=Money(100_00))
    for _ in range(router.breaker.consecutive_failures):
        router.record(channels[3].name, Outcome.FAILURE)  # one circuit open
    return router, channels


def requests(count: int, *, unique_amounts: bool = False) -> list[PaymentRequest]:
    denominations = [10_00, 20_00, 30_00, 50_00, 68_00, 100_00, 198_00, 200_00, 328_00, 500_00]
    return [
        PaymentRequest(
            out_trade_no=f"BENCH{uuid.uuid4().hex[:20]}",
            amount=Money(100_00 + i if unique_amounts else denominations[i % len(denominations)]),
            subject="Gift card",
            method=PayMethod.QR,
        )
        for i in range(count)
    ]


def timed_batch(
    call: Callable[[int], object], prepare: Callable[[int], object], size: int
) -> float:
    """Mean ns of ``call(i)`` over a batch; ``prepare(i)`` runs first, untimed."""
    clock = time.perf_counter_ns
    total = 0
    for i in range(size):
        prepare(i)
        start = clock()
        call(i)
        total += clock() - start
    return total / size


def main() -> int:
    logging.getLogger("payhub").setLevel(logging.ERROR)  # the set-up opens a circuit on purpose
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def sign(_: int) -> object:
        return key.sign(MESSAGE, pkcs1, sha256)

    def nothing(_: int) -> None:
        return None

    stores: dict[str, HealthStore] = {"memory": InMemoryHealthStore()}
    redis_url = os.environ.get("PAYHUB_TEST_REDIS_URL")
    redis_store: RedisHealthStore | None = None
    if redis_url:
        redis_store = RedisHealthStore.from_url(
            redis_url, prefix=f"payhub-bench:{uuid.uuid4().hex}", socket_timeout=5
        )
        stores["redis"] = redis_store

    cases: list[tuple[str, str, Strategy, bool]] = [
        (kind, f"{kind}: {strategy.value}", strategy, False)
        for kind in stores
        for strategy in Strategy
    ] + [
        (kind, f"{kind}: lowest_fee, amounts never seen", Strategy.LOWEST_FEE, True)
        for kind in stores
    ]
    samples: dict[str, list[float]] = {"sign": []}
    runners: list[tuple[str, Callable[[int], object], Callable[[int], object], int]] = []
    try:
        for kind, label, strategy, unique in cases:
            router, channels = build_router(stores[kind])
            size = ROUTE_BATCH[kind]
            batch = requests(size * ROUNDS if unique else 64, unique_amounts=unique)
            names = [channel.name for channel in channels if channel.name != "account-3"]
            position = [0]

            def route(
                i: int,
                router: Router = router,
                channels: list[Channel] = channels,
                batch: list[PaymentRequest] = batch,
                strategy: Strategy = strategy,
                position: list[int] = position,
            ) -> object:
                position[0] += 1
                return router.route(batch[position[0] % len(batch)], channels, strategy=strategy)

            def record(i: int, router: Router = router, names: list[str] = names) -> object:
                return router.record(names[i % len(names)], Outcome.SUCCESS, amount=Money(1))

            runners.append((label, route, record, size))
            samples[label] = []
            for i in range(min(size, 20)):  # warm up: scripts loaded, caches filled
                route(i)

        for _ in range(ROUNDS):
            samples["sign"].append(timed_batch(sign, nothing, SIGN_BATCH))
            for label, call, prepare, size in runners:
                samples[label].append(timed_batch(call, prepare, size))
    finally:
        if redis_store is not None and redis_url:
            import redis  # noqa: PLC0415 - only when the Redis store was measured

            redis_store.close()
            with redis.Redis.from_url(redis_url) as client:
                keys = list(client.scan_iter(match=f"{{{redis_store.prefix}}}:*"))
                if keys:
                    client.delete(*keys)

    sign_ns = statistics.median(samples["sign"])
    print(f"RSA-2048 PKCS#1 v1.5 SHA-256 sign of {len(MESSAGE)} bytes: {sign_ns / 1000:8.1f} us")
    print(f"routing decision across {ACCOUNTS} accounts (median of {ROUNDS} batches):")
    failed = False
    for label, *_ in runners:
        route_ns = statistics.median(samples[label])
        ratio = route_ns / sign_ns
        kind = label.split(":")[0]
        targeted = label == f"{kind}: lowest_fee"
        target = IN_MEMORY_TARGET if kind == "memory" else REDIS_TARGET
        verdict = ""
        if targeted:
            ok = ratio <= target
            failed |= not ok
            verdict = f"  target <= {target}: {'ok' if ok else 'MISSED'}"
        print(f"  {label:42} {route_ns / 1000:8.1f} us  ratio {ratio:6.3f}{verdict}")
    if not redis_url:
        print("  (redis: PAYHUB_TEST_REDIS_URL is not set; the Redis store was not measured)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
