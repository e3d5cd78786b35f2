"""WeChat Pay configuration: checked early, never showing a secret."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_wechat_support import API_V3_KEY, PUB_KEY_ID, assert_no_secret, config, secrets_of

from payhub import ConfigurationError, ProtocolError
from payhub.channels.wechat import WechatPayChannel, WechatPayConfig


def build(merchant_keys: Any, platform_keys: Any | None = None, **changes: Any
          ) -> WechatPayChannel:
    return WechatPayChannel.from_config(
        "wechat",
        config(merchant_keys.private, platform_keys.private if platform_keys else None,
               **changes),
    )


def test_public_key_mode(merchant_keys: Any, platform_keys: Any) -> None:
    ch = build(merchant_keys, platform_keys)
    assert ch.config.uses_public_key
    assert ch.platform_serials == [PUB_KEY_ID]


def test_certificate_mode(merchant_keys: Any) -> None:
    ch = build(merchant_keys)
    assert not ch.config.uses_public_key
    assert ch.config.certificate_refresh_interval == timedelta(hours=12)
    assert ch.platform_serials == []


@pytest.mark.parametrize("key", ["short", "x" * 31, "x" * 33, "密" * 11])
def test_the_api_v3_key_must_be_32_bytes(merchant_keys: Any, key: str) -> None:
    with pytest.raises(ConfigurationError, match="32 bytes") as info:
        build(merchant_keys, api_v3_key=key)
    assert key not in str(info.value)


def test_secrets_may_be_references(
    merchant_keys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text(merchant_keys.private_pem)
    monkeypatch.setenv("WECHAT_API_V3_KEY", API_V3_KEY)
    ch = build(
        merchant_keys,
        merchant_private_key={"$file": str(key_file)},
        api_v3_key={"$env": "WECHAT_API_V3_KEY"},
    )
    assert ch.config.api_v3_key.get() == API_V3_KEY.encode()


def test_a_missing_reference_names_the_setting_not_a_value(merchant_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="NOT_SET_ANYWHERE"):
        build(merchant_keys, api_v3_key={"$env": "NOT_SET_ANYWHERE"})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"unknown_setting": 1}, "unknown_setting"),
        ({"mch_id": "19 00"}, "mch_id"),
        ({"merchant_serial_no": "not-hex"}, "merchant_serial_no"),
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"base_url": "https://example.com/?q=1"}, "base_url"),
        ({"certificate_refresh_interval": 5}, "certificate_refresh_interval"),
        ({"wechatpay_public_key_id": PUB_KEY_ID}, "neither"),
        ({"h5_type": "Desktop"}, "h5_type"),
    ],
)
def test_bad_settings_are_configuration_errors(
    merchant_keys: Any, changes: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        build(merchant_keys, **changes)
    assert_no_secret([str(info.value), repr(info.value)], secrets_of(merchant_keys.private))


def test_public_key_without_its_id_is_refused(merchant_keys: Any, platform_keys: Any) -> None:
    settings = config(merchant_keys.private, platform_keys.private)
    del settings["wechatpay_public_key_id"]
    with pytest.raises(ConfigurationError, match="wechatpay_public_key_id"):
        WechatPayChannel.from_config("wechat", settings)


def test_public_key_id_format(merchant_keys: Any, platform_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="PUB_KEY_ID_"):
        build(merchant_keys, platform_keys, wechatpay_public_key_id="5157F09E")


def test_an_unreadable_private_key_never_shows_itself(merchant_keys: Any) -> None:
    broken = merchant_keys.private_pem.replace("A", "B", 5)[:-200] + "\n-----END PRIVATE KEY-----"
    with pytest.raises(ConfigurationError) as info:
        build(merchant_keys, merchant_private_key=broken)
    assert_no_secret([str(info.value), repr(info.value)], secrets_of(merchant_keys.private))


def test_a_secret_in_the_wrong_place_is_not_echoed(merchant_keys: Any) -> None:
    # The private key given as the app id: the error names the setting only.
    with pytest.raises(ConfigurationError, match="app_id") as info:
        build(merchant_keys, app_id=merchant_keys.private_pem)
    assert_no_secret([str(info.value)], secrets_of(merchant_keys.private))


def test_reprs_hide_secrets(merchant_keys: Any, platform_keys: Any) -> None:
    ch = build(merchant_keys, platform_keys)
    texts = [repr(ch), repr(ch.config), str(ch.config), str(ch.config.model_dump())]
    assert_no_secret(texts, secrets_of(merchant_keys.private))


def test_base_url_keeps_a_path_prefix_and_drops_the_trailing_slash(merchant_keys: Any) -> None:
    ch = build(merchant_keys, base_url="http://127.0.0.1:5000/wechat/", environment="sandbox")
    assert ch.config.base_url == "http://127.0.0.1:5000/wechat"


def test_config_object_is_accepted_as_is(merchant_keys: Any) -> None:
    settings = WechatPayConfig.from_mapping(config(merchant_keys.private))
    assert WechatPayChannel("w", settings).config is settings


# -- environment (issue 11, point 16) --------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.mch.weixin.qq.com",
        "http://127.0.0.1:8000",
        "https://127.0.0.1:8000",
        "https://localhost",
        "https://10.1.2.3",
        "https://169.254.169.254",
        "https://api.mch.weixin.qq.com/sandboxnew",
    ],
)
def test_production_refuses_test_and_local_endpoints(merchant_keys: Any, base_url: str) -> None:
    settings = config(merchant_keys.private, base_url=base_url)
    with pytest.raises(ConfigurationError, match='"environment": "sandbox"'):
        WechatPayChannel("wechat", settings)
    assert WechatPayConfig.from_mapping(settings | {"environment": "sandbox"}).base_url


@pytest.mark.parametrize(
    "base_url", ["https://api.mch.weixin.qq.com", "https://api2.mch.weixin.qq.com"]
)
def test_production_is_the_default_and_takes_wechats_hosts(
    merchant_keys: Any, base_url: str
) -> None:
    settings = WechatPayConfig.from_mapping(config(merchant_keys.private, base_url=base_url))
    assert settings.environment == "production"


def test_environment_is_one_of_two_words(merchant_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="environment"):
        WechatPayConfig.from_mapping(config(merchant_keys.private, environment="test"))


def test_the_bill_host_follows_the_configured_environment(merchant_keys: Any) -> None:
    """The download_url must be on the configured API host, whatever the environment."""
    channel = build(merchant_keys, base_url="http://127.0.0.1:8000", environment="sandbox")
    assert str(channel._download_url("http://127.0.0.1:8000/v3/billdownload/file?token=x"))
    with pytest.raises(ProtocolError, match="not on the API host"):
        channel._download_url("https://api.mch.weixin.qq.com/v3/billdownload/file?token=x")
