"""``flask payhub ...``: the ``payhub`` command on the Flask app's configuration.

Registered on ``app.cli`` by :class:`~flask_payhub.PayHubExtension`::

    flask --app shop payhub sync --older-than 10m
    flask --app shop payhub anomalies list --json

The subcommands, options, output and exit codes are the ``payhub`` command's
(docs/cli.md): each is handed to it whole, with the app's ``PAYHUB`` (or
``PAYHUB_CONFIG_FILE``) as its configuration.
"""

from __future__ import annotations

from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

__all__ = ["payhub_group"]


class _PayhubGroup(click.Group):
    """Lists the ``payhub`` command's subcommands, read from it when asked (so
    ``import flask_payhub`` never loads the CLI)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_payhub_commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        commands = _payhub_commands()
        if name not in commands:
            return None
        return _forwarder(name, commands[name])


def _payhub_commands() -> dict[str, str]:
    """Subcommand name -> its one-line help."""
    import typer  # noqa: PLC0415 - the CLI only when a command runs

    from payhub import cli  # noqa: PLC0415

    group: Any = typer.main.get_command(cli.app)
    return {name: command.get_short_help_str() for name, command in group.commands.items()}


def _forwarder(name: str, short_help: str) -> click.Command:
    @with_appcontext
    def forward(args: tuple[str, ...]) -> None:
        from flask_payhub._extension import _hub_config  # noqa: PLC0415
        from payhub import cli  # noqa: PLC0415

        # run() returns before the app context ends: current_app stays this app.
        source = cli.ConfigSource(
            f"Flask app {current_app.name}", lambda: _hub_config(current_app)
        )
        code = cli.run([name, *args], source=source, prog_name="flask payhub")
        if code:
            raise SystemExit(code)

    return click.Command(
        name,
        callback=forward,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=short_help,
        short_help=short_help,
        # payhub parses its own options, --help included
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


payhub_group = _PayhubGroup(
    "payhub",
    help="payhub's commands on this app's configuration (PAYHUB or PAYHUB_CONFIG_FILE).",
)
