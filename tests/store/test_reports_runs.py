"""Runs: bad input refused with nothing recorded, failures recorded, passwords kept out,
encrypted files opened only by their password, rows streamed from a server-side cursor."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import msoffcrypto
import openpyxl
import pytest
import pyzipper
import sqlalchemy as sa
from reportkit import DAY, add_payments, csv_lines, day_filters

from payhub.errors import ConfigurationError, InvalidRequestError, ReportError
from payhub.reports import (
    Field,
    FieldKind,
    ReportFilters,
    Reports,
    ReportType,
    RunStatus,
    open_file,
    register_report_type,
)
from payhub.reports._builtin import PAYMENT_FIELDS, _payments_select
from payhub.reports._streaming import stream_rows
from payhub.store import Store
from payhub.store._schema import report_runs, report_templates

PASSWORD = "Tr0ub4dor&3-报表"


@pytest.fixture
def reports(store: Store, tmp_path: Path) -> Reports:
    return Reports(store, output_dir=tmp_path / "out")


def _runs(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(report_runs)).all())


# -- bad input: a clear error, nothing recorded --------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ReportFilters(start=DAY, end=None), "both ends"),  # type: ignore[arg-type]
        (lambda: ReportFilters(start=DAY, end=DAY), "empty or inverted"),
        (lambda: ReportFilters(start=DAY + timedelta(days=1), end=DAY), "empty or inverted"),
        (lambda: ReportFilters(start=DAY.replace(tzinfo=None), end=DAY), "time zone"),
        (lambda: ReportFilters(start=DAY, end=DAY + timedelta(1), timezone="Mars/Base"), "zone"),
        (
            lambda: ReportFilters(start=DAY, end=DAY + timedelta(1), min_amount=5, max_amount=1),
            "min",
        ),
    ],
)
def test_bad_ranges_are_refused(make: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        make()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ["out_trade_no", "card_key"]}, "unknown column 'card_key'"),
        ({"format": "pdf"}, "format 'pdf'"),
        ({"filters": day_filters(seller="alice")}, "cannot filter by seller"),
        ({"filters": day_filters(status="shipped")}, "unknown status 'shipped'"),
        ({"template": "nope"}, "no report template 'nope'"),
        ({"template": "refunds"}, "is for 'refunds'"),
        (
            {"filters": ReportFilters(start=DAY, end=DAY + timedelta(days=40))},
            "longer than 31 days",
        ),
        ({"part_rows": 2}, "more than one file of 2 rows"),
        ({"password": ""}, "password is empty"),
    ],
)
def test_bad_runs_are_refused_before_anything_is_recorded(
    store: Store, reports: Reports, kwargs: dict[str, Any], message: str
) -> None:
    add_payments(store, [{}, {}, {}])
    kwargs = dict(kwargs)
    filters = kwargs.pop("filters", day_filters())
    with pytest.raises(InvalidRequestError, match=message):
        reports.run("payments", filters, **kwargs)
    assert _runs(store) == []


def test_a_long_range_is_allowed_with_parts(store: Store, reports: Reports) -> None:
    add_payments(store, [{}])
    run = reports.run(
        "payments", ReportFilters(start=DAY, end=DAY + timedelta(days=40)), parts=True
    )
    assert run.status is RunStatus.SUCCEEDED
    assert run.rows == 1


def test_a_template_naming_a_missing_field_is_refused(store: Store, reports: Reports) -> None:
    with pytest.raises(InvalidRequestError, match="'card_key'"):
        reports.save_template("bad", "payments", ["out_trade_no", "card_key"])
    # a stored template whose field went away (edited in the database, an older version)
    with store.engine.begin() as conn:
        conn.execute(
            report_templates.insert().values(
                name="stale",
                report_type="payments",
                columns=[["gone", "旧列"]],
                created_at=store.now(),
            )
        )
    with pytest.raises(InvalidRequestError, match="template 'stale' names a field"):
        reports.run("payments", day_filters(), template="stale")
    assert _runs(store) == []


def test_an_output_directory_that_cannot_be_written_is_refused(
    store: Store, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    reports = Reports(store, output_dir=blocker / "exports")
    with pytest.raises(ReportError, match="not writable") as caught:
        reports.run("payments", day_filters())
    assert caught.value.code.name == "REPORT_FAILED"
    assert _runs(store) == []
    with pytest.raises(ConfigurationError, match="no output directory"):
        Reports(store).run("payments", day_filters())


# -- failures while writing: recorded failed, no file --------------------------------------


def _failing_after(rows: int) -> ReportType:
    def stream(conn: Any, filters: ReportFilters, yield_per: int) -> Iterator[Sequence[Any]]:
        for n, row in enumerate(stream_rows(conn, _payments_select(filters), yield_per)):
            if n == rows:
                raise OSError(28, "No space left on device", "part001.csv")
            yield row

    return ReportType(
        name="failing",
        title_zh="失败",
        title_en="Failing",
        fields=PAYMENT_FIELDS,
        filters=frozenset(),
        stream=stream,
        count=lambda conn, f: 0,
    )


def test_a_crash_while_writing_is_recorded_failed_and_leaves_no_file(
    store: Store, reports: Reports, tmp_path: Path
) -> None:
    add_payments(store, [{} for _ in range(30)])
    register_report_type(_failing_after(25), replace=True)
    with pytest.raises(ReportError, match="No space left on device"):
        reports.run("failing", day_filters(), parts=True, part_rows=10)
    (run,) = reports.runs()
    assert run.status is RunStatus.FAILED
    assert run.path is None
    assert run.sha256 is None
    assert run.finished_at is not None
    assert "No space left on device" in (run.error or "")
    assert list((tmp_path / "out").iterdir()) == []  # parts and temporary directory removed


# -- registration seam ----------------------------------------------------------------------


def test_other_packages_register_report_types(store: Store, reports: Reports) -> None:
    def stream(conn: Any, filters: ReportFilters, yield_per: int) -> Iterator[Sequence[Any]]:
        yield ("2026-01-05", "alipay-main", "missing_in_store", 1234, "CNY", "=evil")

    register_report_type(
        ReportType(
            name="recon_differences_demo",
            title_zh="对账差异",
            title_en="Reconciliation differences",
            fields=(
                Field("bill_date", FieldKind.TEXT, "账单日期", "Bill date"),
                Field("channel", FieldKind.TEXT, "渠道", "Channel"),
                Field("kind", FieldKind.TEXT, "差异类型", "Difference"),
                Field("amount", FieldKind.AMOUNT, "金额（元）", "Amount"),
                Field("currency", FieldKind.TEXT, "币种", "Currency"),
                Field("note", FieldKind.TEXT, "备注", "Note"),
            ),
            filters=frozenset({"channel"}),
            stream=stream,
            count=lambda conn, f: 1,
        ),
        replace=True,
    )
    run = reports.run("recon_differences_demo", day_filters(channel="alipay-main"))
    assert csv_lines(Path(run.path).read_bytes())[1] == (
        "2026-01-05,alipay-main,missing_in_store,12.34,CNY,'=evil"
    )
    with pytest.raises(InvalidRequestError, match="already registered"):
        register_report_type(replace(_failing_after(0), name="payments"))


# -- encryption -------------------------------------------------------------------------------


def test_xlsx_is_encrypted_the_way_excel_does_and_opens_only_with_its_password(
    store: Store, reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_payments(store, [{"amount_minor": 4200, "subject": "季卡"}])
    run = reports.run("payments", day_filters(), format="xlsx", password=PASSWORD)
    path = Path(run.path)
    assert path.read_bytes()[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE container
    with path.open("rb") as handle:
        office = msoffcrypto.OfficeFile(handle)
        # ECMA-376 agile encryption: what Excel 2010 and later write, and WPS reads
        assert office.is_encrypted()
        assert (office.format, office.type) == ("ooxml", "agile")
    plain = open_file(path, PASSWORD)[path.name]
    sheet = openpyxl.load_workbook(io.BytesIO(plain)).active
    assert (sheet["E2"].value, sheet["F2"].value) == ("季卡", 42)
    with pytest.raises(ReportError, match="wrong password"):
        open_file(path, "wrong")
    with pytest.raises(ReportError, match="wrong password"):
        reports.verify(run.id, "wrong")
    assert reports.verify(run.id, PASSWORD).id == run.id
    _password_is_nowhere(store, caplog, run.id)


def test_csv_goes_into_an_aes256_zip(
    store: Store, reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_payments(store, [{"amount_minor": 4200}])
    run = reports.run("payments", day_filters(), password=PASSWORD)
    path = Path(run.path)
    assert path.suffix == ".zip"
    with pyzipper.AESZipFile(path) as archive:
        (info,) = archive.infolist()
        assert info.flag_bits & 0x1  # encrypted
        archive.setpassword(PASSWORD.encode())
        assert csv_lines(archive.read(info.filename))[1].split(",")[5] == "42.00"
    import zipfile

    with zipfile.ZipFile(path) as plain, pytest.raises(NotImplementedError):
        plain.read(plain.namelist()[0], pwd=PASSWORD.encode())
    assert b"\x01\x99" in path.read_bytes()  # the AES extra field (0x9901)
    extra = path.read_bytes().split(b"\x01\x99", 1)[1]
    assert extra[6] == 3  # strength 3: AES-256
    with pytest.raises(ReportError, match="wrong password"):
        open_file(path, "wrong")
    _password_is_nowhere(store, caplog, run.id)


def test_the_password_may_come_from_the_environment(
    store: Store, reports: Reports, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYHUB_TEST_REPORT_PW", PASSWORD)
    add_payments(store, [{}, {}, {}])
    run = reports.run(
        "payments",
        day_filters(),
        format="xlsx",
        parts=True,
        part_rows=2,
        password={"$env": "PAYHUB_TEST_REPORT_PW"},
    )
    opened = open_file(Path(run.path), PASSWORD)
    assert len(opened) == 2
    assert all(data[:2] == b"PK" for data in opened.values())  # decrypted parts are XLSX zips
    with pytest.raises(ConfigurationError, match="'PAYHUB_NO_SUCH_VARIABLE' is not set"):
        reports.run("payments", day_filters(), password={"$env": "PAYHUB_NO_SUCH_VARIABLE"})


def _password_is_nowhere(store: Store, caplog: pytest.LogCaptureFixture, run_id: int) -> None:
    with store.engine.connect() as conn:
        stored = repr(conn.execute(sa.select(report_runs)).all())
    assert PASSWORD not in stored
    assert "'encrypted': True" in stored
    assert PASSWORD not in caplog.text
    assert "report run" in caplog.text  # the runs were logged, without it


# -- streaming from a server-side cursor ------------------------------------------------------


def test_postgresql_streams_through_a_server_side_cursor(
    database: Any, store: Store, reports: Reports
) -> None:
    if database.backend != "postgres":
        pytest.skip("server-side cursors are checked on PostgreSQL (pg_cursors)")
    add_payments(store, [{} for _ in range(50)])
    seen: list[str] = []

    def stream(conn: Any, filters: ReportFilters, yield_per: int) -> Iterator[Sequence[Any]]:
        for n, row in enumerate(stream_rows(conn, _payments_select(filters), yield_per)):
            if n == 10:
                open_cursors = conn.exec_driver_sql(
                    "SELECT string_agg(name || ':' || statement, ' | ') FROM pg_cursors"
                ).scalar()
                seen.append(open_cursors)
            yield row

    register_report_type(
        ReportType(
            name="payments_probe",
            title_zh="支付明细",
            title_en="Payments",
            fields=PAYMENT_FIELDS,
            filters=frozenset(),
            stream=stream,
            count=lambda c, f: 50,
        ),
        replace=True,
    )
    reports.yield_per = 7
    run = reports.run("payments_probe", day_filters(), format="xlsx")
    assert run.rows == 50
    # a named (server-side) cursor was open for the report's SELECT while rows were written
    assert len(seen) == 1
    assert "CURSOR FOR SELECT payhub_payments.out_trade_no" in seen[0]


def _session_limit(conn: sa.Connection) -> str:
    """The statement time limit of ``conn``'s session, as the database reports it."""
    if conn.dialect.name == "postgresql":
        return str(conn.exec_driver_sql("SHOW statement_timeout").scalar_one())
    if conn.dialect.name in ("mysql", "mariadb"):
        name = "max_statement_time" if conn.dialect.is_mariadb else "max_execution_time"  # type: ignore[attr-defined]
        return f"{float(conn.exec_driver_sql(f'SELECT @@SESSION.{name}').scalar_one()):g}"
    return "none"


