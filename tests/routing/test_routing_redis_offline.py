"""The Redis store without a Redis server: failing open, configuration checks.

These need redis-py but no server (port 1 refuses at once), so they always run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from routing_fakes import FakeChannel

from payhub.errors import ConfigurationError, NetworkError
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import ChannelAccountPolicy, CircuitState, Outcome, RedisHealthStore, Router

REQUEST = PaymentRequest(
    out_trade_no="T1", amount=Money(100_00), subject="Card", method=PayMethod.QR
)


@pytest.fixture
def dead_store() -> Iterator[RedisHealthStore]:
    # Port 1 refuses at once; no Redis server is involved.
    with RedisHealthStore.from_url("redis://127.0.0.1:1/0", prefix="unused") as store:
        yield store


def test_unavailable_store_fails_open(
    dead_store: RedisHealthStore, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router({"a": ChannelAccountPolicy(daily_limit=Money(1))}, health=dead_store)
    with caplog.at_level(logging.WARNING, logger="payhub.routing"):
        decision = router.route(REQUEST.model_copy(update={"amount": Money(1)}), [FakeChannel("a")])
        assert decision.names == ["a"]
        assert router.record("a", Outcome.FAILURE) is CircuitState.CLOSED
    messages = [record.getMessage() for record in caplog.records]
    assert any("routing without health" in message for message in messages)
    assert any("failure not recorded" in message for message in messages)


def test_unavailable_store_raises_when_asked(dead_store: RedisHealthStore) -> None:
    router = Router(health=dead_store, fail_open=False)
    with pytest.raises(NetworkError, match="Redis health store is unavailable"):
        router.route(REQUEST, [FakeChannel("a")])
    with pytest.raises(NetworkError):
        router.record("a", Outcome.SUCCESS)


def test_prefix_must_not_break_the_hash_tag() -> None:
    client: redis.Redis[Any] = redis.Redis()
    try:
        with pytest.raises(ConfigurationError, match="braces"):
            RedisHealthStore(client, prefix="a{b}")
    finally:
        client.close()


def test_repr_names_the_prefix_only(dead_store: RedisHealthStore) -> None:
    assert repr(dead_store) == "<RedisHealthStore prefix='unused'>"
