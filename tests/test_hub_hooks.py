"""Every pluggy hook of ``payhub.hookspecs`` has a test here (or names the test
that covers it) and a section in ``docs/plugins.md``.

The event-handler and transition-hook hooks are exercised end to end: a
plugin object registers a toy channel, an event handler and a transition hook;
a hub built from configuration closes a payment; the hook runs inside the
transaction and the handler receives the ``payment.closed`` event.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import pytest

from payhub import hookspecs
from payhub.channels import Channel
from payhub.errors import ConfigurationError
from payhub.events import Event, EventType
from payhub.hookspecs import hookimpl
from payhub.hub import AsyncPayHub, PayHub
from payhub.models import Ack, PaymentRequest, PayMethod
from payhub.money import Money
from payhub.plugins import event_handlers, get_plugin_manager, transition_hooks
from payhub.store import PaymentState, Store

ROOT = Path(__file__).resolve().parent.parent

#: hook -> the test that covers it (those of this file are found by name)
ELSEWHERE = {
    "register_channels": "tests/test_plugins.py",
    "register_calendars": "tests/test_cycles.py",
}


class QuietChannel(Channel):
    """A channel whose close needs no request (enough to close a stored payment)."""

    kind = "quiet"
    methods = frozenset({PayMethod.QR})

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(name)

    def pay(self, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError
        yield

    def query(self, out_trade_no, context=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError
        yield

    def refund(self, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError
        yield

    def refund_query(self, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError
        yield

    def close(self, out_trade_no):  # type: ignore[no-untyped-def]
        return None
        yield

    def parse_notification(self, headers, body):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def ack(self, ok: bool, message: str = "") -> Ack:
        return Ack(status_code=200, body=b"ok", content_type="text/plain", ok=ok)


class Recorder:
    """A plugin: the toy channel, an event handler and a transition hook."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.transitions: list[tuple[PaymentState | None, PaymentState]] = []

    @hookimpl
    def register_channels(self, register: Callable[[type[Channel]], None]) -> None:
        register(QuietChannel)

    @hookimpl
    def register_event_handlers(self, register: Callable[..., None]) -> None:
        register(EventType.PAYMENT_CLOSED, self.events.append)

    @hookimpl
    def register_transition_hooks(self, register: Callable[..., None]) -> None:
        def hook(conn: Any, transition: Any) -> None:
            assert conn.in_transaction()
            self.transitions.append((transition.from_state, transition.to_state))

        register(hook)


configured: list[Event] = []


def configured_handler(event: Event) -> None:
    """Named in configuration as ``tests.test_hub_hooks:configured_handler``."""
    configured.append(event)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    Store(f"sqlite:///{tmp_path / 'hooks.db'}").upgrade()
    return {
        "channels": {"quiet": {"type": "quiet"}},
        "store": {"url": f"sqlite:///{tmp_path / 'hooks.db'}"},
        "events": {"handlers": {"payment.closed": f"{__name__}:configured_handler"}},
    }


def _pm(recorder: Recorder) -> Any:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(recorder, name="recorder")
    return pm


def _request(out_trade_no: str) -> PaymentRequest:
    return PaymentRequest(
        out_trade_no=out_trade_no, amount=Money(100), subject="card", method=PayMethod.QR
    )


def test_register_event_handlers(recorder: Recorder, config: dict[str, Any]) -> None:
    configured.clear()
    pm = _pm(recorder)
    assert [t for t, _ in event_handlers(pm)] == ["payment.closed"]
    with PayHub.from_config(config, plugin_manager=pm) as hub:
        assert hub.store is not None
        hub.store.begin_payment(_request("H1"))
        hub.close_trade("quiet", "H1")
    # the plugin's handler and the one named as "module:function" both ran, once
    assert [e.out_trade_no for e in recorder.events] == ["H1"]
    assert [e.id for e in configured] == [e.id for e in recorder.events]


def test_register_transition_hooks(recorder: Recorder, config: dict[str, Any]) -> None:
    pm = _pm(recorder)
    assert len(transition_hooks(pm)) == 1
    with PayHub.from_config(config, plugin_manager=pm) as hub:
        assert hub.store is not None
        hub.store.begin_payment(_request("H2"))
        hub.close_trade("quiet", "H2")
        assert hub.store.payment("H2").status is PaymentState.CLOSED  # type: ignore[union-attr]
    assert recorder.transitions == [(PaymentState.PENDING, PaymentState.CLOSED)]


def test_the_async_hub_gets_the_same_hooks(recorder: Recorder, config: dict[str, Any]) -> None:
    import asyncio

    async def main() -> None:
        async with AsyncPayHub.from_config(config, plugin_manager=_pm(recorder)) as hub:
            assert hub.store is not None
            hub.store.begin_payment(_request("H3"))
            await hub.close_trade("quiet", "H3")

    asyncio.run(main())
    assert [e.out_trade_no for e in recorder.events] == ["H3"]
    assert recorder.transitions == [(PaymentState.PENDING, PaymentState.CLOSED)]


def test_a_store_passed_in_keeps_its_own_hooks(recorder: Recorder, config: dict[str, Any]) -> None:
    store = Store.from_config(config.pop("store"))
    try:
        with PayHub.from_config(config, plugin_manager=_pm(recorder), store=store) as hub:
            store.begin_payment(_request("H4"))
            hub.close_trade("quiet", "H4")
    finally:
        store.close()
    assert recorder.transitions == []
    assert [e.out_trade_no for e in recorder.events] == ["H4"]  # handlers: every hub


def test_a_hook_registering_something_not_callable_is_refused() -> None:
    class Broken:
        @hookimpl
        def register_event_handlers(self, register: Callable[..., None]) -> None:
            register("payment.succeeded", "shop.tasks:deliver")

        @hookimpl
        def register_transition_hooks(self, register: Callable[..., None]) -> None:
            register(None)

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Broken())
    with pytest.raises(ConfigurationError, match="not callable"):
        event_handlers(pm)
    with pytest.raises(ConfigurationError, match="not callable"):
        transition_hooks(pm)


HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("register_") and inspect.isfunction(value)
)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_and_a_docs_section(hook: str) -> None:
    here = Path(__file__).read_text(encoding="utf-8")
    if hook in ELSEWHERE:
        assert hook in (ROOT / ELSEWHERE[hook]).read_text(encoding="utf-8")
    else:
        assert f"def test_{hook}(" in here, f"no test for the {hook} hook"
    assert f"`{hook}`" in (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    # every hook receives a ``register`` callback (llm/datasette style)
    assert list(inspect.signature(getattr(hookspecs, hook)).parameters) == ["register"]
