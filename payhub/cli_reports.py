"""``payhub reports``: run, list and show report runs; templates; schedules; run-due.

::

    payhub reports types                                   the report types and their fields
    payhub reports run payments --from 2026-01-01 --to 2026-02-01 --format xlsx --out DIR
    payhub reports list [--status failed] [--json]         runs, newest first
    payhub reports show ID [--json]                        one run
    payhub reports verify ID [--password-env NAME]         file unchanged, password opens it
    payhub reports templates list|show|add|delete|download
    payhub reports schedules list|add|enable|disable
    payhub reports run-due                                 every due schedule, once per period

Registered in :mod:`payhub.cli` with one line. Passwords come from an
environment variable (``--password-env``) or a prompt (``--password-prompt``),
never from the command line (it would land in the shell's history and ``ps``).
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import payhub.recon  # noqa: F401 - registers the recon-differences report type
from payhub.errors import ConfigurationError, InvalidRequestError, PayhubError
from payhub.money import Money
from payhub.reports import ReportFilters, ReportRun, Reports, RunStatus, report_types, zone
from payhub.store import Store

__all__ = ["reports_app"]

reports_app = typer.Typer(
    help="Reports and exports: payments and refunds as CSV or Excel, templates, schedules.",
    no_args_is_help=True,
)
templates_app = typer.Typer(help="Column templates.", no_args_is_help=True)
schedules_app = typer.Typer(help="Scheduled exports.", no_args_is_help=True)
reports_app.add_typer(templates_app, name="templates")
reports_app.add_typer(schedules_app, name="schedules")

_EXIT_FAILED = 1
_EXIT_USAGE = 2

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="PAYHUB_DATABASE_URL", help="The store's database URL."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="PAYHUB_CONFIG",
        help="Take the store URL (and a 'reports' section) from this hub configuration file.",
        exists=True,
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LeaseOption = Annotated[
    int | None,
    typer.Option(
        "--lease",
        min=1,
        help="Seconds a run may go without a heartbeat before another process reclaims it "
        "(default: the config's reports.lease_seconds, else 300).",
    ),
]
PasswordEnv = Annotated[
    str | None,
    typer.Option("--password-env", help="Encrypt with the password in this environment variable."),
]
PasswordPrompt = Annotated[
    bool, typer.Option("--password-prompt", help="Ask for the password (not echoed).")
]


def _fail(message: str, code: int = _EXIT_FAILED) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _fail_with(exc: PayhubError) -> NoReturn:
    usage = isinstance(exc, ConfigurationError | InvalidRequestError)
    _fail(exc.message, _EXIT_USAGE if usage else _EXIT_FAILED)


def _open(
    url: str | None, config: Path | None, out: Path | None = None, lease: int | None = None
) -> Reports:
    section: dict[str, Any] = {}
    if config is not None:
        try:
            loaded = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _fail(f"cannot read {config}: {exc}", _EXIT_USAGE)
        if not isinstance(loaded, dict):
            _fail(f"{config}: the configuration must be a JSON object", _EXIT_USAGE)
        section = dict(loaded.get("reports") or {})
        if not url:
            store_section = loaded.get("store")
            if not store_section:
                _fail(f"{config}: no 'store' section", _EXIT_USAGE)
            store = Store.from_config(store_section)
            return Reports(
                store, output_dir=out or section.get("output_dir"), lease=_lease(lease, section)
            )
    if not url:
        _fail("give --url (or PAYHUB_DATABASE_URL) or --config", _EXIT_USAGE)
    return Reports(
        Store(url), output_dir=out or section.get("output_dir"), lease=_lease(lease, section)
    )


def _lease(seconds: int | None, section: dict[str, Any]) -> timedelta:
    chosen = seconds if seconds is not None else section.get("lease_seconds", 300)
    if type(chosen) is not int or chosen < 1:
        _fail("reports.lease_seconds must be a whole number of seconds, 1 or more", _EXIT_USAGE)
    return timedelta(seconds=chosen)


def _when(text: str, tz_name: str, what: str) -> datetime:
    """``2026-01-01`` (midnight in the zone), ``2026-01-01T08:00`` or with an offset."""
    tz = zone(tz_name)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{what} {text!r} is not a date (2026-01-31) or time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _password(env: str | None, prompt: bool) -> object:
    if env and prompt:
        _fail("give --password-env or --password-prompt, not both", _EXIT_USAGE)
    if env:
        if env not in os.environ:
            _fail(f"environment variable {env!r} is not set", _EXIT_USAGE)
        return {"$env": env}
    if prompt:
        return typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return None


def _amount(text: str | None, currency: str | None) -> int | None:
    if text is None:
        return None
    return Money.parse(text, currency or "CNY").minor


def _run_table(runs: list[ReportRun]) -> Table:
    table = Table("id", "type", "status", "range", "rows", "parts", "file / error")
    for run in runs:
        filters = run.parameters.get("filters", {})
        span = f"{filters.get('start', '?')[:19]} → {filters.get('end', '?')[:19]}"
        table.add_row(
            str(run.id),
            run.report_type,
            run.status.value,
            span,
            "-" if run.rows is None else str(run.rows),
            "-" if run.parts is None else str(run.parts),
            run.error if run.status is RunStatus.FAILED else (run.path or "-"),
        )
    return table


def _print_runs(runs: list[ReportRun], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in runs], ensure_ascii=False, indent=2))
    else:
        Console().print(_run_table(runs))


@reports_app.command("types")
def types_(as_json: JsonOption = False) -> None:
    """The report types, the filters each takes and its fields."""
    kinds = report_types()
    if as_json:
        data = {
            name: {
                "title_zh": k.title_zh,
                "title_en": k.title_en,
                "filters": sorted(k.filters),
                "fields": [[f.key, f.kind.value, f.zh, f.en] for f in k.fields],
            }
            for name, k in sorted(kinds.items())
        }
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table("type", "title", "filters", "fields")
    for name, k in sorted(kinds.items()):
        table.add_row(
            name, k.title_zh, ", ".join(sorted(k.filters)), ", ".join(f.key for f in k.fields)
        )
    Console().print(table)


@reports_app.command("run")
def run(
    report_type: Annotated[str, typer.Argument(help="payments, refunds, … (payhub reports types)")],
    *,
    start: Annotated[str, typer.Option("--from", help="Start, inclusive: 2026-01-01 or a time.")],
    end: Annotated[str, typer.Option("--to", help="End, exclusive: 2026-02-01 or a time.")],
    url: UrlOption = None,
    config: ConfigOption = None,
    timezone: Annotated[str, typer.Option("--tz", help="Time zone of dates and of the file.")] = (
        "Asia/Shanghai"
    ),
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="Output directory.")] = None,
    template: Annotated[str | None, typer.Option(help="A column template's name.")] = None,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated fields instead of a template.")
    ] = None,
    language: Annotated[str, typer.Option("--lang", help="Headers: zh or en.")] = "zh",
    seller: Annotated[str | None, typer.Option()] = None,
    account_type: Annotated[str | None, typer.Option("--account-type")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    currency: Annotated[str | None, typer.Option()] = None,
    min_amount: Annotated[str | None, typer.Option("--min-amount", help="In yuan: 10.00")] = None,
    max_amount: Annotated[str | None, typer.Option("--max-amount", help="In yuan.")] = None,
    parts: Annotated[bool, typer.Option("--parts", help="Allow several part files, zipped.")] = (
        False
    ),
    part_rows: Annotated[int | None, typer.Option("--part-rows", help="Rows per part.")] = None,
    lease: LeaseOption = None,
    password_env: PasswordEnv = None,
    password_prompt: PasswordPrompt = False,
    as_json: JsonOption = False,
) -> None:
    """Run a report now: filter, write the file (with a progress bar), record the run."""
    password = _password(password_env, password_prompt)
    console = Console(stderr=True)
    try:
        filters = ReportFilters(
            start=_when(start, timezone, "--from"),
            end=_when(end, timezone, "--to"),
            timezone=timezone,
            seller=seller,
            account_type=account_type,
            channel=channel,
            status=status,
            currency=currency,
            min_amount=_amount(min_amount, currency),
            max_amount=_amount(max_amount, currency),
        )
        reports = _open(url, config, out, lease)
        with reports.store:
            bar = (TextColumn(report_type), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*bar, console=console, transient=True) as progress:
                task = progress.add_task(report_type, total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                record = reports.run(
                    report_type,
                    filters,
                    format=fmt,
                    template=template,
                    columns=None if columns is None else [c.strip() for c in columns.split(",")],
                    language=language,
                    password=password,
                    parts=parts,
                    part_rows=part_rows,
                    progress=advance,
                )
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        typer.echo(json.dumps(record.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(
            f"run {record.id} {record.status.value}: {record.rows} row(s), "
            f"{record.parts} part(s), {record.size_bytes} bytes\n{record.path}\n"
            f"sha256 {record.sha256}"
        )


@reports_app.command("list")
def list_(
    *,
    url: UrlOption = None,
    config: ConfigOption = None,
    status: Annotated[str | None, typer.Option(help="pending, running, succeeded, failed")] = None,
    report_type: Annotated[str | None, typer.Option("--type")] = None,
    schedule: Annotated[str | None, typer.Option(help="Only this schedule's runs.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonOption = False,
) -> None:
    """Report runs, newest first."""
    try:
        reports = _open(url, config)
        with reports.store:
            found = reports.runs(
                status=status, report_type=report_type, schedule=schedule, limit=limit
            )
    except (PayhubError, ValueError) as exc:
        _fail(getattr(exc, "message", str(exc)), _EXIT_USAGE)
    _print_runs(found, as_json)


@reports_app.command("show")
def show(
    run_id: Annotated[int, typer.Argument()],
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One run: parameters, status, file, rows, size, SHA-256 or error."""
    try:
        reports = _open(url, config)
        with reports.store:
            record = reports.get_run(run_id)
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        typer.echo(json.dumps(record.to_json(), ensure_ascii=False, indent=2))
        return
    for key, value in record.to_json().items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        typer.echo(f"{key:13} {'-' if value is None else shown}")


