"""UnionPay backUrl notifications: verification, parsing, acks, and every bad input."""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask_payhub import PayHubExtension
from test_unionpay_pki import (
    MER_ID,
    NOW,
    PRODUCTION_CN,
    assert_no_secret,
    clock,
    config,
    form_body,
    issue,
    notification,
    pem,
    pki,
    platform_signed,
)

from payhub import (
    AmountError,
    AsyncPayHub,
    Money,
    NotificationKind,
    NotificationRejected,
    PayHub,
    PayhubError,
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    PayMethod,
    ProtocolError,
    SignatureError,
)
from payhub.channels.unionpay import RESP_CODES, UnionPayChannel
from payhub.store import Store

HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "channels" / "unionpay.md"


@pytest.fixture
def channel() -> UnionPayChannel:
    return UnionPayChannel(config(), clock=clock)


@pytest.fixture
def hub(channel: UnionPayChannel) -> Any:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(599)))
    with client, PayHub(channels=[channel], http_client=client) as hub:
        yield hub


def body(**overrides: str) -> bytes:
    return form_body(platform_signed(notification(**overrides)))


# -- good notifications ----------------------------------------------------------


def test_payment_notification(hub: PayHub) -> None:
    raw = body()
    outcome = hub.handle_notification("unionpay", HEADERS, raw)
    assert outcome.accepted, outcome.error
    assert outcome.ack.status_code == 200
    assert outcome.ack.body == b"ok"
    assert outcome.ack.ok
    n = outcome.notification
    assert n is not None
    assert (n.kind, n.status) == (NotificationKind.PAYMENT, PaymentStatus.PAID)
    assert n.amount == Money(1234, "CNY")
    assert (n.out_trade_no, n.channel_trade_id) == ("ORDER20250601", "512506011000001234567")
    assert n.event_key == f"unionpay:{MER_ID}:512506011000001234567:01"
    assert n.occurred_at == datetime.fromisoformat("2025-06-01T09:59:00+08:00")
    assert n.merchant_id == MER_ID
    assert n.raw["respMsg"] == "Success!"
    assert n.raw_body == raw


def test_resends_share_the_event_key(channel: UnionPayChannel) -> None:
    first = channel.parse_notification(httpx.Headers(HEADERS), body())
    again = channel.parse_notification(httpx.Headers(HEADERS), body(traceTime="0601100500"))
    assert first.event_key == again.event_key


def test_refund_notification(channel: UnionPayChannel) -> None:
    raw = body(txnType="04", txnSubType="00", orderId="REFUND20250601",
               queryId="512506011100009999999", origQryId="512506011000001234567",
               txnAmt="234")
    n = channel.parse_notification(httpx.Headers(HEADERS), raw)
    assert (n.kind, n.status) == (NotificationKind.REFUND, PaymentStatus.REFUNDED)
    assert n.refund_amount == Money(234)
    assert n.amount is None  # the payment's total is not in a refund notification
    assert n.out_refund_no == "REFUND20250601"
    assert n.out_trade_no == "REFUND20250601"  # the message names only the refund's order
    assert n.channel_trade_id == "512506011000001234567"  # origQryId: the payment
    assert n.raw["origQryId"] == "512506011000001234567"
    assert n.event_key == f"unionpay:{MER_ID}:512506011100009999999:04"


def test_undo_notification(channel: UnionPayChannel) -> None:
    raw = body(txnType="31", txnSubType="00", orderId="UNDO20250601",
               queryId="512506011100008888888", origQryId="512506011000001234567")
    n = channel.parse_notification(httpx.Headers(HEADERS), raw)
    assert (n.kind, n.status) == (NotificationKind.REFUND, PaymentStatus.CLOSED)
    assert n.refund_amount == Money(1234)
    assert n.event_key.endswith(":31")


def test_failed_payment_notification(channel: UnionPayChannel) -> None:
    n = channel.parse_notification(httpx.Headers(HEADERS), body(respCode="64"))
    assert (n.kind, n.status) == (NotificationKind.CLOSED, PaymentStatus.FAILED)


def test_failed_refund_notification(channel: UnionPayChannel) -> None:
    raw = body(txnType="04", respCode="35", origQryId="512506011000001234567")
    n = channel.parse_notification(httpx.Headers(HEADERS), raw)
    assert (n.kind, n.status) == (NotificationKind.REFUND_FAILED, PaymentStatus.PAID)


