"""The wire helpers behind the hot paths: each fast path equals the plain way."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_plus, urlencode

import pytest
from httpx import Headers
from hypothesis import given, settings
from hypothesis import strategies as st

import payhub.channels.alipay as alipay
from payhub.channels._trusted import trusted
from payhub.channels.alipay import _wire
from payhub.errors import ProtocolError
from payhub.models import (
    Notification,
    NotificationKind,
    PaymentResult,
    PaymentStatus,
    ResultKind,
)
from payhub.money import Money
from payhub.plugins import channel_types, get_plugin_manager
from payhub.signing import canonical_query

# -- form decoding ---------------------------------------------------------------------

_KEYS = st.text(alphabet="abcdefgst_+=&%0129", min_size=0, max_size=6)
_VALUES = st.text(alphabet="aZ9 +=&%~-_.:/\x00é点\n", max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=6), st.sampled_from(["utf-8", "gbk"]))
def test_fast_decoder_agrees_with_the_general_one(
    pairs: list[tuple[str, str]], charset: str
) -> None:
    body = urlencode(pairs, encoding=charset).encode()
    _assert_same(body, charset)


_RAW = st.lists(
    st.sampled_from(
        [
            "a",
            "b",
            "=",
            "&",
            "%",
            "%2",
            "%26",
            "%3D",
            "%00",
            "%zz",
            "+",
            "sign",
            "sign_type",
            "%E7%82%B9",
            "\n",
            "%C3",
        ]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_RAW)
def test_fast_decoder_agrees_on_odd_bodies(text: str) -> None:
    _assert_same(text.encode(), "utf-8")


def _assert_same(body: bytes, charset: str) -> None:
    try:
        slow: Any = _wire._decode_form_slow(body, charset)
    except ProtocolError:
        slow = ProtocolError
    try:
        fast = _wire._decode_form_fast(body, charset)
    except ProtocolError:
        assert slow is ProtocolError
        return
    if fast is None:
        return  # the general decoder takes it
    assert fast.fields == slow
    expected = canonical_query(slow, exclude=("sign", "sign_type")).encode(charset)
    assert _wire.signed_message(fast) == expected


def test_fast_decoder_takes_alipay_bodies() -> None:
    fields = {"subject": "点卡 1", "sign": "ab+/==", "sign_type": "RSA2", "z": "1", "a": "2"}
    form = _wire._decode_form_fast(urlencode(fields).encode(), "utf-8")
    assert form is not None
    assert form.message == b"a=2&subject=\xe7\x82\xb9\xe5\x8d\xa1 1&z=1"
    assert form.fields == fields
    assert _wire.decode_form(urlencode(fields).encode()) == (fields, form.message)
    gbk = urlencode(fields | {"charset": "gbk"}, encoding="gbk").encode()
    assert _wire.decode_form(gbk) == (
        fields | {"charset": "gbk"},
        "a=2&charset=gbk&subject=点卡 1&z=1".encode("gbk"),
    )


def test_charset_field_is_found_raw() -> None:
    assert _wire.form_charset(b"a=1&charset=GBK&b=2") == "gbk"
    assert _wire.form_charset(b"input_charset=gbk&a=1") == "utf-8"
    assert _wire.form_charset(b"x=1&input_charset=gbk&charset=gb2312") == "gb2312"
    assert _wire.form_charset(b"charset=utf%2D8") == "utf-8"
    with pytest.raises(ProtocolError):
        _wire.form_charset(b"charset=utf-16")
    for odd in (b"charset=utf-8%00", b"charset=%FF", b"charset=", b"charset=%zz"):
        with pytest.raises(ProtocolError):  # typed, never a bare ValueError
            _wire.form_charset(odd)


# -- URL encoding, times ------------------------------------------------------------------


@given(st.text(max_size=40))
def test_quote_is_quote_plus(text: str) -> None:
    try:
        expected = quote_plus(text, safe="~")
    except UnicodeEncodeError:  # lone surrogates cannot be sent at all
        return
    assert _wire.quote(text) == expected


@given(st.binary(max_size=60))
def test_quote_base64(raw: bytes) -> None:
    import base64

    text = base64.b64encode(raw).decode()
    assert _wire.quote_base64(text) == quote_plus(text)


def test_times() -> None:
    moment = datetime(2024, 1, 2, 2, 30, 5, tzinfo=UTC)
    assert _wire.format_time(moment) == "2024-01-02 10:30:05"
    assert _wire.format_time(moment.astimezone(_wire.SHANGHAI)) == "2024-01-02 10:30:05"
    with pytest.raises(ValueError, match="naive"):
        _wire.format_time(datetime(2024, 1, 2))
    parsed = _wire.parse_time("2024-01-02 10:30:05")
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(hours=8)
    for bad in (
        "2024-01-02T10:30:05",
        "2024-01-02 10:30",
        "2024-13-02 10:30:05",
        "２024-01-02 10:30:05",
    ):
        with pytest.raises(ValueError):  # noqa: PT011
            _wire.parse_time(bad)


# -- response nodes ----------------------------------------------------------------------------


def test_members_keep_exact_spans() -> None:
    text = '{"a_response" : {"x":"}\\"{","y":[1,{"z":"\\/"}]} ,"sign":"s", "n": null}'
    members = _wire.top_level_members(text)
    node = members["a_response"]
    assert text[node.start : node.end] == '{"x":"}\\"{","y":[1,{"z":"\\/"}]}'
    assert node.value == {"x": '}"{', "y": [1, {"z": "/"}]}
    assert members["sign"].value == "s"
    assert members["n"].value is None
    assert _wire.top_level_members("{}") == {}


@pytest.mark.parametrize(
    "text",
    ['{"a":1', '{"a":1}x', '{"a":1,"a":2}', '{"a":NaN}', "[1]", '{"a" 1}', '{"a":1,}', "{a:1}", ""],
)
def test_members_refuse_malformed(text: str) -> None:
    with pytest.raises(ProtocolError):
        _wire.top_level_members(text)


# -- models built from trusted values ---------------------------------------------------------


def test_trusted_notification_equals_a_validated_one() -> None:
    values: dict[str, Any] = {
        "channel": "alipay",
        "kind": NotificationKind.PAYMENT,
        "out_trade_no": "A1",
        "channel_trade_id": "T1",
        "amount": Money(100),
        "status": PaymentStatus.PAID,
        "event_key": "alipay:1:n",
        "refund_amount": None,
        "refunded_total": None,
        "out_refund_no": None,
        "occurred_at": datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8))),
        "merchant_id": None,
        "raw": {"a": "b"},
        "raw_body": b"a=b",
    }
    assert set(values) == set(Notification.model_fields)
    built = trusted(Notification, dict(values))
    validated = Notification.model_validate(values)
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.model_fields_set == validated.model_fields_set
    assert json.loads(built.model_dump_json())["amount"] == {"minor": 100, "currency": "CNY"}
    assert built.model_copy(update={"out_trade_no": "A2"}).out_trade_no == "A2"


def test_trusted_fills_defaults_like_model_construct() -> None:
    values = {"channel": "a", "out_trade_no": "A1", "kind": ResultKind.APP}
    partial = trusted(PaymentResult, dict(values))
    constructed = PaymentResult.model_construct(**values)
    assert partial == constructed == PaymentResult(**values)
    assert partial.raw == {}
    assert partial.channel_context == {}
    assert partial.model_fields_set == constructed.model_fields_set == set(values)
    assert list(partial.__dict__) == list(PaymentResult.model_fields)
    # Defaults made by a factory are fresh each time, never shared between results.
    assert partial.raw is not trusted(PaymentResult, dict(values)).raw


def test_trusted_falls_back_for_unknown_or_missing_required_fields() -> None:
    unknown = {"channel": "a", "out_trade_no": "A1", "kind": ResultKind.APP, "nope": 1}
    assert trusted(PaymentResult, unknown) == PaymentResult.model_construct(**unknown)
    missing = {"channel": "a", "kind": ResultKind.APP}
    assert trusted(PaymentResult, missing) == PaymentResult.model_construct(**missing)


def test_local_payment_results_name_every_field(channel_for_wire: Any) -> None:
    from payhub.models import PaymentRequest, PayMethod

    for method in (PayMethod.PAGE, PayMethod.APP):
        request = PaymentRequest(out_trade_no="A1", amount=Money(1), subject="x", method=method)
        flow = channel_for_wire.pay(request)
        with pytest.raises(StopIteration) as stop:
            next(flow)
        result = stop.value.value
        assert set(result.__dict__) == set(PaymentResult.model_fields)
        assert result.attempts == ()


def test_notifications_name_every_field(channel_for_wire: Any, platform_keys: Any) -> None:
    """The notification path builds with ``trusted(..., complete=True)``: its
    literal must name every field, or the model would lack an attribute."""
    from test_alipay_fake import notification_body, notification_fields

    for extra in ({}, {"refund_fee": "1.00", "out_biz_no": "R1"}, {"gmt_payment": "bad"}):
        fields = {**notification_fields(), **extra}
        body = notification_body(fields, platform_keys.private)
        notification = channel_for_wire.parse_notification(Headers(), body)
        assert list(notification.__dict__) == list(Notification.model_fields)
        assert notification.model_fields_set == set(Notification.model_fields)
        assert notification == Notification.model_validate(notification.model_dump())


@pytest.fixture
def channel_for_wire(merchant_keys: Any, platform_keys: Any) -> Any:
    from test_alipay_fake import make_channel

    return make_channel(merchant_keys, platform_keys)


# -- the package ------------------------------------------------------------------------------


def test_exports() -> None:
    assert alipay.__all__ == sorted(alipay.__all__)
    assert set(alipay.__all__) == {
        "ALIPAY_BILL_HOSTS",
        "ALIPAY_ERROR_CODES",
        "ALIPAY_PRODUCTION_GATEWAY",
        "ALIPAY_SANDBOX_BILL_HOSTS",
        "ALIPAY_SANDBOX_GATEWAY",
        "ALIPAY_TEST_HOSTS",
        "AlipayChannel",
        "AlipayConfig",
        "register_channels",
    }
    for name in alipay.__all__:
        assert getattr(alipay, name) is not None
    assert alipay.AlipayChannel.__module__ == "payhub.channels.alipay"
    assert alipay.AlipayConfig.__module__ == "payhub.channels.alipay"


def test_registered_as_a_plugin() -> None:
    assert (
        channel_types(get_plugin_manager(load_entrypoints=False))["alipay"] is alipay.AlipayChannel
    )


def test_the_manual_lists_every_error_code() -> None:
    from pathlib import Path

    manual = Path(__file__).parent.parent / "docs" / "channels" / "alipay.md"
    rows = {}
    for line in manual.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[2] in ("yes", "no"):
            rows[cells[0]] = (cells[1], cells[2] == "yes")
    expected = {k: (v.name, v.retryable) for k, v in alipay.ALIPAY_ERROR_CODES.items()}
    assert rows == expected
