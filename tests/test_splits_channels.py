"""Split (分账) and transfer flows of Alipay and WeChat Pay, against fakes that
check every signature themselves and answer with real published samples
(see fixtures/alipay/SOURCES.md and fixtures/wechat/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_alipay_config import Certs, certs  # noqa: F401  (the module fixture)
from test_alipay_fake import FakeGateway, failure, make_channel, success
from test_wechat_support import PUB_KEY_ID, Clock, FakeWechat, world

from payhub.channels import run_flow_sync
from payhub.channels.alipay import AlipayChannel
from payhub.errors import (
    AmountError,
    ChannelError,
    ConfigurationError,
    ErrorCode,
    InvalidRequestError,
    ProtocolError,
    SignatureError,
)
from payhub.money import Money
from payhub.signing import rsa_oaep_decrypt, rsa_oaep_encrypt
from payhub.splits_models import (
    ReceiverBinding,
    ReceiverKind,
    SplitLine,
    SplitRequest,
    SplitReturnRequest,
    SplitStatus,
    TransferRequest,
    TransferStatus,
)

FIXTURES = Path(__file__).parent / "fixtures"
WECHAT = json.loads((FIXTURES / "wechat" / "profitsharing_answers.json").read_text("utf-8"))
ALIPAY = json.loads((FIXTURES / "alipay" / "royalty_transfer_answers.json").read_text("utf-8"))
TRADE_NO = "2024010222001400000000000001"


def _run(flow: Any, fake: Any) -> Any:
    handler = fake.handler if isinstance(fake, FakeWechat) else fake
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return run_flow_sync(flow, client.send)


# -- Alipay --------------------------------------------------------------------


@pytest.fixture
def alipay(merchant_keys: Any, platform_keys: Any) -> tuple[AlipayChannel, FakeGateway]:
    return make_channel(merchant_keys, platform_keys), FakeGateway(
        merchant_keys.public, platform_keys.private
    )


def test_alipay_royalty_bind_sends_the_receiver_list(alipay: Any) -> None:
    channel, fake = alipay
    fake.nodes["alipay.trade.royalty.relation.bind"] = success(result_code="SUCCESS")
    receivers = [
        ReceiverBinding(kind=ReceiverKind.USER_ID, account="2088101126708402", memo="卖家"),
        ReceiverBinding(kind=ReceiverKind.LOGIN_NAME, account="seller@example.com", name="张三"),
    ]
    _run(channel.bind_receiver("B20240102001", receivers), fake)
    (seen,) = fake.seen
    assert seen.signature_ok
    assert seen.params["method"] == "alipay.trade.royalty.relation.bind"
    assert seen.biz == {
        "receiver_list": [
            {"type": "userId", "account": "2088101126708402", "memo": "卖家"},
            {"type": "loginName", "account": "seller@example.com", "name": "张三"},
        ],
        "out_request_no": "B20240102001",
    }


def test_alipay_bind_by_login_name_needs_the_name_and_sends_nothing(alipay: Any) -> None:
    channel, fake = alipay
    binding = ReceiverBinding(kind=ReceiverKind.LOGIN_NAME, account="seller@example.com")
    with pytest.raises(InvalidRequestError, match="real name"):
        _run(channel.bind_receiver("B1", [binding]), fake)
    assert fake.seen == []


def test_alipay_royalty_query_reads_the_bound_receivers(alipay: Any) -> None:
    channel, fake = alipay
    fake.nodes["alipay.trade.royalty.relation.batchquery"] = success(
        result_code="SUCCESS", total_record_num=1,
        receiver_list=[{"type": "userId", "account": "2088101126708402", "memo": "卖家"}],
    )
    (bound,) = _run(channel.royalty_query("Q1"), fake)
    assert (bound.kind, bound.account, bound.memo) == (
        ReceiverKind.USER_ID, "2088101126708402", "卖家"
    )
    assert fake.seen[0].biz == {"page_num": 1, "page_size": 100, "out_request_no": "Q1"}


def test_alipay_settle_sends_royalty_parameters_and_is_processing(alipay: Any) -> None:
    channel, fake = alipay
    fake.nodes["alipay.trade.order.settle"] = success(
        trade_no=TRADE_NO, settle_no="20240102000000000001"
    )
    request = SplitRequest(
        out_request_no="S20240102001", channel_trade_id=TRADE_NO, finish=True,
        lines=(SplitLine(kind=ReceiverKind.USER_ID, account="2088101126708402",
                         amount=Money(1050), description="平台服务费"),),
    )
    result = _run(channel.split(request), fake)
    assert fake.seen[0].biz == {
        "out_request_no": "S20240102001",
        "trade_no": TRADE_NO,
        "royalty_parameters": [{
            "royalty_type": "transfer", "trans_in_type": "userId",
            "trans_in": "2088101126708402", "amount": "10.50", "desc": "平台服务费",
        }],
        "extend_params": {"royalty_finish": "true"},
    }
    assert result.status is SplitStatus.PROCESSING
    assert result.channel_split_id == "20240102000000000001"


@pytest.mark.parametrize(
    ("states", "status"),
    [
        (["SUCCESS", "SUCCESS"], SplitStatus.SUCCEEDED),
        (["FAIL"], SplitStatus.FAILED),
        (["SUCCESS", "FAIL"], SplitStatus.PARTIAL),
        (["SUCCESS", "PROCESSING"], SplitStatus.PROCESSING),
    ],
)
def test_alipay_settle_query_reads_each_detail(alipay: Any, states: list[str],
                                               status: SplitStatus) -> None:
    channel, fake = alipay
    details = [
        {"operation_type": "transfer", "trans_in_type": "userId", "trans_in": "2088101126708402",
         "amount": "0.10", "state": state, "detail_id": f"D{i}",
         **({"error_code": "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"} if state == "FAIL" else {})}
        for i, state in enumerate(states)
    ]
    fake.nodes["alipay.trade.order.settle.query"] = success(
        out_request_no="S1", royalty_detail_list=details
    )
    result = _run(channel.split_query("S1", TRADE_NO), fake)
    assert result.status is status
    assert [line.amount for line in result.lines] == [Money(10)] * len(states)


def test_alipay_split_to_an_unbound_receiver_is_receiver_not_bound(alipay: Any) -> None:
    channel, fake = alipay
    fake.nodes["alipay.trade.order.settle"] = failure(
        "40004", "ACQ.ROYALTY_RECEIVER_INVALID", "收入方不在分账关系内"
    )
    request = SplitRequest(
        out_request_no="S2", channel_trade_id=TRADE_NO,
        lines=(SplitLine(kind=ReceiverKind.USER_ID, account="2088101126708402",
                         amount=Money(10), description="x"),),
    )
    with pytest.raises(ChannelError) as caught:
        _run(channel.split(request), fake)
    assert caught.value.code is ErrorCode.RECEIVER_NOT_BOUND


def test_alipay_split_finish_sends_only_the_finish_flag(alipay: Any) -> None:
    """Alipay's 商家分账 guide: the rest is unfrozen by a settle with no royalty
    parameters and only ``royalty_finish``."""
    channel, fake = alipay
    fake.nodes["alipay.trade.order.settle"] = success(
        trade_no=TRADE_NO, settle_no="20240102000000000002"
    )
    result = _run(channel.split_finish("F20240102001", TRADE_NO, "完结"), fake)
    assert fake.seen[0].biz == {
        "out_request_no": "F20240102001",
        "trade_no": TRADE_NO,
        "extend_params": {"royalty_finish": "true"},
    }
    assert result.status is SplitStatus.PROCESSING
    assert result.channel_split_id == "20240102000000000002"


def test_alipay_unbind_receiver_sends_the_receiver_list(alipay: Any) -> None:
    channel, fake = alipay
    fake.nodes["alipay.trade.royalty.relation.unbind"] = success(result_code="SUCCESS")
    binding = ReceiverBinding(kind=ReceiverKind.USER_ID, account="2088101126708402")
    _run(channel.unbind_receiver("U1", [binding]), fake)
    assert fake.seen[0].params["method"] == "alipay.trade.royalty.relation.unbind"
    assert fake.seen[0].biz == {
        "receiver_list": [{"type": "userId", "account": "2088101126708402"}],
        "out_request_no": "U1",
    }


def test_the_built_in_channels_share_one_split_interface() -> None:
    from payhub.channels import SplitOperations
    from payhub.channels.unionpay import UnionPayChannel
    from payhub.channels.wechat import WechatPayChannel

    for cls in (AlipayChannel, WechatPayChannel, UnionPayChannel):
        assert issubclass(cls, SplitOperations)
        assert not getattr(cls, "__abstractmethods__", frozenset())


def _transfer(**changes: Any) -> TransferRequest:
    fields: dict[str, Any] = {
        "out_transfer_no": "T20240102001", "kind": ReceiverKind.LOGIN_NAME,
        "account": "payee@example.com", "name": "李四", "amount": Money(12345),
        "remark": "提现", "title": "余额提现",
    }
    fields.update(changes)
    return TransferRequest(**fields)


def test_alipay_transfer_needs_certificate_mode_and_sends_nothing(alipay: Any) -> None:
    channel, fake = alipay
    with pytest.raises(ConfigurationError, match="certificate mode"):
        _run(channel.transfer(_transfer()), fake)
    assert fake.seen == []


@pytest.fixture
def alipay_cert(merchant_keys: Any, platform_keys: Any,
                certs: Certs) -> tuple[AlipayChannel, FakeGateway]:  # noqa: F811
    channel = make_channel(merchant_keys, platform_keys, alipay_public_key=None,
                           **certs.settings())
    fake = FakeGateway(merchant_keys.public, platform_keys.private,
                       cert_sn=channel.config.alipay_cert_sn)
    return channel, fake


def test_alipay_transfer_in_certificate_mode(alipay_cert: Any) -> None:
    channel, fake = alipay_cert
    fake.nodes["alipay.fund.trans.uni.transfer"] = success(
        out_biz_no="T20240102001", order_id="20240102110070000006380000250621",
        pay_fund_order_id="20240102110070001506380000251556", status="SUCCESS",
        trans_date="2024-01-02 10:30:00",
    )
    result = _run(channel.transfer(_transfer()), fake)
    (seen,) = fake.seen
    assert seen.signature_ok
    assert "app_cert_sn" in seen.params
    assert seen.biz == {
        "out_biz_no": "T20240102001", "trans_amount": "123.45",
        "product_code": "TRANS_ACCOUNT_NO_PWD", "biz_scene": "DIRECT_TRANSFER",
        "order_title": "余额提现",
        "payee_info": {"identity": "payee@example.com", "identity_type": "ALIPAY_LOGON_ID",
                       "name": "李四"},
        "remark": "提现",
    }
    assert result.status is TransferStatus.SUCCEEDED
    assert result.channel_transfer_id == "20240102110070000006380000250621"


def test_alipay_repeated_transfer_number_with_other_content_is_order_number_used(
    alipay_cert: Any,
) -> None:
    channel, fake = alipay_cert
    fake.nodes["alipay.fund.trans.uni.transfer"] = ALIPAY["uni_transfer_payment_info_inconsistency"]
    with pytest.raises(ChannelError) as caught:
        _run(channel.transfer(_transfer()), fake)
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED
    assert caught.value.channel_sub_code == "PAYMENT_INFO_INCONSISTENCY"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("DEALING", TransferStatus.PROCESSING), ("FAIL", TransferStatus.FAILED),
     ("REFUND", TransferStatus.FAILED), ("SUCCESS", TransferStatus.SUCCEEDED)],
)
def test_alipay_transfer_query(alipay_cert: Any, status: str, expected: TransferStatus) -> None:
    channel, fake = alipay_cert
    fake.nodes["alipay.fund.trans.common.query"] = success(
        out_biz_no="T1", order_id="2024", status=status, trans_amount="1.00"
    )
    result = _run(channel.transfer_query("T1"), fake)
    assert result.status is expected
    assert result.amount == Money(100)
    assert fake.seen[0].biz["out_biz_no"] == "T1"


def test_alipay_unknown_transfer_is_not_found(alipay_cert: Any) -> None:
    channel, fake = alipay_cert
    fake.nodes["alipay.fund.trans.common.query"] = failure("40004", "ORDER_NOT_EXIST", "不存在")
    assert _run(channel.transfer_query("T9"), fake).status is TransferStatus.NOT_FOUND


def test_alipay_transfer_below_ten_fen_is_refused(alipay_cert: Any) -> None:
    channel, fake = alipay_cert
    with pytest.raises(AmountError, match=r"0\.10 CNY"):
        _run(channel.transfer(_transfer(amount=Money(9))), fake)
    assert fake.seen == []


# -- WeChat Pay ------------------------------------------------------------------


@pytest.fixture(params=["public_key", "certificates"])
def wechat(request: pytest.FixtureRequest, merchant_keys: Any, platform_keys: Any) -> Any:
    return world(str(request.param), merchant_keys.private, platform_keys.private, Clock())


def _business(fake: FakeWechat) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path != "/v3/certificates"]


def _route(fake: FakeWechat, method: str, path: str, status: int, body: Any) -> None:
    fake.routes[(method, path)] = lambda request: fake.signed(status, body)


def test_wechat_add_receiver_encrypts_the_name_and_names_the_key(
    wechat: Any, platform_keys: Any
) -> None:
    channel, fake = wechat
    _route(fake, "POST", "/v3/profitsharing/receivers/add", 200, WECHAT["receiver_add_real"])
    binding = ReceiverBinding(kind=ReceiverKind.OPENID, account="ow-xxx-xxxxxxxx-xxxxxx-xxxxx",
                              name="张三", relation_type="USER")
    _run(channel.bind_receiver("B1", [binding]), fake)
    (sent,) = _business(fake)
    body = json.loads(sent.content)
    assert set(body) == {"appid", "type", "account", "name", "relation_type"}
    assert (body["type"], body["relation_type"]) == ("PERSONAL_OPENID", "USER")
    assert rsa_oaep_decrypt(platform_keys.private, body["name"]) == "张三".encode()
    assert sent.headers["Wechatpay-Serial"] == fake.signer_serial
    assert "张三" not in sent.content.decode()


def test_wechat_share_sends_the_documented_order_and_reads_the_answer(wechat: Any) -> None:
    channel, fake = wechat
    _route(fake, "POST", "/v3/profitsharing/orders", 200, WECHAT["order_documented"])
    request = SplitRequest(
        out_request_no="P20150806125346", channel_trade_id="4208450740201411110007820472",
        finish=True,
        lines=(SplitLine(kind=ReceiverKind.MERCHANT, account="1900000109", amount=Money(100),
                         description="分给商户1900000110"),),
    )
    result = _run(channel.split(request), fake)
    body = json.loads(_business(fake)[0].content)
    assert body == {
        "appid": channel.config.app_id,
        "transaction_id": "4208450740201411110007820472",
        "out_order_no": "P20150806125346",
        "receivers": [{"type": "MERCHANT_ID", "account": "1900000109", "amount": 100,
                       "description": "分给商户1900000110"}],
        "unfreeze_unsplit": True,
    }
    assert result.status is SplitStatus.SUCCEEDED
    assert result.channel_split_id == "3008450740201411110007820472"
    assert result.lines[0].amount == Money(100)


def test_wechat_finished_order_with_a_pending_receiver_is_still_processing(wechat: Any) -> None:
    channel, fake = wechat
    path = "/v3/profitsharing/orders/202211151309312"
    _route(fake, "GET", path, 200, WECHAT["order_real_2022"])
    result = _run(channel.split_query("202211151309312", "4200001675202211152950185452"), fake)
    assert result.status is SplitStatus.PROCESSING
    assert _business(fake)[0].url.query == b"transaction_id=4200001675202211152950185452"


def test_wechat_unfreeze_sends_the_documented_body(wechat: Any) -> None:
    channel, fake = wechat
    _route(fake, "POST", "/v3/profitsharing/orders/unfreeze", 200, WECHAT["order_documented"])
    doc = WECHAT["unfreeze_request_documented"]
    _run(channel.split_finish(doc["out_order_no"], doc["transaction_id"], doc["description"]), fake)
    assert json.loads(_business(fake)[0].content) == doc


def test_wechat_share_return_and_query(wechat: Any) -> None:
    channel, fake = wechat
    answer = {"order_id": "3008450740201411110007820472", "out_order_no": "P20150806125346",
              "out_return_no": "R20190516001", "return_id": "3008450740201411110007820472",
              "return_mchid": "86693852", "amount": 10, "description": "用户退款",
              "result": "PROCESSING", "create_time": "2015-05-20T13:29:35+08:00"}
    _route(fake, "POST", "/v3/profitsharing/return-orders", 200, answer)
    _route(fake, "GET", "/v3/profitsharing/return-orders/R20190516001", 200,
           {**answer, "result": "FAILED", "fail_reason": "BALANCE_NOT_ENOUGH"})
    request = SplitReturnRequest(out_return_no="R20190516001", out_request_no="P20150806125346",
                                 return_merchant="86693852", amount=Money(10),
                                 description="用户退款")
    first = _run(channel.share_return(request), fake)
    assert first.status is SplitStatus.PROCESSING
    assert first.amount == Money(10)
    assert json.loads(_business(fake)[0].content) == {
        "out_order_no": "P20150806125346", "out_return_no": "R20190516001",
        "return_mchid": "86693852", "amount": 10, "description": "用户退款",
    }
    later = _run(channel.share_return_query("R20190516001", "P20150806125346"), fake)
    assert later.status is SplitStatus.FAILED
    assert later.fail_reason == "BALANCE_NOT_ENOUGH"


def test_wechat_transfer_builds_the_documented_request(wechat: Any, platform_keys: Any) -> None:
    channel, fake = wechat
    doc = WECHAT["transfer_request_documented"]
    _route(fake, "POST", "/v3/fund-app/mch-transfer/transfer-bills", 200, {
        "out_bill_no": "plfk2020042013",
        "transfer_bill_no": "1330000071100999991182020050700019480001",
        "create_time": "2015-05-20T13:29:35.120+08:00", "state": "WAIT_USER_CONFIRM",
        "package_info": "affffddafdfafddffda==",
    })
    request = TransferRequest(
        out_transfer_no=doc["out_bill_no"], kind=ReceiverKind.OPENID, account=doc["openid"],
        amount=Money(doc["transfer_amount"]), remark=doc["transfer_remark"], name="王五",
        scene_id=doc["transfer_scene_id"], perception=doc["user_recv_perception"],
        notify_url=doc["notify_url"],
        scene_report=tuple((i["info_type"], i["info_content"])
                           for i in doc["transfer_scene_report_infos"]),
    )
    result = _run(channel.transfer(request), fake)
    sent = _business(fake)[0]
    body = json.loads(sent.content)
    expected = {k: v for k, v in doc.items() if k != "Wechatpay-Serial"}
    expected["appid"] = channel.config.app_id
    assert {k: v for k, v in body.items() if k != "user_name"} == expected
    assert rsa_oaep_decrypt(platform_keys.private, body["user_name"]) == "王五".encode()
    assert sent.headers["Wechatpay-Serial"] == fake.signer_serial
    assert result.status is TransferStatus.WAIT_USER_CONFIRM
    assert result.package_info == "affffddafdfafddffda=="
    assert result.amount == Money(400000)


def test_wechat_transfer_of_2000_cny_needs_the_name(wechat: Any) -> None:
    channel, fake = wechat
    request = TransferRequest(out_transfer_no="T0001", kind=ReceiverKind.OPENID, account="o-1",
                              amount=Money(200000), remark="x", scene_id="1000")
    with pytest.raises(InvalidRequestError, match="user_name"):
        _run(channel.transfer(request), fake)
    assert _business(fake) == []


def test_wechat_unknown_transfer_is_not_found(wechat: Any) -> None:
    channel, fake = wechat
    fake.routes[("GET", "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/T404")] = (
        lambda request: fake.error(404, "NOT_FOUND", "记录不存在")
    )
    assert _run(channel.transfer_query("T404"), fake).status is TransferStatus.NOT_FOUND


def test_wechat_not_enough_balance_is_insufficient_balance(wechat: Any) -> None:
    channel, fake = wechat
    fake.routes[("POST", "/v3/profitsharing/orders")] = (
        lambda request: fake.error(403, "NOT_ENOUGH", "分账金额不足")
    )
    request = SplitRequest(
        out_request_no="P1", channel_trade_id="4208450740201411110007820472",
        lines=(SplitLine(kind=ReceiverKind.MERCHANT, account="1900000109", amount=Money(100),
                         description="x"),),
    )
    with pytest.raises(ChannelError) as caught:
        _run(channel.split(request), fake)
    assert caught.value.code is ErrorCode.INSUFFICIENT_BALANCE


def test_wechat_receiver_answer_for_another_account_is_refused(wechat: Any) -> None:
    channel, fake = wechat
    _route(fake, "POST", "/v3/profitsharing/receivers/add", 200, WECHAT["receiver_add_real"])
    binding = ReceiverBinding(kind=ReceiverKind.OPENID, account="o-other", relation_type="USER")
    with pytest.raises(ProtocolError, match="another account"):
        _run(channel.bind_receiver("B1", [binding]), fake)


def test_wechat_numbers_never_reach_the_path_unchecked(wechat: Any) -> None:
    channel, fake = wechat
    with pytest.raises(InvalidRequestError):
        _run(channel.transfer_query("T1/../x"), fake)
    assert _business(fake) == []


def test_public_key_mode_sends_the_key_id_once(merchant_keys: Any, platform_keys: Any) -> None:
    channel, fake = world("public_key", merchant_keys.private, platform_keys.private, Clock())
    _route(fake, "POST", "/v3/profitsharing/receivers/add", 200,
           {"type": "MERCHANT_ID", "account": "1900000109", "relation_type": "PARTNER"})
    binding = ReceiverBinding(kind=ReceiverKind.MERCHANT, account="1900000109",
                              name="示例商户全称", relation_type="PARTNER")
    _run(channel.bind_receiver("B1", [binding]), fake)
    assert _business(fake)[0].headers.get_list("Wechatpay-Serial") == [PUB_KEY_ID]


def test_oaep_round_trip_and_wrong_key(platform_keys: Any, merchant_keys: Any) -> None:
    text = rsa_oaep_encrypt(platform_keys.public, "张三".encode())
    assert text != rsa_oaep_encrypt(platform_keys.public, "张三".encode())  # randomised
    assert rsa_oaep_decrypt(platform_keys.private, text) == "张三".encode()
    with pytest.raises(SignatureError, match="does not decrypt"):
        rsa_oaep_decrypt(merchant_keys.private, text)


def test_wechat_transfer_above_the_32_bit_limit_is_refused(wechat: Any) -> None:
    channel, fake = wechat
    request = TransferRequest(out_transfer_no="T0001", kind=ReceiverKind.OPENID, account="o-1",
                              amount=Money(2**31), remark="x", scene_id="1000", name="王五")
    with pytest.raises(AmountError, match="limit"):
        _run(channel.transfer(request), fake)
    assert _business(fake) == []


@pytest.mark.parametrize("number", ["A-1", "x" * 33, "", "A 1"])
def test_split_numbers_follow_the_strictest_channel_grammar(number: str) -> None:
    line = SplitLine(kind=ReceiverKind.USER_ID, account="2088101126708402", amount=Money(1),
                     description="x")
    with pytest.raises(ValueError, match="1-32 ASCII"):
        SplitRequest(out_request_no=number, channel_trade_id=TRADE_NO, lines=(line,))


def test_names_never_show_in_a_request_repr() -> None:
    binding = ReceiverBinding(kind=ReceiverKind.OPENID, account="o-1", name="张三",
                              relation_type="USER")
    assert "张三" not in repr(binding)


@pytest.mark.parametrize("number", ["T1", "T_0001", "TX01"])
def test_wechat_transfer_numbers_are_letters_and_digits_only(wechat: Any, number: str) -> None:
    """商家转账 out_bill_no: "只能由数字、大小写字母组成", 5-32 characters: refused
    before anything is sent (the sandbox answers PARAM_ERROR, as WeChat Pay does)."""
    channel, fake = wechat
    request = TransferRequest(out_transfer_no=number, kind=ReceiverKind.OPENID, account="o-1",
                              amount=Money(100), remark="x", scene_id="1000")
    with pytest.raises(InvalidRequestError, match="out_bill_no"):
        _run(channel.transfer(request), fake)
    assert fake.requests == []
