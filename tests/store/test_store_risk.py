"""Risk rules in hub.pay on every database: a block names its rule, calls no
channel and stores nothing; a review pays but writes payment.review instead of
payment.succeeded; approve releases delivery, decline refunds; all audited."""

from __future__ import annotations

import asyncio

import pytest
from storekit import ToyBank, ToyChannel

from payhub import (
    AsyncPayHub,
    ConfigurationError,
    Money,
    PayHub,
    PaymentRequest,
    PaymentStateError,
    PayMethod,
    RefundStatus,
    RiskBlocked,
)
from payhub.models import BuyerHints
from payhub.risk import RiskEngine
from payhub.store import PaymentState, ReviewStatus, Store

RULES = {
    "rules": [
        {"name": "bad-net", "type": "list", "action": "block", "field": "ip",
         "values": ["203.0.113.0/24"]},
        {"name": "big", "type": "amount", "action": "review", "max_minor": 5000},
        {"name": "watch-small", "type": "amount", "action": "block", "max_minor": 10,
         "mode": "observe"},
    ]
}


def request(no: str, amount: int = 1000, ip: str = "198.51.100.4") -> PaymentRequest:
    return PaymentRequest(
        out_trade_no=no, amount=Money(amount), subject="card", method=PayMethod.QR,
        buyer=BuyerHints(ip=ip),
    )


@pytest.fixture
def risky(store: Store, bank: ToyBank):  # type: ignore[no-untyped-def]
    with PayHub(
        channels=[ToyChannel("toy-a")], store=store, http_client=bank.client(),
        risk=RiskEngine.from_config(RULES),
    ) as hub:
        events: list[tuple[str, str]] = []
        hub.subscribe("*", lambda e: events.append((e.type, e.out_trade_no)))
        hub.events = events  # type: ignore[attr-defined]
        yield hub


def test_a_block_names_the_rule_calls_no_channel_and_stores_nothing(
    risky, store: Store, bank: ToyBank
) -> None:
    with pytest.raises(RiskBlocked, match="bad-net") as info:
        risky.pay(request("B1", ip="203.0.113.50"))
    assert info.value.rule == "bad-net"
    assert info.value.code.name == "RISK_BLOCKED"
    assert not info.value.retryable
    assert "203.0.113" not in info.value.message  # no buyer data in the message
    assert bank.trades == {}  # no channel was called
    assert store.payment("B1") is None
    audit = store.risk_audit("B1")
    # the block, and the observe-mode rule that would also have blocked it
    assert [(a.action, a.rule) for a in audit] == [("block", "bad-net"), ("observe", "watch-small")]


def test_a_review_pays_but_holds_delivery_until_approved(
    risky, store: Store, bank: ToyBank
) -> None:
    risky.pay(request("V1", amount=9000))
    assert [r.out_trade_no for r in risky.reviews()] == ["V1"]
    assert not risky.reviews()[0].waiting  # not paid yet
    with pytest.raises(PaymentStateError, match="decided once it is paid"):
        risky.approve_review("V1", operator="ops")
    assert risky.handle_notification("toy-a", *bank.buyer_pays("toy-a", "V1")).ack.ok
    assert store.payment("V1").status is PaymentState.PAID
    assert ("payment.review", "V1") in risky.events
    assert ("payment.succeeded", "V1") not in risky.events
    review = risky.reviews()[0]
    assert review.waiting
    assert review.rule == "big"
    approved = risky.approve_review("V1", operator="alice", note="known buyer")
    assert approved.status is ReviewStatus.APPROVED
    assert approved.decided_by == "alice"
    assert risky.events.count(("payment.succeeded", "V1")) == 1
    risky.approve_review("V1", operator="alice")  # again: nothing new
    assert risky.events.count(("payment.succeeded", "V1")) == 1
    assert risky.reviews() == []
    with pytest.raises(PaymentStateError, match="already approved"):
        risky.decline_review("V1", operator="bob")
    actions = [(a.action, a.actor) for a in store.risk_audit("V1")]
    assert actions == [("review", "payhub"), ("observe", "payhub"), ("approve", "alice")]


