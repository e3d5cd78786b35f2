"""Production or sandbox (issue 11 point 16), and where bills are fetched from (point 15)."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from test_alipay_bill import bill_zip
from test_alipay_fake import APP_ID, FakeGateway, make_channel, success

from payhub.channels.alipay import (
    ALIPAY_PRODUCTION_GATEWAY,
    ALIPAY_SANDBOX_GATEWAY,
    AlipayConfig,
)
from payhub.errors import ConfigurationError, ProtocolError
from payhub.hub import PayHub
from payhub.money import Money


def _config(merchant: Any, platform: Any, **settings: Any) -> AlipayConfig:
    values: dict[str, Any] = {
        "app_id": APP_ID,
        "app_private_key": merchant.private_pem,
        "alipay_public_key": platform.public_pem,
    }
    values.update(settings)
    return AlipayConfig.model_validate(values)


# -- point 16: environment --------------------------------------------------------------


def test_production_is_the_default(merchant_keys: Any, platform_keys: Any) -> None:
    loaded = _config(merchant_keys, platform_keys)
    assert loaded.environment == "production"
    assert loaded.gateway == ALIPAY_PRODUCTION_GATEWAY


@pytest.mark.parametrize(
    ("gateway", "why"),
    [
        ("sandbox", "test host 'openapi-sandbox.dl.alipaydev.com'"),
        (ALIPAY_SANDBOX_GATEWAY, "test host 'openapi-sandbox.dl.alipaydev.com'"),
        ("https://openapi.alipaydev.com/gateway.do", "test host 'openapi.alipaydev.com'"),
        ("http://openapi.alipay.com/gateway.do", "must be https"),
        ("https://127.0.0.1:8000/gateway.do", "non-public address"),
        ("https://10.0.0.8/gateway.do", "non-public address"),
        ("https://169.254.169.254/gateway.do", "non-public address"),
        ("https://[::1]/gateway.do", "non-public address"),
        ("https://localhost/gateway.do", "localhost"),
    ],
)
def test_production_refuses_sandbox_and_local_gateways(
    merchant_keys: Any, platform_keys: Any, gateway: str, why: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"gateway: .*{why}.*environment 'sandbox'"):
        _config(merchant_keys, platform_keys, gateway=gateway)
    with pytest.raises(ConfigurationError, match="gateway"):
        _config(merchant_keys, platform_keys, gateway=gateway, environment="production")


@pytest.mark.parametrize(
    "gateway",
    ["sandbox", "https://openapi.alipaydev.com/gateway.do", "http://127.0.0.1:8000/gateway.do"],
)
def test_sandbox_environment_accepts_them(
    merchant_keys: Any, platform_keys: Any, gateway: str
) -> None:
    loaded = _config(merchant_keys, platform_keys, gateway=gateway, environment="sandbox")
    assert loaded.environment == "sandbox"


def test_production_gateway_is_accepted(merchant_keys: Any, platform_keys: Any) -> None:
    loaded = _config(
        merchant_keys, platform_keys, gateway="production", environment="production"
    )
    assert loaded.gateway == ALIPAY_PRODUCTION_GATEWAY


def test_unknown_environment_is_refused(merchant_keys: Any, platform_keys: Any) -> None:
    with pytest.raises((ConfigurationError, ValueError), match="environment"):
        _config(merchant_keys, platform_keys, environment="test")


# -- point 15: bill_download_url hosts ----------------------------------------------------


def _bill(fake: FakeGateway, channel: Any, url: str) -> Any:
    fake.nodes["alipay.data.dataservice.bill.downloadurl.query"] = success(bill_download_url=url)
    with PayHub(channels=[channel], http_client=fake.client()) as hub:
        return hub.download_bill("alipay", date(2024, 1, 2))


@pytest.fixture
def fake(merchant_keys: Any, platform_keys: Any) -> FakeGateway:
    return FakeGateway(merchant_keys.public, platform_keys.private)


REAL_URL = (
    "dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&userId=20881234"
    "&fileType=csv.zip&bizDates=20240102&downloadFileName=20881234_20240102.csv.zip"
)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_bills_come_from_alipays_bill_host_over_https(
    merchant_keys: Any, platform_keys: Any, fake: FakeGateway, scheme: str
) -> None:
    # Alipay's documented answers still say http://dwbillcenter.alipay.com/...:
    # payhub fetches the same URL over https.
    fake.downloads["https://" + REAL_URL] = bill_zip()
    channel = make_channel(merchant_keys, platform_keys)
    records = _bill(fake, channel, f"{scheme}://{REAL_URL}")
    assert [r.amount for r in records] == [Money(8888), Money(-1000)]
    assert fake.fetched == ["https://" + REAL_URL]


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8000/_bills/alipay/x",
        "https://[::1]/bill.zip",
        "https://dwbillcenter.alipay.com@evil.example/bill.zip",
        "https://user:pw@dwbillcenter.alipay.com/bill.zip",
        "https://evil.example/dwbillcenter.alipay.com/bill.zip",
        "https://dwbillcenter.alipay.com.evil.example/bill.zip",
        "https://dwbillcenter.alipay.com:8443/bill.zip",
        "http://dwbillcenter.alipay.com:8080/bill.zip",
        "https://evil.example\\@dwbillcenter.alipay.com/bill.zip",
        "https://dwbillcenter.alipay.com/bill zip",
        "ftp://dwbillcenter.alipay.com/bill.zip",
        "https://dwbillcenter.alipaydev.com/bill.zip",  # the sandbox's, not in production
        "file:///etc/passwd",
    ],
)
def test_other_bill_urls_are_never_fetched(
    merchant_keys: Any, platform_keys: Any, fake: FakeGateway, url: str
) -> None:
    channel = make_channel(
        merchant_keys, platform_keys, environment="production", gateway="production"
    )
    with pytest.raises(ProtocolError, match="not on an allowed bill host") as raised:
        _bill(fake, channel, url)
    assert raised.value.retryable is False
    assert fake.fetched == []


def test_alipays_sandbox_bill_host_in_sandbox(
    merchant_keys: Any, platform_keys: Any, fake: FakeGateway
) -> None:
    url = "http://dwbillcenter.alipaydev.com/downloadBillFile.resource?bizType=trade"
    fake.downloads[url.replace("http:", "https:")] = bill_zip()
    channel = make_channel(merchant_keys, platform_keys)  # environment "sandbox"
    assert len(_bill(fake, channel, url)) == 2


def test_a_local_sandbox_origin_is_configurable(
    merchant_keys: Any, platform_keys: Any, fake: FakeGateway
) -> None:
    url = "http://127.0.0.1:8000/_bills/alipay/token"
    fake.downloads[url] = bill_zip()
    channel = make_channel(
        merchant_keys, platform_keys, bill_download_hosts=["http://127.0.0.1:8000"]
    )
    assert len(_bill(fake, channel, url)) == 2
    # the origin is exact: another port or scheme on the same address is not it
    for other in ("http://127.0.0.1:8001/_bills/alipay/t", "https://127.0.0.1:8000/x"):
        with pytest.raises(ProtocolError, match="allowed bill host"):
            _bill(fake, channel, other)


@pytest.mark.parametrize(
    "entry",
    [
        "http://127.0.0.1:8000",
        "127.0.0.1",
        "https://10.1.2.3",
        "http://bills.example.com",
        "localhost",
        "dwbillcenter.alipaydev.com",
    ],
)
def test_production_refuses_local_or_plain_bill_hosts(
    merchant_keys: Any, platform_keys: Any, entry: str
) -> None:
    with pytest.raises(ConfigurationError, match="bill_download_hosts"):
        _config(merchant_keys, platform_keys, bill_download_hosts=[entry])


@pytest.mark.parametrize(
    "entry",
    ["http://u:p@127.0.0.1:8000", "http://127.0.0.1:8000/path", "ftp://x", "not a host", ""],
)
def test_malformed_bill_hosts(merchant_keys: Any, platform_keys: Any, entry: str) -> None:
    with pytest.raises(ConfigurationError, match="bill_download_hosts"):
        _config(merchant_keys, platform_keys, environment="sandbox", bill_download_hosts=[entry])


def test_production_accepts_https_bill_hosts(merchant_keys: Any, platform_keys: Any) -> None:
    loaded = _config(
        merchant_keys,
        platform_keys,
        bill_download_hosts=["DWBillCenter.alipay.com", "https://bills.example.com:8443"],
    )
    assert loaded.bill_download_url("https://dwbillcenter.alipay.com/x") == httpx.URL(
        "https://dwbillcenter.alipay.com/x"
    )
    assert loaded.bill_download_url("https://bills.example.com:8443/x") is not None
    assert loaded.bill_download_url("https://bills.example.com/x") is None