def test_chinese_text_and_pem_survive_form_encoding(channel: UnionPayChannel) -> None:
    n = channel.parse_notification(httpx.Headers(HEADERS), body(respMsg="成功[0000000]"))
    assert n.raw["respMsg"] == "成功[0000000]"
    assert n.raw["signPubKeyCert"] == pem(pki().platform)


def test_browser_return_is_verified(channel: UnionPayChannel) -> None:
    info = channel.parse_return(platform_signed(notification()))
    assert info.out_trade_no == "ORDER20250601"
    assert info.amount == Money(1234)
    forged = platform_signed(notification()) | {"txnAmt": "1"}
    with pytest.raises(SignatureError):
        channel.parse_return(forged)


def test_async_hub_handles_notifications(channel: UnionPayChannel) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            hub = AsyncPayHub(channels=[channel], http_client=client)
            good = await hub.handle_notification("unionpay", HEADERS, body())
            bad = await hub.handle_notification("unionpay", HEADERS, body(txnAmt="1.00"))
            assert good.accepted
            assert good.ack.status_code == 200
            assert not bad.accepted
            assert bad.ack.status_code == 500

    asyncio.run(main())


def test_acks(channel: UnionPayChannel) -> None:
    ok, fail = channel.ack(True), channel.ack(False, "SIGNATURE_INVALID")
    assert (ok.status_code, ok.body, ok.ok) == (200, b"ok", True)
    assert (fail.status_code, fail.ok) == (500, False)


# -- bad input: each rejected with a typed error and a failure ack --------------------


def forged_by(cert: Any) -> bytes:
    return form_body(platform_signed(notification(), cert=cert))


def over_other_amount() -> bytes:
    message = platform_signed(notification(txnAmt="1"))
    message["txnAmt"] = "1234"
    return form_body(message)


def without(field: str) -> bytes:
    message = platform_signed(notification())
    del message[field]
    return form_body(message)


BAD_INPUT: dict[str, tuple[Any, type[PayhubError], str]] = {
    "self-signed signPubKeyCert": (lambda: forged_by(pki().self_signed), SignatureError,
                                   "self-issued|not issued by the configured chain"),
    "expired signPubKeyCert": (lambda: forged_by(pki().expired), SignatureError, "validity"),
    "signPubKeyCert from another chain": (lambda: forged_by(pki().foreign), SignatureError,
                                          "does not verify against its issuer"),
    "another company's CN": (lambda: forged_by(other_company()), SignatureError,
                             "CN mismatch"),
    "corrupt signPubKeyCert (issuer byte flipped)": (
        lambda: form_body(platform_signed(notification(), cert_pem=flipped_issuer_pem())),
        SignatureError, "readable|parsed|not issued"),
    "empty field added after signing": (
        lambda: form_body(platform_signed(notification()) | {"reqReserved": ""}),
        SignatureError, "does not verify"),
    "txnAmt 0": (lambda: body(txnAmt="0"), ProtocolError, "txnAmt is 0"),
    "txnAmt of 13 digits": (lambda: body(txnAmt="1000000000000"), AmountError, "limit"),
    "orderId with NUL": (lambda: body(orderId="ORDER2025\x000601"), ProtocolError, "orderId"),
    "orderId of 100,000 characters": (lambda: body(orderId="A" * 100_000), ProtocolError,
                                      "orderId"),
    "orderId with '-'": (lambda: body(orderId="ORDER-20250601"), ProtocolError, "orderId"),
    "queryId of 22 characters": (lambda: body(queryId="5" * 22), ProtocolError, "queryId"),
    "origQryId with a space": (
        lambda: body(txnType="04", txnSubType="00", orderId="REFUND20250601",
                     origQryId="512506011000001234567 "), ProtocolError, "origQryId"),
    "signature over a different txnAmt": (over_other_amount, SignatureError,
                                          "does not verify"),
    "txnAmt 1.00": (lambda: body(txnAmt="1.00"), AmountError, "malformed"),
    "txnAmt -1": (lambda: body(txnAmt="-1"), AmountError, "malformed"),
    "missing signature": (lambda: without("signature"), SignatureError, "missing"),
    "missing signPubKeyCert": (lambda: without("signPubKeyCert"), SignatureError, "missing"),
    "garbage signPubKeyCert": (
        lambda: form_body(platform_signed(notification(), cert_pem="-----BEGIN CERTIFICATE-----"
                                          "\nAAAA\n-----END CERTIFICATE-----\n")),
        SignatureError, "not a readable certificate"),
    "signature not base64": (
        lambda: form_body(platform_signed(notification()) | {"signature": "!!!"}),
        SignatureError, "base64"),
    "another merchant": (lambda: body(merId="898111111111111"), NotificationRejected, "merId"),
    "another currency": (lambda: body(currencyCode="840"), NotificationRejected, "currency"),
    "state unknown": (lambda: body(respCode="03"), NotificationRejected, "not a final"),
    "unhandled txnType": (lambda: body(txnType="79"), NotificationRejected, "txnType"),
    "missing queryId": (lambda: without_signed("queryId"), ProtocolError, "queryId"),
    "bad txnTime": (lambda: body(txnTime="20251301000000"), ProtocolError, "txnTime"),
    "signMethod 11": (lambda: body(signMethod="11"), SignatureError, "signMethod"),
    "duplicated field": (lambda: body() + b"&txnAmt=1", ProtocolError, "twice"),
    "not UTF-8": (lambda: body(respMsg="x") + "&reserved=成功".encode("gbk"), ProtocolError,
                  "UTF-8"),
    "GBK declared": (lambda: body(encoding="GBK"), ProtocolError, "UTF-8"),
    "empty body": (lambda: b"", ProtocolError, "empty"),
    "JSON body": (lambda: b'{"respCode": "00"}', ProtocolError, "form"),
}


