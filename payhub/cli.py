"""The ``payhub`` command.

::

    payhub db upgrade --url sqlite:///shop.db      create or migrate the store
    payhub db current --url ...                    the store's schema revision
    payhub sync --config hub.json --older-than 10m recover lost notifications
    payhub events dispatch --config hub.json       deliver undispatched events
    payhub events list --config hub.json --pending list outbox events
    payhub anomalies list --url ...                open anomalies (duplicates, held refunds…)
    payhub anomalies resolve ID --operator NAME --reason TEXT   close one, audited
    payhub reviews list|approve|decline -c hub.json  the risk review queue
    payhub health -c hub.json [--json] [--alert]   the backlog; exit 0/1/2/3
    payhub metrics -c hub.json --port 9464         Prometheus metrics

A hub configuration file is JSON: ``{"store": {"url": ...}, "channels": {...},
"events": {"handlers": {"payment.succeeded": "shop.tasks:deliver"}}}``; secrets
in it may be ``{"$env": NAME}`` or ``{"$file": PATH}`` references.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from payhub.errors import ConfigurationError, PayhubError
from payhub.hub import PayHub, SyncReport
from payhub.store import Store

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "app", "main", "parse_duration"]

app = typer.Typer(
    name="payhub",
    help="payhub: the payment store, lost-notification recovery and outbox events.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The payment store's database.", no_args_is_help=True)
events_app = typer.Typer(help="Outbox events.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
anomalies_app = typer.Typer(
    help="Anomalies: duplicate and late payments, mismatches, held refunds, odd times.",
    no_args_is_help=True,
)
app.add_typer(anomalies_app, name="anomalies")

_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)

#: Exit codes, as docs/cli.md lists them.
EXIT_OK = 0
#: the work failed: a database or channel error, or some items could not be done
EXIT_FAILED = 1
#: the command line or the configuration is wrong
EXIT_USAGE = 2

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="PAYHUB_CONFIG",
        help="The hub configuration file (JSON).",
        exists=True,
        dir_okay=False,
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="PAYHUB_DATABASE_URL", help="The store's database URL."),
]
OptionalConfig = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="PAYHUB_CONFIG",
        help="Take the store URL from this hub configuration file.",
        exists=True,
        dir_okay=False,
    ),
]


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1h30m"``: every number needs its unit.

    A bare number is refused rather than guessed (``10`` meant seconds to the
    code and minutes to the operator who typed it).
    """
    text = text.strip()
    if text.isdigit():
        raise typer.BadParameter(
            f"{text!r} has no unit: write {text}s, {text}m, {text}h or {text}d"
        )
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 10m, 2h, 1d")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _fail_with(exc: PayhubError) -> NoReturn:
    """A configuration error exits 2 (fix the file or the command line); any other 1."""
    _fail(exc.message, EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED)


def _load_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}", EXIT_USAGE)
    if not isinstance(config, dict):
        _fail(f"{path}: the configuration must be a JSON object", EXIT_USAGE)
    return config


def _open_hub(path: Path) -> PayHub:
    """The hub of a configuration file (it owns, and closes, its store)."""
    config = _load_config(path)
    if not config.get("store"):
        _fail(f"{path}: no 'store' section: this command needs the payment store", EXIT_USAGE)
    return PayHub.from_config(config)


def _open_store(url: str | None, config: Path | None) -> Store:
    if url:
        return Store(url)
    if config is not None:
        section = _load_config(config).get("store")
        if not section:
            _fail(f"{config}: no 'store' section", EXIT_USAGE)
        return Store.from_config(section)
    _fail("give --url (or PAYHUB_DATABASE_URL) or --config", EXIT_USAGE)