def test_decline_refunds_through_the_refund_path(risky, store: Store, bank: ToyBank) -> None:
    risky.pay(request("D1", amount=7000))
    assert risky.handle_notification("toy-a", *bank.buyer_pays("toy-a", "D1")).ack.ok
    review, refund = risky.decline_review("D1", operator="carol", note="stolen account")
    assert review.status is ReviewStatus.DECLINED
    assert refund is not None
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.amount == Money(7000)
    assert refund.out_refund_no == review.out_refund_no
    assert store.payment("D1").status is PaymentState.REFUNDED
    assert ("payment.succeeded", "D1") not in risky.events
    again, second = risky.decline_review("D1", operator="carol")
    assert again.out_refund_no == review.out_refund_no
    assert second is None
    assert len(bank.refunds) == 1
    assert [a.action for a in store.risk_audit("D1")] == ["review", "observe", "decline"]


def test_observe_hits_are_audited_and_change_nothing(risky, store: Store) -> None:
    risky.pay(request("O1", amount=20))
    assert store.payment("O1").status is PaymentState.PENDING
    assert [(a.action, a.rule) for a in store.risk_audit("O1")] == [("observe", "watch-small")]
    assert risky.reviews() == []


def test_the_async_hub_holds_and_approves_too(store: Store, bank: ToyBank) -> None:
    import httpx

    async def run() -> None:
        async with AsyncPayHub(
            channels=[ToyChannel("toy-a")], store=store,
            http_client=httpx.AsyncClient(transport=_AsyncBank(bank)),
            risk=RiskEngine.from_config(RULES),
        ) as hub:
            seen: list[str] = []
            hub.subscribe("*", lambda e: seen.append(e.type))
            with pytest.raises(RiskBlocked):
                await hub.pay(request("AB1", ip="203.0.113.1"))
            await hub.pay(request("AV1", amount=8000))
            outcome = await hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", "AV1"))
            assert outcome.ack.ok
            assert "payment.review" in seen
            assert "payment.succeeded" not in seen
            await hub.approve_review("AV1", operator="ops")
            assert seen.count("payment.succeeded") == 1

    asyncio.run(run())


class _AsyncBank:
    def __init__(self, bank: ToyBank) -> None:
        self.bank = bank

    async def handle_async_request(self, request):  # type: ignore[no-untyped-def]
        await request.aread()
        return self.bank.handle(request)


def test_review_rules_need_a_store(bank: ToyBank) -> None:
    with pytest.raises(ConfigurationError, match="need a store"):
        PayHub(channels=[ToyChannel("toy-a")], risk=RiskEngine.from_config(RULES))


def test_reviews_cli(store: Store, store_url: str, bank: ToyBank, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    import storekit
    from typer.testing import CliRunner

    import payhub.cli as cli
    from payhub.plugins import get_plugin_manager

    path = tmp_path / "hub.json"
    path.write_text(json.dumps(
        {"store": {"url": store_url}, "channels": {"toy-a": {"type": "toy"}}, "risk": RULES}
    ))
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(storekit, name="toy")

    def open_hub(config):  # type: ignore[no-untyped-def]
        return PayHub.from_config(
            cli._load_config(config), plugin_manager=pm, http_client=bank.client()
        )

    monkeypatch.setattr(cli, "_open_hub", open_hub)
    hub = open_hub(path)
    with hub:
        hub.pay(request("C1", amount=9000))
        hub.pay(request("C2", amount=9000))
        for no in ("C1", "C2"):
            assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", no)).ack.ok
    runner = CliRunner()
    listed = runner.invoke(cli.app, ["reviews", "list", "-c", str(path)])
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.output.splitlines()]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("C1", "open", "waiting", "big"), ("C2", "open", "waiting", "big")]
    ok = runner.invoke(cli.app, ["reviews", "approve", "C1", "--operator", "li", "-c", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "C1: approved by li" in ok.output
    no = runner.invoke(cli.app, ["reviews", "decline", "C2", "--operator", "li", "-c", str(path)])
    assert no.exit_code == 0, no.output
    assert "declined; refund succeeded" in no.output
    args = ["reviews", "approve", "C2", "--operator", "li", "-c", str(path)]
    again = runner.invoke(cli.app, args)
    assert again.exit_code == 1
    assert "already declined" in again.output
    assert store.payment("C2").status is PaymentState.REFUNDED
