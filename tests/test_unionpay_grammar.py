"""parse_acp_body: the non-URL-encoded k=v&… grammar of ACP synchronous answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payhub.channels.unionpay import parse_acp_body
from payhub.errors import ProtocolError

PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIEQzCCAyugAwIBAgIFEBJJZVkwDQYJKoZIhvcNAQEFBQAwWDELMAkGA1UEBhMC\n"
    "Q04xMDAuBgNVBAoTJ0NoaW5hIEZpbmFuY2lhbCBDZXJ0aWZpY2F0aW9uIEF1dGhv=\n"
    "cml0eTEXMBUGA1UEAxMOQ0ZDQSBURVNUIE9DQTE==\n"
    "-----END CERTIFICATE-----"
)


def test_simple_pairs_keep_their_order() -> None:
    assert parse_acp_body("version=5.1.0&respCode=00&respMsg=ok") == {
        "version": "5.1.0",
        "respCode": "00",
        "respMsg": "ok",
    }
    assert list(parse_acp_body("b=1&a=2")) == ["b", "a"]


def test_a_pair_splits_at_its_first_equals_sign() -> None:
    assert parse_acp_body("a=b=c&sig=YWJjZA==&d==") == {"a": "b=c", "sig": "YWJjZA==", "d": "="}


def test_ampersand_inside_braces_belongs_to_the_value() -> None:
    body = "reserved={cardNumberLock=1&useId=2}&respCode=00"
    assert parse_acp_body(body) == {"reserved": "{cardNumberLock=1&useId=2}", "respCode": "00"}


def test_braces_nest() -> None:
    body = "r={a={b=1&c=2}&d=3}&x={}&y=1"
    assert parse_acp_body(body) == {"r": "{a={b=1&c=2}&d=3}", "x": "{}", "y": "1"}


def test_brace_in_the_middle_of_a_value() -> None:
    assert parse_acp_body("m=pre{a&b}post&n=1") == {"m": "pre{a&b}post", "n": "1"}


def test_stray_closing_brace_is_plain_text() -> None:
    assert parse_acp_body("a=}&b=x}y") == {"a": "}", "b": "x}y"}


def test_pem_value_with_newlines_and_padding() -> None:
    body = f"signPubKeyCert={PEM}&respCode=00&signature=c2ln=="
    fields = parse_acp_body(body)
    assert fields == {"signPubKeyCert": PEM, "respCode": "00", "signature": "c2ln=="}


def test_ampersand_and_equals_inside_a_pem_block() -> None:
    pem = PEM.replace("-----\n", "-----\nComment: a&b=c&{d\n\n", 1)
    body = f"respCode=00&signPubKeyCert={pem}&tn=123&x={{y}}"
    fields = parse_acp_body(body)
    assert fields["signPubKeyCert"] == pem
    assert fields["tn"] == "123"
    assert fields["x"] == "{y}"


def test_pem_then_text_in_the_same_value() -> None:
    fields = parse_acp_body(f"c={PEM}\n&d=1")
    assert fields == {"c": PEM + "\n", "d": "1"}


def test_crlf_pem() -> None:
    pem = PEM.replace("\n", "\r\n")
    assert parse_acp_body(f"c={pem}&d=1")["c"] == pem


def test_empty_values_are_kept() -> None:
    assert parse_acp_body("a=&b=2&c=") == {"a": "", "b": "2", "c": ""}


def test_trailing_and_doubled_ampersands_are_skipped() -> None:
    assert parse_acp_body("a=1&") == {"a": "1"}
    assert parse_acp_body("a=1&&b=2&&&") == {"a": "1", "b": "2"}
    assert parse_acp_body("") == {}


def test_bytes_are_utf8() -> None:
    assert parse_acp_body("respMsg=成功&a={x&y}".encode()) == {
        "respMsg": "成功",
        "a": "{x&y}",
    }


def test_non_utf8_bytes_are_refused() -> None:
    with pytest.raises(ProtocolError, match="not UTF-8"):
        parse_acp_body("respMsg=成功".encode("gbk"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("respCode", "no '='"),
        ("a=1&junk", "no '='"),
        ("a=1&junk&b=2", "no '='"),
        ("=1", "malformed field name"),
        ("a b=1", "malformed field name"),
        ("a=1&a=2", "appears twice"),
        ("a={b=1&c=2", "never closed"),
        ("a={{b}&c=1", "never closed"),
        ("c=-----BEGIN CERTIFICATE-----\nMIIB&d=1", "PEM block is never closed"),
        ("c=-----BEGIN CERT", "malformed PEM header"),
    ],
)
def test_malformed_bodies_are_protocol_errors(body: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_acp_body(body)


_KEY = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1,
               max_size=12)
_PLAIN = st.text(st.characters(blacklist_characters="&{}", blacklist_categories=("Cs",)),
                 max_size=20).filter(lambda s: "-----BEGIN " not in s)
_BRACED = st.builds(lambda a, b: "{" + a + "&" + b + "}", _PLAIN, _PLAIN)


@given(st.dictionaries(_KEY, st.one_of(_PLAIN, _BRACED), max_size=8))
def test_round_trip(fields: dict[str, str]) -> None:
    body = "&".join(f"{k}={v}" for k, v in fields.items())
    assert parse_acp_body(body) == fields
