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
in it may be ``{"$env": NAME}`` or ``{"$file": PATH}`` references. The same
configuration may instead come from a Flask app (``payhub --app shop:app ...``,
or ``flask payhub ...``) or Django settings (``payhub --django-settings
shop.settings ...``, or ``manage.py payhub ...``); docs/cli.md gives the order.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from payhub import web
from payhub._cli_recon import reconcile_app
from payhub.cli_reports import reports_app
from payhub.errors import ConfigurationError, PayhubError
from payhub.hub import PayHub, SyncReport
from payhub.store import Store

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ConfigSource",
    "app",
    "main",
    "parse_duration",
    "run",
]

app = typer.Typer(
    name="payhub",
    help="payhub: the payment store, lost-notification recovery and outbox events.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: typer's rich panels print "<bool>" beside every flag, as if
    # --pending took a value; the plain layout shows a flag as a flag.
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="The payment store's database.", no_args_is_help=True, rich_markup_mode=None
)
events_app = typer.Typer(help="Outbox events.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
anomalies_app = typer.Typer(
    help="Anomalies: duplicate and late payments, mismatches, held refunds, odd times.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(anomalies_app, name="anomalies")
app.add_typer(reports_app, name="reports")
app.add_typer(reconcile_app, name="reconcile")

_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)

#: Exit codes, as docs/cli.md lists them.
EXIT_OK = 0
#: the work failed: a database or channel error, or some items could not be done
EXIT_FAILED = 1
#: the command line or the configuration is wrong
EXIT_USAGE = 2

# PAYHUB_CONFIG is read in _config_source, not by typer: a --config typed on
# the command line comes first, the variable only after --app and a host's own.
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The hub configuration file (JSON) [env var: PAYHUB_CONFIG]; "
        "or --app / --django-settings (docs/cli.md).",
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
        help="Take the store URL from this hub configuration file "
        "[env var: PAYHUB_CONFIG]; or --app / --django-settings (docs/cli.md).",
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


JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON document on stdout instead of text.")
]


@dataclass(frozen=True)
class ConfigSource:
    """Where the hub configuration comes from, when not from ``--config``.

    A host command (``flask payhub``, ``manage.py payhub``) hands its own to
    :func:`run`: the Flask app's config, ``settings.PAYHUB``.
    """

    #: named in error messages: ``"Flask app shop:app"``
    name: str
    #: returns the configuration mapping (raises ConfigurationError)
    load: Callable[[], Mapping[str, Any]]


def _version(value: bool) -> None:
    if value:
        from payhub import __version__  # noqa: PLC0415 - only when asked

        typer.echo(f"payhub {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    ctx: typer.Context,
    flask_app: Annotated[
        str | None,
        typer.Option(
            "--app",
            envvar="FLASK_APP",
            metavar="MODULE:APP",
            help="Read the hub configuration from this Flask app's config "
            "(PAYHUB or PAYHUB_CONFIG_FILE).",
        ),
    ] = None,
    django_settings: Annotated[
        str | None,
        typer.Option(
            "--django-settings",
            envvar="DJANGO_SETTINGS_MODULE",
            metavar="MODULE",
            help="Read the hub configuration from PAYHUB in this Django settings module.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show payhub's version and exit."
        ),
    ] = False,
) -> None:
    """payhub: the payment store, lost-notification recovery and outbox events."""
    given = [
        (_from_command_line(ctx, name), source)
        for name, source in (
            ("flask_app", flask_app and _flask_source(flask_app)),
            ("django_settings", django_settings and _django_source(django_settings)),
        )
        if source
    ]
    if sum(1 for explicit, _ in given if explicit) > 1:
        _fail("give --app or --django-settings, not both", EXIT_USAGE)
    env_file = os.environ.get("PAYHUB_CONFIG")
    host = ctx.find_object(ConfigSource)
    _SOURCES.set(
        (
            *([host] if host is not None else []),
            *(source for explicit, source in given if explicit),
            *([_file_source(Path(env_file))] if env_file else []),
            *(source for explicit, source in given if not explicit),
        )
    )


#: Where this run's configuration may come from, after a --config typed on the
#: command line, best first (set by the root callback, for every run).
_SOURCES: ContextVar[tuple[ConfigSource, ...]] = ContextVar("payhub_cli_sources", default=())


def _file_source(path: Path) -> ConfigSource:
    return ConfigSource(str(path), lambda: _load_config(path))


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _flask_source(ref: str) -> ConfigSource:
    """``--app module:app`` (or ``module:create_app()``, or ``module`` holding ``app``),
    read as Flask's own ``--app`` is, without importing Flask here: the app's
    ``config`` and ``root_path`` are all payhub reads."""

    def load() -> Mapping[str, Any]:
        found = _import_object(ref, "Flask app", ("app", "application", "create_app"))
        config = getattr(found, "config", None)
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"Flask app {ref}: {type(found).__name__} has no config")
        return web.hub_config(config, str(getattr(found, "root_path", os.getcwd())))

    return ConfigSource(f"Flask app {ref}", load)


