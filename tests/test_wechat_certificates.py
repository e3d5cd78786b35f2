"""Platform-certificate mode: bootstrap, verification of the download, rotation
overlap, and the download throttle (at most once per interval, never a loop)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from test_wechat_support import (
    SERIAL_A,
    SERIAL_B,
    Clock,
    FakeWechat,
    make_certificate,
    notification_body,
    platform_certificate,
    second_platform_key,
    serial_hex,
    signed_headers,
    transaction_resource,
    world,
)

from payhub import AsyncPayHub, ChannelError, ErrorCode, PayHub, ProtocolError, SignatureError
from payhub.channels.wechat import WechatPayChannel

HOUR = 3600.0
INTERVAL = 12 * HOUR
CERTS = "/v3/certificates"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(merchant_keys: Any, platform_keys: Any, clock: Clock
          ) -> tuple[WechatPayChannel, FakeWechat]:
    """A channel in certificate mode, knowing no certificate yet."""
    return world("certificates", merchant_keys.private, platform_keys.private, clock)


def hub_for(ch: WechatPayChannel, fake: FakeWechat) -> PayHub:
    return PayHub(channels=[ch], http_client=httpx.Client(transport=fake.transport()))


def query(ch: WechatPayChannel, fake: FakeWechat) -> Any:
    with hub_for(ch, fake) as hub:
        return hub.query("wechat", "A100001")


def rotate(fake: FakeWechat, platform_keys: Any) -> str:
    """Issue certificate B next to A, and sign with B from now on."""
    cert_b = platform_certificate(second_platform_key(), SERIAL_B)
    fake.certificates = [platform_certificate(platform_keys.private, SERIAL_A), cert_b]
    fake.signer_key, fake.signer_serial = second_platform_key(), serial_hex(cert_b)
    return serial_hex(cert_b)


def test_bootstrap_downloads_once_and_keeps_the_certificate(setup: Any) -> None:
    ch, fake = setup
    assert ch.platform_serials == []
    query(ch, fake)
    query(ch, fake)
    assert fake.count(CERTS) == 1
    assert ch.platform_serials == [format(SERIAL_A, "X")]


def test_the_download_must_be_signed_by_a_certificate_it_contains(
    setup: Any, other_keys: Any
) -> None:
    ch, fake = setup
    fake.routes["GET", CERTS] = lambda request: fake.signed(
        200, fake.certificate_list(), key=other_keys.private
    )
    with pytest.raises(SignatureError):
        query(ch, fake)


def test_the_download_must_name_a_known_or_contained_serial(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", CERTS] = lambda request: fake.signed(
        200, fake.certificate_list(), serial="0BADC0DE"
    )
    with pytest.raises(SignatureError, match="neither known nor in it"):
        query(ch, fake)


def test_a_tampered_certificate_in_the_download_is_refused(
    setup: tuple[WechatPayChannel, FakeWechat],
) -> None:
    ch, fake = setup

    def route(request: httpx.Request) -> httpx.Response:
        listing = fake.certificate_list()
        listing["data"][0]["encrypt_certificate"]["associated_data"] = "tampered"
        return fake.signed(200, listing)

    fake.routes["GET", CERTS] = route
    with pytest.raises(SignatureError, match="decryption"):
        query(ch, fake)


def test_a_serial_no_that_does_not_match_the_certificate_is_refused(
    setup: tuple[WechatPayChannel, FakeWechat],
) -> None:
    ch, fake = setup

    def route(request: httpx.Request) -> httpx.Response:
        listing = fake.certificate_list()
        listing["data"][0]["serial_no"] = "0BADC0DE"
        return fake.signed(200, listing)

    fake.routes["GET", CERTS] = route
    with pytest.raises(SignatureError, match="serial_no"):
        query(ch, fake)


def test_a_malformed_download_is_a_protocol_error(setup: Any) -> None:
    ch, fake = setup
    fake.routes["GET", CERTS] = lambda request: fake.signed(200, {"data": "nope"})
    with pytest.raises(ProtocolError):
        query(ch, fake)


def test_rotation_overlap_accepts_both_serials(setup: Any, platform_keys: Any) -> None:
    ch, fake = setup
    cert_b = platform_certificate(second_platform_key(), SERIAL_B)
    fake.certificates = [platform_certificate(platform_keys.private, SERIAL_A), cert_b]
    query(ch, fake)  # bootstrap: both certificates arrive
    assert ch.platform_serials == sorted([format(SERIAL_A, "X"), format(SERIAL_B, "X")])
    # Answers signed with A and with B both verify; no further download.
    query(ch, fake)
    fake.signer_key, fake.signer_serial = second_platform_key(), serial_hex(cert_b)
    query(ch, fake)
    assert fake.count(CERTS) == 1
    # Notifications with either serial too.
    for key, serial in ((platform_keys.private, format(SERIAL_A, "X")),
                        (second_platform_key(), format(SERIAL_B, "X"))):
        body = notification_body(transaction_resource())
        headers = signed_headers(key, serial, body, clock=fake.clock)
        with hub_for(ch, fake) as hub:
            assert hub.handle_notification("wechat", headers, body).accepted


def test_a_new_serial_in_an_answer_fetches_certificates_within_the_same_flow(
    setup: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = setup
    query(ch, fake)
    clock.advance(HOUR)  # well inside the interval
    serial_b = rotate(fake, platform_keys)
    result = query(ch, fake)
    assert result.out_trade_no == "A100001"
    assert fake.count(CERTS) == 2
    assert serial_b in ch.platform_serials
    assert format(SERIAL_A, "X") in ch.platform_serials  # the old one is kept


def test_a_serial_that_stays_unknown_is_refused_and_not_fetched_again(
    setup: Any, clock: Clock, other_keys: Any, platform_keys: Any
) -> None:
    ch, fake = setup
    query(ch, fake)
    fake.routes["GET", CERTS] = lambda request: fake.signed(
        200, fake.certificate_list(), key=platform_keys.private, serial=format(SERIAL_A, "X")
    )
    fake.signer_key, fake.signer_serial = other_keys.private, "0BADC0DE"
    for _ in range(5):
        with pytest.raises(SignatureError, match="unknown platform serial"):
            query(ch, fake)
    assert fake.count(CERTS) == 2  # bootstrap + one on-demand download
    clock.advance(INTERVAL)
    with pytest.raises(SignatureError):
        query(ch, fake)
    assert fake.count(CERTS) == 3  # one more, an interval later


def test_scheduled_refresh_every_interval(setup: Any, clock: Clock) -> None:
    ch, fake = setup
    query(ch, fake)
    clock.advance(INTERVAL - 1)
    query(ch, fake)
    assert fake.count(CERTS) == 1
    clock.advance(1)
    query(ch, fake)
    assert fake.count(CERTS) == 2


def test_a_failed_scheduled_refresh_does_not_fail_the_call(
    setup: Any, clock: Clock, caplog: Any
) -> None:
    ch, fake = setup
    query(ch, fake)
    clock.advance(INTERVAL)
    fake.routes["GET", CERTS] = lambda request: fake.error(500, "SYSTEM_ERROR", "系统错误")
    with caplog.at_level(logging.WARNING, logger="payhub.channels.wechat"):
        assert query(ch, fake).out_trade_no == "A100001"
    assert "refresh failed" in caplog.text
    assert fake.count(CERTS) == 2


def test_a_failed_bootstrap_is_retried_after_a_minute_not_in_a_loop(
    setup: Any, clock: Clock
) -> None:
    ch, fake = setup
    fake.routes["GET", CERTS] = lambda request: fake.error(500, "SYSTEM_ERROR", "系统错误")
    for _ in range(2):  # the scheduled attempt, then one on-demand attempt
        with pytest.raises(ChannelError) as info:
            query(ch, fake)
        assert info.value.code is ErrorCode.CHANNEL_UNAVAILABLE
    for _ in range(3):
        with pytest.raises(SignatureError):
            query(ch, fake)
    assert fake.count(CERTS) == 2
    del fake.routes["GET", CERTS]
    clock.advance(60)
    query(ch, fake)
    assert fake.count(CERTS) == 3


def test_expired_certificates_are_not_used(
    setup: Any, clock: Clock, platform_keys: Any
) -> None:
    ch, fake = setup
    short = make_certificate(platform_keys.private, SERIAL_A + 1, days=2)
    fake.certificates, fake.signer_serial = [short], serial_hex(short)
    query(ch, fake)
    clock.advance(2 * 86400)  # past not_after; the scheduled download finds it expired
    with pytest.raises(SignatureError):
        query(ch, fake)


# -- notifications with unknown serials -----------------------------------------


def _probe(fake: FakeWechat, platform_keys: Any, serial: str) -> tuple[Any, bytes]:
    body = notification_body(transaction_resource())
    return signed_headers(platform_keys.private, serial, body, clock=fake.clock), body


def test_a_notification_with_a_new_serial_fetches_certificates_first(
    setup: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = setup
    query(ch, fake)
    clock.advance(HOUR)
    serial_b = rotate(fake, platform_keys)
    body = notification_body(transaction_resource())
    headers = signed_headers(second_platform_key(), serial_b, body, clock=clock)
    with hub_for(ch, fake) as hub:
        outcome = hub.handle_notification("wechat", headers, body)
    assert outcome.accepted, outcome.error
    assert fake.count(CERTS) == 2


def test_a_notification_before_any_certificate_is_known_bootstraps(
    setup: Any, platform_keys: Any
) -> None:
    ch, fake = setup
    headers, body = _probe(fake, platform_keys, format(SERIAL_A, "X"))
    with hub_for(ch, fake) as hub:
        assert hub.handle_notification("wechat", headers, body).accepted
    assert fake.count(CERTS) == 1


def test_unknown_serial_sent_1000_times_fetches_at_most_once_per_interval(
    setup: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = setup
    headers, body = _probe(fake, platform_keys, "7E57AB1E")
    with hub_for(ch, fake) as hub:
        for _ in range(1000):
            outcome = hub.handle_notification("wechat", headers, body)
            assert isinstance(outcome.error, SignatureError)
            assert outcome.ack.status_code == 500
    assert fake.count(CERTS) == 1
    assert len(fake.requests) == 1
    clock.advance(INTERVAL)
    headers, body = _probe(fake, platform_keys, "7E57AB1E")
    with hub_for(ch, fake) as hub:
        for _ in range(1000):
            assert not hub.handle_notification("wechat", headers, body).accepted
    assert fake.count(CERTS) == 2


def test_unknown_serials_sent_1000_times_async_fetch_at_most_once(
    setup: Any, platform_keys: Any
) -> None:
    ch, fake = setup

    async def main() -> None:
        client = httpx.AsyncClient(transport=fake.transport())
        async with AsyncPayHub(channels=[ch], http_client=client) as hub:
            for i in range(1000):  # a different unknown serial every time
                headers, body = _probe(fake, platform_keys, f"7E57{i:04X}")
                outcome = await hub.handle_notification("wechat", headers, body)
                assert isinstance(outcome.error, SignatureError)
        await client.aclose()

    asyncio.run(main())
    assert fake.count(CERTS) == 1


def test_a_failed_notification_prerequisite_is_a_failure_ack(
    setup: Any, platform_keys: Any
) -> None:
    ch, fake = setup
    fake.routes["GET", CERTS] = lambda request: httpx.Response(502, html="<html>bad</html>")
    headers, body = _probe(fake, platform_keys, format(SERIAL_A, "X"))
    with hub_for(ch, fake) as hub:
        outcome = hub.handle_notification("wechat", headers, body)
    assert isinstance(outcome.error, ProtocolError)
    assert outcome.ack.status_code == 500
    assert json.loads(outcome.ack.body) == {"code": "FAIL", "message": "PROTOCOL"}


def test_probes_and_stale_notifications_trigger_no_download(
    setup: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    stale = signed_headers(
        platform_keys.private, "7E57AB1E", body, timestamp=str(int(clock()) - 301)
    )
    probe = [(k, "WECHATPAY/SIGNTEST/x" if k == "Wechatpay-Signature" else v)
             for k, v in signed_headers(platform_keys.private, "7E57AB1E", body, clock=clock)]
    with hub_for(ch, fake) as hub:
        assert not hub.handle_notification("wechat", stale, body).accepted
        assert not hub.handle_notification("wechat", probe, body).accepted
    assert fake.requests == []


def test_public_key_mode_never_downloads(
    merchant_keys: Any, platform_keys: Any, clock: Clock
) -> None:
    ch, fake = world("public_key", merchant_keys.private, platform_keys.private, clock)
    headers, body = _probe(fake, platform_keys, "7E57AB1E")
    assert ch.notification_prerequisite(httpx.Headers(headers)) is None
    with hub_for(ch, fake) as hub:
        assert not hub.handle_notification("wechat", headers, body).accepted
        hub.query("wechat", "A100001")
    assert fake.count(CERTS) == 0
