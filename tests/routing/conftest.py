"""Fixtures of the routing tests: a manual clock, health stores (in memory and real Redis).

The Redis tests run against the server named by ``PAYHUB_TEST_REDIS_URL``
(CI sets it). Without the variable they are skipped, saying so; with it and
no server, they fail. Each test gets its own key prefix, deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from routing_fakes import ManualClock

from payhub.routing import HealthStore, InMemoryHealthStore, RedisHealthStore

REDIS_URL_VARIABLE = "PAYHUB_TEST_REDIS_URL"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_VARIABLE)
    if not url:
        pytest.skip(f"{REDIS_URL_VARIABLE} is not set: the Redis health store needs a real server")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh key prefix; the server must answer (a down server fails the test)."""
    import redis

    prefix = f"payhub-test:{uuid.uuid4().hex}"
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    try:
        client.ping()
        yield prefix
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_store(redis_url: str, redis_prefix: str) -> Iterator[RedisHealthStore]:
    with RedisHealthStore.from_url(redis_url, prefix=redis_prefix) as store:
        yield store


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> HealthStore:
    """Each breaker test runs against both stores."""
    if request.param == "memory":
        return InMemoryHealthStore()
    redis_store: RedisHealthStore = request.getfixturevalue("redis_store")
    return redis_store
