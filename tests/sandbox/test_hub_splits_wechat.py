"""hub.split and hub.payout end to end against the sandbox's WeChat Pay: profit
sharing and merchant transfer bills, with the sandbox's notifications delivered
to the hub itself (``hub.handle_notification``), as a shop's endpoint would.

Nothing is mocked: payhub signs and encrypts APIv3 requests to the sandbox's
WSGI app; the sandbox signs and encrypts its notifications to the hub; the store
is a real SQLite file and the ledger is read back from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, create_app
from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, spare_key

from payhub import PayHub, models
from payhub.channels import run_flow_sync
from payhub.channels.wechat import WechatPayChannel
from payhub.ledger import PLATFORM, Account, AccountKind, EntryCause, WithdrawalStatus
from payhub.money import Money
from payhub.splits import SplitPart
from payhub.splits_models import ReceiverBinding, ReceiverKind, SplitReceiver, TransferRequest
from payhub.store import PayoutState, SplitState, Store

BASE = "http://sandbox.test"
SERIAL = "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F"
SELLER_MCH = "1900000109"
SELLER_NAME = "示例商户全称"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NOTIFY = "http://shop.test/wechat/notify"
K = AccountKind


@dataclass
class Endpoint:
    """The shop's notification URL: every request goes to the hub."""

    hub: PayHub | None = None
    acks: list[int] = field(default_factory=list)
    seen: list[tuple[httpx.Headers, bytes]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        assert self.hub is not None
        self.seen.append((request.headers, request.content))
        outcome = self.hub.handle_notification("wechat", request.headers, request.content)
        self.acks.append(outcome.ack.status_code)
        return httpx.Response(outcome.ack.status_code, content=outcome.ack.body)


@dataclass
class World:
    box: Sandbox
    clock: ManualClock
    http: httpx.Client
    channel: WechatPayChannel
    store: Store
    hub: PayHub
    endpoint: Endpoint

    def run(self, flow: Any) -> Any:
        return run_flow_sync(flow, self.http.send)

    def paid(self, out_trade_no: str, minor: int = 10000) -> None:
        self.hub.pay(
            models.PaymentRequest(
                out_trade_no=out_trade_no,
                amount=Money(minor),
                subject="礼品卡",
                method="qr",
                seller="alice",
                split=True,
            )
        )
        self.box.wechat.pay(MCHID, out_trade_no)
        self.box.deliver_due()  # TRANSACTION.SUCCESS, to the hub
        assert self.store.payment(out_trade_no).status.is_paid

    def balance(self, party: str, kind: AccountKind) -> Money:
        return self.store.ledger.balance(Account(party, kind))


@pytest.fixture
def world(merchant_keys: Any, platform_keys: Any, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    endpoint = Endpoint()
    box = Sandbox(
        time_factor=60,
        clock=clock,
        notify_transport=httpx.MockTransport(endpoint.handle),
        base_url=BASE,
        alipay_platform_key=platform_keys.private,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=spare_key(),
    )
    box.add_wechat_merchant(
        MCHID, APPID, SERIAL, merchant_keys.public_pem, API_V3_KEY, "public_key"
    )
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)), base_url=BASE)
    channel = WechatPayChannel.from_config(
        "wechat",
        {
            "mch_id": MCHID,
            "app_id": APPID,
            "merchant_private_key": merchant_keys.private_pem,
            "merchant_serial_no": SERIAL,
            "api_v3_key": API_V3_KEY.decode(),
            "environment": "sandbox",
            "base_url": BASE,
            "notify_url": NOTIFY,
            "wechatpay_public_key": box.wechat_public_key_pem,
            "wechatpay_public_key_id": box.wechat_public_key_id,
        },
    )
    store = Store(f"sqlite:///{tmp_path / 'payhub.db'}", ledger={"plans": {"alice": "instant"}})
    store.upgrade()
    hub = PayHub(channels=[channel], http_client=http, store=store)
    endpoint.hub = hub
    yield World(box, clock, http, channel, store, hub, endpoint)
    http.close()
    box.stop()
    store.close()


SELLER = SplitReceiver(kind=ReceiverKind.MERCHANT, account=SELLER_MCH, name=SELLER_NAME)


def _bind(world: World) -> None:
    world.run(
        world.channel.bind_receiver(
            "B1",
            [
                ReceiverBinding(
                    kind=ReceiverKind.MERCHANT,
                    account=SELLER_MCH,
                    name=SELLER_NAME,
                    relation_type="STORE",
                )
            ],
        )
    )


def test_a_profit_sharing_split_through_the_hub(world: World) -> None:
    world.paid("WX0001")
    _bind(world)
    plan = [SplitPart("platform", Money(2000))]
    record = world.hub.split("WX0001", "SPW1", plan, {"platform": SELLER})
    assert record.status is SplitState.SUCCEEDED
    assert world.balance("alice", K.AVAILABLE) == Money(8000)
    assert world.balance(PLATFORM, K.PAID_OUT) == Money(2000)
    # the receiver's PROFITSHARING notice reaches the hub: acknowledged, nothing posted again
    world.box.deliver_due()
    assert world.endpoint.acks
    assert set(world.endpoint.acks) == {204}
    entries = world.store.ledger.entries(reference="WX0001")
    assert [e.cause for e in entries].count(EntryCause.SPLIT) == 1


