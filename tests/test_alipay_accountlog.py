"""Alipay's fund flow read through the account-log API (账务明细查询,
``alipay.data.bill.accountlog.query``): the pages' checks and the lines they
make, starting from the example answer of Alipay's own OpenAPI document (see
tests/fixtures/alipay/SOURCES.md).
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from payhub.channels import FundFlowLine
from payhub.errors import ProtocolError
from payhub.models import BillRecordKind

accountlog = pytest.importorskip("payhub.channels.alipay._accountlog")

EXAMPLE = Path(__file__).parent / "fixtures" / "alipay" / "accountlog_query_sdk_example.json"
DAY = date(2019, 1, 1)
LIMIT = 10_000_000_000


def page(items: list[dict[str, Any]], *, total: int | None = None, no: int = 1) -> dict[str, Any]:
    node: dict[str, Any] = {
        "page_no": str(no),
        "page_size": "2000",
        "total_size": str(len(items) if total is None else total),
    }
    if items:
        node["detail_list"] = items
    return node


def item(number: int, kind: str, amount: str, **extra: str) -> dict[str, str]:
    return {
        "account_log_id": f"2019010100{number:04d}",
        "trans_dt": f"2019-01-01 10:{number // 60:02d}:{number % 60:02d}",
        "trans_amount": amount,
        "direction": "支出" if amount.startswith("-") else "收入",
        "type": kind,
        **extra,
    }


def lines_of(*pages: dict[str, Any]) -> list[FundFlowLine]:
    """The lines the channel's stream gives for these answered pages."""
    spooled = io.BytesIO()
    for number, node in enumerate(pages, start=1):
        _, items = accountlog.read_page(
            node, page_no=number, window=accountlog.day_window(DAY), max_minor=LIMIT
        )
        spooled.writelines(accountlog.spool_line(i) for i in items)
    spooled.seek(0)
    return list(accountlog.iter_account_log(spooled))


def test_the_day_is_asked_for_as_the_api_documents_its_range() -> None:
    # yyyy-MM-dd HH:mm:ss, left-closed right-open (the SDKs' example: one day)
    assert accountlog.day_window(DAY) == ("2019-01-01 00:00:00", "2019-01-02 00:00:00")
    leap = accountlog.day_window(date(2024, 2, 29))
    assert leap == ("2024-02-29 00:00:00", "2024-03-01 00:00:00")
    assert accountlog.PAGE_SIZE == 2000  # the documented maximum of page_size (1000-2000)


def test_the_official_example_answer_is_one_payment_coming_in() -> None:
    node = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    total, items = accountlog.read_page(
        node, page_no=1, window=accountlog.day_window(DAY), max_minor=LIMIT
    )
    assert total == 10000  # the whole range's count, not the page's
    assert len(items) == 1
    (line,) = lines_of(node)
    assert line.kind is BillRecordKind.PAYMENT
    assert (line.booked_at, line.channel_id, line.flow_no, line.business) == (
        "2019-01-01 00:00:00",
        "20190101***",
        "1***",
        "交易",
    )
    # 1000.00 yuan came in, no fee movement beside it: 0 kept
    assert (line.amount_minor, line.fee_minor, line.total_minor) == (100_000, 0, 100_000)
    assert (line.reference, line.currency) == ("TX***", "CNY")


def test_a_payment_and_its_fee_make_one_line_of_what_came_in_less_the_fee() -> None:
    lines = lines_of(
        page(
            [
                item(1, "交易", "10.00", merchant_order_no="P-1", alipay_order_no="2019A1"),
                item(2, "收费", "-0.06", merchant_order_no="P-1", alipay_order_no="2019A1"),
                # a fee listed before its payment, naming only Alipay's trade number
                item(3, "服务费", "-0.12", alipay_order_no="2019A2"),
                item(4, "交易", "20.00", merchant_order_no="P-2", alipay_order_no="2019A2"),
                item(
                    5,
                    "退款",
                    "-5.00",
                    merchant_order_no="P-1",
                    merchant_out_refund_no="R-1",
                    alipay_order_no="2019A1",
                ),
                item(6, "收费", "0.03", merchant_order_no="P-1", alipay_order_no="2019A1"),
                item(7, "提现", "-100.00"),
            ]
        )
    )
    payments = {line.reference: line for line in lines if line.kind is BillRecordKind.PAYMENT}
    assert {ref: (p.amount_minor, p.fee_minor, p.total_minor) for ref, p in payments.items()} == {
        "P-1": (994, 6, 1000),
        "P-2": (1988, 12, 2000),
    }
    (refund,) = (line for line in lines if line.kind is BillRecordKind.REFUND)
    assert (refund.reference, refund.amount_minor, refund.total_minor) == ("R-1", -500, 500)
    others = sorted((line.business, line.amount_minor) for line in lines if line.kind is None)
    assert others == [("提现", -10000), ("收费", 3)]  # the fee given back is its own movement