@reports_app.command("verify")
def verify(
    run_id: Annotated[int, typer.Argument()],
    url: UrlOption = None,
    config: ConfigOption = None,
    password_env: PasswordEnv = None,
    password_prompt: PasswordPrompt = False,
) -> None:
    """Check a run's file: unchanged (SHA-256) and, if encrypted, opened by the password."""
    password = _password(password_env, password_prompt) if password_env else None
    if password_prompt:
        password = typer.prompt("password", hide_input=True)
    try:
        reports = _open(url, config)
        with reports.store:
            record = reports.verify(run_id, password)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"run {record.id}: {record.path} is intact")


@reports_app.command("run-due")
def run_due(
    url: UrlOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    lease: LeaseOption = None,
) -> None:
    """Run every due schedule once per period (safe from several processes at once).
    First reclaims runs whose process died (failed, their period run again).
    Exits 1 when a run failed."""
    try:
        reports = _open(url, config, lease=lease)
        with reports.store:
            done = reports.run_due()
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        _print_runs(done, True)
    elif not done:
        typer.echo("nothing due")
    else:
        _print_runs(done, False)
    if any(r.status is RunStatus.FAILED for r in done):
        raise typer.Exit(_EXIT_FAILED)


# -- templates ---------------------------------------------------------------


@templates_app.command("list")
def templates_list(
    url: UrlOption = None,
    config: ConfigOption = None,
    report_type: Annotated[str | None, typer.Option("--type")] = None,
    as_json: JsonOption = False,
) -> None:
    """Built-in and user-defined templates."""
    try:
        reports = _open(url, config)
        with reports.store:
            found = reports.templates(report_type)
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        typer.echo(json.dumps([t.to_json() for t in found], ensure_ascii=False, indent=2))
        return
    table = Table("name", "type", "built in", "columns")
    for t in found:
        table.add_row(
            t.name, t.report_type, "yes" if t.builtin else "no", ", ".join(h for _, h in t.columns)
        )
    Console().print(table)


