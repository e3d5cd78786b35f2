"""Fees reconciled against the fund-flow bill (资金账单), against the sandbox.

WeChat Pay's fund-flow bill shows what came in for each payment: its amount
less the fee WeChat Pay kept. Alipay's account log (账务明细查询) shows the
payment coming in and the fee going out apart; payhub pairs them into the
same line. Where a channel has one, that, not the trade bill's fee column,
decides a fee mismatch. The sandbox builds both bills from
the same trades (planted differences included), so a fault planted between
the two downloads makes them disagree on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_recon_sandbox import Day, config, day, later  # noqa: F401 - fixture

from payhub.channels import FundFlowStream
from payhub.errors import ProtocolError
from payhub.money import Money
from payhub.recon import Reconciler
from payhub.store._schema import recon_items

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wechat"


def paid_day(day: Day) -> None:  # noqa: F811
    day.pay("FLOW-1", 1000)
    day.pay("FLOW-2", 2000)
    day.refund("FLOW-1", "FLOW-R1", 500, 1000)


@pytest.mark.parametrize("day", ["wechat"], indirect=True)
def test_the_wechat_fundflow_bill_is_read_as_the_sandbox_serves_it(day: Day) -> None:  # noqa: F811
    paid_day(day)
    flow = day.hub.stream_fundflow_bill("wechat", day.today)
    assert flow is not None
    with flow:
        lines = list(flow.lines())
    by_ref = {line.reference: line for line in lines}
    # 0.6 %: 1,000 fen came in as 994, 2,000 as 1,988; the refund of 500 fen
    # went out less the 3 fen of fee given back, as its note says
    assert by_ref["FLOW-1"].amount_minor == 994
    assert by_ref["FLOW-2"].amount_minor == 1988
    refund = by_ref["FLOW-R1"]
    assert (refund.amount_minor, refund.total_minor, refund.fee_minor) == (-497, 500, 3)
    assert {line.kind.value for line in lines if line.kind} == {"payment", "refund"}


@pytest.mark.parametrize("day", ["wechat", "alipay"], indirect=True)
def test_a_fee_the_fundflow_bill_shows_decides_over_the_trade_bills(day: Day) -> None:  # noqa: F811
    paid_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    # the trade bill as the sandbox has it (fees right), the fund-flow bill
    # after a wrong fee was planted: 99 fen kept on FLOW-2
    bill = day.hub.stream_bill(day.channel, day.today)
    day.box.plant_bill_difference(
        day.channel, day.merchant, day.today, "wrong_fee", out_trade_no="FLOW-2", fee=Money(99)
    )
    flow = day.hub.stream_fundflow_bill(day.channel, day.today)
    assert flow is not None
    with bill, flow:
        without = Reconciler(day.hub, config(day.channel), clock=later(day)).run_bill(bill)
        # the trade bill alone agrees: two payments and the refund
        assert without.counts == {"matched": 3}
        result = reconciler.run_bill(bill, fundflow=flow)
    assert result.counts == {"matched": 2, "fee_mismatch": 1}
    (item,) = reconciler.items(channel=day.channel, bill_date=day.today)
    assert (item["out_trade_no"], item["bill_fee_minor"], item["expected_fee_minor"]) == (
        "FLOW-2",
        99,
        12,
    )


@pytest.mark.parametrize("day", ["wechat", "alipay"], indirect=True)
def test_a_wrong_fee_column_is_no_difference_when_the_money_came_in_right(day: Day) -> None:  # noqa: F811
    paid_day(day)
    day.box.plant_bill_difference(
        day.channel, day.merchant, day.today, "wrong_fee", out_trade_no="FLOW-2", fee=Money(99)
    )
    bill = day.hub.stream_bill(day.channel, day.today)
    day.box.clear_bill_differences()
    flow = day.hub.stream_fundflow_bill(day.channel, day.today)
    assert flow is not None
    with bill, flow:
        result = Reconciler(day.hub, config(day.channel), clock=later(day)).run_bill(
            bill, fundflow=flow
        )
    assert result.counts == {"matched": 3}
    assert result.clean


@pytest.mark.parametrize("day", ["wechat", "alipay"], indirect=True)
def test_a_run_downloads_the_fundflow_bill_and_finds_the_planted_fee(day: Day) -> None:  # noqa: F811
    paid_day(day)
    day.box.plant_bill_difference(
        day.channel, day.merchant, day.today, "wrong_fee", out_trade_no="FLOW-1", fee=Money(50)
    )
    result = Reconciler(day.hub, config(day.channel), clock=later(day)).run(day.channel, day.today)
    assert result.counts == {"matched": 2, "fee_mismatch": 1}  # FLOW-2 and the refund
    (item,) = Reconciler(day.hub).items()
    assert (item["out_trade_no"], item["bill_fee_minor"], item["expected_fee_minor"]) == (
        "FLOW-1",
        50,
        6,
    )


@pytest.mark.parametrize("day", ["wechat"], indirect=True)
def test_a_fundflow_bill_that_does_not_add_up_refuses_the_run(day: Day) -> None:  # noqa: F811
    from payhub.channels.wechat._fundflow import iter_fundflow_bill

    paid_day(day)
    # a real bill (gunsluo/wechatpay-go's test data): its summary counts 3
    # movements, the file holds 2
    content = (FIXTURES / "fundflowbill_basic_2021-02-01_gunsluo.csv.gz").read_bytes()
    flow = FundFlowStream.spool(
        content, iter_fundflow_bill, channel="wechat", bill_date=day.today
    )
    bill = day.hub.stream_bill("wechat", day.today)
    with bill, flow:
        result = Reconciler(day.hub, config("wechat"), clock=later(day)).run_bill(
            bill, fundflow=flow
        )
    assert result.status == "refused"
    assert "资金流水总笔数" in (result.error or "")
    with day.store.engine.connect() as conn:
        assert conn.execute(recon_items.select()).first() is None  # nothing recorded


@pytest.mark.parametrize("day", ["alipay"], indirect=True)
def test_the_alipay_account_log_is_read_as_the_sandbox_serves_it(day: Day) -> None:  # noqa: F811
    paid_day(day)
    flow = day.hub.stream_fundflow_bill("alipay", day.today)
    assert flow is not None
    with flow:
        lines = list(flow.lines())
    payments = {ln.reference: ln for ln in lines if ln.kind and ln.kind.value == "payment"}
    # 0.6 %: each payment came in whole and its fee went out apart; paired, the
    # line is what came in less the fee, as WeChat's is
    assert {ref: (p.amount_minor, p.fee_minor, p.total_minor) for ref, p in payments.items()} == {
        "FLOW-1": (994, 6, 1000),
        "FLOW-2": (1988, 12, 2000),
    }
    (refund,) = (line for line in lines if line.kind and line.kind.value == "refund")
    assert (refund.reference, refund.amount_minor, refund.total_minor) == ("FLOW-R1", -500, 500)
    # the refund's share of the fee came back: a movement of its own
    assert [(line.business, line.amount_minor) for line in lines if line.kind is None] == [
        ("收费", 3)
    ]


def test_the_real_fundflow_sample_parses_row_by_row() -> None:
    from payhub.channels.wechat._fundflow import iter_fundflow_bill

    with (FIXTURES / "fundflowbill_basic_2021-02-01_gunsluo.csv.gz").open("rb") as file:
        rows = iter_fundflow_bill(file)
        first, second = next(rows), next(rows)
        with pytest.raises(ProtocolError, match="资金流水总笔数"):
            next(rows)
    assert first.kind is not None
    assert first.kind.value == "refund"
    assert (first.booked_at, first.reference, first.amount_minor) == (
        "2021-02-01 13:54:01",
        "S20210201135356381941",
        -1,
    )
    assert (first.channel_id, first.flow_no) == (
        "50300806962021020105978994968",
        "4200000920202101197964319284",
    )
    assert (second.total_minor, second.fee_minor) == (1, 0)
