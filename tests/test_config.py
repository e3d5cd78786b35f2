"""Secret references in configuration, and a holder that never shows its value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel

from payhub.config import Secret, resolve_secret
from payhub.errors import ConfigurationError

VALUE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC-secret-tail"


def test_inline_string_and_bytes() -> None:
    assert resolve_secret(VALUE).get() == VALUE.encode()
    assert resolve_secret(VALUE.encode()).get_text() == VALUE
    assert resolve_secret("密钥").get_text() == "密钥"
    existing = Secret(b"x")
    assert resolve_secret(existing) is existing


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYHUB_TEST_ALIPAY_KEY", VALUE)
    assert resolve_secret({"$env": "PAYHUB_TEST_ALIPAY_KEY"}).get_text() == VALUE
    monkeypatch.setenv("PAYHUB_TEST_EMPTY", "")
    assert resolve_secret({"$env": "PAYHUB_TEST_EMPTY"}).get() == b""


def test_file_reference(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(VALUE.encode() + b"\n\xff binary tail")
    assert resolve_secret({"$file": str(path)}).get() == VALUE.encode() + b"\n\xff binary tail"
    assert resolve_secret({"$file": path}).get().startswith(VALUE.encode())


def test_missing_env_names_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYHUB_TEST_MISSING", raising=False)
    monkeypatch.setenv("PAYHUB_TEST_OTHER", VALUE)
    with pytest.raises(ConfigurationError) as info:
        resolve_secret({"$env": "PAYHUB_TEST_MISSING"}, "alipay.private_key")
    message = str(info.value)
    assert "PAYHUB_TEST_MISSING" in message
    assert "alipay.private_key" in message
    assert VALUE not in message


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigurationError) as info:
        resolve_secret({"$file": str(missing)}, "wechat.api_v3_key")
    assert str(missing) in str(info.value)
    assert "wechat.api_v3_key" in str(info.value)
    assert info.value.__cause__ is None


def test_unreadable_file_does_not_leak_contents(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_secret({"$file": str(tmp_path)}, "key")  # a directory
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        12345,
        {"$env": VALUE, "$file": VALUE},
        {"$environment": VALUE},
        {"$env": 42},
        {"value": VALUE},
        [VALUE],
        {},
    ],
)
def test_bad_shapes_never_leak_the_value(value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_secret(value, "merchant.key")
    assert VALUE not in str(info.value)
    assert VALUE not in repr(info.value)
    assert "merchant.key" in str(info.value)


def test_secret_repr_never_shows_the_value() -> None:
    secret = Secret(VALUE.encode())
    for rendered in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert VALUE not in rendered
        assert "secret-tail" not in rendered
    assert "**" in repr(secret)


def test_secret_does_not_leak_through_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="payhub.test"):
        logging.getLogger("payhub.test").info("loaded %s / %r", Secret(b"hunter2"), Secret(b"x"))
    assert "hunter2" not in caplog.text


def test_secret_is_not_compared_by_value_or_hashed() -> None:
    a, b = Secret(b"same"), Secret(b"same")
    assert a == a
    assert a != b  # value comparison would invite non-constant-time checks
    with pytest.raises(TypeError):
        hash(a)


def test_secret_get_text_on_binary() -> None:
    with pytest.raises(ConfigurationError) as info:
        Secret(b"\xff\xfe-binary").get_text()
    assert "binary" not in str(info.value)


class _Settings(BaseModel):
    api_key: Secret


def test_secret_in_a_pydantic_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYHUB_TEST_API_KEY", VALUE)
    settings = _Settings.model_validate({"api_key": {"$env": "PAYHUB_TEST_API_KEY"}})
    assert settings.api_key.get_text() == VALUE
    for rendered in (repr(settings), str(settings), settings.model_dump_json()):
        assert VALUE not in rendered
    assert VALUE not in str(settings.model_dump())