@templates_app.command("show")
def templates_show(
    name: Annotated[str, typer.Argument()], url: UrlOption = None, config: ConfigOption = None
) -> None:
    """A template as JSON (edit it and ``add --from-file`` it under a new name)."""
    try:
        reports = _open(url, config)
        with reports.store:
            found = reports.template(name)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))


@templates_app.command("add")
def templates_add(
    name: Annotated[str, typer.Argument()],
    *,
    report_type: Annotated[str | None, typer.Option("--type")] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Comma-separated field or field=header: out_trade_no=订单号,amount"),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="A template JSON (templates show).")
    ] = None,
    language: Annotated[str, typer.Option("--lang")] = "zh",
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Define a template: its report type and columns, in order."""
    spec: list[str | tuple[str, str]] = []
    if from_file is not None:
        try:
            data = json.loads(from_file.read_text(encoding="utf-8"))
            report_type = report_type or data["report_type"]
            spec = [(str(k), str(h)) for k, h in data["columns"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _fail(f"{from_file}: not a template file ({exc})", _EXIT_USAGE)
    elif columns:
        for item in columns.split(","):
            key, _, header = item.strip().partition("=")
            spec.append((key, header) if header else key)
    if not report_type or not spec:
        _fail("give --type and --columns, or --from-file", _EXIT_USAGE)
    try:
        reports = _open(url, config)
        with reports.store:
            made = reports.save_template(name, report_type, spec, language=language)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"template {made.name} ({made.report_type}): {len(made.columns)} column(s)")


@templates_app.command("delete")
def templates_delete(
    name: Annotated[str, typer.Argument()], url: UrlOption = None, config: ConfigOption = None
) -> None:
    """Delete a user-defined template."""
    try:
        reports = _open(url, config)
        with reports.store:
            reports.delete_template(name)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"template {name} deleted")


@templates_app.command("download")
def templates_download(
    name: Annotated[str, typer.Argument()],
    out: Annotated[Path, typer.Option("--out", help="The file to write.")],
    fmt: Annotated[str, typer.Option("--format")] = "xlsx",
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the template's header row as an XLSX or CSV file."""
    if fmt not in ("csv", "xlsx"):
        _fail("--format is csv or xlsx", _EXIT_USAGE)
    try:
        reports = _open(url, config)
        with reports.store:
            path = reports.write_template_file(name, out, fmt)
    except PayhubError as exc:
        _fail_with(exc)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(str(path))