def other_company() -> Any:
    """Chains to the configured root, but belongs to someone other than UnionPay."""
    p = pki()
    return issue("041@Z12@Some Shop Ltd@00000009", p.platform_key.public_key(),
                 issuer=p.middle.subject, issuer_key=p.middle_key, serial=1006)


def flipped_issuer_pem() -> str:
    """The platform certificate with one byte of its issuer name flipped."""
    der = bytearray(pki().platform.public_bytes(serialization.Encoding.DER))
    at = der.index(b"UnionPay Test Middle")
    der[at - 2] ^= 0xFF  # the tag byte of the issuer's CN string
    body = base64.encodebytes(bytes(der)).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def without_signed(field: str) -> bytes:
    fields = notification()
    del fields[field]
    return form_body(platform_signed(fields))


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_rejected(hub: PayHub, channel: UnionPayChannel, case: str) -> None:
    make, error, match = BAD_INPUT[case]
    raw = make()
    cached_before = channel.verifier.cached
    with pytest.raises(error, match=match) as info:
        channel.parse_notification(httpx.Headers(HEADERS), raw)
    outcome = hub.handle_notification("unionpay", HEADERS, raw)
    assert not outcome.accepted
    assert outcome.notification is None
    assert isinstance(outcome.error, error)
    assert outcome.ack.status_code == 500
    assert not outcome.ack.ok
    assert_no_secret(str(info.value), repr(info.value), outcome.ack.body.decode())
    if error is SignatureError:  # nothing learnt from a forged message
        assert channel.verifier.cached == cached_before


PRODUCTION_MER_ID = "898111448161234"


def production_config() -> dict[str, Any]:
    return config(environment="production", mer_id=PRODUCTION_MER_ID)


def test_test_cn_in_production_mode_is_rejected() -> None:
    channel = UnionPayChannel(production_config(), clock=clock)
    with pytest.raises(SignatureError, match="CN mismatch"):
        channel.parse_notification(httpx.Headers(HEADERS), body(merId=PRODUCTION_MER_ID))
    production = form_body(
        platform_signed(notification(merId=PRODUCTION_MER_ID), cert=pki().production)
    )
    assert channel.parse_notification(httpx.Headers(HEADERS), production).amount == Money(1234)
    assert PRODUCTION_CN.split("@")[2] == "中国银联股份有限公司"


@pytest.mark.parametrize("environment", ["test", "sandbox"])
def test_test_mode_accepts_both_test_cns(environment: str) -> None:
    """Since 2020 the test platform certificate's CN carries 中国银联股份有限公司 too;
    older test certificates carry 00040000:SIGN. UnionPay's SDKs accept either."""
    channel = UnionPayChannel(config(environment=environment), clock=clock)
    for cert in (pki().platform, pki().production):
        raw = form_body(platform_signed(notification(), cert=cert))
        assert channel.parse_notification(httpx.Headers(HEADERS), raw).amount == Money(1234)


# -- the certificate cache ----------------------------------------------------------


def test_verified_certificates_are_cached_by_fingerprint(channel: UnionPayChannel) -> None:
    assert channel.verifier.cached == 0
    channel.parse_notification(httpx.Headers(HEADERS), body())
    channel.parse_notification(httpx.Headers(HEADERS), body(queryId="2"))
    assert channel.verifier.cached == 1


