"""payhub's Alipay royalty (分账) and transfer flows against the sandbox, end to end.

payhub's sans-I/O flows run over a real httpx client into the sandbox's WSGI
app (the sandbox never imports ``payhub.channels``: the two meet on the wire).
The flows are called through the small helpers below, so a rename of payhub's
channel methods is a one-line change here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, create_app
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, SELLER_ID, Shop, new_trade

from payhub import PayHub, models
from payhub.errors import ChannelError, ConfigurationError, ErrorCode
from payhub.money import Money
from payhub.signing import alipay_cert_sn, load_certificates

alipay_channel = pytest.importorskip("payhub.channels.alipay")
from payhub.channels import run_flow_sync  # noqa: E402 - only once the channel exists
from payhub.splits_models import (  # noqa: E402
    ReceiverBinding,
    ReceiverKind,
    SplitLine,
    SplitRequest,
    SplitStatus,
    TransferRequest,
    TransferStatus,
)

SANDBOX = "http://sandbox.test"
SELLER = "2088000000000011"
AGENT = "2088000000000022"


# -- payhub's flows, by name (the common SplitOperations interface) --------------------------


def bind(ch: Any, no: str, receivers: list[ReceiverBinding]) -> Any:
    return ch.bind_receiver(no, receivers)


def unbind(ch: Any, no: str, receivers: list[ReceiverBinding]) -> Any:
    return ch.unbind_receiver(no, receivers)


def bound(ch: Any, no: str) -> Any:
    return ch.royalty_query(no)


def split(ch: Any, request: SplitRequest) -> Any:
    return ch.split(request)


def split_query(ch: Any, no: str, trade_no: str) -> Any:
    return ch.split_query(no, trade_no)


def transfer(ch: Any, request: TransferRequest) -> Any:
    return ch.transfer(request)


def transfer_query(ch: Any, no: str) -> Any:
    return ch.transfer_query(no)


# -- the live sandbox -------------------------------------------------------------


@dataclass
class Live:
    box: Sandbox
    clock: ManualClock
    http: httpx.Client
    hub: PayHub
    cert: Any  # payhub's Alipay channel in certificate mode
    plain: Any  # the same app in public-key mode

    def run(self, flow: Any) -> Any:
        return run_flow_sync(flow, self.http.send)

    def paid_trade(self, out_trade_no: str, minor: int = 10000) -> str:
        self.hub.pay(
            models.PaymentRequest(
                out_trade_no=out_trade_no,
                amount=Money(minor),
                subject="礼品卡 / gift card",
                method="qr",
                notify_url="http://shop.test/alipay/notify",
                channel="alipay",
            )
        )
        self.box.alipay.scan(APP_ID, out_trade_no)
        return self.box.alipay.pay(APP_ID, out_trade_no).trade_no


@pytest.fixture
def live(platform_keys, merchant_keys) -> Iterator[Live]:
    # A manual clock at the real time: payhub stamps requests with the real clock.
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
    common = {
        "app_id": APP_ID,
        "app_private_key": merchant_keys.private_pem,
        "environment": "sandbox",
        "gateway": f"{SANDBOX}/gateway.do",
        "seller_id": SELLER_ID,
    }
    cert = alipay_channel.AlipayChannel.from_config(
        "alipay",
        {
            **common,
            "app_cert": app_cert,
            "alipay_cert": box.alipay_cert_pem,
            "alipay_root_cert": box.alipay_root_cert_pem,
        },
    )
    plain = alipay_channel.AlipayChannel.from_config(
        "alipay", {**common, "alipay_public_key": box.alipay_public_key_pem}
    )
    hub = PayHub(channels=[cert], http_client=http)
    yield Live(box, clock, http, hub, cert, plain)
    http.close()
    box.stop()


def _receivers() -> list[ReceiverBinding]:
    return [
        ReceiverBinding(kind=ReceiverKind.USER_ID, account=SELLER, memo="seller"),
        ReceiverBinding(kind=ReceiverKind.LOGIN_NAME, account="agent@example.com", name="张三"),
    ]


def _split(no: str, trade_no: str, *amounts: int, finish: bool = False) -> SplitRequest:
    accounts = [SELLER, AGENT]
    return SplitRequest(
        out_request_no=no,
        channel_trade_id=trade_no,
        lines=tuple(
            SplitLine(
                kind=ReceiverKind.USER_ID,
                account=accounts[i],
                amount=Money(minor),
                description="货款",
            )
            for i, minor in enumerate(amounts)
        ),
        finish=finish,
    )


def _payout(no: str, minor: int = 5000, *, name: str | None = None) -> TransferRequest:
    return TransferRequest(
        out_transfer_no=no,
        kind=ReceiverKind.USER_ID,
        account=SELLER,
        amount=Money(minor),
        remark="提现",
        name=name,
    )


# -- royalty relations ----------------------------------------------------------


def test_bind_query_unbind(live: Live) -> None:
    live.run(bind(live.cert, "B1", _receivers()))
    live.run(bind(live.cert, "B1", _receivers()))  # binding again succeeds
    found = live.run(bound(live.cert, "Q1"))
    assert {(r.kind, r.account) for r in found} == {
        (ReceiverKind.USER_ID, SELLER),
        (ReceiverKind.LOGIN_NAME, "agent@example.com"),
    }
    live.run(unbind(live.cert, "U1", _receivers()[1:]))
    assert [r.account for r in live.run(bound(live.cert, "Q2"))] == [SELLER]


def test_bind_refuses_an_unknown_user_id(live: Live) -> None:
    with pytest.raises(ChannelError) as caught:
        live.run(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account="12345")]))
    assert caught.value.channel_sub_code == "ACQ.USER_NOT_EXIST"
    assert live.run(bound(live.cert, "Q1")) == ()


# -- settle -----------------------------------------------------------------------


def test_settle_succeeds_and_repeats_idempotently(live: Live) -> None:
    trade_no = live.paid_trade("P1")
    live.run(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account=SELLER)]))
    first = live.run(split(live.cert, _split("S1", trade_no, 3000)))
    assert first.status is SplitStatus.PROCESSING  # settle only says it was taken
    assert first.channel_split_id
    again = live.run(split(live.cert, _split("S1", trade_no, 3000)))
    assert again.channel_split_id == first.channel_split_id
    done = live.run(split_query(live.cert, "S1", trade_no))
    assert done.status is SplitStatus.SUCCEEDED
    (line,) = done.lines
    assert (line.account, line.amount, line.status) == (SELLER, Money(3000), SplitStatus.SUCCEEDED)
    # the same number with other content is refused, nothing moves
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S1", trade_no, 3100)))
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED
    assert len(live.box.alipay.engine.settles()) == 1


def test_settle_to_an_unbound_receiver_is_refused(live: Live) -> None:
    trade_no = live.paid_trade("P1")
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S1", trade_no, 1000)))
    assert caught.value.channel_sub_code == "ACQ.ROYALTY_RECEIVER_INVALID"
    assert caught.value.code is ErrorCode.RECEIVER_NOT_BOUND
    assert live.run(split_query(live.cert, "S1", trade_no)).status is SplitStatus.NOT_FOUND


def test_receiver_not_bound_fault(live: Live) -> None:
    trade_no = live.paid_trade("P1")
    live.run(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account=SELLER)]))
    live.box.splits.faults.set("alipay", "receiver_not_bound", count=1)
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S1", trade_no, 1000)))
    assert caught.value.channel_sub_code == "ACQ.ROYALTY_RECEIVER_INVALID"
    # the fault was for one request only
    assert live.run(split(live.cert, _split("S1", trade_no, 1000))).channel_split_id


def test_settle_above_the_trade_is_refused(live: Live) -> None:
    trade_no = live.paid_trade("P1", 10000)
    live.run(bind(live.cert, "B1", _receivers()))
    live.run(bind(live.cert, "B2", [ReceiverBinding(kind="user_id", account=AGENT)]))
    live.run(split(live.cert, _split("S1", trade_no, 6000, 3000)))
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S2", trade_no, 1001)))
    assert caught.value.channel_sub_code == "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"
    assert caught.value.code is ErrorCode.INVALID_SPLIT
    live.run(split(live.cert, _split("S3", trade_no, 1000)))  # exactly the rest


def test_finish_ends_the_trades_splitting(live: Live) -> None:
    trade_no = live.paid_trade("P1", 10000)
    live.run(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account=SELLER)]))
    live.run(split(live.cert, _split("S1", trade_no, 1000, finish=True)))
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S2", trade_no, 1000)))
    assert caught.value.channel_sub_code == "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"


def test_settle_of_an_unknown_or_unpaid_trade(live: Live) -> None:
    live.run(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account=SELLER)]))
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S1", "2024010122001999900000000001", 1000)))
    assert caught.value.code is ErrorCode.TRADE_NOT_FOUND
    live.hub.pay(
        models.PaymentRequest(
            out_trade_no="P2", amount=Money(1000), subject="x", method="qr", channel="alipay"
        )
    )
    live.box.alipay.scan(APP_ID, "P2")
    unpaid = live.box.alipay_trade(APP_ID, "P2").trade_no
    with pytest.raises(ChannelError) as caught:
        live.run(split(live.cert, _split("S2", unpaid, 100)))
    assert caught.value.channel_sub_code == "ACQ.TRADE_STATUS_ERROR"


@pytest.mark.parametrize(
    ("mode", "final"),
    [("processing_success", SplitStatus.SUCCEEDED), ("processing_failure", SplitStatus.FAILED)],
)
def test_settle_processing_then_outcome(live: Live, mode: str, final: SplitStatus) -> None:
    trade_no = live.paid_trade("P1", 10000)
    live.run(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account=SELLER)]))
    live.box.splits.faults.set("alipay", mode, merchant_id=APP_ID, count=1, seconds=600)
    live.run(split(live.cert, _split("S1", trade_no, 4000)))
    assert live.run(split_query(live.cert, "S1", trade_no)).status is SplitStatus.PROCESSING
    live.clock.advance(600 / 60 - 1)  # time_factor 60: ten sandbox seconds
    assert live.run(split_query(live.cert, "S1", trade_no)).status is SplitStatus.PROCESSING
    live.clock.advance(1)
    result = live.run(split_query(live.cert, "S1", trade_no))
    assert result.status is final
    if final is SplitStatus.FAILED:
        assert result.lines[0].fail_reason
        # a failed split gives its amount back to the trade
        live.run(split(live.cert, _split("S2", trade_no, 10000)))
    else:
        with pytest.raises(ChannelError):
            live.run(split(live.cert, _split("S2", trade_no, 6001)))


# -- transfers --------------------------------------------------------------------


def test_transfer_needs_certificate_mode(live: Live) -> None:
    with pytest.raises(ConfigurationError):
        live.run(transfer(live.plain, _payout("T1")))


def test_transfer_in_public_key_mode_is_refused_on_the_wire(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    reply = alipay.call(
        "alipay.fund.trans.uni.transfer",
        {
            "out_biz_no": "T1",
            "trans_amount": "1.00",
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "payee_info": {"identity": SELLER, "identity_type": "ALIPAY_USER_ID"},
        },
    )
    assert (reply.code, reply.node["sub_code"]) == ("40002", "isv.missing-app-cert-sn")
    assert sandbox.alipay.engine.transfers() == []


def test_transfer_succeeds_draws_the_balance_and_repeats(live: Live) -> None:
    live.box.splits.set_balance("alipay", APP_ID, Money(10000))
    done = live.run(transfer(live.cert, _payout("T1", 4000)))
    assert done.status is TransferStatus.SUCCEEDED
    assert done.channel_transfer_id
    again = live.run(transfer(live.cert, _payout("T1", 4000)))
    assert again.channel_transfer_id == done.channel_transfer_id
    assert live.box.splits.balance("alipay", APP_ID) == Money(6000)
    queried = live.run(transfer_query(live.cert, "T1"))
    assert (queried.status, queried.amount) == (TransferStatus.SUCCEEDED, Money(4000))
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.cert, _payout("T1", 4001)))
    assert caught.value.channel_sub_code == "PAYMENT_INFO_INCONSISTENCY"
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED
    assert live.run(transfer_query(live.cert, "NOPE")).status is TransferStatus.NOT_FOUND


def test_transfer_above_the_balance(live: Live) -> None:
    live.box.splits.set_balance("alipay", APP_ID, Money(4999))
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.cert, _payout("T1", 5000)))
    assert caught.value.channel_sub_code == "PAYER_BALANCE_NOT_ENOUGH"
    assert caught.value.code is ErrorCode.INSUFFICIENT_BALANCE
    assert live.box.splits.balance("alipay", APP_ID) == Money(4999)
    assert live.run(transfer_query(live.cert, "T1")).status is TransferStatus.NOT_FOUND
    live.box.splits.faults.set("alipay", "insufficient_balance", count=1)
    with pytest.raises(ChannelError) as forced:
        live.run(transfer(live.cert, _payout("T2", 100)))
    assert forced.value.code is ErrorCode.INSUFFICIENT_BALANCE


def test_transfer_to_an_unverified_name(live: Live) -> None:
    live.box.splits.add_payee("alipay", SELLER, "李四")
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.cert, _payout("T1", name="王五")))
    assert caught.value.channel_sub_code == "PAYEE_USER_INFO_ERROR"
    assert caught.value.code is ErrorCode.PAYEE_NAME_MISMATCH
    assert live.run(transfer(live.cert, _payout("T2", name="李四"))).status is (
        TransferStatus.SUCCEEDED
    )
    live.box.splits.faults.set("alipay", "unverified_name", count=1)
    with pytest.raises(ChannelError):
        live.run(transfer(live.cert, _payout("T3")))


@pytest.mark.parametrize(
    ("mode", "final"),
    [
        ("processing_success", TransferStatus.SUCCEEDED),
        ("processing_failure", TransferStatus.FAILED),
    ],
)
def test_transfer_processing_then_outcome(live: Live, mode: str, final: TransferStatus) -> None:
    live.box.splits.set_balance("alipay", APP_ID, Money(10000))
    live.box.splits.faults.set("alipay", mode, count=1, seconds=120)
    first = live.run(transfer(live.cert, _payout("T1", 3000)))
    assert first.status is TransferStatus.PROCESSING
    # an unknown outcome is settled by the query under the same number
    assert live.run(transfer_query(live.cert, "T1")).status is TransferStatus.PROCESSING
    live.clock.advance(2)
    result = live.run(transfer_query(live.cert, "T1"))
    assert result.status is final
    expected = Money(7000) if final is TransferStatus.SUCCEEDED else Money(10000)
    assert live.box.splits.balance("alipay", APP_ID) == expected
    if final is TransferStatus.FAILED:
        assert result.fail_reason


def test_certificate_mode_answers_name_the_platform_cert(live: Live) -> None:
    seen: list[httpx.Response] = []

    def send(request: httpx.Request) -> httpx.Response:
        seen.append(live.http.send(request))
        return seen[-1]

    run_flow_sync(bind(live.cert, "B1", [ReceiverBinding(kind="user_id", account=SELLER)]), send)
    (response,) = seen
    cert = load_certificates(live.box.alipay_cert_pem)[0]
    assert response.json()["alipay_cert_sn"] == alipay_cert_sn(cert)
    assert "app_cert_sn=" in str(response.request.url)


def test_wire_settle_with_a_bad_cert_serial(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    trade_no = new_trade(alipay, "P1")
    reply = alipay.call(
        "alipay.trade.order.settle",
        {"out_request_no": "S1", "trade_no": trade_no, "royalty_parameters": []},
        app_cert_sn="0" * 32,
        alipay_root_cert_sn=sandbox.alipay.engine.certificates.root_cert_sn,
    )
    assert (reply.code, reply.node["sub_code"]) == ("40002", "isv.invalid-app-cert-sn")


def test_wire_batchquery_pages_and_settle_query_by_settle_no(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    receivers = [{"type": "userId", "account": f"20880000000001{i:02d}"} for i in range(3)]
    bound = alipay.call(
        "alipay.trade.royalty.relation.bind",
        {"out_request_no": "B1", "receiver_list": receivers},
    )
    assert bound.node["result_code"] == "SUCCESS"
    page = alipay.call(
        "alipay.trade.royalty.relation.batchquery",
        {"out_request_no": "Q1", "page_num": 2, "page_size": 2},
    )
    assert (page.node["total_record_num"], page.node["total_page_num"]) == (3, 2)
    assert [r["account"] for r in page.node["receiver_list"]] == ["2088000000000102"]
    trade_no = new_trade(alipay, "P1", "10.00")
    sandbox.alipay.pay(APP_ID, "P1")
    # the same content in another key order is the same request
    line = {"trans_in": "2088000000000100", "amount": "1.00", "trans_in_type": "userId"}
    first = alipay.call(
        "alipay.trade.order.settle",
        {"out_request_no": "S1", "trade_no": trade_no, "royalty_parameters": [line]},
    )
    again = alipay.call(
        "alipay.trade.order.settle",
        {
            "out_request_no": "S1",
            "trade_no": trade_no,
            "royalty_parameters": [dict(reversed(list(line.items())))],
        },
    )
    assert again.node["settle_no"] == first.node["settle_no"]
    found = alipay.call("alipay.trade.order.settle.query", {"settle_no": first.node["settle_no"]})
    (detail,) = found.node["royalty_detail_list"]
    assert (detail["state"], detail["amount"], detail["trans_out"]) == (
        "SUCCESS",
        "1.00",
        SELLER_ID,
    )
    unknown = alipay.call("alipay.trade.order.settle.query", {"settle_no": "0"})
    assert unknown.node["sub_code"] == "ACQ.SETTLE_NOT_EXIST"


def test_wire_royalty_freeze_and_finish_alone(
    alipay: AlipayWireClient, sandbox: Sandbox, http: httpx.Client
) -> None:
    alipay.call(
        "alipay.trade.royalty.relation.bind",
        {"out_request_no": "B1", "receiver_list": [{"type": "userId", "account": SELLER}]},
    )
    created = alipay.call(
        "alipay.trade.precreate",
        {
            "out_trade_no": "P1",
            "total_amount": "100.00",
            "subject": "分账订单",
            "extend_params": {"royalty_freeze": "true"},
        },
    )
    assert created.code == "10000", created.node
    trade_no = sandbox.alipay.pay(APP_ID, "P1").trade_no
    line = {"trans_in_type": "userId", "trans_in": SELLER, "amount": "30.00"}
    alipay.call(
        "alipay.trade.order.settle",
        {"out_request_no": "S1", "trade_no": trade_no, "royalty_parameters": [line]},
    )
    (before,) = http.get(f"/_control/splits/alipay?app_id={APP_ID}").json()["trades"]
    assert (before["royalty_freeze"], before["frozen"], before["finished"]) == (
        True,
        "70.00",
        False,
    )
    # 分账完结 alone: no royalty_parameters, only the finish flag
    finish = {
        "out_request_no": "F1",
        "trade_no": trade_no,
        "extend_params": {"royalty_finish": "true"},
    }
    done = alipay.call("alipay.trade.order.settle", finish)
    assert done.code == "10000", done.node
    assert done.node["settle_no"]
    assert (
        alipay.call("alipay.trade.order.settle", finish).node["settle_no"]
        == (done.node["settle_no"])
    )
    found = alipay.call(
        "alipay.trade.order.settle.query", {"out_request_no": "F1", "trade_no": trade_no}
    )
    assert found.node["royalty_detail_list"] == []
    (after,) = http.get(f"/_control/splits/alipay?app_id={APP_ID}").json()["trades"]
    assert (after["frozen"], after["finished"]) == ("0.00", True)
    late = alipay.call(
        "alipay.trade.order.settle",
        {"out_request_no": "S2", "trade_no": trade_no, "royalty_parameters": [line]},
    )
    assert late.node["sub_code"] == "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"
    nothing = alipay.call(
        "alipay.trade.order.settle", {"out_request_no": "S3", "trade_no": trade_no}
    )
    assert nothing.node["sub_code"] == "ACQ.INVALID_PARAMETER"  # neither lines nor finish


def test_a_busy_gateway_moves_nothing_and_the_same_number_is_retried(live: Live) -> None:
    live.box.splits.set_balance("alipay", APP_ID, Money(10000))
    live.box.set_fault("alipay", "system_error", code="40004", count=1)
    with pytest.raises(ChannelError) as caught:
        live.run(transfer(live.cert, _payout("T1", 3000)))
    assert caught.value.code is ErrorCode.CHANNEL_UNAVAILABLE
    assert live.box.splits.balance("alipay", APP_ID) == Money(10000)
    assert live.run(transfer_query(live.cert, "T1")).status is TransferStatus.NOT_FOUND
    assert live.run(transfer(live.cert, _payout("T1", 3000))).status is TransferStatus.SUCCEEDED
    assert live.run(transfer(live.cert, _payout("T1", 3000))).status is TransferStatus.SUCCEEDED
    assert live.box.splits.balance("alipay", APP_ID) == Money(7000)  # drawn once
