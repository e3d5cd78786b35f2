"""``payhub health`` and ``payhub metrics`` (see docs/monitor.md).

``payhub health`` exits 0 when every check is ok, 1 when a check is over its
threshold, 2 on a usage or configuration error, 3 when the database or Redis
cannot be reached. ``--json`` prints the report as JSON; ``--alert`` sends an
alert per failing check to the configured sinks (``"alerts"`` section).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from payhub.errors import PayhubError

__all__ = ["health", "metrics"]

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


def health(
    config: _Config = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    alert: Annotated[
        bool, typer.Option("--alert", help="Alert the configured sinks of failing checks.")
    ] = False,
) -> None:
    """Check the backlog: pending payments, refused notifications, undelivered
    events, open anomalies, reviews waiting, database and Redis."""
    from payhub.cli import EXIT_USAGE, _fail, _hub_config  # noqa: PLC0415
    from payhub.monitor import (  # noqa: PLC0415
        Alert,
        Alerter,
        HealthConfig,
        HealthContext,
        exit_code,
        run_checks,
    )
    from payhub.store import Store  # noqa: PLC0415

    cfg, where = _hub_config(config)
    try:
        thresholds = HealthConfig.from_config(cfg.get("health"))
        alerter = Alerter.from_config(cfg["alerts"]) if alert and cfg.get("alerts") else None
        if alert and alerter is None:
            _fail(f"{where}: --alert needs an 'alerts' section", EXIT_USAGE)
        if not cfg.get("store"):
            _fail(f"{where}: no 'store' section", EXIT_USAGE)
        store = Store.from_config(cfg["store"])
    except PayhubError as exc:
        _fail(exc.message, EXIT_USAGE)
    with store:
        report = run_checks(HealthContext(store, thresholds))
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        for r in report.results:
            typer.echo(f"{r.status.value:12}{r.name:24}{r.detail}")
    if alerter is not None and report.failing:
        alerts = [
            Alert(
                key=f"health:{r.name}",
                title=f"payhub health: {r.name} {r.status.value}",
                text=r.detail,
                severity="critical" if r.status.value == "unreachable" else "warning",
            )
            for r in report.failing
        ]
        for key, outcome in alerter.send(alerts).items():
            typer.echo(f"alert {key}: {outcome}", err=True)
    raise typer.Exit(exit_code(report))


def metrics(
    config: _Config = None,
    port: Annotated[int, typer.Option(help="Serve on this port.")] = 9464,
    host: Annotated[str, typer.Option(help="Listen on this address.")] = "127.0.0.1",
) -> None:
    """Serve the backlog gauges for Prometheus at http://HOST:PORT/metrics."""
    from wsgiref.simple_server import make_server  # noqa: PLC0415

    from payhub.cli import EXIT_USAGE, _fail, _hub_config  # noqa: PLC0415
    from payhub.monitor import HealthConfig, Metrics  # noqa: PLC0415
    from payhub.store import Store  # noqa: PLC0415

    cfg, where = _hub_config(config)
    try:
        if not cfg.get("store"):
            _fail(f"{where}: no 'store' section", EXIT_USAGE)
        store = Store.from_config(cfg["store"])
        registry = Metrics(store, HealthConfig.from_config(cfg.get("health")))
    except PayhubError as exc:
        _fail(exc.message, EXIT_USAGE)

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body, content_type = registry.exposition()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    with store, make_server(host, port, app) as server:
        typer.echo(f"serving payhub metrics on http://{host}:{port}/metrics")
        server.serve_forever()