def test_a_processing_split_is_settled_by_the_channels_notification(world: World) -> None:
    world.paid("WX0002")
    _bind(world)
    world.box.splits.faults.set("wechat", "processing_success", count=1, seconds=120)
    plan = [SplitPart("platform", Money(1500))]
    record = world.hub.split("WX0002", "SPW2", plan, {"platform": SELLER})
    assert record.status is SplitState.PROCESSING
    assert world.balance("alice", K.AVAILABLE) == Money(10000)
    world.clock.advance(2)
    world.box.deliver_due()  # PROFITSHARING to the hub, which asks and applies
    assert world.store.split("SPW2").status is SplitState.SUCCEEDED
    assert world.balance("alice", K.AVAILABLE) == Money(8500)


def _transfer(number: str, minor: int) -> TransferRequest:
    return TransferRequest(
        out_transfer_no=number,
        kind=ReceiverKind.OPENID,
        account=OPENID,
        amount=Money(minor),
        remark="提现",
        scene_id="1005",
        scene_report=(("岗位类型", "外卖员"), ("报酬说明", "7月份配送费")),
        notify_url="http://shop.test/wechat/transfer-notify",
    )


def _confirm(world: World, number: str) -> None:
    answer = world.http.post(
        f"/_control/splits/wechat/transfers/{number}/confirm", json={"mch_id": MCHID}
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("mode", "final"),
    [(None, PayoutState.SUCCEEDED), ("processing_failure", PayoutState.FAILED)],
)
def test_a_payout_waits_for_the_user_and_its_notification_settles_it(
    world: World, mode: str | None, final: PayoutState
) -> None:
    world.paid("WX0003")
    withdrawal = world.store.ledger.withdraw("alice", Money(3000))
    if mode is not None:
        world.box.splits.faults.set("wechat", mode, count=1, seconds=120)
    record = world.hub.payout("wechat", withdrawal.id, _transfer("POW0003", 3000))
    assert record.status is PayoutState.PROCESSING
    assert record.package_info  # for the user's confirm page
    assert world.store.ledger.withdrawals()[0].status is WithdrawalStatus.PENDING
    _confirm(world, "POW0003")
    world.clock.advance(2)
    world.box.deliver_due()  # MCHTRANSFER.BILL.FINISHED, to the hub
    assert world.store.payout("POW0003").status is final
    [w] = world.store.ledger.withdrawals()
    if final is PayoutState.SUCCEEDED:
        assert w.status is WithdrawalStatus.PAID
        assert world.balance(PLATFORM, K.PAID_OUT) == Money(3000)
    else:
        assert w.status is WithdrawalStatus.FAILED
        assert world.balance("alice", K.AVAILABLE) == Money(10000)
    # a resent notification, or a sync, changes nothing more
    assert world.hub.sync_pending().payouts_checked == 0


def test_a_split_to_a_receiver_not_added_changes_nothing(world: World) -> None:
    """WeChat Pay refuses it with INVALID_REQUEST (its message says the receiver does
    not exist): the hub raises that, stores nothing, posts nothing."""
    from payhub.errors import ChannelError

    world.paid("WX0004")
    plan = [SplitPart("platform", Money(1000))]
    with pytest.raises(ChannelError) as caught:
        world.hub.split("WX0004", "SPW4", plan, {"platform": SELLER})
    assert caught.value.channel_code == "INVALID_REQUEST"
    assert world.store.split("SPW4").status is SplitState.REFUSED
    assert world.balance("alice", K.AVAILABLE) == Money(10000)
    _bind(world)
    assert world.hub.split("WX0004", "SPW4", plan, {"platform": SELLER}).status is (
        SplitState.SUCCEEDED
    )


def test_a_transfer_notification_again_or_forged_changes_nothing(world: World) -> None:
    world.paid("WX0005")
    withdrawal = world.store.ledger.withdraw("alice", Money(2000))
    world.hub.payout("wechat", withdrawal.id, _transfer("POW0005", 2000))
    _confirm(world, "POW0005")
    world.box.deliver_due()
    assert world.store.payout("POW0005").status is PayoutState.SUCCEEDED
    headers, body = next(
        (h, b) for h, b in world.endpoint.seen if b"MCHTRANSFER.BILL.FINISHED" in b
    )
    entries = len(world.store.ledger.entries())
    # the channel resends it: acknowledged, nothing moves twice
    again = world.hub.handle_notification("wechat", headers, body)
    assert again.ack.ok
    assert len(world.store.ledger.entries()) == entries
    # a forged one (the body changed after signing, still a transfer event): refused
    forged = world.hub.handle_notification("wechat", headers, body.replace(b"{", b"{ ", 1))
    assert not forged.ack.ok
    assert forged.error is not None
    assert forged.error.code.name == "SIGNATURE_INVALID"
    assert len(world.store.ledger.entries()) == entries
    assert world.store.ledger.withdrawals()[0].status is WithdrawalStatus.PAID
