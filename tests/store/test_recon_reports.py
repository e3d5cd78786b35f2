"""Reconciliation differences through the reports machinery: ``recon-differences``
as CSV/XLSX (``payhub reports run``, ``payhub reconcile --xlsx``), from a real
reconciliation of the sandbox's bills with planted differences."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path

import openpyxl
from test_recon_sandbox import Day, config, day, later, planted_day  # noqa: F401 - fixture
from typer.testing import CliRunner

from payhub._cli_recon import _export_xlsx
from payhub.cli_reports import reports_app
from payhub.recon import Reconciler
from payhub.reports import ReportFilters, Reports, RunStatus
from payhub.tz import SHANGHAI


def reconciled(day: Day) -> Reconciler:  # noqa: F811 - the fixture's name
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    reconciler.run(day.channel, day.today)
    return reconciler


def the_day(day: Day) -> ReportFilters:  # noqa: F811
    start = datetime.combine(day.today, time(), SHANGHAI)
    return ReportFilters(start=start, end=start + timedelta(days=1), status="open")


def test_open_differences_as_xlsx_with_numeric_amounts(day: Day, tmp_path: Path) -> None:  # noqa: F811
    reconciled(day)
    run = Reports(day.store, output_dir=tmp_path).run(
        "recon-differences", the_day(day), format="xlsx"
    )
    assert run.status is RunStatus.SUCCEEDED
    assert run.rows == 4
    sheet = openpyxl.load_workbook(run.path).active
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["差异编号", "支付渠道", "账单日期", "差异类型", "处理状态"]
    rows = {r[3]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {"missing_in_store", "fee_mismatch", "duplicate_row", "missing_at_channel"}
    fee = rows["fee_mismatch"]
    assert fee[5] == "RECON-2"
    assert isinstance(fee[0], str)  # the id is text
    assert fee[9:13] == (20, 20, 0.99, 0.12)  # numbers Excel can sum, in yuan
    assert fee[2] == day.today.isoformat()


def test_the_range_is_over_bill_days_and_status_filters(day: Day, tmp_path: Path) -> None:  # noqa: F811
    reconciled(day)
    reports = Reports(day.store, output_dir=tmp_path)
    following = the_day(day)
    following = ReportFilters(
        start=following.end, end=following.end + timedelta(days=1), status="open"
    )
    assert reports.run("recon-differences", following).rows == 0
    allday = the_day(day)
    everything = ReportFilters(start=allday.start, end=allday.end)
    assert reports.run("recon-differences", everything).rows == 5  # and RECON-4, repaired
    other = ReportFilters(start=allday.start, end=allday.end, channel="nowhere")
    assert reports.run("recon-differences", other).rows == 0


def test_payhub_reports_run_recon_differences(day: Day, tmp_path: Path) -> None:  # noqa: F811
    reconciled(day)
    url = day.store.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        reports_app,
        [
            "run",
            "recon-differences",
            "--url",
            url,
            "--from",
            day.today.isoformat(),
            "--to",
            (day.today + timedelta(days=1)).isoformat(),
            "--status",
            "open",
            "--format",
            "xlsx",
            "--out",
            str(tmp_path),
            "--json",
            "--lang",
            "en",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["rows"] == 4
    sheet = openpyxl.load_workbook(record["path"]).active
    assert sheet["J1"].value == "Bill amount"


def test_reconcile_xlsx_writes_the_named_file_as_a_recorded_run(
    day: Day,  # noqa: F811
    tmp_path: Path,
) -> None:
    reconciler = reconciled(day)
    target = tmp_path / "对账差异.xlsx"
    _export_xlsx(reconciler, target, [day.channel], [day.today], quiet=True)
    assert target.exists()
    [run] = Reports(day.store).runs()
    assert (run.path, run.rows, run.report_type) == (str(target), 4, "recon-differences")
    kinds = {
        r[3] for r in openpyxl.load_workbook(target).active.iter_rows(min_row=2, values_only=True)
    }
    assert "fee_mismatch" in kinds
