"""``payhub health`` (exit codes, --json, --alert) and the Prometheus metrics,
on every database."""

from __future__ import annotations

import json
import time
from pathlib import Path

from storekit import notification
from typer.testing import CliRunner

import payhub.cli as cli
from payhub import Money, PaymentRequest, PayMethod
from payhub.monitor import Metrics
from payhub.store import Store

runner = CliRunner()


def write(tmp_path: Path, config: dict[str, object]) -> str:
    path = tmp_path / "hub.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return str(path)


def test_health_exit_codes_and_json(hub, store: Store, store_url: str, tmp_path: Path) -> None:
    thresholds = {"pending_after": 1, "undelivered_after": 1}
    config = write(tmp_path, {"store": {"url": store_url}, "health": thresholds})
    result = runner.invoke(cli.app, ["health", "-c", config, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "database", "pending_payments", "undelivered_events", "refused_notifications",
        "open_anomalies", "reviews_waiting", "settlements_due", "recon_differences", "redis",
    ]
    assert {c["status"] for c in report["checks"]} == {"ok"}
    for number in ("H1", "H2"):
        hub.pay(PaymentRequest(out_trade_no=number, amount=Money(1000), subject="x",
                               method=PayMethod.QR))
    hub.handle_notification("toy-a", *notification("H2", amount=999))  # held: a mismatch
    time.sleep(1.2)
    result = runner.invoke(cli.app, ["health", "-c", config, "--json"])
    assert result.exit_code == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["pending_payments"]["status"] == "fail"
    assert checks["pending_payments"]["value"] == 1
    assert checks["pending_payments"]["oldest_seconds"] >= 1
    assert checks["open_anomalies"]["value"] == 1
    assert checks["refused_notifications"]["value"] == 1
    assert checks["undelivered_events"]["value"] == 1  # the hub has no subscriber
    assert checks["database"]["status"] == "ok"
    # tolerated up to the thresholds
    relaxed = write(tmp_path, {"store": {"url": store_url},
                               "health": {**thresholds, "pending_max": 5, "anomalies_max": 5,
                                          "refused_max": 5, "undelivered_max": 5}})
    assert runner.invoke(cli.app, ["health", "-c", relaxed]).exit_code == 0


def test_health_sees_settlement_not_run(hub, store: Store, store_url: str, tmp_path: Path) -> None:
    """Pending money due for settlement that no batch took: `payhub settle run` missed."""
    config = write(tmp_path, {"store": {"url": store_url}, "health": {"settle_after": 1}})
    hub.ledger.set_plan("shop", "D+0")  # due since midnight (Shanghai), for the test
    hub.pay(PaymentRequest(out_trade_no="S1", amount=Money(1000), subject="x",
                           method=PayMethod.QR))
    hub.handle_notification("toy-a", *notification("S1"))
    time.sleep(1.2)
    result = runner.invoke(cli.app, ["health", "-c", config, "--json"])
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["settlements_due"]["status"] == "fail", checks["settlements_due"]
    assert checks["settlements_due"]["value"] == 1
    assert checks["recon_differences"]["value"] == 0
    assert result.exit_code == 1
    hub.ledger.settle()
    result = runner.invoke(cli.app, ["health", "-c", config, "--json"])
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["settlements_due"]["value"] == 0, result.output


def test_health_unreachable_and_bad_configuration(tmp_path: Path) -> None:
    down = write(tmp_path, {"store": {"url": "postgresql+psycopg://u:pw@127.0.0.1:1/x",
                                      "connect_timeout": 1},
                            "health": {"redis_url": "redis://127.0.0.1:1/0"}})
    result = runner.invoke(cli.app, ["health", "-c", down, "--json"])
    assert result.exit_code == 3, result.output
    checks = {c["name"]: c["status"] for c in json.loads(result.output)["checks"]}
    assert checks["database"] == checks["redis"] == checks["pending_payments"] == "unreachable"
    assert "pw" not in result.output
    bad = write(tmp_path, {"store": {"url": "sqlite:///x.db"}, "health": {"pending_after": -1}})
    assert runner.invoke(cli.app, ["health", "-c", bad]).exit_code == 2
    no_alerts = write(tmp_path, {"store": {"url": "sqlite:///x.db"}})
    assert runner.invoke(cli.app, ["health", "-c", no_alerts, "--alert"]).exit_code == 2


def test_metrics_read_the_backlog_and_time_notifications(hub, store: Store) -> None:
    metrics = Metrics(store)
    metrics.instrument(hub)
    hub.pay(PaymentRequest(out_trade_no="M1", amount=Money(1000), subject="x",
                           method=PayMethod.QR))
    hub.handle_notification("toy-a", *notification("M1", amount=999))
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert "payhub_store_up 1.0" in text
    assert "payhub_open_anomalies 1.0" in text
    assert 'payhub_notification_seconds_count{channel="toy-a"} 1.0' in text
    assert 'payhub_notifications_total{acked="true",channel="toy-a"} 1.0' in text
