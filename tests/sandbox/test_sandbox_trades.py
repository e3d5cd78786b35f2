"""Each gateway method's happy path and business rules."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, TradeState, TradeStateError, create_app
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, BASE_URL, NOTIFY_URL, new_trade

QUERY = "alipay.trade.query"
REFUND = "alipay.trade.refund"
CLOSE = "alipay.trade.close"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"


def _business(reply, sub_code: str) -> None:
    assert reply.node["code"] == "40004", reply.node
    assert reply.node["msg"] == "Business Failed"
    assert reply.node["sub_code"] == sub_code, reply.node


# -- creating trades ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "product_code"),
    [
        ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
        ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
        ("alipay.trade.app.pay", "QUICK_MSECURITY_PAY"),
    ],
)
@pytest.mark.parametrize("transport", ["get", "post"])
def test_page_pay_redirects_to_cashier(
    alipay: AlipayWireClient, sandbox: Sandbox, method, product_code, transport
) -> None:
    params = alipay.signed(
        alipay.params(
            method,
            {
                "out_trade_no": "P1",
                "total_amount": "30.00",
                "subject": "Steam 充值卡",
                "product_code": product_code,
            },
            notify_url=NOTIFY_URL,
            return_url="http://shop.test/return",
        )
    )
    response = alipay.send(params, transport)
    assert response.status_code == 302
    location = response.headers["location"]
    trade = sandbox.alipay_trade(APP_ID, "P1")
    assert location == f"{BASE_URL}/alipay/cashier/{trade.trade_no}"
    assert trade.state is TradeState.PENDING
    assert trade.product == method
    assert trade.notify_url == NOTIFY_URL
    assert trade.return_url == "http://shop.test/return"
    page = alipay.http.get(urlsplit(location).path)
    assert page.status_code == 200
    assert "Steam 充值卡" in page.text
    assert "30.00" in page.text


def test_trade_numbers_look_like_alipays(alipay: AlipayWireClient) -> None:
    trade_no = new_trade(alipay, "T1")
    assert len(trade_no) == 28
    assert trade_no.isdigit()
    assert trade_no.startswith("20240301")


def test_precreate(alipay: AlipayWireClient, platform_keys) -> None:
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "Q1", "total_amount": "0.01", "subject": "test"},
    )
    assert reply.code == "10000"
    assert reply.node["msg"] == "Success"
    assert reply.node["out_trade_no"] == "Q1"
    assert reply.node["qr_code"].startswith(f"{BASE_URL}/alipay/cashier/")
    assert reply.verifies(platform_keys.public)


def test_same_order_again_is_the_same_trade(alipay: AlipayWireClient) -> None:
    first = new_trade(alipay, "T1", "10.00", "card")
    assert new_trade(alipay, "T1", "10.00", "card") == first


def test_same_order_other_amount_is_inconsistent(alipay: AlipayWireClient) -> None:
    new_trade(alipay, "T1", "10.00", "card")
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T1", "total_amount": "10.01", "subject": "card"},
    )
    _business(reply, "ACQ.CONTEXT_INCONSISTENT")
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T1", "total_amount": "10.00", "subject": "other"},
    )
    _business(reply, "ACQ.CONTEXT_INCONSISTENT")


def test_paid_or_closed_order_cannot_be_created_again(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    new_trade(alipay, "PAID")
    sandbox.alipay.pay(APP_ID, "PAID")
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "PAID", "total_amount": "100.00", "subject": "Gift card 礼品卡"},
    )
    _business(reply, "ACQ.TRADE_HAS_SUCCESS")
    new_trade(alipay, "SHUT")
    alipay.call(CLOSE, {"out_trade_no": "SHUT"})
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "SHUT", "total_amount": "100.00", "subject": "Gift card 礼品卡"},
    )
    _business(reply, "ACQ.TRADE_HAS_CLOSE")


@pytest.mark.parametrize(
    "amount",
    ["", "1.001", "-1.00", "1e2", "１.00", " 1.00", "0x10", "NaN", "1.", ".5", "0", "0.00"],
)
def test_amounts_are_parsed_strictly(alipay: AlipayWireClient, amount) -> None:
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "A1", "total_amount": amount, "subject": "s"},
    )
    _business(reply, "ACQ.INVALID_PARAMETER")


def test_amount_limit(alipay: AlipayWireClient) -> None:
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "A1", "total_amount": "100000000.01", "subject": "s"},
    )
    _business(reply, "ACQ.TOTAL_FEE_EXCEED")


@pytest.mark.parametrize(
    "biz",
    [
        {"total_amount": "1.00", "subject": "s"},
        {"out_trade_no": "has space", "total_amount": "1.00", "subject": "s"},
        {"out_trade_no": "x" * 65, "total_amount": "1.00", "subject": "s"},
        {"out_trade_no": "A1", "total_amount": "1.00"},
        {"out_trade_no": "A1", "total_amount": "1.00", "subject": "s", "timeout_express": "2w"},
        {"out_trade_no": "A1", "total_amount": "1.00", "subject": "s", "timeout_express": "16d"},
        {"out_trade_no": ["A1"], "total_amount": "1.00", "subject": "s"},
    ],
)
def test_bad_business_parameters(alipay: AlipayWireClient, biz) -> None:
    _business(alipay.call("alipay.trade.precreate", biz), "ACQ.INVALID_PARAMETER")


# -- query ------------------------------------------------------------------------------


def test_query_unpaid_then_paid(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    trade_no = new_trade(alipay, "T1", "12.30")
    sandbox.alipay.scan(APP_ID, "T1")
    node = alipay.call(QUERY, {"out_trade_no": "T1"}).node
    assert node["trade_status"] == "WAIT_BUYER_PAY"
    assert node["trade_no"] == trade_no
    assert node["total_amount"] == "12.30"
    assert node["buyer_pay_amount"] == "0.00"
    assert "send_pay_date" not in node
    sandbox.alipay.pay(APP_ID, "T1", buyer_id="2088102000009999")
    node = alipay.call(QUERY, {"trade_no": trade_no}).node
    assert node == {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade_no,
        "out_trade_no": "T1",
        "buyer_logon_id": "138****9999",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.30",
        "buyer_pay_amount": "12.30",
        "point_amount": "0.00",
        "invoice_amount": "12.30",
        "receipt_amount": "12.30",
        "subject": "Gift card 礼品卡",
        "send_pay_date": "2024-03-01 10:00:00",
        "buyer_user_id": "2088102000009999",
        "buyer_user_type": "PRIVATE",
    }
    # the funds used only when asked for, as Alipay answers
    asked = alipay.call(QUERY, {"trade_no": trade_no, "query_options": ["fund_bill_list"]})
    assert asked.node["fund_bill_list"] == [{"fund_channel": "ALIPAYACCOUNT", "amount": "12.30"}]


def test_query_of_an_unscanned_qr_code_finds_no_trade(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    """Alipay creates a precreated trade when the buyer scans its QR code: until then
    a query answers ACQ.TRADE_NOT_EXIST, with zero amounts (what shops hit)."""
    new_trade(alipay, "T1", "12.30")
    reply = alipay.call(QUERY, {"out_trade_no": "T1"})
    _business(reply, "ACQ.TRADE_NOT_EXIST")
    assert list(reply.node) == [
        "code", "msg", "sub_code", "sub_msg",
        "buyer_pay_amount", "invoice_amount", "out_trade_no", "point_amount", "receipt_amount",
    ]  # fmt: skip
    assert reply.node["buyer_pay_amount"] == reply.node["receipt_amount"] == "0.00"
    sandbox.alipay.scan(APP_ID, "T1")
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "WAIT_BUYER_PAY"


def test_unscanned_query_waits_option(platform_keys, merchant_keys, clock) -> None:
    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        clock=clock,
        base_url=BASE_URL,
        alipay_unscanned_query_waits=True,
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, "2088000000000001")
    transport = httpx.WSGITransport(app=create_app(box))
    with httpx.Client(transport=transport, base_url=BASE_URL) as http:
        client = AlipayWireClient(
            http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        new_trade(client, "T1", "1.00")
        node = client.call(QUERY, {"out_trade_no": "T1"}).node
    assert node["trade_status"] == "WAIT_BUYER_PAY"


def test_query_unknown(alipay: AlipayWireClient) -> None:
    reply = alipay.call(QUERY, {"out_trade_no": "nope"})
    _business(reply, "ACQ.TRADE_NOT_EXIST")
    assert reply.node["out_trade_no"] == "nope"
    _business(
        alipay.call(QUERY, {"trade_no": "2024030122001000000000000000"}), "ACQ.TRADE_NOT_EXIST"
    )
    _business(alipay.call(QUERY, {}), "ACQ.INVALID_PARAMETER")


def test_query_mismatched_numbers(alipay: AlipayWireClient) -> None:
    trade_no = new_trade(alipay, "T1")
    new_trade(alipay, "T2")
    _business(
        alipay.call(QUERY, {"trade_no": trade_no, "out_trade_no": "T2"}), "ACQ.TRADE_NOT_EXIST"
    )


def test_trades_are_scoped_to_their_app(
    alipay: AlipayWireClient, sandbox: Sandbox, other_keys, http, clock
) -> None:
    new_trade(alipay, "T1")
    sandbox.add_alipay_merchant("2021000000000002", other_keys.public_pem, "2088000000000002")
    other = AlipayWireClient(
        http, app_id="2021000000000002", private_key=other_keys.private, now=clock.now
    )
    _business(other.call(QUERY, {"out_trade_no": "T1"}), "ACQ.TRADE_NOT_EXIST")


# -- refunds ----------------------------------------------------------------------------


def test_partial_then_full_refund(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    trade_no = new_trade(alipay, "T1", "100.00")
    sandbox.alipay.pay(APP_ID, "T1")
    first = alipay.call(
        REFUND, {"out_trade_no": "T1", "refund_amount": "30.00", "out_request_no": "R1"}
    ).node
    assert first["code"] == "10000"
    assert first["trade_no"] == trade_no
    assert first["fund_change"] == "Y"
    assert first["refund_fee"] == "30.00"
    assert first["send_back_fee"] == "30.00"
    assert first["gmt_refund_pay"] == "2024-03-01 10:00:00"
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "TRADE_SUCCESS"
    second = alipay.call(
        REFUND, {"trade_no": trade_no, "refund_amount": "70", "out_request_no": "R2"}
    ).node
    assert second["refund_fee"] == "100.00"
    assert second["send_back_fee"] == "70.00"
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "TRADE_CLOSED"
    assert [r.out_refund_no for r in sandbox.refunds] == ["R1", "R2"]
    assert sandbox.refunds[1].full


def test_refund_is_idempotent_per_request_number(
    alipay: AlipayWireClient, sandbox: Sandbox, clock: ManualClock
) -> None:
    new_trade(alipay, "T1", "100.00")
    sandbox.alipay.pay(APP_ID, "T1")
    biz = {"out_trade_no": "T1", "refund_amount": "40.00", "out_request_no": "R1"}
    first = alipay.call(REFUND, biz).node
    clock.advance(60)
    again = alipay.call(REFUND, biz).node
    assert again["fund_change"] == "N"
    assert {k: v for k, v in again.items() if k != "fund_change"} == {
        k: v for k, v in first.items() if k != "fund_change"
    }
    assert len(sandbox.refunds) == 1
    # the same request number with another amount is refused
    reply = alipay.call(REFUND, {**biz, "refund_amount": "41.00"})
    _business(reply, "ACQ.DISCORDANT_REPEAT_REQUEST")


def test_refunds_cannot_exceed_the_total(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1", "100.00")
    sandbox.alipay.pay(APP_ID, "T1")
    alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": "60.00", "out_request_no": "R1"})
    reply = alipay.call(
        REFUND, {"out_trade_no": "T1", "refund_amount": "40.01", "out_request_no": "R2"}
    )
    _business(reply, "ACQ.REASON_TRADE_REFUND_FEE_ERR")
    assert reply.node["out_trade_no"] == "T1"
    assert reply.node["refund_fee"] == "60.00"
    ok = alipay.call(
        REFUND, {"out_trade_no": "T1", "refund_amount": "40.00", "out_request_no": "R3"}
    )
    assert ok.node["refund_fee"] == "100.00"
    after = alipay.call(
        REFUND, {"out_trade_no": "T1", "refund_amount": "0.01", "out_request_no": "R4"}
    )
    _business(after, "ACQ.REASON_TRADE_REFUND_FEE_ERR")
    # an earlier request number still answers its own result
    assert (
        alipay.call(
            REFUND, {"out_trade_no": "T1", "refund_amount": "60.00", "out_request_no": "R1"}
        ).node["fund_change"]
        == "N"
    )


def test_refund_without_request_number_is_one_full_request(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    new_trade(alipay, "T1", "5.00")
    sandbox.alipay.pay(APP_ID, "T1")
    node = alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": "5.00"}).node
    assert node["fund_change"] == "Y"
    assert (
        alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": "5.00"}).node["fund_change"]
        == "N"
    )
    # filed under the order number: the refund query finds it there
    found = alipay.call(REFUND_QUERY, {"out_trade_no": "T1", "out_request_no": "T1"}).node
    assert found["refund_amount"] == "5.00"
    assert found["refund_status"] == "REFUND_SUCCESS"
    assert [r.out_refund_no for r in sandbox.refunds] == ["T1"]


def test_partial_refund_needs_a_request_number(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1", "5.00")
    sandbox.alipay.pay(APP_ID, "T1")
    reply = alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": "1.00"})
    _business(reply, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    assert sandbox.refunds == []


def test_refund_of_unpaid_trade(alipay: AlipayWireClient) -> None:
    new_trade(alipay, "T1")
    reply = alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": "1.00"})
    _business(reply, "ACQ.TRADE_STATUS_ERROR")


def test_refund_of_closed_or_finished_trade(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "SHUT")
    alipay.call(CLOSE, {"out_trade_no": "SHUT"})
    _business(
        alipay.call(REFUND, {"out_trade_no": "SHUT", "refund_amount": "1.00"}),
        "ACQ.TRADE_STATUS_ERROR",
    )
    new_trade(alipay, "DONE")
    sandbox.alipay.pay(APP_ID, "DONE")
    sandbox.alipay.finish(APP_ID, "DONE")
    _business(
        alipay.call(REFUND, {"out_trade_no": "DONE", "refund_amount": "1.00"}),
        "ACQ.TRADE_HAS_FINISHED",
    )


@pytest.mark.parametrize("amount", ["0", "0.00", "-1", "1.005", "abc", ""])
def test_refund_amount_strict(alipay: AlipayWireClient, sandbox: Sandbox, amount) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    reply = alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": amount})
    _business(reply, "ACQ.INVALID_PARAMETER")


def test_refund_query(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    trade_no = new_trade(alipay, "T1", "50.00")
    sandbox.alipay.pay(APP_ID, "T1")
    alipay.call(REFUND, {"out_trade_no": "T1", "refund_amount": "20.00", "out_request_no": "R1"})
    node = alipay.call(REFUND_QUERY, {"out_trade_no": "T1", "out_request_no": "R1"}).node
    assert node == {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade_no,
        "out_trade_no": "T1",
        "out_request_no": "R1",
        "total_amount": "50.00",
        "refund_amount": "20.00",
        "refund_status": "REFUND_SUCCESS",
    }
    asked = alipay.call(
        REFUND_QUERY,
        {"out_trade_no": "T1", "out_request_no": "R1", "query_options": ["gmt_refund_pay"]},
    ).node
    assert asked["gmt_refund_pay"] == "2024-03-01 10:00:00"
    # an unknown refund: a bare success, without refund fields (as Alipay answers)
    unknown = alipay.call(REFUND_QUERY, {"out_trade_no": "T1", "out_request_no": "R9"}).node
    assert unknown == {"code": "10000", "msg": "Success"}
    _business(
        alipay.call(REFUND_QUERY, {"out_trade_no": "T9", "out_request_no": "R1"}),
        "ACQ.TRADE_NOT_EXIST",
    )
    _business(alipay.call(REFUND_QUERY, {"out_trade_no": "T1"}), "ACQ.INVALID_PARAMETER")


# -- close ------------------------------------------------------------------------------


def test_close_unpaid(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    trade_no = new_trade(alipay, "T1")
    sandbox.alipay.scan(APP_ID, "T1")
    node = alipay.call(CLOSE, {"trade_no": trade_no}).node
    assert node == {"code": "10000", "msg": "Success", "trade_no": trade_no, "out_trade_no": "T1"}
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "TRADE_CLOSED"
    _business(alipay.call(CLOSE, {"trade_no": trade_no}), "ACQ.TRADE_STATUS_ERROR")
    with pytest.raises(TradeStateError):
        sandbox.alipay.pay(APP_ID, "T1")


def test_close_paid_is_refused(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    _business(alipay.call(CLOSE, {"out_trade_no": "T1"}), "ACQ.TRADE_STATUS_ERROR")
    _business(alipay.call(CLOSE, {"out_trade_no": "T9"}), "ACQ.TRADE_NOT_EXIST")


def test_timeout_express_closes_on_the_compressed_clock(
    alipay: AlipayWireClient, sandbox: Sandbox, clock: ManualClock
) -> None:
    new_trade(alipay, "T1", timeout_express="30m")  # with time factor 60: 30 s
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T2", "total_amount": "1.00", "subject": "s", "timeout_express": "30m"},
    )
    assert reply.code == "10000"
    sandbox.alipay.scan(APP_ID, "T2")
    clock.advance(29)
    assert sandbox.close_expired() == []
    clock.advance(1)
    closed = sandbox.close_expired()
    assert [t.out_trade_no for t in closed] == ["T2"]  # T1's timeout was a common parameter
    assert closed[0].close_reason == "timeout"
    assert alipay.call(QUERY, {"out_trade_no": "T2"}).node["trade_status"] == "TRADE_CLOSED"


def test_time_expire_is_absolute(
    alipay: AlipayWireClient, sandbox: Sandbox, clock: ManualClock
) -> None:
    alipay.call(
        "alipay.trade.precreate",
        {
            "out_trade_no": "T1",
            "total_amount": "1.00",
            "subject": "s",
            "time_expire": "2024-03-01 10:30:00",
        },
    )
    sandbox.alipay.scan(APP_ID, "T1")
    clock.advance(29 * 60)
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "WAIT_BUYER_PAY"
    clock.advance(60)
    # the gateway closes expired trades before answering
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "TRADE_CLOSED"
    with pytest.raises(TradeStateError):
        sandbox.alipay.pay(APP_ID, "T1")


# -- Python API -------------------------------------------------------------------------


def test_pay_rules(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    from payhub_sandbox import TradeNotFoundError, UnknownMerchantError

    new_trade(alipay, "T1")
    with pytest.raises(TradeStateError, match="BUYER_SELLER_EQUAL"):
        sandbox.alipay.pay(APP_ID, "T1", buyer_id="2088000000000001")
    paid = sandbox.alipay.pay(APP_ID, "T1")
    assert paid.state is TradeState.PAID
    assert paid.fee.minor == 60  # 0.6 % of 100.00
    with pytest.raises(TradeStateError):
        sandbox.alipay.pay(APP_ID, "T1")
    with pytest.raises(TradeNotFoundError):
        sandbox.alipay.pay(APP_ID, "T9")
    with pytest.raises(UnknownMerchantError):
        sandbox.alipay.pay("2021999", "T1")


def test_finish(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1")
    with pytest.raises(TradeStateError):
        sandbox.alipay.finish(APP_ID, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    sandbox.alipay.finish(APP_ID, "T1")
    assert alipay.call(QUERY, {"out_trade_no": "T1"}).node["trade_status"] == "TRADE_FINISHED"
    assert sandbox.trades[0].state is TradeState.FINISHED
