"""``payhub reconcile``: run reconciliation, read and resolve its queue.

::

    payhub reconcile --config hub.json --channel alipay --date 2024-03-01
    payhub reconcile --config hub.json --all --from 2024-03-01 --to 2024-03-07 --json
    payhub reconcile --config hub.json --channel alipay --date 2024-03-01 --xlsx diffs.xlsx
    payhub reconcile list --url ... [--channel C] [--date D] [--all-statuses] [--json]
    payhub reconcile show ID --url ... [--json]
    payhub reconcile resolve ID --action ignore|adjust|create|replace|sync
                                --operator NAME --reason TEXT (--url ... | --config ...)
    payhub reconcile runs --url ... [--channel C] [--date D] [--json]

Every command exits 1 while differences it looked at remain open (a cron job
alerts on it), 0 when none do, 2 on a usage or configuration error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from payhub.errors import ConfigurationError, PayhubError
from payhub.recon import (
    REPORT_NAME,
    Reconciler,
    ReconConfig,
    RunResult,
    difference_rows,
    write_csv,
)
from payhub.reports import ReportFilters, Reports
from payhub.tz import SHANGHAI

__all__ = ["reconcile_app"]

reconcile_app = typer.Typer(
    help="Reconciliation (对账): bills against the store; the queue of differences.",
    add_completion=False,
)

_EXIT_OPEN = 1
_EXIT_USAGE = 2

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="PAYHUB_CONFIG", help="The hub configuration file (JSON).",
        exists=True, dir_okay=False,
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="PAYHUB_DATABASE_URL", help="The store's database URL."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _cli() -> Any:
    from payhub import cli  # noqa: PLC0415 - the shared helpers, without an import cycle

    return cli


def _parse_date(text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{what}: {text!r} is not a date like 2024-03-01") from None


@contextmanager
def _reconciler(url: str | None, config: Path | None) -> Iterator[Reconciler]:
    cli = _cli()
    if config is not None:
        settings = cli._load_config(config)
        recon = ReconConfig.from_config(settings.get("reconcile"))
        hub = cli._open_hub(config)
        try:
            yield Reconciler(hub, recon)
        finally:
            hub.close()
        return
    with cli._open_store(url, None) as store:
        yield Reconciler(None, store=store)


def _fail(exc: PayhubError) -> None:
    _cli()._fail_with(exc)


@reconcile_app.callback(invoke_without_command=True)
def reconcile(
    ctx: typer.Context,
    *,
    config: ConfigOpt = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="A channel account (repeatable).")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every configured channel.")] = False,
    day: Annotated[str | None, typer.Option("--date", help="The bill's day (yyyy-mm-dd).")] = None,
    first: Annotated[str | None, typer.Option("--from", help="First day of a range.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day (inclusive).")] = None,
    as_json: JsonOpt = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the open differences to this CSV file.")
    ] = None,
    xlsx_path: Annotated[
        Path | None,
        typer.Option(
            "--xlsx",
            help="Also write the open differences to this Excel file (a recorded report run, "
            "see payhub reports list).",
        ),
    ] = None,
) -> None:
    """Reconcile channels' bills of a day (or a range) with the store."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        _cli()._fail("reconcile needs --config (the hub: channels and store)", _EXIT_USAGE)
    if xlsx_path is not None and xlsx_path.suffix.lower() != ".xlsx":
        raise typer.BadParameter(f"--xlsx: {xlsx_path.name!r} does not end in .xlsx")
    days = _days(day, first, last)
    try:
        with _reconciler(None, config) as reconciler:
            names = list(reconciler.hub.channels) if every else list(channel or [])
            if not names:
                _cli()._fail("give --channel NAME (repeatable) or --all", _EXIT_USAGE)
            results = [_run(reconciler, name, d, quiet=as_json) for name in names for d in days]
            if csv_path is not None:
                rows = [
                    item
                    for name in names
                    for d in days
                    for item in reconciler.items(channel=name, bill_date=d)
                ]
                write_csv(csv_path, difference_rows(rows))
            if xlsx_path is not None:
                _export_xlsx(reconciler, xlsx_path, names, days, quiet=as_json)
    except PayhubError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        _summary(results)
    if not all(r.clean for r in results):
        raise typer.Exit(_EXIT_OPEN)


def _export_xlsx(
    reconciler: Reconciler, path: Path, names: list[str], days: list[date], *, quiet: bool
) -> None:
    """The open differences of ``days`` through the reports machinery (streamed, escaped,
    amounts numeric, recorded as a run), into ``path``. Several channels: all channels'."""
    start = datetime.combine(days[0], time(), SHANGHAI)
    end = datetime.combine(days[-1] + timedelta(days=1), time(), SHANGHAI)
    filters = ReportFilters(
        start=start, end=end, channel=names[0] if len(names) == 1 else None, status="open"
    )
    reports = Reports(reconciler.store, output_dir=path.parent, max_range=timedelta(days=367))
    run = reports.run(REPORT_NAME, filters, format="xlsx", file_stem=path.stem)
    if not quiet:
        Console(stderr=True).print(f"differences: {run.rows} row(s) in {run.path} (run {run.id})")


