"""``payhub reviews list|approve|decline``: the risk review queue (see docs/risk.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from payhub.errors import PayhubError

__all__ = ["app"]

app = typer.Typer(
    help="Payments a risk rule held for review.", no_args_is_help=True, rich_markup_mode=None
)

_Config = Annotated[
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


@app.command("list")
def reviews_list(
    config: _Config = None,
    everything: Annotated[bool, typer.Option("--all", help="Decided ones too.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """Held payments, oldest first (tab-separated: out_trade_no, status, waiting
    (paid, not delivered), rule, amount, payment state, created, decided by)."""
    from payhub.cli import _fail, _open_hub  # noqa: PLC0415 - cli registers this module

    try:
        with _open_hub(config) as hub:
            found = hub.reviews(status=None if everything else "open", limit=limit)
    except PayhubError as exc:
        _fail(exc.message)
    for r in found:
        fields = (
            r.out_trade_no, r.status.value, "waiting" if r.waiting else "-", r.rule,
            str(r.amount), r.payment_state.value, r.created_at.isoformat(timespec="seconds"),
            r.decided_by or "-",
        )
        typer.echo("\t".join(fields))


@app.command("approve")
def reviews_approve(
    out_trade_no: Annotated[str, typer.Argument(help="The held payment's out_trade_no.")],
    operator: Annotated[str, typer.Option("--operator", help="Who approves it.")],
    config: _Config = None,
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
) -> None:
    """Approve: ``payment.succeeded`` is written and dispatched (goods delivered)."""
    from payhub.cli import _fail_with, _open_hub  # noqa: PLC0415

    try:
        with _open_hub(config) as hub:
            review = hub.approve_review(out_trade_no, operator=operator, note=note)
    except PayhubError as exc:
        _fail_with(exc)
    typer.echo(f"{review.out_trade_no}: {review.status.value} by {review.decided_by}")


@app.command("decline")
def reviews_decline(
    out_trade_no: Annotated[str, typer.Argument(help="The held payment's out_trade_no.")],
    operator: Annotated[str, typer.Option("--operator", help="Who declines it.")],
    config: _Config = None,
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
) -> None:
    """Decline: the payment is refunded through the normal refund path."""
    from payhub.cli import _fail_with, _open_hub  # noqa: PLC0415

    try:
        with _open_hub(config) as hub:
            review, refund = hub.decline_review(out_trade_no, operator=operator, note=note)
    except PayhubError as exc:
        _fail_with(exc)
    state = "nothing left to refund" if refund is None else f"refund {refund.status.value}"
    typer.echo(f"{review.out_trade_no}: {review.status.value}; {state} ({review.out_refund_no})")
