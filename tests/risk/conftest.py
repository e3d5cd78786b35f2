"""Fixtures of the risk tests: a real Redis (``PAYHUB_TEST_REDIS_URL``; skipped,
saying so, without it) and a fresh key prefix per test, deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("PAYHUB_TEST_REDIS_URL")
    if not url:
        pytest.skip("PAYHUB_TEST_REDIS_URL is not set: the Redis risk state needs a real server")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    import redis

    prefix = f"payhub-risk-test:{uuid.uuid4().hex}"
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    try:
        client.ping()
        yield prefix
        keys = list(client.scan_iter(match=f"{{{prefix}}}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
