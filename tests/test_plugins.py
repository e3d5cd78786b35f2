"""A toy channel registered from outside the package, found through the ``payhub``
entry-point group of a real installed-distribution layout, and paid through."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from payhub.errors import ConfigurationError
from payhub.hub import AsyncPayHub, PayHub
from payhub.models import PaymentRequest, PaymentResult, PayMethod, ResultKind
from payhub.money import Money
from payhub.plugins import channel_types, get_plugin_manager

TOY_MODULE = '''
"""A third-party payhub channel: pays by fetching a QR code from toy.example."""

from __future__ import annotations

from typing import Any

import httpx

from payhub.channels import Channel
from payhub.hookspecs import hookimpl
from payhub.models import Ack, PaymentResult, PayMethod, ResultKind


class {cls}(Channel):
    kind = "{kind}"
    methods = frozenset({{PayMethod.QR}})

    def __init__(self, name: str, endpoint: str) -> None:
        super().__init__(name)
        self.endpoint = endpoint

    @classmethod
    def from_config(cls, name: str, config: Any) -> "{cls}":
        return cls(name, config.get("endpoint", "https://toy.example/pay"))

    def pay(self, request):
        response = yield httpx.Request(
            "POST",
            self.endpoint,
            json={{
                "order": request.out_trade_no,
                "fen": request.amount.minor,
                "currency": request.amount.currency,
            }},
        )
        body = response.json()
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.QR,
            qr_code=body["qr"],
            channel_trade_id=body["trade"],
            raw=body,
        )

    def query(self, out_trade_no):
        raise NotImplementedError

    def refund(self, request):
        raise NotImplementedError

    def refund_query(self, request):
        raise NotImplementedError

    def close(self, out_trade_no):
        raise NotImplementedError

    def parse_notification(self, headers, body):
        raise NotImplementedError

    def ack(self, ok, message=""):
        return Ack(status_code=200 if ok else 500, body=b"ok" if ok else b"fail", ok=ok)


@hookimpl
def register_channels(register):
    register({cls})
'''


def install_plugin(site: Path, dist: str, module: str, cls: str, kind: str, ep_name: str) -> None:
    """Write ``module.py`` and ``<dist>-0.1.dist-info`` as pip would into site-packages."""
    (site / f"{module}.py").write_text(
        textwrap.dedent(TOY_MODULE).format(cls=cls, kind=kind), encoding="utf-8"
    )
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[payhub]\n{ep_name} = {module}\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An extra site-packages directory on sys.path, with the toy plugin installed."""
    site = tmp_path / "site-packages"
    site.mkdir()
    install_plugin(site, "toy_payhub_channel", "toy_payhub_channel", "ToyChannel", "toy", "toy")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PAYHUB_PLUGINS", raising=False)
    importlib.invalidate_caches()
    yield site
    for name in ("toy_payhub_channel", "toy2_payhub_channel"):
        sys.modules.pop(name, None)


def toy_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"qr": f"toy://pay/{body['order']}/{body['fen']}", "trade": "T-9"}
        )

    return httpx.MockTransport(handler)


REQUEST = PaymentRequest(
    out_trade_no="ORDER-1", amount=Money(1234), subject="Gift card", method=PayMethod.QR
)


def _assert_toy_result(result: PaymentResult, seen: list[httpx.Request]) -> None:
    assert result.channel == "mytoy"
    assert result.kind is ResultKind.QR
    assert result.qr_code == "toy://pay/ORDER-1/1234"
    assert result.channel_trade_id == "T-9"
    assert len(seen) == 1
    assert seen[0].method == "POST"
    assert seen[0].url == "https://toy.example/pay"
    assert json.loads(seen[0].content) == {"order": "ORDER-1", "fen": 1234, "currency": "CNY"}


def test_toy_is_not_there_without_the_distribution() -> None:
    assert "toy" not in channel_types(get_plugin_manager())


def test_entry_point_discovery(site: Path) -> None:
    pm = get_plugin_manager()
    assert pm.get_plugin("toy") is sys.modules["toy_payhub_channel"]
    types = channel_types(pm)
    assert types["toy"].__module__ == "toy_payhub_channel"
    assert types["toy"].__name__ == "ToyChannel"
    dists = {dist.project_name for _, dist in pm.list_plugin_distinfo()}
    assert "toy_payhub_channel" in dists


