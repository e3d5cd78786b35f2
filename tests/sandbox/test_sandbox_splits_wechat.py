"""payhub's WeChat Pay profit sharing and merchant transfer flows against the sandbox.

payhub's sans-I/O flows run over a real httpx client into the sandbox's WSGI
app, in both key modes (public key, platform certificates). The payment to be
shared is created with ``settle_info.profit_sharing = true`` by a plain signed
request (``PaymentRequest(split=True)`` sends the same; see test_hub_splits_wechat).
payhub's flows are called through the helpers below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, create_app
from sandbox_support import Shop
from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, V3Client, decrypt, spare_key

from payhub.errors import ChannelError, ErrorCode
from payhub.money import Money

wechat_channel = pytest.importorskip("payhub.channels.wechat")
from payhub.channels import run_flow_sync  # noqa: E402 - only once the channel exists
from payhub.splits_models import (  # noqa: E402
    ReceiverBinding,
    ReceiverKind,
    SplitLine,
    SplitRequest,
    SplitReturnRequest,
    SplitStatus,
    TransferRequest,
    TransferStatus,
)

BASE = "http://sandbox.test"
SERIAL = "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F"
SELLER_MCH = "1900000109"
SELLER_NAME = "示例商户全称"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NOTIFY = "http://shop.test/wechat/notify"


# -- payhub's flows, by name (the common SplitOperations interface) -------------


def add_receiver(ch: Any, receiver: ReceiverBinding) -> Any:
    return ch.bind_receiver("B1", [receiver])


def delete_receiver(ch: Any, kind: ReceiverKind, account: str) -> Any:
    return ch.unbind_receiver("U1", [ReceiverBinding(kind=kind, account=account)])


def split(ch: Any, request: SplitRequest) -> Any:
    return ch.split(request)


def split_query(ch: Any, no: str, transaction_id: str) -> Any:
    return ch.split_query(no, transaction_id)


def unfreeze(ch: Any, no: str, transaction_id: str) -> Any:
    return ch.split_finish(no, transaction_id, "解冻全部剩余资金")


def split_return(ch: Any, request: SplitReturnRequest) -> Any:
    return ch.share_return(request)


def split_return_query(ch: Any, no: str, order_no: str) -> Any:
    return ch.share_return_query(no, order_no)


def transfer(ch: Any, request: TransferRequest) -> Any:
    return ch.transfer(request)


def transfer_query(ch: Any, no: str) -> Any:
    return ch.transfer_query(no)


# -- the live sandbox -------------------------------------------------------------


@dataclass
class Live:
    box: Sandbox
    clock: ManualClock
    shop: Shop
    http: httpx.Client
    channel: Any
    client: V3Client
    serial: int = 0

    def run(self, flow: Any) -> Any:
        return run_flow_sync(flow, self.http.send)

    def paid(self, minor: int = 10000, *, profit_sharing: bool = True) -> str:
        """A paid payment; its transaction_id."""
        self.serial += 1
        out_trade_no = f"PS{self.serial:06d}"
        extra = {"settle_info": {"profit_sharing": True}} if profit_sharing else {}
        created = self.client.native(out_trade_no, minor, **extra)
        assert created.status_code == 200, created.text
        return self.box.wechat.pay(MCHID, out_trade_no).trade_no

    def events(self, kind: str) -> list[dict[str, Any]]:
        """Decrypted resources of the notifications of ``kind`` the shop received."""
        self.box.deliver_due()
        found = []
        for sent in self.shop.requests:
            envelope = json.loads(sent.content)
            if envelope["event_type"] == kind:
                found.append(json.loads(decrypt(API_V3_KEY, envelope["resource"])))
        return found


@pytest.fixture(params=["public_key", "certificate"])
def live(request, merchant_keys, platform_keys) -> Iterator[Live]:
    mode = request.param
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    shop = Shop()
    box = Sandbox(
        time_factor=60,
        clock=clock,
        notify_transport=shop.transport,
        base_url=BASE,
        alipay_platform_key=platform_keys.private,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=spare_key(),
    )
    box.add_wechat_merchant(MCHID, APPID, SERIAL, merchant_keys.public_pem, API_V3_KEY, mode)
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)), base_url=BASE)
    config = {
        "mch_id": MCHID,
        "app_id": APPID,
        "merchant_private_key": merchant_keys.private_pem,
        "merchant_serial_no": SERIAL,
        "api_v3_key": API_V3_KEY.decode(),
        "environment": "sandbox",
        "base_url": BASE,
        "notify_url": NOTIFY,
    }
    if mode == "public_key":
        config["wechatpay_public_key"] = box.wechat_public_key_pem
        config["wechatpay_public_key_id"] = box.wechat_public_key_id
    channel = wechat_channel.WechatPayChannel.from_config("wechat", config)
    client = V3Client(http, mchid=MCHID, serial_no=SERIAL, key=merchant_keys.private, now=clock.now)
    yield Live(box, clock, shop, http, channel, client)
    http.close()
    box.stop()


def _seller() -> ReceiverBinding:
    return ReceiverBinding(
        kind=ReceiverKind.MERCHANT, account=SELLER_MCH, name=SELLER_NAME, relation_type="STORE"
    )


def _person() -> ReceiverBinding:
    return ReceiverBinding(kind=ReceiverKind.OPENID, account=OPENID, relation_type="PARTNER")


def _split(no: str, transaction_id: str, minor: int, *, finish: bool = False) -> SplitRequest:
    return SplitRequest(
        out_request_no=no,
        channel_trade_id=transaction_id,
        lines=(
            SplitLine(
                kind=ReceiverKind.MERCHANT,
                account=SELLER_MCH,
                amount=Money(minor),
                description="分给商户",
            ),
        ),
        finish=finish,
    )


def _payout(no: str, minor: int = 500, *, name: str | None = None) -> TransferRequest:
    return TransferRequest(
        out_transfer_no=no,
        kind=ReceiverKind.OPENID,
        account=OPENID,
        amount=Money(minor),
        remark="提现",
        name=name,
        scene_id="1005",
        scene_report=(("岗位类型", "外卖员"), ("报酬说明", "7月份配送费")),
        notify_url="http://shop.test/wechat/transfer-notify",
    )


# -- receivers --------------------------------------------------------------------


def test_receivers_names_are_decrypted_with_the_named_platform_key(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    live.run(add_receiver(live.channel, _person()))
    engine = live.box.wechat.engine
    by_account = {r.account: r for r in engine.sharing.receivers(MCHID)}
    assert by_account[SELLER_MCH].name == SELLER_NAME  # decrypted: payhub encrypted it right
    assert by_account[OPENID].relation_type == "PARTNER"
    live.run(delete_receiver(live.channel, ReceiverKind.OPENID, OPENID))
    assert [r.account for r in engine.sharing.receivers(MCHID)] == [SELLER_MCH]


def test_an_encrypted_name_without_wechatpay_serial_is_refused(live: Live) -> None:
    response = live.client.post(
        "/v3/profitsharing/receivers/add",
        {
            "appid": APPID,
            "type": "MERCHANT_ID",
            "account": SELLER_MCH,
            "name": "bm90IGVuY3J5cHRlZA==",
            "relation_type": "STORE",
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "PARAM_ERROR"
    assert live.box.wechat.engine.sharing.receivers(MCHID) == []


def test_a_name_that_does_not_match_is_refused(live: Live) -> None:
    live.box.splits.add_payee("wechat", SELLER_MCH, "另一家公司")
    with pytest.raises(ChannelError) as caught:
        live.run(add_receiver(live.channel, _seller()))
    assert caught.value.channel_code == "INVALID_REQUEST"


# -- sharing ----------------------------------------------------------------------


def test_share_query_idempotent_and_notified(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    done = live.run(split(live.channel, _split("S1", transaction_id, 2000)))
    assert done.status is SplitStatus.SUCCEEDED
    again = live.run(split(live.channel, _split("S1", transaction_id, 2000)))
    assert again.channel_split_id == done.channel_split_id
    queried = live.run(split_query(live.channel, "S1", transaction_id))
    assert (queried.status, queried.lines[0].amount) == (SplitStatus.SUCCEEDED, Money(2000))
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.channel, _split("S1", transaction_id, 2100)))
    assert caught.value.channel_code == "INVALID_REQUEST"
    (note,) = live.events("PROFITSHARING.SUCCESS")  # WeChat's 分账成功通知 (fixtures: SOURCES.md)
    assert note["out_order_no"] == "S1"
    assert note["receiver"] == {
        "type": "MERCHANT_ID",
        "account": SELLER_MCH,
        "amount": 2000,
        "description": "分给商户",
    }
    assert live.run(split_query(live.channel, "NOPE", transaction_id)).status is (
        SplitStatus.NOT_FOUND
    )


def test_only_profit_sharing_payments_can_be_shared(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000, profit_sharing=False)
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.channel, _split("S1", transaction_id, 100)))
    assert caught.value.channel_code == "INVALID_REQUEST"
    assert live.run(split_query(live.channel, "S1", transaction_id)).status is (
        SplitStatus.NOT_FOUND
    )


def test_share_to_a_receiver_not_added(live: Live) -> None:
    transaction_id = live.paid(10000)
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.channel, _split("S1", transaction_id, 100)))
    assert caught.value.channel_code == "INVALID_REQUEST"
    live.run(add_receiver(live.channel, _seller()))
    live.box.splits.faults.set("wechat", "receiver_not_bound", merchant_id=MCHID, count=1)
    with pytest.raises(ChannelError):
        live.run(split(live.channel, _split("S1", transaction_id, 100)))
    assert live.run(split(live.channel, _split("S1", transaction_id, 100))).status is (
        SplitStatus.SUCCEEDED
    )


def test_share_limits_ratio_and_unfreeze(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    with pytest.raises(ChannelError) as caught:  # above 30 % of the payment
        live.run(split(live.channel, _split("S1", transaction_id, 3001)))
    assert caught.value.channel_code == "INVALID_REQUEST"
    live.run(split(live.channel, _split("S1", transaction_id, 1000)))
    amounts = live.client.get(f"/v3/profitsharing/transactions/{transaction_id}/amounts")
    assert amounts.json() == {"transaction_id": transaction_id, "unsplit_amount": 9000}
    ended = live.run(unfreeze(live.channel, "U1", transaction_id))
    assert ended.status is SplitStatus.SUCCEEDED
    assert [(line.account, line.amount) for line in ended.lines] == [(MCHID, Money(9000))]
    with pytest.raises(ChannelError):
        live.run(split(live.channel, _split("S2", transaction_id, 100)))
    amounts = live.client.get(f"/v3/profitsharing/transactions/{transaction_id}/amounts")
    assert amounts.json()["unsplit_amount"] == 0


def test_finish_gives_the_rest_back(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    done = live.run(split(live.channel, _split("S1", transaction_id, 500, finish=True)))
    assert sorted((line.account, line.amount.minor) for line in done.lines) == [
        (MCHID, 9500),
        (SELLER_MCH, 500),
    ]


@pytest.mark.parametrize(
    ("mode", "final"),
    [("processing_success", SplitStatus.SUCCEEDED), ("processing_failure", SplitStatus.FAILED)],
)
def test_share_processing_then_outcome(live: Live, mode: str, final: SplitStatus) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    live.box.splits.faults.set("wechat", mode, count=1, seconds=120)
    first = live.run(split(live.channel, _split("S1", transaction_id, 1000)))
    assert first.status is SplitStatus.PROCESSING
    assert live.run(split_query(live.channel, "S1", transaction_id)).status is (
        SplitStatus.PROCESSING
    )
    assert live.events("PROFITSHARING.SUCCESS") == []
    live.clock.advance(2)
    result = live.run(split_query(live.channel, "S1", transaction_id))
    assert result.status is final
    notes = live.events("PROFITSHARING.SUCCESS")
    assert len(notes) == (1 if final is SplitStatus.SUCCEEDED else 0)
    if final is SplitStatus.FAILED:
        assert result.lines[0].fail_reason == "ACCOUNT_ABNORMAL"
        amounts = live.client.get(f"/v3/profitsharing/transactions/{transaction_id}/amounts")
        assert amounts.json()["unsplit_amount"] == 10000


def test_return_from_a_merchant_receiver(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    live.run(split(live.channel, _split("S1", transaction_id, 2000)))

    def back(no: str, minor: int) -> SplitReturnRequest:
        return SplitReturnRequest(
            out_return_no=no,
            out_request_no="S1",
            return_merchant=SELLER_MCH,
            amount=Money(minor),
            description="用户退款",
        )

    done = live.run(split_return(live.channel, back("R1", 1500)))
    assert (done.status, done.amount) == (SplitStatus.SUCCEEDED, Money(1500))
    assert live.run(split_return(live.channel, back("R1", 1500))).channel_return_id == (
        done.channel_return_id
    )
    with pytest.raises(ChannelError):  # only 500 is left to take back
        live.run(split_return(live.channel, back("R2", 501)))
    assert live.run(split_return_query(live.channel, "R1", "S1")).status is SplitStatus.SUCCEEDED
    assert live.run(split_return_query(live.channel, "R9", "S1")).status is SplitStatus.NOT_FOUND
    live.box.splits.set_balance("wechat", SELLER_MCH, Money(10))
    poor = live.run(split_return(live.channel, back("R3", 100)))
    assert (poor.status, poor.fail_reason) == (SplitStatus.FAILED, "BALANCE_NOT_ENOUGH")


# -- merchant transfers -----------------------------------------------------------


def _confirm(live: Live, no: str) -> None:
    response = live.http.post(
        f"/_control/splits/wechat/transfers/{no}/confirm", json={"mch_id": MCHID}
    )
    assert response.status_code == 200, response.text


def test_transfer_waits_for_the_user_then_succeeds(live: Live) -> None:
    live.box.splits.set_balance("wechat", MCHID, Money(10000))
    first = live.run(transfer(live.channel, _payout("T0001", 500)))
    assert first.status is TransferStatus.WAIT_USER_CONFIRM
    assert first.package_info
    again = live.run(transfer(live.channel, _payout("T0001", 500)))
    assert again.channel_transfer_id == first.channel_transfer_id
    assert live.box.splits.balance("wechat", MCHID) == Money(9500)
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.channel, _payout("T0001", 501)))
    assert caught.value.channel_code == "INVALID_REQUEST"
    _confirm(live, "T0001")
    done = live.run(transfer_query(live.channel, "T0001"))
    assert (done.status, done.amount) == (TransferStatus.SUCCEEDED, Money(500))
    (note,) = live.events("MCHTRANSFER.BILL.FINISHED")
    assert (note["out_bill_no"], note["state"]) == ("T0001", "SUCCESS")
    assert live.run(transfer_query(live.channel, "T9999")).status is TransferStatus.NOT_FOUND


def test_transfer_above_the_balance(live: Live) -> None:
    live.box.splits.set_balance("wechat", MCHID, Money(499))
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.channel, _payout("T0001", 500)))
    assert caught.value.channel_code == "NOT_ENOUGH"
    assert caught.value.code is ErrorCode.INSUFFICIENT_BALANCE
    assert live.box.splits.balance("wechat", MCHID) == Money(499)
    assert live.run(transfer_query(live.channel, "T0001")).status is TransferStatus.NOT_FOUND
    live.box.splits.set_balance("wechat", MCHID, Money(10000))
    live.box.splits.faults.set("wechat", "insufficient_balance", merchant_id=MCHID, count=1)
    with pytest.raises(ChannelError) as forced:
        live.run(transfer(live.channel, _payout("T0002", 500)))
    assert forced.value.code is ErrorCode.INSUFFICIENT_BALANCE
    assert live.box.splits.balance("wechat", MCHID) == Money(10000)


def test_transfer_to_an_unverified_name(live: Live) -> None:
    live.box.splits.add_payee("wechat", OPENID, "张三")
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.channel, _payout("T0001", name="李四")))
    assert caught.value.channel_code == "INVALID_REQUEST"
    ok = live.run(transfer(live.channel, _payout("T0002", name="张三")))
    assert ok.status is TransferStatus.WAIT_USER_CONFIRM
    live.box.splits.faults.set("wechat", "unverified_name", count=1)
    with pytest.raises(ChannelError):
        live.run(transfer(live.channel, _payout("T0003")))


@pytest.mark.parametrize(
    ("mode", "final", "balance"),
    [
        ("processing_success", TransferStatus.SUCCEEDED, 9500),
        ("processing_failure", TransferStatus.FAILED, 10000),
    ],
)
def test_transfer_processing_then_outcome(
    live: Live, mode: str, final: TransferStatus, balance: int
) -> None:
    live.box.splits.set_balance("wechat", MCHID, Money(10000))
    live.box.splits.faults.set("wechat", mode, count=1, seconds=300)
    live.run(transfer(live.channel, _payout("T0001", 500)))
    _confirm(live, "T0001")
    assert live.run(transfer_query(live.channel, "T0001")).status is TransferStatus.PROCESSING
    live.clock.advance(5)
    result = live.run(transfer_query(live.channel, "T0001"))
    assert result.status is final
    assert live.box.splits.balance("wechat", MCHID) == Money(balance)
    (note,) = live.events("MCHTRANSFER.BILL.FINISHED")
    assert note["state"] == ("SUCCESS" if final is TransferStatus.SUCCEEDED else "FAIL")


# -- notifications with delivery faults, triggers ----------------------------------


def test_split_notification_goes_through_delivery_faults(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    live.box.deliver_due()
    live.shop.requests.clear()  # the payment's notification
    live.box.add_delivery_fault(channel="wechat", event_types=["split"], drop_first=1)
    live.run(split(live.channel, _split("S1", transaction_id, 1000)))
    assert live.events("PROFITSHARING.SUCCESS") == []  # the first attempt was lost
    (attempt,) = [d for d in live.box.deliveries if d.kind == "PROFITSHARING.SUCCESS"]
    assert attempt.effects == ("dropped",)
    live.clock.advance(15 / 60)  # WeChat's first retry, 15 s, at time factor 60
    (note,) = live.events("PROFITSHARING.SUCCESS")
    assert note["out_order_no"] == "S1"


def test_trigger_confirms_the_waiting_transfer(live: Live) -> None:
    live.run(transfer(live.channel, _payout("T0001", 500)))
    done = live.http.post(
        "/_control/trigger", json={"scenario": "transfer-confirmed", "channel": "wechat"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["transfer"]["state"] == "SUCCESS"
    assert live.run(transfer_query(live.channel, "T0001")).status is TransferStatus.SUCCEEDED


def test_cancel_and_unconfirmed_timeout_give_the_balance_back(live: Live) -> None:
    live.box.splits.set_balance("wechat", MCHID, Money(10000))
    live.run(transfer(live.channel, _payout("T0001", 500)))
    live.run(transfer(live.channel, _payout("T0002", 700)))
    assert live.box.splits.balance("wechat", MCHID) == Money(8800)
    path = "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no"
    cancelled = live.client.post(f"{path}/T0001/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "CANCELING"
    assert live.run(transfer_query(live.channel, "T0001")).status is TransferStatus.CANCELLED
    assert live.box.splits.balance("wechat", MCHID) == Money(9300)
    # the user never confirms T0002: 24 hours later (÷ 60) WeChat cancels it
    live.clock.advance(24 * 3600 / 60)
    late = live.client.get(f"{path}/T0002")  # signed with the sandbox clock's time
    assert late.json()["state"] == "CANCELLED"
    assert live.box.splits.balance("wechat", MCHID) == Money(10000)
    states = [note["state"] for note in live.events("MCHTRANSFER.BILL.FINISHED")]
    assert states == ["CANCELLED", "CANCELLED"]
    again = live.client.post(f"{path}/T0002/cancel")
    assert again.status_code == 200  # cancelling a cancelled bill answers the same
    too_late = live.http.post(
        "/_control/splits/wechat/transfers/T0002/confirm", json={"mch_id": MCHID}
    )
    assert too_late.status_code == 400  # the user can no longer confirm it


def test_console_lists_splits_and_transfers_and_confirms(live: Live) -> None:
    live.run(add_receiver(live.channel, _seller()))
    transaction_id = live.paid(10000)
    live.run(split(live.channel, _split("S1", transaction_id, 1000)))
    live.run(transfer(live.channel, _payout("T0001", 500)))
    page = live.http.get("/")
    assert page.status_code == 200
    assert 'id="splits"' in page.text
    assert f"{SELLER_MCH} 10.00 SUCCESS" in page.text
    assert SELLER_NAME not in page.text  # names never shown
    assert f"/_console/wechat-transfers/{MCHID}/T0001/confirm" in page.text
    pressed = live.http.post(f"/_console/wechat-transfers/{MCHID}/T0001/confirm")
    assert pressed.status_code == 303
    assert "SUCCESS" in pressed.headers["location"]
    assert live.run(transfer_query(live.channel, "T0001")).status is TransferStatus.SUCCEEDED
    again = live.http.post(f"/_console/wechat-transfers/{MCHID}/T0001/confirm")
    assert "error=" in again.headers["location"]
