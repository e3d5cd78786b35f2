"""The common channel verbs on the Sandbox facade, the old names, the package's shape."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import payhub_sandbox
import pytest
from payhub_sandbox import (
    CHINA_TZ,
    VERBS,
    AlipayChannel,
    Refund,
    Sandbox,
    SandboxChannel,
    Trade,
    TradeState,
    TradeStateError,
    UnionPayChannel,
    UnsupportedVerbError,
    WechatChannel,
    create_app,
)
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, Shop, new_trade
from sandbox_unionpay_client import MER_ID, Env, unionpay_env

from payhub.money import Money

PACKAGE = Path(payhub_sandbox.__file__).parent


# -- one set of verbs ----------------------------------------------------------------------


def test_every_channel_offers_the_same_verbs(sandbox: Sandbox) -> None:
    assert VERBS == ("pay", "fail", "refund", "close", "notify", "bill")
    assert set(sandbox.channels) == {"alipay", "unionpay", "wechat"}
    assert isinstance(sandbox.alipay, AlipayChannel)
    assert isinstance(sandbox.wechat, WechatChannel)
    assert isinstance(sandbox.unionpay, UnionPayChannel)
    for name, channel in sandbox.channels.items():
        assert isinstance(channel, SandboxChannel)
        assert channel.name == name
        assert sandbox.channel(name) is channel
        for verb in VERBS:
            common = inspect.signature(getattr(SandboxChannel, verb)).parameters
            own = inspect.signature(getattr(type(channel), verb)).parameters
            # the common parameters, in order and kind; a channel may add keywords
            assert [(p.name, p.kind) for p in common.values()] == [
                (p.name, p.kind) for p in own.values()
            ][: len(common)], (name, verb)
    assert not sandbox.alipay.unsupported
    assert not sandbox.wechat.unsupported
    assert sandbox.unionpay.unsupported == {"close"}


def test_an_unknown_channel_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(payhub_sandbox.InvalidInputError, match="no channel 'epay'"):
        sandbox.channel("epay")


def test_alipay_verbs(sandbox: Sandbox, alipay: AlipayWireClient, shop: Shop) -> None:
    new_trade(alipay, "V1", "10.00")
    paid = sandbox.alipay.pay(APP_ID, "V1", buyer_id="2088102146225135")
    assert paid.state is TradeState.PAID
    assert paid.buyer_id == "2088102146225135"
    first = sandbox.deliver_due()
    assert [a.acknowledged for a in first] == [True]
    again = sandbox.alipay.notify(APP_ID, "V1")
    assert [(a.event_id, a.effects) for a in again] == [(first[0].event_id, ("resend",))]
    refund = sandbox.alipay.refund(APP_ID, "V1", "4.00", out_refund_no="RV1")
    assert isinstance(refund, Refund)
    assert refund.amount == Money(400)
    assert sandbox.alipay.refund(APP_ID, "V1", Money(400), out_refund_no="RV1") == refund
    assert sandbox.alipay.bill(APP_ID, date(2024, 3, 1))[:2] == b"PK"
    new_trade(alipay, "V2", "1.00")
    assert sandbox.alipay.close(APP_ID, "V2", reason="merchant").state is TradeState.CLOSED
    sandbox.alipay.fail("40004", times=1)
    busy = alipay.call("alipay.trade.query", {"out_trade_no": "V1"})
    assert (busy.code, busy.node.get("sub_code")) == ("40004", "ACQ.SYSTEM_ERROR")
    assert alipay.call("alipay.trade.query", {"out_trade_no": "V1"}).code == "10000"
    sandbox.deliver_due()
    assert len(shop.requests) == 3  # pay, the resend, the refund


def test_notify_without_a_notification_is_a_state_error(
    sandbox: Sandbox, alipay: AlipayWireClient
) -> None:
    new_trade(alipay, "V3", "1.00")
    with pytest.raises(TradeStateError, match="no notification"):
        sandbox.alipay.notify(APP_ID, "V3")


@pytest.fixture
def env(merchant_keys) -> Iterator[Env]:
    with unionpay_env(merchant_keys.private) as made:
        yield made


def test_unionpay_verbs_and_the_ones_it_has_not(env: Env) -> None:
    unionpay = env.sandbox.unionpay
    env.client.app_consume("UPVERBS001", "1000")
    paid = unionpay.pay(MER_ID, "UPVERBS001")
    assert paid.state is TradeState.PAID
    env.sandbox.deliver_due()
    refund = unionpay.refund(MER_ID, "UPVERBS001", "3.00", out_refund_no="UPREFUND01")
    assert (refund.amount, refund.out_refund_no) == (Money(300), "UPREFUND01")
    assert unionpay.refund(MER_ID, "UPVERBS001", "3.00", out_refund_no="UPREFUND01") == refund
    assert unionpay.trade(MER_ID, "UPVERBS001").refunded == Money(300)
    sent = env.sandbox.deliver_due()
    assert [a.kind for a in sent] == ["04 refund"]
    assert [a.kind for a in unionpay.notify(MER_ID, "UPVERBS001")] == ["04 refund"]
    with pytest.raises(TradeStateError, match="可退金额"):
        unionpay.refund(MER_ID, "UPVERBS001", "7.01")
    # the clearing day of the refund: one ZM line for the consume, one (S30) for the refund
    day = unionpay.trade(MER_ID, "UPVERBS001").paid_at.astimezone(CHINA_TZ) + timedelta(hours=1)
    lines = unionpay.bill(MER_ID, day.date()).splitlines()
    assert [line[:3] for line in lines] == [b"S22", b"S30"]
    assert unionpay.bill(MER_ID, date(2020, 1, 1)) == b""  # a day without trades
    for verb, call in (("close", lambda: unionpay.close(MER_ID, "UPVERBS001")),):
        assert not unionpay.supports(verb)
        with pytest.raises(UnsupportedVerbError) as caught:
            call()
        assert (caught.value.channel, caught.value.verb) == ("unionpay", verb)
        assert caught.value.status == 501
        assert isinstance(caught.value, NotImplementedError)
    unionpay.fail(times=1)
    assert env.client.query("UPVERBS001", paid.extra["txnTime"])["respCode"] == "03"


# -- the old names, for one release -------------------------------------------------------


def test_the_old_names_warn_and_still_work(sandbox: Sandbox, alipay: AlipayWireClient) -> None:
    new_trade(alipay, "OLD1", "10.00")
    with pytest.warns(DeprecationWarning, match=r"pay_alipay\(\) is deprecated.*alipay\.pay"):
        paid = sandbox.pay_alipay(APP_ID, "OLD1")
    assert isinstance(paid, Trade)
    assert paid.state is TradeState.PAID
    with pytest.warns(DeprecationWarning, match="alipay.refund"):
        refund = sandbox.refund_alipay(APP_ID, "OLD1", "1.00", out_request_no="ROLD1")
    assert refund.out_refund_no == "ROLD1"
    with pytest.warns(DeprecationWarning, match="alipay.bill"):
        assert sandbox.alipay_bill(APP_ID, date(2024, 3, 1))[:2] == b"PK"
    with pytest.warns(DeprecationWarning, match="alipay.finish"):
        assert sandbox.finish_alipay(APP_ID, "OLD1").state is TradeState.FINISHED
    new_trade(alipay, "OLD2", "1.00")
    with pytest.warns(DeprecationWarning, match="alipay.close"):
        assert sandbox.close_alipay(APP_ID, "OLD2").state is TradeState.CLOSED
    with pytest.warns(DeprecationWarning, match="wechat.fail"):
        sandbox.fail_wechat_next("SYSTEM_ERROR", times=2)
    assert [f["remaining"] for f in sandbox.wechat.engine.faults()] == [2]
    for old in (
        "pay_unionpay",
        "pay_wechat",
        "refund_wechat",
        "close_wechat",
        "settle_wechat_refund",
        "wechat_bill",
    ):
        assert "Deprecated" in (getattr(Sandbox, old).__doc__ or ""), old


def test_reaching_the_engine_through_the_facade_warns(sandbox: Sandbox) -> None:
    with pytest.warns(DeprecationWarning, match=r"sandbox\.alipay\.engine\.public_key_pem"):
        pem = sandbox.alipay.public_key_pem
    assert pem == sandbox.alipay.engine.public_key_pem
    with pytest.raises(AttributeError):
        sandbox.alipay._no_such_thing  # noqa: B018


# -- parts are live -----------------------------------------------------------------------


def test_create_app_mounts_the_installed_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    from payhub_sandbox.parts import MOUNTED_KEY, install_parts

    monkeypatch.delenv("PAYHUB_SANDBOX_PARTS", raising=False)
    app = create_app(Sandbox())
    assert "epay" in app.extensions[MOUNTED_KEY]  # payhub-epay is installed with the tests
    assert "payhub_epay_sandbox" in app.extensions
    assert install_parts(app) == app.extensions[MOUNTED_KEY]  # once only
    response = app.test_client().get("/epay/api.php", query_string={"act": "order"})
    assert response.status_code == 200
    bare = create_app(Sandbox(), parts=False)
    assert "payhub_epay_sandbox" not in bare.extensions


# -- the package's shape ------------------------------------------------------------------


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it (TYPE_CHECKING and functions too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_package_imports_no_cycle() -> None:
    """No module of the package imports one that imports it back (the scheduler and its
    delivery faults used to): every module can be read, and imported, on its own."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: sorted({m for m in _imports(path) if m in modules and m != name})
        for name, path in modules.items()
        if name != "payhub_sandbox"  # the curated exports import everything
    }
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, " -> ".join((*trail, name))
        state[name] = 1
        for target in graph.get(name, []):
            visit(target, (*trail, name))
        state[name] = 2

    for name in graph:
        visit(name, ())
    assert "payhub_sandbox.delivery._faults" in graph
    assert "payhub_sandbox.delivery._scheduler" not in graph["payhub_sandbox.delivery._faults"]


def test_the_sandbox_never_imports_payhub_channels_and_only_its_fixtures_the_facade() -> None:
    """It builds and parses the wire formats itself: a misreading in a channel must not be
    mirrored. Only the pytest plugin's fixtures that build a hub import payhub's facade."""
    lower = ("payhub.money", "payhub.errors", "payhub.signing")
    for path in PACKAGE.rglob("*.py"):
        for name in _imports(path):
            if name != "payhub" and not name.startswith("payhub."):
                continue
            assert not name.startswith("payhub.channels"), (path, name)
            if path.name != "pytest_plugin.py":
                assert name.startswith(lower), (path, name)