def test_entry_points_can_be_switched_off_in_code(site: Path) -> None:
    assert "toy" not in channel_types(get_plugin_manager(load_entrypoints=False))


def test_pay_through_the_toy_channel(site: Path) -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(transport=toy_transport(seen)) as http:
        hub = PayHub.from_config({"channels": {"mytoy": {"type": "toy"}}}, http_client=http)
        assert type(hub.channel("mytoy")).__name__ == "ToyChannel"
        result = hub.pay(REQUEST)
    _assert_toy_result(result, seen)


def test_pay_through_the_toy_channel_async(site: Path) -> None:
    seen: list[httpx.Request] = []

    async def main() -> PaymentResult:
        async with httpx.AsyncClient(transport=toy_transport(seen)) as http:
            hub = AsyncPayHub.from_config(
                {"channels": {"mytoy": {"type": "toy"}}}, http_client=http
            )
            return await hub.pay(REQUEST)

    _assert_toy_result(asyncio.run(main()), seen)


def test_channel_settings_reach_the_plugin(site: Path) -> None:
    seen: list[httpx.Request] = []
    config = {"channels": {"mytoy": {"type": "toy", "endpoint": "https://other.example/p"}}}
    with httpx.Client(transport=toy_transport(seen)) as http:
        PayHub.from_config(config, http_client=http).pay(REQUEST)
    assert seen[0].url == "https://other.example/p"


def test_empty_payhub_plugins_disables_third_party_plugins(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYHUB_PLUGINS", "")
    pm = get_plugin_manager()
    assert pm.get_plugin("toy") is None
    assert "toy" not in channel_types(pm)
    with pytest.raises(ConfigurationError, match="toy"):
        PayHub.from_config({"channels": {"mytoy": {"type": "toy"}}})


def test_payhub_plugins_is_an_allow_list(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(site, "toy2_payhub_channel", "toy2_payhub_channel", "Toy2", "toy2", "toy2")
    importlib.invalidate_caches()
    monkeypatch.setenv("PAYHUB_PLUGINS", " toy2 , nonexistent")
    types = channel_types(get_plugin_manager())
    assert "toy2" in types
    assert "toy" not in types
    monkeypatch.setenv("PAYHUB_PLUGINS", "toy,toy2")
    assert {"toy", "toy2"} <= set(channel_types(get_plugin_manager()))


def test_two_plugins_registering_one_kind(site: Path) -> None:
    install_plugin(site, "toy2_payhub_channel", "toy2_payhub_channel", "Toy2", "toy", "toy2")
    importlib.invalidate_caches()
    pm = get_plugin_manager()
    with pytest.raises(ConfigurationError, match="toy") as info:
        channel_types(pm)
    assert "toy_payhub_channel" in str(info.value)
    assert "toy2_payhub_channel" in str(info.value)
    with pytest.raises(ConfigurationError):
        PayHub.from_config({"channels": {"mytoy": {"type": "toy"}}})


def test_unknown_type_lists_known_types(site: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        PayHub.from_config({"channels": {"shop": {"type": "paypal"}}})
    message = str(info.value)
    assert "'paypal'" in message
    assert "'shop'" in message
    assert "known: " in message
    known = message.split("known: ", 1)[1].rstrip(")").split(", ")
    assert "toy" in known
    assert known == sorted(channel_types(get_plugin_manager()))


def test_type_defaults_to_the_account_name(site: Path) -> None:
    with PayHub.from_config({"channels": {"toy": {}}}) as hub:
        assert hub.channel("toy").kind == "toy"


def test_empty_or_missing_channels_config() -> None:
    for config in ({}, {"channels": {}}, {"channels": ["toy"]}):
        with pytest.raises(ConfigurationError, match="channels"):
            PayHub.from_config(config)


def test_channel_class_without_kind_is_refused() -> None:
    from payhub.hookspecs import hookimpl

    class NoKind:
        @hookimpl
        def register_channels(self, register: object) -> None:
            register(type("Nameless", (), {}))  # type: ignore[operator]

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(NoKind())
    with pytest.raises(ConfigurationError, match="kind"):
        channel_types(pm)
