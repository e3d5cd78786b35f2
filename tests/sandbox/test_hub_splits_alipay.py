"""hub.split and hub.payout end to end: payhub's hub, store and ledger against the
sandbox's Alipay (royalty relations, order.settle, fund transfers), over the wire.

Nothing is mocked: the hub speaks Alipay's signed protocol (certificate mode) to
the sandbox's WSGI app, the store is a real SQLite file, and the ledger is read
back from it. Recovery of a processing outcome goes through ``hub.sync_pending``,
as ``payhub sync`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, create_app
from sandbox_support import APP_ID, SELLER_ID, Shop

from payhub import PayHub, models
from payhub.channels import run_flow_sync
from payhub.channels.alipay import AlipayChannel
from payhub.errors import (
    AmountError,
    ChannelError,
    ErrorCode,
    InvalidRequestError,
    SplitError,
)
from payhub.hub._splits import NOT_FOUND_YET
from payhub.ledger import PLATFORM, Account, AccountKind, EntryCause, WithdrawalStatus
from payhub.money import Money
from payhub.splits import Share, SplitPart
from payhub.splits import split as plan_split
from payhub.splits_models import ReceiverBinding, ReceiverKind, SplitReceiver, TransferRequest
from payhub.store import PayoutState, SplitState, Store

SANDBOX = "http://sandbox.test"
PLATFORM_ACCOUNT = "2088000000000011"
AGENT_ACCOUNT = "2088000000000022"
SELLER_PAYEE = "2088000000000033"
K = AccountKind


@dataclass
class World:
    box: Sandbox
    clock: ManualClock
    http: httpx.Client
    channel: AlipayChannel
    store: Store
    hub: PayHub

    def run(self, flow: Any) -> Any:
        return run_flow_sync(flow, self.http.send)

    def paid(self, out_trade_no: str, minor: int = 10000, seller: str = "alice") -> None:
        """A payment made for splitting, paid by the buyer, known paid to the store."""
        self.hub.pay(
            models.PaymentRequest(
                out_trade_no=out_trade_no,
                amount=Money(minor),
                subject="礼品卡",
                method="qr",
                seller=seller,
                split=True,
            )
        )
        self.box.alipay.scan(APP_ID, out_trade_no)
        self.box.alipay.pay(APP_ID, out_trade_no)
        record = self.hub.sync_payment(out_trade_no)
        assert record is not None
        assert record.status.is_paid

    def bind(self, *, unbind: bool = False) -> None:
        receivers = [
            ReceiverBinding(kind=ReceiverKind.USER_ID, account=PLATFORM_ACCOUNT),
            ReceiverBinding(kind=ReceiverKind.USER_ID, account=AGENT_ACCOUNT),
        ]
        self.hub.bind_receivers("alipay", "B1", receivers, unbind=unbind)

    def balance(self, party: str, kind: AccountKind) -> Money:
        return self.store.ledger.balance(Account(party, kind))


@pytest.fixture
def world(platform_keys: Any, merchant_keys: Any, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        clock=clock,
        notify_transport=Shop().transport,
        base_url=SANDBOX,
    )
    app_cert = box.issue_alipay_app_cert(APP_ID, merchant_keys.public_pem)
    box.add_alipay_merchant(APP_ID, app_cert, SELLER_ID)
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    channel = AlipayChannel.from_config(
        "alipay",
        {
            "app_id": APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "environment": "sandbox",
            "gateway": f"{SANDBOX}/gateway.do",
            "seller_id": SELLER_ID,
            "notify_url": "http://shop.test/alipay/notify",
            "app_cert": app_cert,
            "alipay_cert": box.alipay_cert_pem,
            "alipay_root_cert": box.alipay_root_cert_pem,
        },
    )
    store = Store(f"sqlite:///{tmp_path / 'payhub.db'}", ledger={"plans": {"alice": "instant"}})
    store.upgrade()
    hub = PayHub(channels=[channel], http_client=http, store=store)
    yield World(box, clock, http, channel, store, hub)
    http.close()
    box.stop()
    store.close()


def _plan(total: int = 10000) -> Any:
    return plan_split(
        Money(total),
        [
            Share.fixed("platform", Money(1000)),
            Share.ratio("agent", Decimal("0.1")),
            Share.remainder("alice"),
        ],
    )


RECEIVERS = {
    "platform": SplitReceiver(kind=ReceiverKind.USER_ID, account=PLATFORM_ACCOUNT),
    "agent": SplitReceiver(kind=ReceiverKind.USER_ID, account=AGENT_ACCOUNT),
}


def _split_entries(world: World, out_trade_no: str) -> list[Any]:
    entries = world.store.ledger.entries(reference=out_trade_no)
    return [e for e in entries if e.cause is EntryCause.SPLIT]


# -- splits ---------------------------------------------------------------------------


def test_a_split_through_the_hub_reaches_the_channel_and_the_ledger_once(world: World) -> None:
    world.paid("P1")
    world.bind()
    assert world.balance("alice", K.AVAILABLE) == Money(10000)
    record = world.hub.split("P1", "SP1", _plan(), RECEIVERS)
    assert record.status is SplitState.SUCCEEDED
    assert record.channel_split_id
    assert [(ln.party, ln.amount) for ln in record.lines] == [
        ("platform", Money(1000)),
        ("agent", Money(900)),
    ]
    [settle] = world.box.alipay.engine.settles()
    assert settle["out_request_no"] == "SP1"
    # the payer's own part stayed; each receiver's left the seller's balance
    assert world.balance("alice", K.AVAILABLE) == Money(8100)
    assert world.balance(PLATFORM, K.PAID_OUT) == Money(1000)
    assert world.balance("agent", K.PAID_OUT) == Money(900)
    assert len(_split_entries(world, "P1")) == 1
    # the same call: the stored split, nothing sent again, nothing posted again
    again = world.hub.split("P1", "SP1", _plan(), RECEIVERS)
    assert again.status is SplitState.SUCCEEDED
    assert len(world.box.alipay.engine.settles()) == 1
    assert len(_split_entries(world, "P1")) == 1
    # the same number with other content: refused, nothing sent
    elsewhere = SplitReceiver(kind=ReceiverKind.USER_ID, account=PLATFORM_ACCOUNT)
    other = {**RECEIVERS, "agent": elsewhere}
    with pytest.raises(InvalidRequestError) as caught:
        world.hub.split("P1", "SP1", _plan(), other)
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED
    assert len(world.box.alipay.engine.settles()) == 1


def test_a_split_to_an_unbound_receiver_changes_nothing_then_succeeds_once_bound(
    world: World,
) -> None:
    world.paid("P2")
    with pytest.raises(ChannelError) as caught:
        world.hub.split("P2", "SP2", _plan(), RECEIVERS)
    assert caught.value.code is ErrorCode.RECEIVER_NOT_BOUND
    assert world.store.split("SP2").status is SplitState.REFUSED
    assert _split_entries(world, "P2") == []
    assert world.balance("alice", K.AVAILABLE) == Money(10000)
    world.bind()
    assert world.hub.split("P2", "SP2", _plan(), RECEIVERS).status is SplitState.SUCCEEDED
    world.bind(unbind=True)  # through the hub too: the next split is refused again
    with pytest.raises(ChannelError) as again:
        world.hub.split("P2", "SP2b", _plan(), RECEIVERS)
    assert again.value.code is ErrorCode.RECEIVER_NOT_BOUND


def test_a_split_above_the_payment_is_refused_before_anything_is_sent(world: World) -> None:
    world.paid("P3", 5000)
    world.bind()
    world.hub.split("P3", "SP3", _plan(10000), RECEIVERS)  # 1900 of a 5000 payment: fine
    with pytest.raises(SplitError) as caught:
        world.hub.split("P3", "SP3b", _plan(40000), RECEIVERS)  # 1000 + 3900 more: too much
    assert caught.value.code is ErrorCode.INVALID_SPLIT
    assert [s["out_request_no"] for s in world.box.alipay.engine.settles()] == ["SP3"]
    assert world.store.split("SP3b") is None  # refused before anything was stored
    with pytest.raises(SplitError):
        world.hub.split("P3", "SP3c", _plan(), {"platform": RECEIVERS["platform"]})  # no agent


@pytest.mark.parametrize(
    ("mode", "final"),
    [("processing_success", SplitState.SUCCEEDED), ("processing_failure", SplitState.FAILED)],
)
def test_a_processing_split_is_settled_by_sync(
    world: World, mode: str, final: SplitState
) -> None:
    world.paid("P4")
    world.bind()
    world.box.splits.faults.set("alipay", mode, merchant_id=APP_ID, count=1, seconds=600)
    record = world.hub.split("P4", "SP4", _plan(), RECEIVERS)
    assert record.status is SplitState.PROCESSING
    assert _split_entries(world, "P4") == []  # nothing posted before the channel confirms
    report = world.hub.sync_pending()
    assert report.splits_checked == 1
    assert report.splits_changed == {}  # still processing at the channel
    assert world.store.split("SP4").status is SplitState.PROCESSING
    world.clock.advance(600 / 60)
    report = world.hub.sync_pending()
    assert report.splits_changed == {"SP4": final}
    assert world.store.split("SP4").status is final
    if final is SplitState.SUCCEEDED:
        assert world.balance("alice", K.AVAILABLE) == Money(8100)
        assert len(_split_entries(world, "P4")) == 1
    else:
        assert world.balance("alice", K.AVAILABLE) == Money(10000)
        assert _split_entries(world, "P4") == []
        # its room is free again
        assert world.hub.split("P4", "SP4b", _plan(), RECEIVERS).status is SplitState.SUCCEEDED
    assert world.hub.sync_pending().splits_checked == 0


# -- payouts --------------------------------------------------------------------------


def _payout(number: str, minor: int, name: str | None = None) -> TransferRequest:
    return TransferRequest(
        out_transfer_no=number,
        kind=ReceiverKind.USER_ID,
        account=SELLER_PAYEE,
        amount=Money(minor),
        remark="提现",
        name=name,
    )


def test_a_payout_pays_the_withdrawal_once(world: World) -> None:
    world.paid("P5")
    world.box.splits.set_balance("alipay", APP_ID, Money(100000))
    withdrawal = world.store.ledger.withdraw("alice", Money(5000))
    record = world.hub.payout("alipay", withdrawal.id, _payout("PO5", 5000))
    assert record.status is PayoutState.SUCCEEDED
    assert record.channel_transfer_id
    [w] = world.store.ledger.withdrawals()
    assert w.status is WithdrawalStatus.PAID
    assert world.balance(PLATFORM, K.PAID_OUT) == Money(5000)
    assert world.box.splits.balance("alipay", APP_ID) == Money(95000)
    again = world.hub.payout("alipay", withdrawal.id, _payout("PO5", 5000))
    assert again.status is PayoutState.SUCCEEDED
    assert len(world.box.alipay.engine.transfers()) == 1
    assert world.box.splits.balance("alipay", APP_ID) == Money(95000)


def test_bad_payouts_are_typed_and_move_nothing(world: World) -> None:
    world.paid("P6")
    world.box.splits.set_balance("alipay", APP_ID, Money(100000))
    world.box.splits.add_payee("alipay", SELLER_PAYEE, "李四")
    withdrawal = world.store.ledger.withdraw("alice", Money(5000))
    with pytest.raises(AmountError):
        world.hub.payout("alipay", withdrawal.id, _payout("PO6", 5001))
    with pytest.raises(ChannelError) as caught:
        world.hub.payout("alipay", withdrawal.id, _payout("PO6", 5000, name="王五"))
    assert caught.value.code is ErrorCode.PAYEE_NAME_MISMATCH
    assert world.store.payout("PO6").status is PayoutState.REFUSED
    assert world.store.ledger.withdrawals()[0].status is WithdrawalStatus.PENDING
    assert world.box.splits.balance("alipay", APP_ID) == Money(100000)
    # the right name, the same number: paid
    record = world.hub.payout("alipay", withdrawal.id, _payout("PO6", 5000, name="李四"))
    assert record.status is PayoutState.SUCCEEDED
    world.box.splits.set_balance("alipay", APP_ID, Money(10))
    second = world.store.ledger.withdraw("alice", Money(1000))
    with pytest.raises(ChannelError) as caught:
        world.hub.payout("alipay", second.id, _payout("PO7", 1000, name="李四"))
    assert caught.value.code is ErrorCode.INSUFFICIENT_BALANCE
    assert world.store.ledger.withdrawals()[1].status is WithdrawalStatus.PENDING


@pytest.mark.parametrize(
    ("mode", "final"),
    [("processing_success", PayoutState.SUCCEEDED), ("processing_failure", PayoutState.FAILED)],
)
def test_a_processing_payout_is_settled_by_sync(
    world: World, mode: str, final: PayoutState
) -> None:
    world.paid("P8")
    world.box.splits.set_balance("alipay", APP_ID, Money(100000))
    withdrawal = world.store.ledger.withdraw("alice", Money(3000))
    world.box.splits.faults.set("alipay", mode, count=1, seconds=120)
    record = world.hub.payout("alipay", withdrawal.id, _payout("PO8", 3000))
    assert record.status is PayoutState.PROCESSING
    assert world.store.ledger.withdrawals()[0].status is WithdrawalStatus.PENDING
    # the same call while processing: a query under the same number, no second transfer
    assert world.hub.payout("alipay", withdrawal.id, _payout("PO8", 3000)).status is (
        PayoutState.PROCESSING
    )
    assert len(world.box.alipay.engine.transfers()) == 1
    world.clock.advance(2)
    report = world.hub.sync_pending()
    assert report.payouts_changed == {"PO8": final}
    [w] = world.store.ledger.withdrawals()
    if final is PayoutState.SUCCEEDED:
        assert w.status is WithdrawalStatus.PAID
        assert world.balance("alice", K.AVAILABLE) == Money(7000)
    else:
        assert w.status is WithdrawalStatus.FAILED
        assert world.balance("alice", K.AVAILABLE) == Money(10000)


def test_finishing_unfreezes_the_rest_and_ends_the_splitting(world: World) -> None:
    """split_finish: alipay.trade.order.settle with only royalty_finish (the payment
    was created with royalty_freeze by PaymentRequest(split=True))."""
    world.paid("P9")
    world.bind()
    assert world.hub.split("P9", "SP9", _plan(), RECEIVERS).status is SplitState.SUCCEEDED
    trade_no = world.store.payment("P9").channel_trade_id
    [trade] = world.box.alipay.engine.royalty_trades(APP_ID)
    assert (trade["royalty_freeze"], trade["frozen"]) == (True, "81.00")  # 100 - 19 split
    world.run(world.channel.split_finish("FIN9", trade_no, "完结"))
    [trade] = world.box.alipay.engine.royalty_trades(APP_ID)
    assert (trade["finished"], trade["frozen"]) == (True, "0.00")
    settles = {s["out_request_no"]: s for s in world.box.alipay.engine.settles()}
    assert "FIN9" in settles
    with pytest.raises(ChannelError) as caught:
        world.hub.split("P9", "SP9b", [SplitPart("platform", Money(100))], RECEIVERS)
    assert caught.value.code is ErrorCode.INVALID_SPLIT  # nothing left to split at Alipay
    assert world.store.split("SP9b").status is SplitState.REFUSED


def test_a_busy_gateway_is_asked_then_sent_again_under_the_same_number(world: World) -> None:
    """Alipay answers "system busy" (outcome unknown): the hub asks, Alipay knows no
    such request, so the same request goes again under the same number, once."""
    world.paid("P10")
    world.bind()
    world.box.set_fault("alipay", "system_error", code="40004", count=1)
    record = world.hub.split("P10", "SP10", _plan(), RECEIVERS)
    assert record.status is SplitState.SUCCEEDED
    assert [s["out_request_no"] for s in world.box.alipay.engine.settles()] == ["SP10"]
    assert len(_split_entries(world, "P10")) == 1
    world.box.splits.set_balance("alipay", APP_ID, Money(100000))
    withdrawal = world.store.ledger.withdraw("alice", Money(2000))
    world.box.set_fault("alipay", "system_error", code="40004", count=1)
    payout = world.hub.payout("alipay", withdrawal.id, _payout("PO10", 2000))
    assert payout.status is PayoutState.SUCCEEDED
    assert len(world.box.alipay.engine.transfers()) == 1
    assert world.box.splits.balance("alipay", APP_ID) == Money(98000)  # drawn once


def test_a_gateway_down_twice_leaves_it_processing_until_repeated(world: World) -> None:
    world.paid("P11")
    world.bind()
    world.box.set_fault("alipay", "system_error", code="40004", count=2)  # the send, the ask
    record = world.hub.split("P11", "SP11", _plan(), RECEIVERS)
    assert record.status is SplitState.PROCESSING
    assert _split_entries(world, "P11") == []
    # nothing reached Alipay: sync only asks; Alipay knows nothing of it: still processing
    report = world.hub.sync_pending()
    assert report.split_errors == {"SP11": NOT_FOUND_YET}
    assert world.box.alipay.engine.settles() == []
    # the caller repeats the call: asked, then sent again under the same number
    assert world.hub.split("P11", "SP11", _plan(), RECEIVERS).status is SplitState.SUCCEEDED
    assert [s["out_request_no"] for s in world.box.alipay.engine.settles()] == ["SP11"]
    assert len(_split_entries(world, "P11")) == 1
