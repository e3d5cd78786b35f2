"""``payhub ledger``, ``settle``, ``holds`` and ``withdrawals`` (see docs/ledger.md).

The sub-commands register themselves on :data:`payhub.cli.app` when this module
is imported (``payhub.cli`` imports it at its end), so importing either module
first works.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from payhub.cli import (
    JsonOption,
    OptionalConfig,
    UrlOption,
    _fail_with,
    _open_store,
    app,
)
from payhub.errors import PayhubError
from payhub.money import Money

__all__ = ["holds_app", "ledger_app", "settle_app", "withdrawals_app"]

ledger_app = typer.Typer(
    help="The ledger: balances and entries.", no_args_is_help=True, rich_markup_mode=None
)
settle_app = typer.Typer(
    help="Settlement runs and batches.", no_args_is_help=True, rich_markup_mode=None
)
holds_app = typer.Typer(
    help="Holds (冻结) on sellers' available balances.", no_args_is_help=True, rich_markup_mode=None
)
withdrawals_app = typer.Typer(
    help="Withdrawals (提现).", no_args_is_help=True, rich_markup_mode=None
)

PartyOption = Annotated[
    str | None, typer.Option("--party", help="Only this party (seller, shop, platform...).")
]


def _parse_time(text: str | None, what: str) -> datetime | None:
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
    when = _parse_time(as_of, "--as-of")

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
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")

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
    when = _parse_time(at, "--at")

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
    when = _parse_time(expires, "--expires")
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


app.add_typer(ledger_app, name="ledger")
app.add_typer(settle_app, name="settle")
app.add_typer(holds_app, name="holds")
app.add_typer(withdrawals_app, name="withdrawals")