# -- schedules ---------------------------------------------------------------


@schedules_app.command("list")
def schedules_list(
    url: UrlOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Scheduled exports and when each runs next."""
    try:
        reports = _open(url, config)
        with reports.store:
            found = reports.schedules()
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in found], ensure_ascii=False, indent=2))
        return
    table = Table("name", "type", "when", "format", "next run (UTC)", "directory", "enabled")
    for s in found:
        when = f"{s.frequency} {s.at_time}" + (f" day {s.day}" if s.day else "")
        table.add_row(
            s.name,
            s.report_type,
            f"{when} {s.timezone}",
            s.format + (" (encrypted)" if s.password_env else ""),
            s.next_run_at.isoformat(timespec="minutes"),
            s.output_dir,
            "yes" if s.enabled else "no",
        )
    Console().print(table)


@schedules_app.command("add")
def schedules_add(
    name: Annotated[str, typer.Argument()],
    *,
    report_type: Annotated[str, typer.Option("--type")],
    frequency: Annotated[str, typer.Option(help="daily, weekly or monthly")],
    out: Annotated[Path, typer.Option("--out", help="Directory the files go into.")],
    at_time: Annotated[str, typer.Option("--at", help="HH:MM in the time zone.")] = "01:00",
    day: Annotated[int | None, typer.Option(help="weekly: 1 (Mon) to 7; monthly: 1 to 28")] = None,
    timezone: Annotated[str, typer.Option("--tz")] = "Asia/Shanghai",
    fmt: Annotated[str, typer.Option("--format")] = "csv",
    template: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    currency: Annotated[str | None, typer.Option()] = None,
    seller: Annotated[str | None, typer.Option()] = None,
    account_type: Annotated[str | None, typer.Option("--account-type")] = None,
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", help="Delete files older than this.")
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", help="Encrypt with the password in this variable."),
    ] = None,
    part_rows: Annotated[int | None, typer.Option("--part-rows")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Schedule an export of the previous day, week or month."""
    narrowing = {
        k: v
        for k, v in {
            "channel": channel,
            "status": status,
            "currency": currency,
            "seller": seller,
            "account_type": account_type,
        }.items()
        if v is not None
    }
    try:
        reports = _open(url, config)
        with reports.store:
            made = reports.add_schedule(
                name,
                report_type,
                frequency=frequency,
                output_dir=out,
                at_time=at_time,
                day=day,
                timezone=timezone,
                filters=narrowing,
                template=template,
                format=fmt,
                retention_days=retention_days,
                password_env=password_env,
                part_rows=part_rows,
            )
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"schedule {made.name}: next run {made.next_run_at.isoformat(timespec='minutes')}")


def _enable(name: str, enabled: bool, url: str | None, config: Path | None) -> None:
    try:
        reports = _open(url, config)
        with reports.store:
            reports.set_schedule_enabled(name, enabled)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"schedule {name} {'enabled' if enabled else 'disabled'}")


@schedules_app.command("enable")
def schedules_enable(
    name: Annotated[str, typer.Argument()], url: UrlOption = None, config: ConfigOption = None
) -> None:
    """Run the schedule again from its next run."""
    _enable(name, True, url, config)


@schedules_app.command("disable")
def schedules_disable(
    name: Annotated[str, typer.Argument()], url: UrlOption = None, config: ConfigOption = None
) -> None:
    """Stop running the schedule (its runs and files stay)."""
    _enable(name, False, url, config)
