"""``alipay.data.bill.accountlog.query`` (账务明细查询) in the sandbox, and payhub's
Alipay channel paging through it.

The sandbox answers the account's movements from the trades and refunds the
trade bill is built from (planted differences included), in the layout of the
official SDKs' models (tests/fixtures/alipay/SOURCES.md): every field a
string, ``direction`` by the amount's sign, ``detail_list`` left out when
there is nothing, ``page_size`` 1000-2000.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from urllib.parse import parse_qs

import httpx
import pytest
from payhub_sandbox import CHINA_TZ, Sandbox, create_app
from sandbox_support import APP_ID, SELLER_ID, START, new_trade

from payhub import PayHub
from payhub.errors import ChannelError, ErrorCode, ProtocolError
from payhub.money import Money

alipay_channel = pytest.importorskip("payhub.channels.alipay")

METHOD = "alipay.data.bill.accountlog.query"
DAY = START.astimezone(CHINA_TZ).date()
RANGE = {"start_time": f"{DAY} 00:00:00", "end_time": "2024-03-02 00:00:00"}


def test_a_paid_and_refunded_trade_is_its_movements(
    sandbox: Sandbox, alipay, platform_keys
) -> None:
    new_trade(alipay, "LOG-1", "100.00")
    sandbox.alipay.scan(APP_ID, "LOG-1")
    sandbox.alipay.pay(APP_ID, "LOG-1")
    sandbox.alipay.refund(APP_ID, "LOG-1", "40.00", out_refund_no="LOG-R1")

    reply = alipay.call(METHOD, {**RANGE, "page_no": "1", "page_size": "1000"})
    assert reply.code == "10000", reply.node
    assert reply.verifies(platform_keys.public)
    node = reply.node
    assert (node["page_no"], node["page_size"], node["total_size"]) == ("1", "1000", "4")
    rows = [
        (i["type"], i["direction"], i["trans_amount"], i.get("merchant_out_refund_no"))
        for i in node["detail_list"]
    ]
    # 0.6 % of 100.00 kept apart; 40 % of it given back with the refund
    assert rows == [
        ("交易", "收入", "100.00", None),
        ("收费", "支出", "-0.60", None),
        ("退款", "支出", "-40.00", "LOG-R1"),
        ("收费", "收入", "0.24", "LOG-R1"),
    ]
    for entry in node["detail_list"]:
        assert all(isinstance(value, str) for value in entry.values())
        assert entry["merchant_order_no"] == "LOG-1"
        assert entry["trans_dt"] == "2024-03-01 10:00:00"
    assert len({entry["account_log_id"] for entry in node["detail_list"]}) == 4


def test_a_planted_wrong_fee_shows_in_the_account_log(sandbox: Sandbox, alipay) -> None:
    new_trade(alipay, "LOG-1", "100.00")
    sandbox.alipay.scan(APP_ID, "LOG-1")
    sandbox.alipay.pay(APP_ID, "LOG-1")
    sandbox.plant_bill_difference("alipay", APP_ID, DAY, "wrong_fee", out_trade_no="LOG-1")
    node = alipay.call(METHOD, RANGE).node
    assert [i["trans_amount"] for i in node["detail_list"]] == ["100.00", "-0.61"]
    assert node["page_size"] == "2000"  # the default


def test_a_day_without_movements_has_no_detail_list(alipay) -> None:
    node = alipay.call(METHOD, RANGE).node
    assert node["code"] == "10000"
    assert node["total_size"] == "0"
    assert "detail_list" not in node


@pytest.mark.parametrize(
    ("biz", "what"),
    [
        ({**RANGE, "page_size": "999"}, "page_size"),
        ({**RANGE, "page_size": "2001"}, "page_size"),
        ({**RANGE, "page_no": "0"}, "page_no"),
        ({**RANGE, "start_time": "2024-03-01"}, "start_time"),
        ({"start_time": RANGE["start_time"]}, "end_time"),
        ({**RANGE, "end_time": "2024-04-02 00:00:00"}, "31天"),
        ({**RANGE, "end_time": RANGE["start_time"]}, "31天"),
    ],
)
def test_bad_arguments_are_refused(alipay, biz: dict[str, str], what: str) -> None:
    reply = alipay.call(METHOD, biz)
    assert (reply.code, reply.sub_code) == ("40002", "isv.invalid-parameter")
    assert what in reply.node["sub_msg"]


class Counting(httpx.BaseTransport):
    """The sandbox app over WSGI, keeping the ``biz_content`` of each account-log
    call and running ``after_page`` (if set) once each is answered."""

    def __init__(self, app: object) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.pages: list[dict[str, str]] = []
        self.after_page: Callable[[], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.read().decode("ascii"))
        response = self.inner.handle_request(request)
        if "alipay.data.bill.accountlog.query" in parse_qs(request.url.query.decode())["method"]:
            self.pages.append(json.loads(form["biz_content"][0]))
            if self.after_page is not None:
                self.after_page()
        return response


@pytest.fixture
def live(platform_keys, merchant_keys) -> Iterator[tuple[Sandbox, PayHub, Counting]]:
    box = Sandbox(  # the real clock: payhub stamps requests and checks answers with it
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        base_url="http://sandbox.test",
        bills_ready_immediately=True,
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    transport = Counting(create_app(box))
    http = httpx.Client(transport=transport)
    channel = alipay_channel.AlipayChannel.from_config(
        "alipay",
        {
            "app_id": APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "alipay_public_key": box.alipay_public_key_pem,
            "environment": "sandbox",
            "gateway": "http://sandbox.test/gateway.do",
            "seller_id": SELLER_ID,
        },
    )
    hub = PayHub(channels=[channel], http_client=http)
    yield box, hub, transport
    hub.close()
    http.close()
    box.stop()


def test_payhub_pages_until_every_movement_is_read(live) -> None:
    box, hub, transport = live
    day = date(2024, 5, 20)
    for number in range(1, 1201):  # 1,200 payments, each its income and its fee: 2,400 rows
        box.plant_bill_difference(
            "alipay", APP_ID, day, "unknown_trade", out_trade_no=f"P{number}", fee=Money(6)
        )
    with hub.stream_fundflow_bill("alipay", day) as flow:
        lines = list(flow.lines())
    assert [(page["page_no"], page["page_size"]) for page in transport.pages] == [
        ("1", "2000"),
        ("2", "2000"),
    ]
    assert transport.pages[0]["start_time"] == "2024-05-20 00:00:00"
    assert transport.pages[0]["end_time"] == "2024-05-21 00:00:00"
    assert len(lines) == 1200
    assert {(line.amount_minor, line.fee_minor, line.total_minor) for line in lines} == {
        (994, 6, 1000)
    }
    assert {line.reference for line in lines} == {f"P{n}" for n in range(1, 1201)}


def test_a_day_without_movements_is_an_empty_stream_from_one_page(live) -> None:
    _, hub, transport = live
    with hub.stream_fundflow_bill("alipay", date(2024, 5, 21)) as flow:
        assert list(flow.lines()) == []
    assert len(transport.pages) == 1


def test_a_busy_gateway_is_the_channels_retryable_error(live) -> None:
    box, hub, _ = live
    box.alipay.fail("20000")
    with pytest.raises(ChannelError) as caught:
        hub.stream_fundflow_bill("alipay", date(2024, 5, 20))
    assert caught.value.code is ErrorCode.CHANNEL_UNAVAILABLE
    assert caught.value.retryable
    assert caught.value.channel_sub_code == "isp.unknow-error"


def test_movements_changing_between_pages_refuse_the_read(live) -> None:
    box, hub, transport = live
    day = date(2024, 5, 20)
    for _ in range(1200):
        box.plant_bill_difference("alipay", APP_ID, day, "unknown_trade", fee=Money(6))

    def one_more_after_the_first_page() -> None:
        if len(transport.pages) == 1:  # a payment booked while payhub reads
            box.plant_bill_difference("alipay", APP_ID, day, "unknown_trade")

    transport.after_page = one_more_after_the_first_page
    with pytest.raises(ProtocolError, match="total_size changed from 2400 to 2401"):
        hub.stream_fundflow_bill("alipay", day)
