"""Verifying EPay notifications: every bad input a typed error, nothing credited.

Signatures here are computed by ``epay_support.md5_sign``, written from the
protocol text, not by the plugin's own signer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from epay_support import KEY, OTHER_KEY, OTHER_PID, PID, START, config, md5_sign, signed_body
from epay_support import notification_fields as fields
from payhub_epay import EpayChannel, EpayConfig, sign_md5, string_to_sign

from payhub.errors import (
    ErrorCode,
    NotificationRejected,
    PayhubError,
    ProtocolError,
    SignatureError,
)
from payhub.models import NotificationKind, PaymentStatus
from payhub.money import Money

NO_HEADERS = httpx.Headers()


def channel(now: datetime = START, **settings: object) -> EpayChannel:
    return EpayChannel("epay", EpayConfig.validated("epay", config(**settings)), clock=lambda: now)


def test_a_signed_notification_becomes_a_payment() -> None:
    body = signed_body(fields(money="12.5"))
    note = channel().parse_notification(NO_HEADERS, body)
    assert note.kind is NotificationKind.PAYMENT
    assert note.status is PaymentStatus.PAID
    assert note.out_trade_no == "ORDER-1"
    assert note.channel_trade_id == "2026030112000010001"
    assert note.amount == Money(1250)
    assert note.merchant_id == PID
    assert note.event_key == f"epay:{PID}:2026030112000010001"
    assert note.raw_body == body


def test_the_string_to_sign_drops_empties_and_the_sign_fields_and_is_not_url_encoded() -> None:
    params = {"b": "x y&z", "a": "1", "sign": "s", "sign_type": "MD5", "empty": "", "c": "中"}
    assert string_to_sign(params) == "a=1&b=x y&z&c=中"
    assert sign_md5(params, KEY.encode()) == md5_sign(params, KEY)


def test_get_query_strings_and_post_bodies_verify_alike() -> None:
    # 彩虹易支付 sends GET (http_build_query: spaces as '+'); clones POST a form.
    note = fields(name="VIP 会员 + 1", money="1")
    body = signed_body(note)
    assert b"+" in body
    parsed = channel().parse_notification(NO_HEADERS, body)
    assert parsed.raw["name"] == "VIP 会员 + 1"
    assert parsed.amount == Money(100)


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_sign_hex_case_does_not_matter(case: object) -> None:
    params = fields()
    sign = md5_sign(params, KEY)
    body = urlencode({**params, "sign": case(sign), "sign_type": "MD5"}).encode()  # type: ignore[operator]
    assert channel().parse_notification(NO_HEADERS, body).amount == Money(1250)


def test_sign_type_in_lowercase_is_still_md5() -> None:
    body = signed_body(fields(), sign_type="md5")
    assert channel().parse_notification(NO_HEADERS, body).amount == Money(1250)


def _rejected(body: bytes, error: type[PayhubError], **settings: object) -> PayhubError:
    with pytest.raises(error) as info:
        channel(**settings).parse_notification(NO_HEADERS, body)
    assert KEY not in info.value.message
    return info.value


def test_unsigned_notifications_are_refused() -> None:
    _rejected(urlencode(fields()).encode(), SignatureError)
    _rejected(urlencode({**fields(), "sign": "", "sign_type": "MD5"}).encode(), SignatureError)


@pytest.mark.parametrize(
    "sign",
    [
        "0" * 32,
        "not-hex-at-all",
        "",
        "g" * 32,
    ],
)
def test_a_wrong_or_malformed_sign_is_refused(sign: str) -> None:
    body = urlencode({**fields(), "sign": sign or "x", "sign_type": "MD5"}).encode()
    error = _rejected(body, SignatureError)
    assert error.code is ErrorCode.SIGNATURE_INVALID


def test_a_mixed_case_sign_of_another_message_is_refused() -> None:
    other = md5_sign(fields(money="99"), KEY)
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(other))
    _rejected(urlencode({**fields(), "sign": mixed, "sign_type": "MD5"}).encode(), SignatureError)


def test_any_field_changed_after_signing_is_refused() -> None:
    params = fields()
    sign = md5_sign(params, KEY)
    for name in ("money", "out_trade_no", "trade_status", "pid", "name"):
        tampered = {**params, name: params[name] + "0", "sign": sign, "sign_type": "MD5"}
        _rejected(urlencode(tampered).encode(), SignatureError)


def test_a_signature_made_with_another_key_is_refused() -> None:
    _rejected(signed_body(fields(), OTHER_KEY), SignatureError)


def test_another_merchants_pid_is_refused_even_when_signed_with_our_key() -> None:
    # A provider bug (or a shared key) signing another merchant's notification.
    error = _rejected(signed_body(fields(pid=OTHER_PID)), NotificationRejected)
    assert error.code is ErrorCode.NOT_OURS
    # and the other merchant's own, correctly signed notification
    _rejected(signed_body(fields(pid=OTHER_PID), OTHER_KEY), SignatureError)


def test_a_missing_pid_is_refused() -> None:
    params = fields()
    del params["pid"]
    _rejected(signed_body(params), NotificationRejected)


@pytest.mark.parametrize("status", ["WAIT_BUYER_PAY", "TRADE_CLOSED", "trade_success", ""])
def test_a_status_other_than_trade_success_is_refused(status: str) -> None:
    error = _rejected(signed_body(fields(trade_status=status)), NotificationRejected)
    assert error.code is ErrorCode.PAYMENT_STATE


def test_an_amount_that_differs_from_the_order_is_refused() -> None:
    # payhub signs the order's amount (fen) into param; the provider echoes it signed.
    error = _rejected(
        signed_body(fields(money="12.4", param="payhub1:1250:")), NotificationRejected
    )
    assert error.code is ErrorCode.INVALID_AMOUNT
    ok = channel().parse_notification(NO_HEADERS, signed_body(fields(param="payhub1:1250:")))
    assert ok.amount == Money(1250)


@pytest.mark.parametrize("money", ["12.345", "-1", "1e3", "", "１２", "12.", " 12"])
def test_malformed_amounts_are_refused(money: str) -> None:
    _rejected(signed_body(fields(money=money)), ProtocolError)


def test_an_amount_above_the_channel_limit_is_refused() -> None:
    _rejected(signed_body(fields(money="100.01")), ProtocolError, max_amount="100.00")


def test_a_payment_after_the_late_callback_window_is_marked_late() -> None:
    """Recorded as a late payment by the store (never credited), not refused and lost."""
    expires = START + timedelta(minutes=15)
    body = signed_body(fields(param=f"payhub1:1250:{int(expires.timestamp())}"))
    window = timedelta(hours=12)
    on_time = channel(now=expires + window).parse_notification(NO_HEADERS, body)
    assert on_time.amount
    assert not on_time.after_deadline
    late = channel(now=expires + window + timedelta(seconds=1))
    assert late.parse_notification(NO_HEADERS, body).after_deadline
    # the window is configurable
    short = channel(now=expires + timedelta(hours=2), late_window_hours=1)
    assert short.parse_notification(NO_HEADERS, body).after_deadline


def test_duplicate_fields_are_refused() -> None:
    body = signed_body(fields()) + b"&money=0.01"
    _rejected(body, SignatureError)


def test_rsa_is_not_accepted_by_an_md5_account() -> None:
    _rejected(signed_body(fields(), sign_type="RSA"), SignatureError)


@pytest.mark.parametrize("body", [b"\xff\xfe", b"a", b"", b"=" * 70000])
def test_garbage_bodies_are_refused(body: bytes) -> None:
    with pytest.raises((ProtocolError, SignatureError)):
        channel().parse_notification(NO_HEADERS, body)


def test_the_ack_is_the_literal_success() -> None:
    ack = channel().ack(True)
    assert (ack.status_code, ack.body, ack.ok) == (200, b"success", True)
    refusal = channel().ack(False, "SIGNATURE_INVALID")
    assert b"success" not in refusal.body.lower()
    assert not refusal.ok


def test_browser_returns_are_verified_the_same_way() -> None:
    params = {**fields(), "sign": md5_sign(fields(), KEY), "sign_type": "MD5"}
    info = channel().parse_return(params)
    assert info.out_trade_no == "ORDER-1"
    assert info.amount == Money(1250)
    with pytest.raises(SignatureError):
        channel().parse_return({**params, "money": "0.01"})
