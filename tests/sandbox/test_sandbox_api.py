"""The package's public surface and the Sandbox constructor."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import payhub_sandbox
import pytest
from payhub_sandbox import (
    InvalidInputError,
    ManualClock,
    Sandbox,
    SystemClock,
    UnknownMerchantError,
    create_app,
)


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_sorted_and_complete() -> None:
    names = payhub_sandbox.__all__
    assert names == sorted(names, key=_isort_key)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(payhub_sandbox, name)
    for name in ("Sandbox", "create_app", "AlipayMerchant", "ManualClock", "DeliveryAttempt"):
        assert name in names


def test_exports_name_the_public_package() -> None:
    assert Sandbox.__module__ == "payhub_sandbox"
    assert create_app.__module__ == "payhub_sandbox"


def test_no_channel_or_client_imports() -> None:
    """The sandbox builds the wire format itself, never through payhub's channels."""
    from pathlib import Path

    root = Path(payhub_sandbox.__file__).parent
    for source in root.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+payhub\.(channels|client)\b", text, re.M), source


def test_generated_platform_key() -> None:
    one, two = Sandbox(), Sandbox()
    assert one.alipay_public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert one.alipay_public_key_pem != two.alipay_public_key_pem
    assert isinstance(one.clock, SystemClock)


def test_platform_key_from_pem(platform_keys) -> None:
    for text in (platform_keys.private_pem, platform_keys.private_pkcs1_pem):
        assert Sandbox(alipay_platform_key=text).alipay_public_key_pem == platform_keys.public_pem
    with pytest.raises(InvalidInputError) as caught:
        Sandbox(alipay_platform_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
    assert "AAAA" not in str(caught.value)


def test_repr_hides_keys(platform_keys, merchant_keys) -> None:
    box = Sandbox(alipay_platform_key=platform_keys.private)
    merchant = box.add_alipay_merchant("2021", merchant_keys.public_pem, "2088")
    assert "KEY" not in repr(box)
    assert "public_key" not in repr(merchant)


@pytest.mark.parametrize("factor", [0, -1, float("inf"), float("nan")])
def test_time_factor_must_be_positive(factor) -> None:
    with pytest.raises(InvalidInputError):
        Sandbox(time_factor=factor)


def test_merchant_registration(merchant_keys) -> None:
    box = Sandbox()
    merchant = box.add_alipay_merchant("2021", merchant_keys.public_base64, "2088", charset="GBK")
    assert merchant.charset == "gbk"
    assert merchant.public_key_pem == merchant_keys.public_pem
    assert box.alipay_merchant("2021") is merchant
    with pytest.raises(UnknownMerchantError):
        box.alipay_merchant("2022")
    with pytest.raises(InvalidInputError):
        box.add_alipay_merchant("2021", merchant_keys.public_pem, "2088", "RSA3")
    with pytest.raises(InvalidInputError):
        box.add_alipay_merchant("2021", merchant_keys.public_pem, "2088", charset="latin-1")
    with pytest.raises(InvalidInputError):
        box.add_alipay_merchant("2021", merchant_keys.public_pem, "2088", fee_rate=0.006)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        box.add_alipay_merchant("", merchant_keys.public_pem, "2088")


def test_manual_clock() -> None:
    clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    clock.advance(1.5)
    assert clock.now() == datetime(2024, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward"):
        clock.set(datetime(2023, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone"):
        ManualClock(datetime(2024, 1, 1))
    assert ManualClock().now().tzinfo is not None


def test_create_app_default_sandbox() -> None:
    app = create_app()
    assert isinstance(app.extensions["payhub_sandbox"], Sandbox)
    assert app.test_client().get("/").status_code == 200


def test_context_manager_stops(platform_keys) -> None:
    with Sandbox(alipay_platform_key=platform_keys.private) as box:
        box.start_delivery_thread(interval=0.01)
    assert box._thread is None
