"""The ledger's reports (balance detail, fees, batches, withdrawals) on a real ledger,
built through the hub and the ledger API, on every database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from ledgerkit import paid
from reportkit import csv_lines

from payhub import InvalidRequestError, Money, RefundRequest
from payhub.ledger import Account, AccountKind
from payhub.reports import ReportFilters, Reports, RunStatus
from payhub.store import Store
from payhub.tz import SHANGHAI

K = AccountKind
FEES = {
    "channel_fees": {"rules": {"toy-a": {"type": "percentage", "rate": "0.006"}}},
    "seller_fees": {"default": {"type": "percentage", "rate": "0.01"}},
}
#: Monday 2026-03-09 00:00 in Shanghai
DAY1 = datetime(2026, 3, 9, tzinfo=SHANGHAI)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY2 + timedelta(days=1)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment.astimezone(UTC)


@pytest.fixture
def clock(store: Store) -> Clock:
    clock = Clock(DAY1.astimezone(UTC))
    store._clock = clock
    return clock


@pytest.fixture
def reports(store: Store, tmp_path: Path) -> Reports:
    return Reports(store, output_dir=tmp_path / "out")


def rows_of(run_path: str | None) -> list[list[str]]:
    assert run_path is not None
    lines = csv_lines(Path(run_path).read_bytes())
    return [next(csv.reader(io.StringIO(line))) for line in lines]


def seed(hub, bank, store: Store, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    """alice: 10000 the evening before DAY2, 5000 at DAY2 00:00 sharp, a refund of
    2000 on the first during DAY2, and 700 exactly at DAY3 00:00; bob: 3000 on DAY2."""
    store.configure_ledger(FEES)
    clock.at(DAY2 - timedelta(hours=2))
    paid(hub, bank, "A1", 10_000, seller="alice")
    clock.at(DAY2)
    paid(hub, bank, "A2", 5_000, seller="alice")
    clock.at(DAY2 + timedelta(hours=3))
    paid(hub, bank, "B1", 3_000, seller="bob")
    clock.at(DAY2 + timedelta(hours=5))
    hub.refund(None, RefundRequest(out_trade_no="A1", out_refund_no="A1-r", amount=Money(2000)))
    clock.at(DAY3)
    paid(hub, bank, "A3", 700, seller="alice")


def test_running_balance_ends_at_the_balance_at_to(hub, bank, store, clock, reports) -> None:
    seed(hub, bank, store, clock)
    pending = Account("alice", K.PENDING)
    run = reports.run(
        "balance-detail",
        ReportFilters(start=DAY2, end=DAY3, seller="alice", account_type="pending"),
        language="en",
    )
    assert run.status is RunStatus.SUCCEEDED
    header, *rows = rows_of(run.path)
    assert header == [
        "Party",
        "Account type",
        "Currency",
        "Posted",
        "Entry",
        "Cause",
        "Reference",
        "Amount",
        "Balance",
    ]
    # DAY2 00:00 is in (start inclusive), DAY3 00:00 is not (end exclusive), the
    # evening before is only in the opening balance
    assert [(r[5], r[6]) for r in rows] == [("payment", "A2"), ("refund", "A1")]
    opening = store.ledger.balance(pending, as_of=DAY2 - timedelta(microseconds=1)).minor
    assert opening == 9900  # A1 less the 1% platform fee
    running = opening
    for row in rows:
        running += int(Decimal(row[7]) * 100)
        assert int(Decimal(row[8]) * 100) == running
    at_to = store.ledger.balance(pending, as_of=DAY3 - timedelta(microseconds=1))
    assert Decimal(rows[-1][8]) == at_to.to_decimal()
    # A3 came after `to`: today's balance is higher than the report's last line
    assert store.ledger.balance(pending).minor == at_to.minor + 693
    assert run.rows == 2


def test_seller_filter_and_every_account_of_a_seller(hub, bank, store, clock, reports) -> None:
    seed(hub, bank, store, clock)
    run = reports.run("balance-detail", ReportFilters(start=DAY1, end=DAY3 + timedelta(days=1)))
    everyone = {r[0] for r in rows_of(run.path)[1:]}
    assert {"alice", "bob", "platform", "toy-a"} <= everyone
    run = reports.run(
        "balance-detail", ReportFilters(start=DAY1, end=DAY3 + timedelta(days=1), seller="bob")
    )
    header, *rows = rows_of(run.path)
    assert header[:2] == ["账户主体", "账户类型"]
    assert [(r[0], r[1], r[6], r[7], r[8]) for r in rows] == [
        ("bob", "pending", "B1", "29.70", "29.70")
    ]
    # every account's rows end on its balance now (nothing after the range)
    run = reports.run(
        "balance-detail", ReportFilters(start=DAY1, end=DAY3 + timedelta(days=1), seller="alice")
    )
    last: dict[str, str] = {}
    for row in rows_of(run.path)[1:]:
        last[row[1]] = row[8]
    for kind, shown in last.items():
        assert Decimal(shown) == store.ledger.balance(Account("alice", K(kind))).to_decimal()


def test_amount_range_picks_lines_but_the_balance_counts_them_all(
    hub, bank, store, clock, reports
) -> None:
    seed(hub, bank, store, clock)
    run = reports.run(
        "balance-detail",
        ReportFilters(
            start=DAY2, end=DAY3, seller="alice", account_type="pending", min_amount=2000
        ),
    )
    rows = rows_of(run.path)[1:]
    # the A2 line (4950) is shown with the running balance after it;
    # the refund's line (-1980 on pending) is 1980 in size, under the minimum
    assert [(r[6], r[7], r[8]) for r in rows] == [("A2", "49.50", "148.50")]


def test_bad_account_type_and_filters_a_type_does_not_take(store, clock, reports) -> None:
    with pytest.raises(InvalidRequestError, match="unknown account type 'wallet'"):
        reports.run("balance-detail", ReportFilters(start=DAY1, end=DAY2, account_type="wallet"))
    with pytest.raises(InvalidRequestError, match="cannot filter by status"):
        reports.run("balance-detail", ReportFilters(start=DAY1, end=DAY2, status="paid"))
    assert reports.runs() == []


def test_fees_grouped_by_day_channel_and_seller(hub, bank, store, clock, reports) -> None:
    seed(hub, bank, store, clock)
    run = reports.run("fees", ReportFilters(start=DAY1, end=DAY3 + timedelta(days=1)))
    header, *rows = rows_of(run.path)
    assert header == [
        "日期",
        "支付渠道",
        "商户",
        "币种",
        "笔数",
        "交易金额（元）",
        "渠道手续费（元）",
        "平台服务费（元）",
    ]
    assert rows == [
        # the evening of DAY1 in Shanghai (DAY2 - 2h), not UTC's date
        ["2026-03-09", "toy-a", "alice", "CNY", "1", "100.00", "0.60", "1.00"],
        # A2 (5000: 30 + 50) and the refund of 2000 on A1 (back: -12 and -20)
        ["2026-03-10", "toy-a", "alice", "CNY", "2", "30.00", "0.18", "0.30"],
        ["2026-03-10", "toy-a", "bob", "CNY", "1", "30.00", "0.18", "0.30"],
        ["2026-03-11", "toy-a", "alice", "CNY", "1", "7.00", "0.04", "0.07"],
    ]
    run = reports.run("fees", ReportFilters(start=DAY2, end=DAY3, seller="bob", channel="toy-a"))
    assert [r[2] for r in rows_of(run.path)[1:]] == ["bob"]
    run = reports.run("fees", ReportFilters(start=DAY2, end=DAY3, channel="toy-b"))
    assert rows_of(run.path)[1:] == []


def test_xlsx_amounts_are_numbers_and_ids_text(hub, bank, store, clock, reports) -> None:
    seed(hub, bank, store, clock)
    run = reports.run(
        "balance-detail",
        ReportFilters(start=DAY2, end=DAY3, seller="alice", account_type="pending"),
        format="xlsx",
    )
    sheet = openpyxl.load_workbook(run.path).active
    assert sheet.title == "余额明细"
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[6] for r in rows] == ["A2", "A1"]
    assert all(isinstance(r[4], str) for r in rows)  # entry ids stay text
    assert [r[7] for r in rows] == [49.5, -19.8]  # numeric cells Excel can sum
    assert rows[-1][8] == pytest.approx(148.5 - 19.8)
    run = reports.run("fees", ReportFilters(start=DAY2, end=DAY3), format="xlsx")
    fees = list(openpyxl.load_workbook(run.path).active.iter_rows(min_row=2, values_only=True))
    assert [(r[2], r[4], r[6]) for r in fees] == [("alice", 2, 0.18), ("bob", 1, 0.18)]


def test_settlement_batches_members_and_withdrawals(hub, bank, store, clock, reports) -> None:
    store.configure_ledger({"default_plan": "D+1"})
    clock.at(DAY1 + timedelta(hours=10))
    paid(hub, bank, "S1", 1000, seller="alice")
    paid(hub, bank, "S2", 500, seller="alice")
    paid(hub, bank, "S3", 300, seller="bob")
    clock.at(DAY3 + timedelta(hours=1))
    assert store.ledger.settle().batches == 2
    withdrawal = store.ledger.withdraw("alice", Money(1200))
    store.ledger.mark_withdrawal_paid(withdrawal.id, note="bank ref 88")
    week = ReportFilters(start=DAY1, end=DAY1 + timedelta(days=7))
    batches = rows_of(reports.run("settlement-batches", week, language="en").path)
    assert batches[0][:5] == ["Batch", "Seller", "Currency", "Settles on", "Amount"]
    assert sorted((r[1], r[4], r[5]) for r in batches[1:]) == [
        ("alice", "15.00", "2"),
        ("bob", "3.00", "1"),
    ]
    members = rows_of(
        reports.run(
            "settlement-members",
            ReportFilters(start=DAY1, end=DAY1 + timedelta(days=7), seller="alice"),
        ).path
    )
    assert [(r[5], r[6]) for r in members[1:]] == [("S1", "10.00"), ("S2", "5.00")]
    paid_ = rows_of(
        reports.run(
            "withdrawals",
            ReportFilters(start=DAY1, end=DAY1 + timedelta(days=7), status="paid"),
        ).path
    )
    assert [(r[1], r[2], r[5], r[6]) for r in paid_[1:]] == [
        ("alice", "12.00", "paid", "bank ref 88")
    ]
    with pytest.raises(InvalidRequestError, match="unknown status 'done'"):
        reports.run("withdrawals", ReportFilters(start=DAY1, end=DAY2, status="done"))
