"""``manage.py payhub ...``: the ``payhub`` command on ``settings.PAYHUB``.

The same commands, options, output and exit codes as ``payhub`` (docs/cli.md)::

    manage.py payhub sync --older-than 10m
    manage.py payhub events dispatch
    manage.py payhub anomalies list --json
    manage.py payhub anomalies resolve 7 --operator wang.fang --reason "refunded by bank"
    manage.py payhub db upgrade

``--config FILE`` still names another configuration file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError  # type: ignore[import-untyped]

from payhub import cli
from payhub_django._hub import settings_source


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type hints
    help = (
        "payhub's commands (sync, events, anomalies, db) on settings.PAYHUB; "
        "`manage.py payhub --help` lists them"
    )

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after "payhub" is payhub's own command line (its --help too).
        code = cli.run(argv[2:], source=settings_source(), prog_name=f"{argv[0]} payhub")
        if code:
            sys.exit(code)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="payhub's command line")

    def handle(self, *args: str, **options: Any) -> None:
        """``call_command("payhub", "sync", "--older-than", "10m")``: a failure
        raises CommandError carrying payhub's exit code."""
        code = cli.run(args, source=settings_source(), prog_name="manage.py payhub")
        if code:
            raise CommandError(f"payhub {' '.join(args)} exited with {code}", returncode=code)
