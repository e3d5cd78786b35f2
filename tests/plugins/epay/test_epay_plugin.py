"""payhub-epay is an outside distribution: found through the ``payhub`` entry points,
built on payhub's public API only, configured and limited like any channel."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from epay_support import GATEWAY, KEY, config

from payhub import PayHub, PaymentRequest, PayMethod
from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.money import Money
from payhub.plugins import channel_types, get_plugin_manager

PLUGIN_ROOT = Path(__file__).resolve().parents[3] / "plugins" / "epay"


def test_the_installed_distribution_registers_epay_through_the_entry_point() -> None:
    pm = get_plugin_manager()
    types = channel_types(pm)
    assert types["epay"].__module__ == "payhub_epay._channel"
    assert pm.get_plugin("epay") is importlib.import_module("payhub_epay")
    dists = {dist.project_name for _, dist in pm.list_plugin_distinfo()}
    assert "payhub-epay" in dists or "payhub_epay" in dists


def test_payhub_plugins_allow_list_can_leave_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYHUB_PLUGINS", "")
    assert "epay" not in channel_types(get_plugin_manager())
    monkeypatch.setenv("PAYHUB_PLUGINS", "epay")
    assert "epay" in channel_types(get_plugin_manager())


def test_a_hub_builds_the_channel_from_plain_configuration() -> None:
    with PayHub.from_config({"channels": {"shop-epay": {"type": "epay", **config()}}}) as hub:
        channel = hub.channel("shop-epay")
    assert channel.kind == "epay"
    assert KEY not in repr(channel)


def _imported_modules(package: Path) -> set[str]:
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["payhub_epay", "payhub_epay_sandbox"])
def test_only_payhubs_public_api_is_used(package: str) -> None:
    payhub_modules = {m for m in _imported_modules(PLUGIN_ROOT / package) if m.startswith("payhub")}
    public = {
        "payhub",
        "payhub.channels",
        "payhub.config",
        "payhub.errors",
        "payhub.hookspecs",
        "payhub.models",
        "payhub.money",
        "payhub.signing",
    }
    foreign = {m for m in payhub_modules if not m.startswith(("payhub_epay", "payhub_sandbox"))}
    assert foreign <= public, foreign - public
    # The sandbox part never reads the wire through the channel it tests.
    if package == "payhub_epay_sandbox":
        assert not any(m.startswith("payhub_epay.") or m == "payhub_epay" for m in payhub_modules)


@pytest.mark.parametrize(
    "gateway",
    [
        "http://pay.example.com/",
        "https://127.0.0.1/",
        "https://10.0.0.8/epay/",
        "https://localhost:8443/",
        "https://[::1]/",
    ],
)
def test_a_production_account_refuses_test_gateways(gateway: str) -> None:
    with pytest.raises(ConfigurationError, match="gateway"):
        PayHub.from_config(
            {
                "channels": {
                    "e": {"type": "epay", **config(gateway=gateway, environment="production")}
                }
            }
        )
    # the same gateway is fine for a sandbox account
    PayHub.from_config({"channels": {"e": {"type": "epay", **config(gateway=gateway)}}}).close()


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"pid": "abc"}, "pid"),
        ({"key": ""}, "key"),
        ({"gateway": "ftp://x/"}, "gateway"),
        ({"pay_type": "Ali Pay"}, "pay_type"),
        ({"late_window_hours": 0}, "late_window_hours"),
        ({"max_amount": "12.345"}, "max_amount"),
        ({"environment": "staging"}, "environment"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_configuration_names_the_setting_and_never_the_key(
    change: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        PayHub.from_config({"channels": {"e": {"type": "epay", **config(**change)}}})
    assert setting in info.value.message
    assert KEY not in info.value.message


def test_the_key_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_EPAY_KEY", KEY)
    with PayHub.from_config(
        {"channels": {"e": {"type": "epay", **config(key={"$env": "SHOP_EPAY_KEY"})}}}
    ) as hub:
        assert hub.channel("e").kind == "epay"


def _request(amount: int, method: PayMethod = PayMethod.PAGE, **over: object) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no="A-1", amount=Money(amount), subject="Card", method=method, **over
    )


def test_amount_limit_and_api_payments_without_buyer_ip_are_refused_before_any_request() -> None:
    with PayHub.from_config(
        {"channels": {"e": {"type": "epay", **config(max_amount="100.00")}}}
    ) as hub:
        channel = hub.channel("e")
        assert channel.max_amount_minor() == 10000
        assert channel.request_problem(_request(10000)) is None
        assert "limit" in (channel.request_problem(_request(10001)) or "")
        assert "IP" in (channel.request_problem(_request(100, PayMethod.QR)) or "")
        assert channel.request_problem(_request(100, PayMethod.JSAPI)) is not None
        with pytest.raises(InvalidRequestError, match="limit"):
            hub.pay(_request(10001))


def test_order_numbers_follow_the_providers_grammar() -> None:
    with PayHub.from_config({"channels": {"e": {"type": "epay", **config()}}}) as hub:
        channel = hub.channel("e")
        assert channel.order_number_problem("ORDER_2026-01") is None
        assert channel.order_number_problem("订单1") is not None
        assert channel.order_number_problem("A B") is not None


def test_gateway_gets_a_trailing_slash() -> None:
    with PayHub.from_config(
        {"channels": {"e": {"type": "epay", **config(gateway=GATEWAY.rstrip("/"))}}}
    ) as hub:
        assert hub.channel("e").gateway == GATEWAY  # type: ignore[attr-defined]


def test_a_key_file_with_a_trailing_newline_signs_like_the_key(tmp_path: Path) -> None:
    from payhub_epay import EpayConfig

    key_file = tmp_path / "epay.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    loaded = EpayConfig.validated("e", config(key={"$file": str(key_file)}))
    assert loaded.key.get() == KEY.encode()
