"""``payhub anomalies list|resolve`` (issue 11, point 21)."""

from __future__ import annotations

from storekit import notification
from typer.testing import CliRunner

import payhub.cli as cli
from payhub import Money, PaymentRequest, PayMethod
from payhub.store import AnomalyStatus, Store

runner = CliRunner()


def test_list_and_resolve_anomalies(hub, store: Store, store_url: str) -> None:
    for number, amount in (("CA1", 999), ("CA2", 1)):
        hub.pay(
            PaymentRequest(
                out_trade_no=number, amount=Money(1000), subject="x", method=PayMethod.QR
            )
        )
        hub.handle_notification("toy-a", *notification(number, amount=amount))
    first, second = store.anomalies()
    result = runner.invoke(cli.app, ["anomalies", "list", "--url", store_url])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in rows] == [
        (str(first.id), "amount_mismatch", "open", "CA1", "9.99 CNY"),
        (str(second.id), "amount_mismatch", "open", "CA2", "0.01 CNY"),
    ]
    # Both an operator and a reason are required.
    result = runner.invoke(
        cli.app, ["anomalies", "resolve", str(first.id), "--url", store_url, "--reason", "ok"]
    )
    assert result.exit_code == 2
    result = runner.invoke(
        cli.app,
        [
            "anomalies",
            "resolve",
            str(first.id),
            "--url",
            store_url,
            "--operator",
            "wang.fang",
            "--reason",
            "buyer refunded by bank transfer",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"anomaly {first.id} (amount_mismatch, CA1) resolved" in result.output
    record = store.anomaly(first.id)
    assert (record.status, record.resolved_by, record.resolution) == (
        AnomalyStatus.RESOLVED,
        "wang.fang",
        "buyer refunded by bank transfer",
    )
    # Open ones by default; --all shows the resolved one, with who and why.
    result = runner.invoke(cli.app, ["anomalies", "list", "--url", store_url])
    assert [line.split("\t")[0] for line in result.output.splitlines()] == [str(second.id)]
    result = runner.invoke(
        cli.app, ["anomalies", "list", "--url", store_url, "--all", "--order", "CA1"]
    )
    [row] = [line.split("\t") for line in result.output.splitlines()]
    assert row[8:] == ["wang.fang", "buyer refunded by bank transfer"]
    # Resolving again, or an unknown id, fails saying why.
    for anomaly_id in (str(first.id), "987654"):
        result = runner.invoke(
            cli.app,
            [
                "anomalies",
                "resolve",
                anomaly_id,
                "--url",
                store_url,
                "--operator",
                "wang.fang",
                "--reason",
                "again",
            ],
        )
        assert result.exit_code == 1
        assert "already resolved" in result.output or "no anomaly 987654" in result.output
    result = runner.invoke(cli.app, ["anomalies", "list", "--url", store_url, "--kind", "nope"])
    assert result.exit_code == 1
    assert "unknown anomaly kind" in result.output