def _django_source(module_name: str) -> ConfigSource:
    """``--django-settings shop.settings``: its ``PAYHUB``, read as a Python module
    (Django itself is not set up: payhub's configuration needs none of it)."""

    def load() -> Mapping[str, Any]:
        module = _import_object(module_name, "Django settings", ())
        config = getattr(module, "PAYHUB", None)
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"Django settings {module_name}: no PAYHUB mapping")
        return config

    return ConfigSource(f"Django settings {module_name}", load)


def _import_object(ref: str, what: str, names: Iterable[str]) -> Any:
    """``module``, ``module:attr`` or ``module:factory()``, from the working directory
    too (as ``flask`` and ``manage.py`` find the project's modules)."""
    module_name, _, attr = ref.removesuffix(".py").replace("/", ".").partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
        if not names:
            return found
        for name in [attr.removesuffix("()")] if attr else names:
            if hasattr(found, name):
                found = getattr(found, name)
                break
        else:
            raise AttributeError(f"no {attr or ' or '.join(names)} in {module_name}")
        if callable(found) and not hasattr(found, "config"):
            found = found()  # an application factory
    except ConfigurationError:
        raise
    except Exception as exc:  # the shop's module may raise anything; say which and why
        raise ConfigurationError(
            f"cannot load {what} {ref}: {type(exc).__name__}: {exc}"
        ) from None
    return found


def _config_source(config: Path | None) -> ConfigSource | None:
    """The first of: ``--config`` on the command line, the host command's
    configuration, ``--app``/``--django-settings`` on the command line,
    ``PAYHUB_CONFIG``, ``FLASK_APP``, ``DJANGO_SETTINGS_MODULE``."""
    if config is not None:
        return _file_source(config)
    return next(iter(_SOURCES.get()), None)


def _hub_config(config: Path | None) -> tuple[Mapping[str, Any], str]:
    source = _config_source(config)
    if source is None:
        _fail(
            "no hub configuration: give --config FILE (or PAYHUB_CONFIG), "
            "--app MODULE:APP (or FLASK_APP) or --django-settings MODULE",
            EXIT_USAGE,
        )
    try:
        return source.load(), source.name
    except ConfigurationError as exc:
        _fail(exc.message, EXIT_USAGE)


def _emit_json(document: object) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _load_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}", EXIT_USAGE)
    if not isinstance(config, dict):
        _fail(f"{path}: the configuration must be a JSON object", EXIT_USAGE)
    return config


def _open_hub(path: Path | None) -> PayHub:
    """The hub of the configuration (it owns, and closes, its store)."""
    config, where = _hub_config(path)
    if not config.get("store"):
        _fail(f"{where}: no 'store' section: this command needs the payment store", EXIT_USAGE)
    return PayHub.from_config(config)


def _open_store(url: str | None, config: Path | None) -> Store:
    if url:
        return Store(url)
    if _config_source(config) is None:
        _fail(
            "give --url (or PAYHUB_DATABASE_URL), --config, --app or --django-settings",
            EXIT_USAGE,
        )
    hub_config, where = _hub_config(config)
    section = hub_config.get("store")
    if not section:
        _fail(f"{where}: no 'store' section", EXIT_USAGE)
    ledger = hub_config.get("ledger")
    if ledger is not None and isinstance(section, Mapping):
        section = {**section, "ledger": ledger}
    return Store.from_config(section)


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
def db_current(
    url: UrlOption = None, config: OptionalConfig = None, as_json: JsonOption = False
) -> None:
    """Show the store's schema revision (none before the first upgrade)."""
    try:
        with _open_store(url, config) as store:
            revision = store.current_revision()
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        _emit_json({"revision": revision})
    else:
        typer.echo(revision or "none")