def _days(day: str | None, first: str | None, last: str | None) -> list[date]:
    single = _parse_date(day, "--date")
    start, end = _parse_date(first, "--from"), _parse_date(last, "--to")
    if single is not None and (start or end):
        raise typer.BadParameter("give --date, or --from and --to, not both")
    if single is not None:
        return [single]
    if start is None or end is None:
        raise typer.BadParameter("give --date D, or --from D1 --to D2")
    if end < start or (end - start).days > 366:
        raise typer.BadParameter("--to must be on or after --from, at most a year later")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _run(reconciler: Reconciler, channel: str, day: date, *, quiet: bool) -> RunResult:
    if quiet:
        return reconciler.run(channel, day)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{channel} {day}: 0 rows", total=None)

        def step(rows: int) -> None:
            bar.update(task, description=f"{channel} {day}: {rows:,} rows")

        return reconciler.run(channel, day, progress=step)


def _summary(results: list[RunResult]) -> None:
    table = Table(title="reconciliation")
    for name in ("channel", "date", "status", "rows", "matched", "differences", "open", "repaired"):
        table.add_column(name)
    for result in results:
        counts = dict(result.counts)
        matched = counts.pop("matched", 0)
        counts.pop("expected", None)
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
        table.add_row(
            result.channel,
            result.bill_date.isoformat(),
            result.status if result.error is None else f"{result.status}: {result.error}",
            str(result.rows),
            str(matched),
            shown,
            str(result.open),
            str(len(result.repaired)),
        )
    Console().print(table)


def _json_ready(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in record.items()
    }


@reconcile_app.command("list")
def list_items(
    *,
    url: UrlOpt = None,
    config: ConfigOpt = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Only this bill day.")] = None,
    every: Annotated[
        bool, typer.Option("--all-statuses", help="Resolved ones too (default: open).")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """The queue: differences waiting for a person (exit 1 while any is open)."""
    bill_date = _parse_date(day, "--date")
    try:
        with _reconciler(url, config) as reconciler:
            found = reconciler.items(
                channel=channel, bill_date=bill_date, status=None if every else "open", limit=limit
            )
            still_open = reconciler.open_count(channel, bill_date)
    except PayhubError as exc:
        _fail(exc)
    rows = list(difference_rows(found))
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"differences ({still_open} open)")
        shown = ("id", "channel", "bill_date", "kind", "status", "out_trade_no", "out_refund_no",
                 "bill_amount", "store_amount", "bill_fee", "expected_fee", "repairs")
        for name in shown:
            table.add_column(name)
        for row in rows:
            table.add_row(*(row[name] or "-" for name in shown))
        Console().print(table)
    if still_open:
        raise typer.Exit(_EXIT_OPEN)


@reconcile_app.command("show")
def show_item(
    item_id: Annotated[int, typer.Argument(help="The difference's id.")],
    *,
    url: UrlOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One difference, with its detail and every repair of it."""
    try:
        with _reconciler(url, config) as reconciler:
            record = dict(reconciler.item(item_id))
            record["repairs"] = [_json_ready(r) for r in reconciler.repairs(item_id)]
    except PayhubError as exc:
        _fail(exc)
    record = _json_ready(record)
    if as_json:
        typer.echo(json.dumps(record, ensure_ascii=False, indent=2))
    else:
        for key, value in record.items():
            typer.echo(f"{key}: {value}")


@reconcile_app.command("resolve")
def resolve_item(
    item_id: Annotated[int, typer.Argument(help="The difference's id (payhub reconcile list).")],
    *,
    action: Annotated[
        str, typer.Option(help="ignore, adjust, create, replace, or sync (asks the channel).")
    ],
    operator: Annotated[str, typer.Option(help="Who decides.")],
    reason: Annotated[str, typer.Option(help="Why: what was checked or done.")],
    url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Resolve one difference, audited with operator and reason."""
    try:
        with _reconciler(url, config) as reconciler:
            record = reconciler.resolve(item_id, action, operator=operator, reason=reason)
    except ConfigurationError as exc:
        _fail(exc)
    except PayhubError as exc:
        _cli()._fail(exc.message)
    typer.echo(f"difference {record['id']} ({record['kind']}): {record['status']}")


@reconcile_app.command("runs")
def list_runs(
    *,
    url: UrlOpt = None,
    config: ConfigOpt = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Only this bill day.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Stored runs, newest first: channel, day, status, rows, counts."""
    try:
        with _reconciler(url, config) as reconciler:
            found = reconciler.runs(channel, _parse_date(day, "--date"), limit)
    except PayhubError as exc:
        _fail(exc)
    rows = [_json_ready(dict(r)) for r in found]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in sorted((row["counts"] or {}).items()))
        typer.echo(
            "\t".join(
                (str(row["id"]), row["channel"], row["bill_date"], row["status"],
                 str(row["rows_read"]), counts or "-")
            )
        )
