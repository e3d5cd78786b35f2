"""Fixtures for the sandbox's tests: a manual clock, a fake shop, the app, a client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from flask import Flask
from payhub_sandbox import ManualClock, Sandbox, create_app
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, BASE_URL, SELLER_ID, START, Shop


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def sandbox(platform_keys, merchant_keys, clock: ManualClock, shop: Shop) -> Iterator[Sandbox]:
    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        clock=clock,
        notify_transport=shop.transport,
        base_url=BASE_URL,
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    yield box
    box.stop()


@pytest.fixture
def app(sandbox: Sandbox) -> Flask:
    return create_app(sandbox)


@pytest.fixture
def http(app: Flask) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def alipay(http: httpx.Client, merchant_keys, clock: ManualClock) -> AlipayWireClient:
    return AlipayWireClient(http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now)