def _limit_stream(conn: Any, filters: ReportFilters, yield_per: int) -> Iterator[Sequence[Any]]:
    yield (_session_limit(conn),)


def test_the_export_gets_its_own_statement_limit_and_payments_keep_theirs(
    store: Store, tmp_path: Path
) -> None:
    """A million sorted rows take longer than the store's 5 s statement limit to start
    streaming: the export's connection gets ``export_timeout``, and only it."""
    register_report_type(
        ReportType(
            name="test-session-limit",
            title_zh="限时",
            title_en="Limit",
            fields=(Field("limit", FieldKind.TEXT, "限时", "Limit"),),
            filters=frozenset(),
            stream=_limit_stream,
            count=lambda conn, filters: 1,
        ),
        replace=True,
    )
    reports = Reports(store, output_dir=tmp_path, export_timeout=timedelta(minutes=7))
    run = reports.run("test-session-limit", day_filters())
    (_, value) = csv_lines(Path(run.path or "").read_bytes())
    ordinary = store.run(_session_limit, readonly=True)
    expected = {"postgresql": ("7min", "5s"), "sqlite": ("none", "none")}
    if store.dialect in ("mysql", "mariadb"):
        mariadb = store.engine.dialect.is_mariadb  # type: ignore[attr-defined]
        expected[store.dialect] = ("420", "5") if mariadb else ("420000", "5000")
    assert (value, ordinary) == expected[store.dialect]
    with pytest.raises(ConfigurationError, match="export_timeout"):
        Reports(store, export_timeout=timedelta(0))