def test_payment_and_fee_pair_across_pages_but_not_beyond_the_window() -> None:
    first = [item(1, "交易", "10.00", merchant_order_no="P-1")]
    second = [item(2, "收费", "-0.06", merchant_order_no="P-1")]
    (line,) = lines_of(page(first, total=2), page(second, total=2, no=2))
    assert (line.amount_minor, line.fee_minor) == (994, 6)

    far = [item(1, "交易", "10.00", merchant_order_no="P-1")]
    far += [
        item(2 + n, "交易", "1.00", merchant_order_no=f"X-{n}")
        for n in range(accountlog.PAIR_WINDOW)
    ]
    far.append(item(2100, "收费", "-0.06", merchant_order_no="P-1"))
    lines = lines_of(page(far))
    p1 = next(line for line in lines if line.reference == "P-1" and line.kind)
    assert (p1.amount_minor, p1.fee_minor) == (1000, 0)  # the fee came too late to pair
    (stray,) = (line for line in lines if line.kind is None)
    assert (stray.business, stray.amount_minor, stray.reference) == ("收费", -6, "P-1")


def test_the_same_order_paid_twice_is_two_payments() -> None:
    lines = lines_of(
        page(
            [
                item(1, "交易", "10.00", merchant_order_no="P-1"),
                item(2, "收费", "-0.06", merchant_order_no="P-1"),
                item(3, "交易", "10.00", merchant_order_no="P-1"),
                item(4, "收费", "-0.06", merchant_order_no="P-1"),
            ]
        )
    )
    assert [(line.kind, line.amount_minor, line.fee_minor) for line in lines] == [
        (BillRecordKind.PAYMENT, 994, 6),
        (BillRecordKind.PAYMENT, 994, 6),
    ]


def test_an_empty_day_has_no_detail_list() -> None:
    assert accountlog.read_page(
        {"page_no": "1", "page_size": "2000", "total_size": "0"},
        page_no=1,
        window=accountlog.day_window(DAY),
        max_minor=LIMIT,
    ) == (0, [])


def _broken(**change: object) -> dict[str, Any]:
    good = item(1, "交易", "10.00", merchant_order_no="P-1")
    for name, value in change.items():
        if value is None:
            del good[name]
        else:
            good[name] = value  # type: ignore[assignment]
    return page([good])


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (_broken(trans_amount=None), "has no trans_amount"),
        (_broken(account_log_id=None), "has no account_log_id"),
        (_broken(direction=None), "has no direction"),
        (_broken(trans_amount="ten"), "is not an amount"),
        (_broken(trans_amount="10.001"), "is not an amount"),
        (_broken(trans_amount=10.0), "has no trans_amount"),
        (_broken(trans_amount="99999999999.00"), "exceeds the channel limit"),
        (_broken(direction="in"), "is unknown"),
        (_broken(direction="支出"), "disagrees with its amount"),
        (_broken(trans_dt="2019-01-02 00:00:00"), "outside the day"),
        (_broken(trans_dt="2019/01/01 10:00:00"), "outside the day"),
        (_broken(merchant_order_no=7), "is not a string"),
        ({**page([]), "total_size": "many"}, "no valid total_size"),
        ({"page_no": "1", "page_size": "2000"}, "no valid total_size"),
        ({**page([]), "page_no": "2"}, "answered page"),
        ({**page([]), "detail_list": {"a": 1}}, "is not a list"),
        ({**page([]), "detail_list": ["x"]}, "is not an object"),
    ],
)
def test_a_malformed_page_is_a_protocol_error(node: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        accountlog.read_page(
            node, page_no=1, window=accountlog.day_window(DAY), max_minor=10_000_000_000
        )