def test_cache_is_bounded() -> None:
    channel = UnionPayChannel(config(cert_cache_size=2), clock=clock)
    for serial in (5001, 5002, 5003):
        raw = form_body(platform_signed(notification(), cert=pki().extra_platform(serial)))
        channel.parse_notification(httpx.Headers(HEADERS), raw)
    assert channel.verifier.cached == 2


def test_cache_can_be_turned_off() -> None:
    channel = UnionPayChannel(config(cert_cache_size=0), clock=clock)
    channel.parse_notification(httpx.Headers(HEADERS), body())
    assert channel.verifier.cached == 0


def test_cached_certificate_is_rechecked_against_the_clock() -> None:
    p = pki()
    short = issue("041@Z12@00040000:SIGN@00000062", p.platform_key.public_key(),
                  issuer=p.middle.subject, issuer_key=p.middle_key, serial=6001,
                  not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=1))
    moments = [NOW]
    channel = UnionPayChannel(config(), clock=lambda: moments[-1])
    raw = form_body(platform_signed(notification(), cert=short))
    channel.parse_notification(httpx.Headers(HEADERS), raw)
    assert channel.verifier.cached == 1
    moments.append(NOW + timedelta(days=2))
    with pytest.raises(SignatureError, match="validity"):
        channel.parse_notification(httpx.Headers(HEADERS), raw)
    moments.append(NOW - timedelta(days=2))
    with pytest.raises(SignatureError, match="validity"):
        channel.parse_notification(httpx.Headers(HEADERS), raw)


def test_cache_is_per_trust_configuration() -> None:
    """A certificate verified for the test environment is not trusted in production."""
    test_mode = UnionPayChannel(config(), clock=clock)
    production = UnionPayChannel(production_config(), clock=clock)
    test_mode.parse_notification(httpx.Headers(HEADERS), body())
    with pytest.raises(SignatureError):
        production.parse_notification(httpx.Headers(HEADERS), body(merId=PRODUCTION_MER_ID))


# -- documentation -----------------------------------------------------------------


def test_docs_list_every_resp_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `([0-9A-Z]{2})` \| [^|]+ \| `?([A-Z_]+|success)`? \|",
                                 text, re.MULTILINE))
    table = {code: (row.error.name if row.error else "success") for code, row in
             RESP_CODES.items()}
    assert documented == table


# -- through a hub with a store, and the Flask adapter ---------------------------------


@pytest.mark.parametrize(
    "bad",
    ["corrupt signPubKeyCert", "txnAmt 0", "orderId with NUL", "orderId of 100,000 characters"],
)
def test_bad_notification_through_flask_is_a_failure_ack_and_writes_nothing(
    tmp_path: Path, bad: str
) -> None:
    """Never a ValueError or a 500 from the framework, never a retryable store error:
    the channel's failure ack, and the store untouched."""
    make = BAD_INPUT.get(bad) or BAD_INPUT["corrupt signPubKeyCert (issuer byte flipped)"]
    raw = make[0]()
    store = Store(f"sqlite:///{tmp_path / 'payhub.db'}")
    store.upgrade()
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(599)))
    channel = UnionPayChannel(config(), clock=clock)
    with store, http, PayHub(channels=[channel], store=store, http_client=http) as hub:
        hub.pay(PaymentRequest(out_trade_no="ORDER20250601", amount=Money(1234),
                               subject="Gift card", method=PayMethod.PAGE))
        app = Flask(__name__)
        # A cap above the 100,000-character body, so the channel's own check is what refuses it
        # (under the default 64 KiB cap the adapter answers 413 before reading it).
        PayHubExtension(app, hub=hub, max_notification_bytes=1024 * 1024)
        client = app.test_client()
        response = client.post("/payhub/notify/unionpay", data=raw, headers=HEADERS)
        assert (response.status_code, response.data) == (500, b"fail")
        assert store.inbox() == []
        record = store.payment("ORDER20250601")
        assert record is not None
        assert record.status is PaymentState.PENDING
        assert record.channel_trade_id is None
        # The genuine notification still goes through afterwards.
        good = client.post("/payhub/notify/unionpay", data=body(), headers=HEADERS)
        assert (good.status_code, good.data) == (200, b"ok")
        assert store.payment("ORDER20250601").status is PaymentState.PAID  # type: ignore[union-attr]
