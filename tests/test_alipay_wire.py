"""Alipay's wire helpers: form decoding, the signed bytes, response members, models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode

import pytest
from httpx import Headers
from hypothesis import given, settings
from hypothesis import strategies as st

import payhub.channels.alipay as alipay
from payhub.channels.alipay import _wire
from payhub.errors import ProtocolError
from payhub.models import (
    Notification,
    PaymentResult,
)
from payhub.money import Money
from payhub.plugins import channel_types, get_plugin_manager
from payhub.signing import canonical_query

# -- form decoding ---------------------------------------------------------------------

_KEYS = st.text(alphabet="abcdefgst_+=&%0129", min_size=0, max_size=6)
_VALUES = st.text(alphabet="aZ9 +=&%~-_.:/\x00é点\n", max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=6), st.sampled_from(["utf-8", "gbk"]))
def test_decoder_reads_what_urlencode_wrote(pairs: list[tuple[str, str]], charset: str) -> None:
    body = urlencode([*pairs, ("charset", charset)], encoding=charset).encode()
    expected = dict([*pairs, ("charset", charset)])
    if len(expected) != len(pairs) + 1:  # a repeated field: refused
        with pytest.raises(ProtocolError):
            _wire.decode_form(body)
        return
    fields, message = _wire.decode_form(body)
    assert fields == expected
    assert message == canonical_query(expected, exclude=("sign", "sign_type")).encode(charset)


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
def test_decoder_agrees_with_parse_qsl_on_odd_bodies(text: str) -> None:
    """``parse_qsl`` semantics (blanks kept), or a typed refusal: never another error."""
    body = text.encode()
    try:
        fields, message = _wire.decode_form(body)
    except ProtocolError:
        return
    pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    assert fields == dict(pairs)
    assert message == canonical_query(fields, exclude=("sign", "sign_type")).encode()


def test_decoder_takes_alipay_bodies() -> None:
    fields = {"subject": "点卡 1", "sign": "ab+/==", "sign_type": "RSA2", "z": "1", "a": "2"}
    assert _wire.decode_form(urlencode(fields).encode()) == (
        fields,
        b"a=2&subject=\xe7\x82\xb9\xe5\x8d\xa1 1&z=1",
    )
    gbk = urlencode(fields | {"charset": "gbk"}, encoding="gbk").encode()
    assert _wire.decode_form(gbk) == (
        fields | {"charset": "gbk"},
        "a=2&charset=gbk&subject=点卡 1&z=1".encode("gbk"),
    )


def test_decoder_refuses_repeats_and_bad_bytes() -> None:
    with pytest.raises(ProtocolError, match="repeats"):
        _wire.decode_form(b"a=1&a=2")
    with pytest.raises(ProtocolError, match="not valid utf-8"):
        _wire.decode_form(b"a=%C3")


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


# -- models built from checked values ---------------------------------------------------------


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
    """The notification path builds with ``model_construct`` (no second
    validation): it must name every field, and give what validation gives."""
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
