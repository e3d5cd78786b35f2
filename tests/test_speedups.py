"""payhub._speedups: the compiled form decoder gives exactly the Python decoders' answers.

The extension is optional for users (no C compiler: payhub runs on the Python
twins), but the test command builds it, so here it must be present.
"""

from __future__ import annotations

import tracemalloc
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payhub.channels.alipay import _wire
from payhub.errors import ProtocolError
from payhub.signing import canonical_query

try:
    from payhub import _speedups
except ImportError:  # pragma: no cover - the assertion below says what is wrong
    _speedups = None  # type: ignore[assignment]


def _decode(body: bytes) -> tuple[dict[str, str], bytes] | None:
    assert _speedups is not None, (
        "payhub._speedups was not built: install payhub with a C compiler at hand "
        "(./scripts/test does)"
    )
    return _speedups.decode_form_utf8(body)


def test_the_extension_is_built_and_used() -> None:
    assert _speedups is not None, "payhub._speedups was not built (no C compiler?)"
    assert _wire._decode_form_c is _speedups.decode_form_utf8


def _python(body: bytes) -> Any:
    """What the Python decoders make of a body: (fields, signed bytes), or the error type."""
    try:
        charset = _wire.form_charset(body)
        fields = _wire._decode_form_slow(body, charset)
    except ProtocolError:
        return ProtocolError
    return fields, canonical_query(fields, exclude=("sign", "sign_type")).encode(charset)


def _assert_same(body: bytes) -> None:
    native = _decode(body)
    expected = _python(body)
    if native is None:
        return  # declined: the Python decoders take it (and give `expected`)
    assert expected is not ProtocolError, f"C accepted a body Python refuses: {body!r}"
    fields, message = native
    assert fields == expected[0]
    assert list(fields) == list(expected[0])  # body order kept, as the Python decoders do
    assert message == expected[1]


# long enough to share the decoder's 8-byte sort prefix, NULs included
_KEYS = st.text(alphabet="abst_+=&%01\x00点", min_size=0, max_size=12)
_VALUES = st.text(alphabet="aZ9 +=&%~-_.:/\x00é点\n", max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=8))
def test_agrees_with_python_on_encoded_forms(pairs: list[tuple[str, str]]) -> None:
    _assert_same(urlencode(pairs).encode())


_PIECES = st.sampled_from(
    [
        "a", "b", "=", "&", "%", "%2", "%26", "%3D", "%3d", "%00", "%zz", "%G0", "+", "%2B",
        "sign", "sign_type", "charset", "charset=utf-8", "charset=GBK", "charset=utf8",
        "charset=UTF-8", "charset=utf-16", "%E7%82%B9", "%C3", "%FF", "\n", "\x00", "é",
    ]
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_agrees_with_python_on_odd_bodies(text: str) -> None:
    _assert_same(text.encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_agrees_with_python_on_any_bytes(body: bytes) -> None:
    _assert_same(body)


def test_takes_an_alipay_notification() -> None:
    fields = {
        "notify_id": "2024010200222",
        "subject": "点卡 1+1",
        "gmt_payment": "2024-01-02 10:31:05",
        "sign": "ab+/==",
        "sign_type": "RSA2",
        "charset": "utf-8",
        "body": "",
        "a": "2",
    }
    native = _decode(urlencode(fields).encode())
    assert native is not None
    assert native[0] == fields
    assert native[1] == (
        "a=2&charset=utf-8&gmt_payment=2024-01-02 10:31:05&notify_id=2024010200222"
        "&subject=点卡 1+1"
    ).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"a=1&",
        b"&a=1",
        b"a=1&&b=2",
        b"a",
        b"a=1&b",
        b"a=%4",
        b"a=%zz",
        b"a=\xff",
        b"a=%FF",
        b"a=1&a=2",
        b"a=1&%61=2",
        b"charset=gbk&a=1",
        b"charset=utf-16&a=1",
        b"charset=&a=1",
    ],
)
def test_declines_what_it_does_not_handle(body: bytes) -> None:
    assert _decode(body) is None


@pytest.mark.parametrize("spelling", ["utf-8", "UTF-8", "utf8", "UTF8", "Utf-8", "utf%2D8"])
def test_reads_utf8_spellings_of_charset(spelling: str) -> None:
    native = _decode(f"charset={spelling}&a=1".encode())
    assert native is not None
    assert native[0]["a"] == "1"


def test_signed_bytes_sort_keys_that_share_long_prefixes() -> None:
    keys = [
        "notify_time", "notify_type", "notify_id", "notify_", "notify", "notify_\x00",
        "notify_\x00a", "gmt_payment", "gmt_create", "gmt_close", "out_trade_no",
        "out_biz_no", "out_trade_no_", "点卡号码ab", "点卡号码a", "a" * 40, "a" * 39 + "b",
    ]  # fmt: skip
    fields = {key: f"v{i}" for i, key in enumerate(keys)}
    native = _decode(urlencode(fields).encode())
    assert native is not None
    assert native[1] == canonical_query(fields).encode()


def test_big_bodies_take_the_heap_path() -> None:
    # more fields and bytes than the decoder keeps on its stack
    fields = {f"k{i:04d}": "值" * 20 + str(i) for i in range(300)}
    fields["sign"] = "x" * 5000
    body = urlencode(fields).encode()
    assert len(body) > 4096
    _assert_same(body)
    native = _decode(body)
    assert native is not None
    assert native[0] == fields


def test_cached_keys_never_mix_up_values() -> None:
    # Thousands of distinct keys through a 256-slot cache: every collision must
    # be told apart, and a cached key must give the same str as a fresh one.
    for round_ in range(3):
        for i in range(2000):
            key = f"key{i}"
            native = _decode(f"{key}=v{i}&other=o{round_}".encode())
            assert native is not None
            assert native[0] == {key: f"v{i}", "other": f"o{round_}"}
    native = _decode(b"notify_id=1&notify_id2=2")
    assert native is not None
    assert native[0]["notify_id"] == "1"


def test_cached_keys_are_reused() -> None:
    first = _decode(b"notify_id=1")
    second = _decode(b"notify_id=2")
    assert first is not None
    assert second is not None
    assert next(iter(first[0])) is next(iter(second[0]))


def test_keys_from_senders_do_not_accumulate() -> None:
    """Keys are decoded before any signature is checked: a flood of distinct
    ones must not grow memory (interned strings are immortal since 3.12)."""
    tracemalloc.start()
    try:
        for i in range(2000):
            _decode(f"warm{i}=1".encode())
        before, _ = tracemalloc.get_traced_memory()
        for i in range(50_000):
            _decode(f"k{i:08d}x=1&other{i}=2".encode())
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 200_000  # 100,000 distinct keys; the cache keeps 256


def test_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        _speedups.decode_form_utf8(bytearray(b"a=1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.decode_form_utf8("a=1")  # type: ignore[arg-type]