@db_app.command("upgrade")
def db_upgrade(
    url: UrlOption = None,
    config: OptionalConfig = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create the store's tables, or migrate them to the newest revision.

    Never downgrades: a target older than the database's revision is refused.
    """
    try:
        with _open_store(url, config) as store:
            _check_target(store.current_revision(), revision)
            store.upgrade(revision)
            current = store.current_revision()
            typer.echo(f"{store.url}: at revision {current}")
    except PayhubError as exc:
        _fail_with(exc)


def _check_target(current: str | None, target: str) -> None:
    """Refuse an unknown revision (exit 2), and one the database is already past (exit 1)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - alembic only when migrating
    from alembic.util import CommandError  # noqa: PLC0415

    from payhub.store._migrate import alembic_config  # noqa: PLC0415

    scripts = ScriptDirectory.from_config(alembic_config())
    if target == "base":  # the empty schema: below every revision
        wanted = None
    else:
        try:
            wanted = scripts.get_revision(target)
        except CommandError:
            wanted = None
        if wanted is None:
            heads = ", ".join(scripts.get_heads())
            _fail(f"unknown revision {target!r} (the newest is {heads})", EXIT_USAGE)
    if current is None or (wanted is not None and wanted.revision == current):
        return
    behind = {rev.revision for rev in scripts.iterate_revisions(current, "base")}
    if wanted is None or wanted.revision in behind:
        _fail(
            f"the database is at revision {current}, ahead of {target}: "
            "payhub never downgrades a store; nothing was changed",
            EXIT_FAILED,
        )


@db_app.command("current")
def db_current(url: UrlOption = None, config: OptionalConfig = None) -> None:
    """Show the store's schema revision (none before the first upgrade)."""
    try:
        with _open_store(url, config) as store:
            typer.echo(store.current_revision() or "none")
    except PayhubError as exc:
        _fail_with(exc)


@app.command("sync")
def sync(
    config: ConfigOption,
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="Only payments and refunds pending at least this long."),
    ] = "10m",
    limit: Annotated[
        int | None, typer.Option(help="At most this many payments (and as many refunds).")
    ] = None,
) -> None:
    """Query the channels for payments and refunds still pending; apply their answers (防掉单)."""
    age = parse_duration(older_than)
    console = Console(stderr=True)
    try:
        with _open_hub(config) as hub:
            store = hub.store
            assert store is not None
            total = len(store.pending_payments(age, limit=limit))
            columns = (
                TextColumn("syncing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("sync", total=total)
                report = hub.sync_pending(
                    age, limit=limit, progress=lambda _: progress.advance(task)
                )
            undelivered = _undelivered_events(hub, report)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"checked {report.checked} pending payment(s), {len(report.changed)} changed")
    for out_trade_no, state in sorted(report.changed.items()):
        typer.echo(f"  {out_trade_no}\t{state.value}")
    for out_trade_no, error in sorted(report.errors.items()):
        console.print(f"[yellow]{out_trade_no}[/yellow]: {error}", highlight=False)
    typer.echo(
        f"checked {report.refunds_checked} pending refund(s), "
        f"{len(report.refunds_changed)} changed"
    )
    for out_refund_no, refund_state in sorted(report.refunds_changed.items()):
        typer.echo(f"  refund {out_refund_no}\t{refund_state.value}")
    for out_refund_no, error in sorted(report.refund_errors.items()):
        console.print(f"[yellow]refund {out_refund_no}[/yellow]: {error}", highlight=False)
    if undelivered:
        console.print(
            f"[yellow]{undelivered} event(s)[/yellow] of these payments not delivered "
            "(a handler failed); they stay pending for `payhub events dispatch`",
            highlight=False,
        )
    if report.errors or report.refund_errors or undelivered:
        raise typer.Exit(EXIT_FAILED)


def _undelivered_events(hub: PayHub, report: SyncReport) -> int:
    """Events of the payments this sync changed that are still pending: a handler
    failed on them (with no handler configured, pending is the plan, not a failure)."""
    store = hub.store
    if store is None or not hub._subscribers:
        return 0
    touched = set(report.changed)
    for out_refund_no in report.refunds_changed:
        refund = store.refund(out_refund_no)
        if refund is not None:
            touched.add(refund.out_trade_no)
    return sum(len(store.events(out_trade_no=no, pending=True)) for no in sorted(touched))


@events_app.command("dispatch")
def events_dispatch(
    config: ConfigOption,
    limit: Annotated[int | None, typer.Option(help="At most this many events.")] = None,
) -> None:
    """Deliver every event not yet dispatched to the configured handlers."""
    try:
        with _open_hub(config) as hub:
            if not hub._subscribers:
                raise ConfigurationError(
                    "no event handlers configured: add "
                    '"events": {"handlers": {"payment.succeeded": "module:function"}}'
                )
            delivered = hub.dispatch_events(limit=limit)
            store = hub.store
            assert store is not None
            left = len(store.events(pending=True))
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"dispatched {delivered} event(s); {left} still pending")
    if left and limit is None:
        raise typer.Exit(EXIT_FAILED)


