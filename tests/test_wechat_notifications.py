"""WeChat Pay notifications: verified over the raw body, decrypted, checked, parsed.

Each item of the issue's "bad input" list is its own test; each must end in a
typed error, a failure ack, and no secret in any message, repr or log record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import httpx
import pytest
from test_wechat_support import (
    API_V3_KEY,
    MCH_ID,
    NOW,
    Clock,
    FakeWechat,
    assert_no_secret,
    encrypt,
    notification_body,
    refund_resource,
    secrets_of,
    signed_headers,
    transaction_resource,
    world,
)

from payhub import (
    AmountError,
    AsyncPayHub,
    ErrorCode,
    Money,
    Notification,
    NotificationKind,
    NotificationRejected,
    PayHub,
    PayhubError,
    PaymentStatus,
    ProtocolError,
    SignatureError,
)
from payhub.channels.wechat import WechatPayChannel

MODES = ["public_key", "certificates"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setup(mode: str, merchant_keys: Any, platform_keys: Any, clock: Clock
          ) -> tuple[WechatPayChannel, FakeWechat]:
    ch, fake = world(mode, merchant_keys.private, platform_keys.private, clock)
    if mode == "certificates":
        # Know the platform certificate already, as after any earlier call.
        with PayHub(channels=[ch], http_client=httpx.Client(transport=fake.transport())) as hub:
            hub.close_trade("wechat", "WARMUP")
        fake.requests.clear()
    return ch, fake


def deliver(
    ch: WechatPayChannel, fake: FakeWechat, headers: Any, body: bytes
) -> Any:
    with PayHub(channels=[ch], http_client=httpx.Client(transport=fake.transport())) as hub:
        return hub.handle_notification("wechat", headers, body)


def signed(fake: FakeWechat, body: bytes, **kwargs: Any) -> list[tuple[str, str]]:
    kwargs.setdefault("clock", fake.clock)
    return signed_headers(fake.signer_key, fake.signer_serial, body, **kwargs)


def replace(headers: list[tuple[str, str]], name: str, value: str | None
            ) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k.lower() != name.lower()]
    return kept if value is None else [*kept, (name, value)]


def rejected(
    ch: WechatPayChannel,
    fake: FakeWechat,
    headers: Any,
    body: bytes,
    error: type[PayhubError],
    caplog: pytest.LogCaptureFixture,
    merchant_keys: Any,
    match: str = "",
) -> PayhubError:
    """Deliver through the hub and check the outcome is a typed failure, safely said."""
    caplog.set_level(logging.DEBUG)
    outcome = deliver(ch, fake, headers, body)
    assert not outcome.accepted
    assert outcome.notification is None
    assert isinstance(outcome.error, error), repr(outcome.error)
    assert match in outcome.error.message
    ack = outcome.ack
    assert ack.ok is False
    assert ack.status_code == 500
    assert ack.content_type == "application/json"
    assert json.loads(ack.body) == {"code": "FAIL", "message": outcome.error.code.name}
    signature = httpx.Headers(headers).get("wechatpay-signature", "")
    texts = [
        str(outcome.error), repr(outcome.error), outcome.error.message, ack.body.decode(),
        repr(ch), repr(ch.config), *(r.getMessage() for r in caplog.records),
    ]
    forbidden = secrets_of(merchant_keys.private)
    if len(signature) > 40:
        forbidden.append(signature)
    assert_no_secret(texts, forbidden)
    # The channel raises the same error when asked directly.
    with pytest.raises(error):
        ch.parse_notification(
            headers if isinstance(headers, httpx.Headers) else httpx.Headers(headers), body
        )
    return outcome.error


# -- good notifications ---------------------------------------------------------


def test_payment_notification_sync(setup: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    outcome = deliver(ch, fake, signed(fake, body), body)
    assert outcome.accepted
    assert outcome.ack.status_code == 204
    assert outcome.ack.body == b""
    assert outcome.ack.ok
    n = outcome.notification
    assert n.kind is NotificationKind.PAYMENT
    assert n.status is PaymentStatus.PAID
    assert n.out_trade_no == "A100001"
    assert n.channel_trade_id == "4200001234202311150000000001"
    assert n.amount == Money(100, "CNY")
    assert n.event_key == f"wechat:{MCH_ID}:EV-2018022511223320873"
    assert n.merchant_id == MCH_ID
    assert n.occurred_at is not None
    assert n.occurred_at.isoformat() == "2023-11-15T06:13:20+08:00"
    assert n.raw["resource"]["transaction_id"] == "4200001234202311150000000001"
    assert n.raw["event_type"] == "TRANSACTION.SUCCESS"
    assert "ciphertext" not in json.dumps(n.raw)
    assert n.raw_body == body
    assert fake.requests == []  # nothing fetched: the serial is known


def test_payment_notification_async(setup: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())

    async def main() -> Any:
        client = httpx.AsyncClient(transport=fake.transport())
        async with AsyncPayHub(channels=[ch], http_client=client) as hub:
            outcome = await hub.handle_notification("wechat", signed(fake, body), body)
        await client.aclose()
        return outcome

    outcome = asyncio.run(main())
    assert outcome.accepted
    assert outcome.notification.amount == Money(100)


def test_parse_notification_is_pure(setup: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    n = ch.parse_notification(httpx.Headers(signed(fake, body)), body)
    assert n.kind is NotificationKind.PAYMENT


@pytest.mark.parametrize(
    ("resource", "event"),
    [
        (transaction_resource(), "TRANSACTION.SUCCESS"),
        (refund_resource(), "REFUND.SUCCESS"),
        (refund_resource(refund_status="CLOSED"), "REFUND.CLOSED"),
    ],
)
def test_notifications_are_complete_valid_models(
    setup: Any, resource: dict[str, Any], event: str
) -> None:
    """Built with ``model_construct`` (no second validation): it must name every
    field, and the model must be what validation gives."""
    ch, fake = setup
    body = notification_body(resource, event_type=event)
    n = ch.parse_notification(httpx.Headers(signed(fake, body)), body)
    assert list(n.__dict__) == list(Notification.model_fields)
    assert n.model_fields_set == set(Notification.model_fields)
    assert n == Notification.model_validate(n.model_dump())
    assert n.event_key.startswith(f"wechat:{MCH_ID}:")


def test_refund_notification(setup: Any) -> None:
    ch, fake = setup
    body = notification_body(refund_resource(), event_type="REFUND.SUCCESS")
    n = deliver(ch, fake, signed(fake, body), body).notification
    assert n.kind is NotificationKind.REFUND
    assert n.status is PaymentStatus.REFUNDED
    assert n.refund_amount == Money(40)
    assert n.amount == Money(100)
    assert n.out_refund_no == "R1001"


@pytest.mark.parametrize("event", ["REFUND.ABNORMAL", "REFUND.CLOSED"])
def test_failed_refund_notifications(setup: Any, event: str) -> None:
    ch, fake = setup
    resource = refund_resource(refund_status=event.split(".")[1])
    del resource["success_time"]
    body = notification_body(resource, event_type=event)
    n = deliver(ch, fake, signed(fake, body), body).notification
    assert n.kind is NotificationKind.REFUND_FAILED
    assert n.refund_amount == Money(40)
    assert n.occurred_at is not None  # the envelope's create_time


def test_a_refund_notification_for_an_unknown_refund_parses(setup: Any) -> None:
    # The channel cannot know which refunds the shop asked for: it parses, and
    # the store (which does know) decides that the refund is not ours.
    ch, fake = setup
    body = notification_body(
        refund_resource(out_refund_no="R-NEVER-ASKED", out_trade_no="A-UNKNOWN"),
        event_type="REFUND.SUCCESS",
    )
    outcome = deliver(ch, fake, signed(fake, body), body)
    assert outcome.accepted
    n = outcome.notification
    assert n.kind is NotificationKind.REFUND
    assert n.out_refund_no == "R-NEVER-ASKED"
    assert n.out_trade_no == "A-UNKNOWN"


def test_timestamps_exactly_300_s_away_are_accepted(setup: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    for ts in (NOW - 300, NOW + 300):
        assert deliver(ch, fake, signed(fake, body, timestamp=str(ts)), body).accepted


# -- bad input: each its own test -------------------------------------------------


def test_signature_probe(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = replace(signed(fake, body), "Wechatpay-Signature",
                      "WECHATPAY/SIGNTEST/" + base64.b64encode(b"x" * 256).decode())
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "probe")


def test_timestamp_301_s_old(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body, timestamp=str(NOW - 301))
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "behind")


def test_timestamp_301_s_in_the_future(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body, timestamp=str(NOW + 301))
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "ahead")


def test_timestamp_in_milliseconds(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body, timestamp=str(NOW * 1000))
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "milliseconds")


@pytest.mark.parametrize(
    "timestamp", ["abc", "1.7e9", "1700000000.0", "-1700000000", "+1700000000",
                  "01700000000", "１７００００００００", "0x6553F100", ""]
)
def test_timestamp_not_a_number(
    setup: Any, caplog: Any, merchant_keys: Any, timestamp: str
) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body, timestamp=timestamp)  # signed over the bad value itself
    # Non-ASCII header values arrive as bytes (a str one would not even encode).
    raw = httpx.Headers([(k.encode(), v.encode("utf-8")) for k, v in headers])
    rejected(ch, fake, raw, body, SignatureError, caplog, merchant_keys, "Timestamp")


def test_missing_wechatpay_nonce(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = replace(signed(fake, body), "Wechatpay-Nonce", None)
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "missing")


def test_repeated_wechatpay_nonce(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body)
    nonce = dict(headers)["Wechatpay-Nonce"]
    headers.append(("Wechatpay-Nonce", nonce))  # even the same value twice
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "repeated")


@pytest.mark.parametrize(
    "name", ["Wechatpay-Timestamp", "Wechatpay-Signature", "Wechatpay-Serial"]
)
def test_other_signature_headers_missing_or_repeated(
    setup: Any, caplog: Any, merchant_keys: Any, name: str
) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body)
    rejected(ch, fake, replace(headers, name, None), body, SignatureError, caplog,
             merchant_keys, "missing")
    value = dict(headers)[name]
    rejected(ch, fake, [*headers, (name, value)], body, SignatureError, caplog,
             merchant_keys, "repeated")


def test_body_reserialized_after_signing(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed(fake, body)
    reserialized = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reserialized != body
    assert json.loads(reserialized) == json.loads(body)
    rejected(ch, fake, headers, reserialized, SignatureError, caplog, merchant_keys,
             "does not verify")


def test_signed_by_another_key(
    setup: Any, caplog: Any, merchant_keys: Any, other_keys: Any
) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed_headers(other_keys.private, fake.signer_serial, body, clock=fake.clock)
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "does not verify")


def _flip_tag(encrypted: dict[str, str]) -> dict[str, str]:
    raw = bytearray(base64.b64decode(encrypted["ciphertext"]))
    raw[-1] ^= 0x01
    return {**encrypted, "ciphertext": base64.b64encode(bytes(raw)).decode()}


def test_aes_tag_flipped(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    plaintext = json.dumps(transaction_resource()).encode()
    encrypted = _flip_tag(encrypt(plaintext))
    body = notification_body(plaintext, encrypted=encrypted)
    error = rejected(ch, fake, signed(fake, body), body, SignatureError, caplog, merchant_keys,
                     "decryption")
    assert "A100001" not in repr(error)  # no partial plaintext anywhere


@pytest.mark.parametrize(
    "tamper",
    [
        {"nonce": "000000000000"},
        {"associated_data": "refund"},
        {"ciphertext": "not base64!"},
        {"algorithm": "AEAD_AES_128_GCM"},
    ],
)
def test_aes_wrong_nonce_associated_data_or_encoding(
    setup: Any, caplog: Any, merchant_keys: Any, tamper: dict[str, str]
) -> None:
    ch, fake = setup
    plaintext = json.dumps(transaction_resource()).encode()
    body = notification_body(plaintext, encrypted={**encrypt(plaintext), **tamper})
    rejected(ch, fake, signed(fake, body), body, SignatureError, caplog, merchant_keys)


def test_encrypted_with_another_api_v3_key(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    plaintext = json.dumps(transaction_resource()).encode()
    body = notification_body(plaintext, encrypted=encrypt(plaintext, key="x" * 32))
    rejected(ch, fake, signed(fake, body), body, SignatureError, caplog, merchant_keys)


def test_notification_for_another_mchid(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource(mchid="1900000999"))
    error = rejected(ch, fake, signed(fake, body), body, NotificationRejected, caplog,
                     merchant_keys, "another merchant")
    assert error.code is ErrorCode.NOT_OURS


def test_refund_notification_for_another_mchid(
    setup: Any, caplog: Any, merchant_keys: Any
) -> None:
    ch, fake = setup
    body = notification_body(refund_resource(mchid="1900000999"), event_type="REFUND.SUCCESS")
    rejected(ch, fake, signed(fake, body), body, NotificationRejected, caplog, merchant_keys)


def test_notification_for_another_appid(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource(appid="wx0000000000000000"))
    rejected(ch, fake, signed(fake, body), body, NotificationRejected, caplog, merchant_keys,
             "another app")


@pytest.mark.parametrize("total", ["100.0", "100", 100.0, -100, None, True])
def test_amount_not_a_non_negative_json_integer(
    setup: Any, caplog: Any, merchant_keys: Any, total: Any
) -> None:
    ch, fake = setup
    resource = transaction_resource()
    resource["amount"]["total"] = total
    body = notification_body(resource)
    rejected(ch, fake, signed(fake, body), body, AmountError, caplog, merchant_keys)


def test_refund_amount_negative(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    resource = refund_resource()
    resource["amount"]["refund"] = -40
    body = notification_body(resource, event_type="REFUND.SUCCESS")
    rejected(ch, fake, signed(fake, body), body, AmountError, caplog, merchant_keys)


def test_unknown_serial(setup: Any, mode: str, caplog: Any, merchant_keys: Any,
                        platform_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource())
    headers = signed_headers(platform_keys.private, "7E57AB1E", body, clock=fake.clock)
    rejected(ch, fake, headers, body, SignatureError, caplog, merchant_keys, "unknown")


def test_unsupported_event_type(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource(), event_type="TRANSACTION.CLOSED")
    rejected(ch, fake, signed(fake, body), body, NotificationRejected, caplog, merchant_keys,
             "event_type")


def test_payment_event_without_success_state(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource(trade_state="NOTPAY"))
    rejected(ch, fake, signed(fake, body), body, ProtocolError, caplog, merchant_keys)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"event_type":"TRANSACTION.SUCCESS"}',
     b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":"x"}'],
)
def test_malformed_envelopes(setup: Any, caplog: Any, merchant_keys: Any, body: bytes) -> None:
    ch, fake = setup
    rejected(ch, fake, signed(fake, body), body, ProtocolError, caplog, merchant_keys)


def test_malformed_decrypted_resource(setup: Any, caplog: Any, merchant_keys: Any) -> None:
    ch, fake = setup
    for plaintext in (b"\xff\xfe", b"[1]", json.dumps({"mchid": MCH_ID}).encode()):
        body = notification_body(plaintext)
        error = rejected(ch, fake, signed(fake, body), body, PayhubError, caplog, merchant_keys)
        assert isinstance(error, ProtocolError | NotificationRejected)


def test_a_bad_success_time_is_a_protocol_error(setup: Any, caplog: Any, merchant_keys: Any
                                                ) -> None:
    ch, fake = setup
    body = notification_body(transaction_resource(success_time="2023-11-15 06:13:20"))
    rejected(ch, fake, signed(fake, body), body, ProtocolError, caplog, merchant_keys)


# -- acks -------------------------------------------------------------------------


def test_acks(setup: Any) -> None:
    ch, _ = setup
    assert ch.ack(True).model_dump() == {
        "status_code": 204, "body": b"", "content_type": None, "ok": True
    }
    failure = ch.ack(False, "SIGNATURE_INVALID")
    assert failure.body == b'{"code":"FAIL","message":"SIGNATURE_INVALID"}'
    assert failure.status_code == 500
    assert failure.headers == {"Content-Type": "application/json"}
    assert json.loads(failure.body) == {"code": "FAIL", "message": "SIGNATURE_INVALID"}


def test_api_v3_key_is_not_in_the_channel_repr(setup: Any) -> None:
    ch, _ = setup
    assert API_V3_KEY not in repr(ch) + repr(ch.config) + str(ch.config)


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": 1}',
        b'  \n{"a": [1, 2.5, "x"]}\r\n ',
        b'{"a": 1} x',
        b'{"a": 1}{"b": 2}',
        b"[1, 2]",
        b"",
        b"   ",
        b'{"a": NaN}',
        b'{"a": "\xff"}',
        b'{"a": 1',
        b'{"a": "\\ud800"}',
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
    ],
)
def test_json_objects_parse_as_json_loads_does(content: bytes) -> None:
    """The channel runs json's scanner directly (hot path): same answers, same
    refusals, plus one: a repeated key (json.loads lets the last one win)."""
    from payhub.channels.wechat._channel import _json_object

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(dict(pairs)) != len(pairs):
            raise ValueError("repeated key")
        return dict(pairs)

    try:
        expected: Any = json.loads(content.decode("utf-8"), object_pairs_hook=no_repeats)
    except ValueError:
        expected = ProtocolError
    if not isinstance(expected, dict):
        expected = ProtocolError
    try:
        got: Any = _json_object(content, "answer")
    except ProtocolError:
        got = ProtocolError
    assert got == expected  # (json's NaN is one shared object, so equal to itself here)
