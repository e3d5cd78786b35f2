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
    payhub audit verify|checkpoint|keygen          the tamper-evident audit chain
    payhub db roles|rotate-keys                    least-privilege grants, key rotation
    payhub ledger balance --party alice            balances (--as-of TIME, --json)
    payhub ledger entries --party alice            entries with their lines (filters)
    payhub settle run --at 2026-03-12T00:00+08:00  due pending money -> available, in batches
    payhub settle list | show ID                   settlement batches and their members
    payhub holds list | create | release | capture | expire
    payhub withdrawals list | create | paid | failed

A hub configuration file is JSON: ``{"store": {"url": ...}, "channels": {...},
"events": {"handlers": {"payment.succeeded": "shop.tasks:deliver"}}}``; secrets
in it may be ``{"$env": NAME}`` or ``{"$file": PATH}`` references.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from payhub.errors import ConfigurationError, PayhubError
from payhub.hub import PayHub, SyncReport
from payhub.money import Money
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
        ledger = _load_config(config).get("ledger")
        if ledger is not None and isinstance(section, dict):
            section = {**section, "ledger": ledger}
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
        f"checked {report.refunds_checked} pending refund(s), {len(report.refunds_changed)} changed"
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
# -- the ledger ------------------------------------------------------------------

ledger_app = typer.Typer(help="The ledger: balances and entries.", no_args_is_help=True)
settle_app = typer.Typer(help="Settlement runs and batches.", no_args_is_help=True)
holds_app = typer.Typer(help="Holds (冻结) on sellers' available balances.", no_args_is_help=True)
withdrawals_app = typer.Typer(help="Withdrawals (提现).", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(settle_app, name="settle")
app.add_typer(holds_app, name="holds")
app.add_typer(withdrawals_app, name="withdrawals")

JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
PartyOption = Annotated[
    str | None, typer.Option("--party", help="Only this party (seller, shop, platform...).")
]


def _time(text: str | None, what: str) -> datetime | None:
    """An ISO 8601 time with its offset (``2026-03-12T00:00+08:00``); naive is refused."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{what}: {text!r} is not an ISO 8601 time") from None
    if value.utcoffset() is None:
        raise typer.BadParameter(f"{what}: {text!r} has no offset (write +08:00 or Z)")
    return value


def _show(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    from rich.table import Table  # noqa: PLC0415 - only for tables

    table = Table(title=title)
    for column in rows[0] if rows else ["(none)"]:
        table.add_column(column, justify="right" if column in _NUMERIC else "left")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row.values()))
    Console().print(table)


_NUMERIC = frozenset({"balance", "amount", "fee", "entries", "version", "id", "batch", "entry"})


def _ledger_call(url: str | None, config: Path | None, fn: Any) -> Any:
    try:
        with _open_store(url, config) as store:
            return fn(store.ledger)
    except PayhubError as exc:
        _fail_with(exc)


@ledger_app.command("balance")
def ledger_balance(
    *,
    party: PartyOption = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="As of this time (ISO 8601 with offset).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Balances of every account (of a party), on each account's normal side."""
    when = _time(as_of, "--as-of")

    def fn(ledger: Any) -> list[dict[str, Any]]:
        rows = []
        for item in ledger.balances(party):
            balance = item.balance if when is None else ledger.balance(item.account, when)
            rows.append(
                {
                    "party": item.account.party,
                    "kind": item.account.kind.value,
                    "currency": item.account.currency,
                    "balance": str(balance.to_decimal()) if not as_json else balance.minor,
                    "version": item.version,
                }
            )
        return rows

    _show(_ledger_call(url, config, fn), as_json, "balances")


@ledger_app.command("entries")
def ledger_entries(
    *,
    party: PartyOption = None,
    cause: Annotated[str | None, typer.Option(help="payment, refund, settlement...")] = None,
    reference: Annotated[str | None, typer.Option(help="out_trade_no, batch key, id.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Entries with their lines, oldest first (a line: account and signed amount,
    debit positive)."""
    start, end = _time(since, "--since"), _time(until, "--until")

    def fn(ledger: Any) -> list[dict[str, Any]]:
        found = ledger.entries(
            party=party, cause=cause, reference=reference, since=start, until=end, limit=limit
        )
        return [
            {
                "id": e.id,
                "cause": e.cause.value,
                "reference": e.reference,
                "party": e.party,
                "plan": e.plan,
                "available_on": None if e.available_on is None else e.available_on.isoformat(),
                "created_at": e.created_at.isoformat(timespec="seconds"),
                "lines": [{"account": str(ln.account), "amount": ln.amount.minor} for ln in e.lines]
                if as_json
                else "  ".join(f"{ln.account} {ln.amount.minor:+d}" for ln in e.lines),
            }
            for e in found
        ]

    _show(_ledger_call(url, config, fn), as_json, "entries")


@settle_app.command("run")
def settle_run(
    *,
    at: Annotated[
        str | None, typer.Option("--at", help="Settle what is due by then (default now).")
    ] = None,
    party: PartyOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Move every due pending amount to available: one batch per seller and cycle.
    Re-running creates nothing; a crash leaves whole batches only."""
    when = _time(at, "--at")

    def fn(ledger: Any) -> Any:
        columns = (TextColumn("settling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), disable=as_json) as bar:
            task = bar.add_task("batches", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return ledger.settle(when, party=party, progress=progress)

    report = _ledger_call(url, config, fn)
    summary = {
        "at": report.at.isoformat(),
        "batches": report.batches,
        "entries": report.entries,
        "amounts": {cur: m.minor for cur, m in report.amounts.items()},
        "batch_ids": list(report.batch_ids),
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        amounts = ", ".join(str(m) for m in report.amounts.values()) or "nothing"
        typer.echo(f"{report.batches} batches, {report.entries} entries settled: {amounts}")


def _batch_row(batch: Any, as_json: bool) -> dict[str, Any]:
    return {
        "id": batch.id,
        "party": batch.party,
        "available_on": batch.available_on.isoformat(),
        "amount": batch.amount.minor if as_json else str(batch.amount.to_decimal()),
        "currency": batch.amount.currency,
        "entries": batch.entry_count,
        "entry": batch.entry_id,
        "created_at": batch.created_at.isoformat(timespec="seconds"),
    }


@settle_app.command("list")
def settle_list(
    *,
    party: PartyOption = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Settlement batches, oldest first."""
    rows = _ledger_call(
        url,
        config,
        lambda ledger: [_batch_row(b, as_json) for b in ledger.batches(party=party, limit=limit)],
    )
    _show(rows, as_json, "settlement batches")


@settle_app.command("show")
def settle_show(
    batch_id: Annotated[int, typer.Argument(help="The batch's id (payhub settle list).")],
    *,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """One batch and the ids of its member entries."""
    batch = _ledger_call(url, config, lambda ledger: ledger.batch(batch_id))
    row = {**_batch_row(batch, as_json), "members": list(batch.members)}
    if as_json:
        typer.echo(json.dumps(row))
        return
    for key, value in row.items():
        typer.echo(f"{key}: {value}")


def _hold_row(hold: Any, as_json: bool) -> dict[str, Any]:
    return {
        "id": hold.id,
        "party": hold.party,
        "amount": hold.amount.minor if as_json else str(hold.amount.to_decimal()),
        "currency": hold.amount.currency,
        "status": hold.status.value,
        "reason": hold.reason,
        "expires_at": None if hold.expires_at is None else hold.expires_at.isoformat(),
    }


AmountArg = Annotated[int, typer.Argument(help="Amount in minor units (fen).")]
CurrencyOption = Annotated[str, typer.Option(help="Currency.")]


@holds_app.command("list")
def holds_list(
    *,
    party: PartyOption = None,
    status: Annotated[str | None, typer.Option(help="active, released...")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Holds, oldest first."""
    rows = _ledger_call(
        url,
        config,
        lambda ledger: [_hold_row(h, as_json) for h in ledger.holds(party=party, status=status)],
    )
    _show(rows, as_json, "holds")


@holds_app.command("create")
def holds_create(
    party: Annotated[str, typer.Argument(help="The seller.")],
    amount: AmountArg,
    *,
    currency: CurrencyOption = "CNY",
    reason: Annotated[str | None, typer.Option(help="Why (a dispute, a review).")] = None,
    expires: Annotated[str | None, typer.Option(help="Release by itself then (ISO 8601).")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Freeze part of a seller's available balance."""
    when = _time(expires, "--expires")
    hold = _ledger_call(
        url,
        config,
        lambda ledger: ledger.hold(
            party, _money(amount, currency), reason=reason, expires_at=when, key=key
        ),
    )
    typer.echo(f"hold {hold.id}: {hold.amount} of {hold.party} frozen")


@holds_app.command("release")
def holds_release(
    hold_id: Annotated[int, typer.Argument()],
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Give a hold back to available."""
    hold = _ledger_call(url, config, lambda ledger: ledger.release(hold_id))
    typer.echo(f"hold {hold.id}: {hold.status.value}")


@holds_app.command("capture")
def holds_capture(
    hold_id: Annotated[int, typer.Argument()],
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Take a hold from the seller."""
    hold = _ledger_call(url, config, lambda ledger: ledger.capture(hold_id))
    typer.echo(f"hold {hold.id}: {hold.status.value}")


@holds_app.command("expire")
def holds_expire(url: UrlOption = None, config: OptionalConfig = None) -> None:
    """Release every hold whose expiry has passed."""
    expired = _ledger_call(url, config, lambda ledger: ledger.expire_holds())
    typer.echo(f"{len(expired)} holds expired")


def _withdrawal_row(item: Any, as_json: bool) -> dict[str, Any]:
    return {
        "id": item.id,
        "party": item.party,
        "amount": item.amount.minor if as_json else str(item.amount.to_decimal()),
        "fee": item.fee.minor if as_json else str(item.fee.to_decimal()),
        "currency": item.amount.currency,
        "status": item.status.value,
        "note": item.note,
        "created_at": item.created_at.isoformat(timespec="seconds"),
    }


@withdrawals_app.command("list")
def withdrawals_list(
    *,
    party: PartyOption = None,
    status: Annotated[str | None, typer.Option(help="pending, paid, failed.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Withdrawals, oldest first."""
    rows = _ledger_call(
        url,
        config,
        lambda ledger: [
            _withdrawal_row(w, as_json) for w in ledger.withdrawals(party=party, status=status)
        ],
    )
    _show(rows, as_json, "withdrawals")


@withdrawals_app.command("create")
def withdrawals_create(
    party: Annotated[str, typer.Argument(help="The seller.")],
    amount: AmountArg,
    *,
    currency: CurrencyOption = "CNY",
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Ask to withdraw from a seller's available balance."""
    item = _ledger_call(
        url, config, lambda ledger: ledger.withdraw(party, _money(amount, currency), key=key)
    )
    typer.echo(f"withdrawal {item.id}: {item.amount} (fee {item.fee}) pending")


@withdrawals_app.command("paid")
def withdrawals_paid(
    withdrawal_id: Annotated[int, typer.Argument()],
    note: Annotated[str | None, typer.Option(help="The bank's reference.")] = None,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Mark a withdrawal paid out."""
    item = _ledger_call(
        url, config, lambda ledger: ledger.mark_withdrawal_paid(withdrawal_id, note)
    )
    typer.echo(f"withdrawal {item.id}: {item.status.value}")


@withdrawals_app.command("failed")
def withdrawals_failed(
    withdrawal_id: Annotated[int, typer.Argument()],
    note: Annotated[str | None, typer.Option(help="Why it failed.")] = None,
    url: UrlOption = None,
    config: OptionalConfig = None,
) -> None:
    """Mark a withdrawal failed: the money and its fee go back to available."""
    item = _ledger_call(
        url, config, lambda ledger: ledger.mark_withdrawal_failed(withdrawal_id, note)
    )
    typer.echo(f"withdrawal {item.id}: {item.status.value}")


def _money(amount: int, currency: str) -> Money:
    try:
        return Money(amount, currency)
    except PayhubError as exc:
        raise typer.BadParameter(exc.message) from None


def main() -> None:
    """The ``payhub`` console script."""
    app(prog_name="payhub")


if __name__ == "__main__":  # pragma: no cover
    main()
