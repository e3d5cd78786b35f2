"""What a finance user opens: CSV and XLSX exactly as Excel and WPS need them."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from reportkit import DAY, add_payments, add_refund, csv_lines, day_filters, sheet_xml, zip_members

from payhub.reports import Reports, RunStatus, amount_text, escape_cell
from payhub.store import Store


@pytest.fixture
def reports(store: Store, tmp_path: Path) -> Reports:
    return Reports(store, output_dir=tmp_path / "out")


def test_csv_is_utf8_with_bom_crlf_and_chinese_headers(store: Store, reports: Reports) -> None:
    add_payments(store, [{"amount_minor": 12345, "refunded_minor": 45, "paid_at": DAY}])
    run = reports.run("payments", day_filters())
    assert run.status is RunStatus.SUCCEEDED
    data = Path(run.path).read_bytes()
    lines = csv_lines(data)
    assert lines[0].split(",")[:3] == ["商户订单号", "支付渠道", "渠道交易号"]
    row = next(csv.reader(io.StringIO(lines[1])))
    assert row[5:7] == ["123.45", "0.45"]  # yuan, exact, two decimals
    assert row[9] == row[10] == "2026-01-05 00:00:00"  # Shanghai wall clock, not UTC
    # the record describes the file exactly
    assert run.rows == 1
    assert run.parts == 1
    assert run.size_bytes == len(data)
    assert run.sha256 == hashlib.sha256(data).hexdigest()


def test_the_range_is_start_inclusive_end_exclusive_in_shanghai(
    store: Store, reports: Reports
) -> None:
    one_us = timedelta(microseconds=1)
    add_payments(
        store,
        [
            {"out_trade_no": "BEFORE", "created_at": DAY - one_us},
            {"out_trade_no": "AT-START", "created_at": DAY},
            {"out_trade_no": "LAST", "created_at": DAY + timedelta(days=1) - one_us},
            {"out_trade_no": "AT-END", "created_at": DAY + timedelta(days=1)},
        ],
    )
    run = reports.run("payments", day_filters())
    numbers = [line.split(",")[0] for line in csv_lines(Path(run.path).read_bytes())[1:]]
    assert numbers == ["AT-START", "LAST"]


def test_formula_injection_is_escaped_but_amounts_stay_numbers(
    store: Store, reports: Reports
) -> None:
    evil = ['=HYPERLINK("http://x")', "+1+2", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\tTAB", "\rCR"]
    add_payments(
        store,
        [
            {"subject": s, "created_at": DAY + timedelta(minutes=n)}
            for n, s in enumerate([*evil, "plain 月卡"])
        ],
    )
    add_refund(store, "T000000", amount_minor=500, reason="=1+1")
    run = reports.run("payments", day_filters(), columns=["subject", "amount"])
    rows = list(csv.reader(io.StringIO(Path(run.path).read_bytes()[3:].decode())))
    assert [r[0] for r in rows[1:]] == [*("'" + s for s in evil), "plain 月卡"]
    assert all(r[1] == "10.00" for r in rows[1:])
    assert escape_cell("-5") == "'-5"
    assert amount_text(-500, 2) == "-5.00"


def test_long_numeric_identifiers_stay_text(store: Store, reports: Reports) -> None:
    add_payments(store, [{"channel_trade_id": "2088102000007777123"}])
    run = reports.run("payments", day_filters(), columns=["channel_trade_id"])
    assert csv_lines(Path(run.path).read_bytes())[1] == "2088102000007777123\t"
    run = reports.run("payments", day_filters(), columns=["channel_trade_id"], format="xlsx")
    cell = openpyxl.load_workbook(run.path).active["A2"]
    assert (cell.value, cell.data_type) == ("2088102000007777123", "s")


def test_xlsx_amounts_are_exact_numbers_and_text_is_never_a_formula(
    store: Store, reports: Reports
) -> None:
    add_payments(
        store,
        [
            {"amount_minor": 1999, "subject": "=1+1", "paid_at": DAY},
            {"amount_minor": 123456789012, "currency": "CNY"},
            {"amount_minor": 1500, "currency": "JPY"},
        ],
    )
    run = reports.run("payments", day_filters(), format="xlsx", language="en")
    book = openpyxl.load_workbook(run.path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert header[:6] == [
        "Order number",
        "Channel",
        "Channel trade id",
        "Method",
        "Subject",
        "Amount",
    ]
    amounts = [sheet.cell(row=r, column=6) for r in (2, 3, 4)]
    assert [c.data_type for c in amounts] == ["n", "n", "n"]
    assert [Decimal(str(c.value)) for c in amounts] == [
        Decimal("19.99"),
        Decimal("1234567890.12"),
        Decimal("1500"),
    ]
    assert amounts[0].number_format == "0.00"
    assert amounts[2].number_format == "0"
    subject = sheet.cell(row=2, column=5)
    assert (subject.value, subject.data_type, subject.quotePrefix) == ("=1+1", "s", True)
    assert sheet.cell(row=2, column=11).value.isoformat() == "2026-01-05T00:00:00"
    # the cell text is the exact decimal, never a float's expansion
    xml = sheet_xml(Path(run.path).read_bytes())
    assert "<v>19.99</v>" in xml
    assert "<v>1234567890.12</v>" in xml
    assert "<f>" not in xml


def test_large_exports_are_split_into_parts_and_zipped(store: Store, reports: Reports) -> None:
    add_payments(store, [{} for _ in range(7)])
    seen: list[tuple[int, int]] = []
    run = reports.run(
        "payments",
        day_filters(),
        parts=True,
        part_rows=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (run.rows, run.parts) == (7, 3)
    assert run.path.endswith(".zip")
    members = zip_members(Path(run.path))
    assert sorted(members) == [Path(run.path).stem + f"_part00{n}.csv" for n in (1, 2, 3)]
    counts = [len(csv_lines(data)) - 1 for _, data in sorted(members.items())]
    assert counts == [3, 3, 1]
    assert seen[-1] == (7, 7)
    # nothing but the finished file in the directory: no temporary file left behind
    assert [p.name for p in Path(run.path).parent.iterdir()] == [Path(run.path).name]


def test_an_exactly_full_last_part_makes_no_empty_part(store: Store, reports: Reports) -> None:
    add_payments(store, [{} for _ in range(6)])
    run = reports.run("payments", day_filters(), parts=True, part_rows=3, format="xlsx")
    assert (run.rows, run.parts) == (6, 2)
    for data in zip_members(Path(run.path)).values():
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        assert len(list(book.active.iter_rows())) == 4


def test_refunds_report_with_filters(store: Store, reports: Reports) -> None:
    add_payments(store, [{}, {}, {"channel": "wechat-main"}])
    add_refund(store, "T000000", amount_minor=300)
    add_refund(store, "T000001", amount_minor=700, status="failed")
    add_refund(store, "T000002", amount_minor=900, channel="wechat-main")
    run = reports.run("refunds", day_filters(channel="alipay-main", status="succeeded"))
    lines = csv_lines(Path(run.path).read_bytes())
    assert len(lines) == 2
    assert lines[1].startswith("R-T000000,T000000,alipay-main,,3.00,CNY")
    run = reports.run("refunds", day_filters(min_amount=500, max_amount=900))
    assert run.rows == 2
    run = reports.run("payments", day_filters(currency="USD"))
    assert run.rows == 0
    assert len(csv_lines(Path(run.path).read_bytes())) == 1


def test_templates_choose_and_rename_columns(
    store: Store, reports: Reports, tmp_path: Path
) -> None:
    add_payments(store, [{"amount_minor": 250}])
    made = reports.save_template(
        "finance-daily", "payments", [("out_trade_no", "订单号"), "amount", ("status", "State")]
    )
    assert made.columns == (
        ("out_trade_no", "订单号"),
        ("amount", "订单金额（元）"),
        ("status", "State"),
    )
    run = reports.run("payments", day_filters(), template="finance-daily")
    assert csv_lines(Path(run.path).read_bytes()) == [
        "订单号,订单金额（元）,State",
        "T000000,2.50,paid",
    ]
    names = {t.name for t in reports.templates("payments")}
    assert {"payments", "payments.en", "finance-daily"} <= names
    # the downloadable template file: its header row
    path = reports.write_template_file("finance-daily", tmp_path / "t.xlsx", "xlsx")
    assert [c.value for c in openpyxl.load_workbook(path).active[1]] == [
        "订单号",
        "订单金额（元）",
        "State",
    ]
    reports.delete_template("finance-daily")
    assert "finance-daily" not in {t.name for t in reports.templates()}


def test_a_time_outside_the_range_gets_its_own_offset_in_a_summer_time_zone(
    store: Store, reports: Reports
) -> None:
    """The range keeps one offset, a time in the row does not have to: Berlin's clocks
    go back at 01:00 UTC on 25 October 2026 (CEST +2 -> CET +1)."""
    from datetime import UTC, datetime

    from payhub.reports import ReportFilters

    created = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)  # 23:00 CEST, inside the range
    paid = datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # 03:30 CET, after the change
    add_payments(store, [{"created_at": created, "paid_at": paid}])
    summer_day = ReportFilters(
        start=datetime(2026, 10, 23, 22, 0, tzinfo=UTC),  # 24 October, 00:00 CEST
        end=datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
        timezone="Europe/Berlin",
    )
    run = reports.run("payments", summer_day, language="en")
    row = next(csv.reader(io.StringIO(csv_lines(Path(run.path).read_bytes())[1])))
    assert row[9:11] == ["2026-10-24 23:00:00", "2026-10-25 03:30:00"]


def test_csv_times_are_local_across_a_summer_time_change_and_in_a_fixed_zone() -> None:
    """The fast path (one offset for the whole range) only where the zone keeps one."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from payhub.reports import FieldKind
    from payhub.reports._types import Field
    from payhub.reports._writers import Column, csv_row_function, fixed_offset

    field = Field("at", FieldKind.TIME, "时间", "At")
    columns = [Column(0, field, "At")]
    berlin, shanghai = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert fixed_offset(berlin, *march) is None  # clocks go forward on 29 March
    assert fixed_offset(shanghai, *march) == timedelta(hours=8)
    cells = csv_row_function(columns, (field,), berlin, march)
    assert cells([datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)]) == ["2026-03-29 01:59:59"]
    assert cells([datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC)]) == ["2026-03-29 03:00:00"]
    fixed = csv_row_function(columns, (field,), shanghai, march)
    assert fixed([datetime(2026, 3, 29, 16, 0, 0, 999, tzinfo=UTC)]) == ["2026-03-30 00:00:00"]
    # a time given in another zone is converted, not shifted by the fixed offset
    tokyo = datetime(2026, 3, 30, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert fixed([tokyo]) == ["2026-03-30 08:00:00"]


def test_csv_cells_equal_the_plain_rules_for_every_kind_of_value() -> None:
    """The row function's inline shortcuts (common ids, text, amounts, times) give what
    the plain rules give: escape_cell, the trailing tab of long all-digit ids,
    amount_text, and astimezone in the report's zone."""
    import random
    from datetime import UTC, datetime, timezone
    from zoneinfo import ZoneInfo

    from payhub.money import CURRENCY_EXPONENTS
    from payhub.reports import FieldKind
    from payhub.reports._types import Field
    from payhub.reports._writers import Column, csv_row_function
    from payhub.tz import SHANGHAI

    kinds = [FieldKind.TEXT, FieldKind.ID, FieldKind.TEXT, FieldKind.TIME, FieldKind.AMOUNT]
    kinds += [FieldKind.INTEGER, FieldKind.AMOUNT]
    fields = tuple(
        Field("currency" if n == 2 else f"f{n}", kind, "h", "h") for n, kind in enumerate(kinds)
    )
    columns = [Column(n, f, "h") for n, f in enumerate(fields)]
    texts: list[object] = [None, "", "月卡", "=1+2", "+1", "-1", "@a", "\tx", "\rx", "'x"]
    texts += [" =x", 'a,"b"']
    ids: list[object] = [*texts, "B000000000001", "2088102122524333", "12345678901"]
    ids += ["123456789012"]
    ids += ["=2088102122524333", "-2088102122524333", "²³⁴⁵⁶⁷⁸⁹¹²³⁴", 0, 7, -7, 10**11 - 1, 10**11]
    amounts = [None, 0, 5, 99, 100, 12345, -5, -99, -100, -12345, 10**15]
    zones = [SHANGHAI, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")]
    zones += [ZoneInfo("Asia/Kathmandu"), timezone(timedelta(hours=-3, minutes=-30))]
    span = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    rnd = random.Random(16)

    def text(value: object) -> str:
        return "" if value is None else escape_cell(str(value))

    def ident(value: object) -> str:
        if value is None:
            return ""
        t = str(value)
        return escape_cell(t + "\t" if len(t) > 11 and t.isdigit() else t)

    for tz in zones:
        cells = csv_row_function(columns, fields, tz, span)
        for _ in range(3000):
            at = span[0] + timedelta(seconds=rnd.randrange(-200 * 86400, 200 * 86400))
            at += timedelta(microseconds=rnd.randrange(10**6))
            currency = rnd.choice(["CNY", "JPY"])
            row = (rnd.choice(texts), rnd.choice(ids), currency, at, rnd.choice(amounts))
            row += (rnd.choice([None, 0, 12]), rnd.choice(amounts))
            exponent = CURRENCY_EXPONENTS[currency]
            assert cells(row) == [
                text(row[0]),
                ident(row[1]),
                currency,
                at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                "" if row[4] is None else amount_text(row[4], exponent),
                "" if row[5] is None else str(row[5]),
                "" if row[6] is None else amount_text(row[6], exponent),
            ], (tz, row)