@app.command("sync")
def sync(
    config: ConfigOption = None,
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="Only payments and refunds pending at least this long."),
    ] = "10m",
    limit: Annotated[
        int | None, typer.Option(help="At most this many payments (and as many refunds).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Query the channels for payments and refunds still pending, and splits and payouts still
    processing; apply their answers (防掉单)."""
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
    failed = bool(
        report.errors
        or report.refund_errors
        or report.split_errors
        or report.payout_errors
        or undelivered
    )
    if as_json:
        _emit_json(
            {
                "checked": report.checked,
                "changed": {no: state.value for no, state in sorted(report.changed.items())},
                "errors": dict(sorted(report.errors.items())),
                "refunds_checked": report.refunds_checked,
                "refunds_changed": {
                    no: state.value for no, state in sorted(report.refunds_changed.items())
                },
                "refund_errors": dict(sorted(report.refund_errors.items())),
                "splits_checked": report.splits_checked,
                "splits_changed": {
                    no: state.value for no, state in sorted(report.splits_changed.items())
                },
                "split_errors": dict(sorted(report.split_errors.items())),
                "payouts_checked": report.payouts_checked,
                "payouts_changed": {
                    no: state.value for no, state in sorted(report.payouts_changed.items())
                },
                "payout_errors": dict(sorted(report.payout_errors.items())),
                "undelivered_events": undelivered,
            }
        )
        raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)
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
    if report.splits_checked or report.payouts_checked:
        typer.echo(
            f"checked {report.splits_checked} processing split(s), "
            f"{len(report.splits_changed)} settled; {report.payouts_checked} processing "
            f"payout(s), {len(report.payouts_changed)} settled"
        )
        for number, split_state in sorted(report.splits_changed.items()):
            typer.echo(f"  split {number}\t{split_state.value}")
        for number, payout_state in sorted(report.payouts_changed.items()):
            typer.echo(f"  payout {number}\t{payout_state.value}")
        for number, error in sorted({**report.split_errors, **report.payout_errors}.items()):
            console.print(f"[yellow]{number}[/yellow]: {error}", highlight=False)
    if undelivered:
        console.print(
            f"[yellow]{undelivered} event(s)[/yellow] of these payments not delivered "
            "(a handler failed); they stay pending for `payhub events dispatch`",
            highlight=False,
        )
    if failed:
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
    config: ConfigOption = None,
    limit: Annotated[int | None, typer.Option(help="At most this many events.")] = None,
    as_json: JsonOption = False,
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
    if as_json:
        _emit_json({"dispatched": delivered, "pending": left})
    else:
        typer.echo(f"dispatched {delivered} event(s); {left} still pending")
    if left and limit is None:
        raise typer.Exit(EXIT_FAILED)


@events_app.command("list")
def events_list(
    url: UrlOption = None,
    config: OptionalConfig = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only undispatched ones.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List outbox events, oldest first (tab-separated: id, type, out_trade_no,
    created, delivery attempts)."""
    try:
        with _open_store(url, config) as store:
            found = store.events(pending=True if pending else None, limit=limit)
    except PayhubError as exc:
        _fail_with(exc)
    if as_json:
        _emit_json(
            [
                {
                    "id": event.id,
                    "type": event.type,
                    "out_trade_no": event.out_trade_no,
                    "created_at": _time(event.created_at),
                    "attempts": event.attempts,
                    "payload": event.payload,
                }
                for event in found
            ]
        )
        return
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
    as_json: JsonOption = False,
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
    if as_json:
        _emit_json(
            [
                {
                    "id": anomaly.id,
                    "kind": anomaly.kind.value,
                    "status": anomaly.status,
                    "out_trade_no": anomaly.out_trade_no,
                    "channel": anomaly.channel,
                    "channel_trade_id": anomaly.channel_trade_id,
                    # integer minor units and the currency: never a float
                    "amount_minor": anomaly.amount and anomaly.amount.minor,
                    "currency": anomaly.amount and anomaly.amount.currency,
                    "created_at": _time(anomaly.created_at),
                    "resolved_at": _time(anomaly.resolved_at),
                    "resolved_by": anomaly.resolved_by,
                    "resolution": anomaly.resolution,
                }
                for anomaly in found
            ]
        )
        return
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


def run(args: Sequence[str], *, source: ConfigSource | None = None, prog_name: str) -> int:
    """Run the ``payhub`` command with ``args`` inside a host's CLI and return its
    exit code: ``flask payhub ...`` and ``manage.py payhub ...`` hand over their
    own configuration as ``source`` (``--config`` on the command line still wins).
    """
    command = typer.main.get_command(app)
    try:
        command.main(list(args), prog_name=prog_name, obj=source, standalone_mode=True)
    except SystemExit as exc:  # standalone mode ends every run with its exit code
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    return EXIT_OK


# Sub-commands in their own modules (they import this one's helpers when run).
from payhub import cli_audit, cli_health, cli_ledger, cli_reviews  # noqa: E402, F401 - cli_ledger registers itself

app.add_typer(cli_reviews.app, name="reviews")
app.command("health")(cli_health.health)
app.command("metrics")(cli_health.metrics)
cli_audit.register(app, db_app)


def main() -> None:
    """The ``payhub`` console script."""
    app(prog_name="payhub")


if __name__ == "__main__":  # pragma: no cover
    main()