@events_app.command("list")
def events_list(
    url: UrlOption = None,
    config: OptionalConfig = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only undispatched ones.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """List outbox events, oldest first (tab-separated: id, type, out_trade_no,
    created, delivery attempts)."""
    try:
        with _open_store(url, config) as store:
            found = store.events(pending=True if pending else None, limit=limit)
    except PayhubError as exc:
        _fail_with(exc)
    for event in found:
        fields = (
            event.id,
            event.type,
            event.out_trade_no or "-",
            event.created_at.isoformat(timespec="seconds"),
            str(event.attempts),
        )
        typer.echo("\t".join(fields))


@anomalies_app.command("list")
def anomalies_list(
    *,
    url: UrlOption = None,
    config: OptionalConfig = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Resolved ones too (default: open only).")
    ] = False,
    out_trade_no: Annotated[
        str | None, typer.Option("--order", help="Only this payment's (out_trade_no).")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (e.g. duplicate_payment).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """List anomalies, oldest first (tab-separated: id, kind, status, out_trade_no,
    channel, channel trade, amount, created, resolved by, resolution)."""
    try:
        with _open_store(url, config) as store:
            found = store.anomalies(
                out_trade_no, status=None if everything else "open", kind=kind, limit=limit
            )
    except PayhubError as exc:
        _fail(exc.message)
    for anomaly in found:
        fields = (
            str(anomaly.id),
            anomaly.kind.value,
            anomaly.status,
            anomaly.out_trade_no,
            anomaly.channel,
            anomaly.channel_trade_id or "-",
            "-" if anomaly.amount is None else str(anomaly.amount),
            anomaly.created_at.isoformat(timespec="seconds"),
            anomaly.resolved_by or "-",
            anomaly.resolution or "-",
        )
        typer.echo("\t".join(fields))


@anomalies_app.command("resolve")
def anomalies_resolve(
    anomaly_id: Annotated[int, typer.Argument(help="The anomaly's id (payhub anomalies list).")],
    operator: Annotated[str, typer.Option("--operator", help="Who resolves it.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: what was checked or done.")],
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Close an open anomaly by hand; who and why are kept with it and sent as an
    ``anomaly.resolved`` event. To refund a duplicate payment, use
    ``hub.refund_duplicate`` (it resolves the anomaly itself)."""
    try:
        with _open_store(url, config) as store:
            anomaly = store.resolve_anomaly(anomaly_id, operator=operator, reason=reason)
    except PayhubError as exc:
        _fail(exc.message)
    typer.echo(f"anomaly {anomaly.id} ({anomaly.kind.value}, {anomaly.out_trade_no}) resolved")


# Sub-commands in their own modules (they import this one's helpers when run).
from payhub import cli_audit, cli_health, cli_reviews  # noqa: E402

app.add_typer(cli_reviews.app, name="reviews")
app.command("health")(cli_health.health)
app.command("metrics")(cli_health.metrics)
cli_audit.register(app, db_app)


def main() -> None:
    """The ``payhub`` console script."""
    app(prog_name="payhub")


if __name__ == "__main__":  # pragma: no cover
    main()
