"""``payhub reports``: run, list, show, verify, templates, schedules, run-due."""

from __future__ import annotations

import json
from pathlib import Path

from reportkit import add_payments
from typer.testing import CliRunner

from payhub.cli import app
from payhub.store import Store

PASSWORD = "cli-pw-不可外泄"


def test_run_list_show_and_verify(store: Store, store_url: str, tmp_path: Path) -> None:
    add_payments(store, [{"amount_minor": 990}, {"amount_minor": 10}])
    cli = CliRunner()
    env = {"PAYHUB_DATABASE_URL": store_url, "REPORT_PW": PASSWORD}
    result = cli.invoke(
        app,
        [
            "reports",
            "run",
            "payments",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-06",
            "--format",
            "xlsx",
            "--out",
            str(tmp_path),
            "--password-env",
            "REPORT_PW",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["status"], run["rows"], run["parameters"]["encrypted"]) == ("succeeded", 2, True)
    assert run["parameters"]["filters"]["start"] == "2026-01-05T00:00:00+08:00"
    listed = cli.invoke(app, ["reports", "list", "--json"], env=env)
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]
    shown = cli.invoke(app, ["reports", "show", str(run["id"])], env=env)
    assert "succeeded" in shown.stdout
    assert run["sha256"] in shown.stdout
    ok = cli.invoke(
        app, ["reports", "verify", str(run["id"]), "--password-env", "REPORT_PW"], env=env
    )
    assert ok.exit_code == 0
    assert "intact" in ok.stdout
    wrong = cli.invoke(
        app,
        ["reports", "verify", str(run["id"]), "--password-env", "WRONG"],
        env={**env, "WRONG": "nope"},
    )
    assert wrong.exit_code == 1
    assert "wrong password" in wrong.output
    for output in (result.output, listed.output, shown.output, ok.output, wrong.output):
        assert PASSWORD not in output


def test_bad_input_exits_2_and_records_nothing(store_url: str, tmp_path: Path) -> None:
    cli = CliRunner()
    env = {"PAYHUB_DATABASE_URL": store_url}
    for args, message in [
        (["--from", "2026-01-06", "--to", "2026-01-05"], "empty or inverted"),
        (["--from", "2026-01-05", "--to", "2026-01-06", "--columns", "nope"], "unknown column"),
        (["--from", "2026-01-01", "--to", "2026-03-01"], "longer than 31 days"),
    ]:
        result = cli.invoke(
            app, ["reports", "run", "payments", "--out", str(tmp_path), *args], env=env
        )
        assert result.exit_code == 2, result.output
        assert message in result.output
    listed = cli.invoke(app, ["reports", "list", "--json"], env=env)
    assert json.loads(listed.stdout) == []


def test_templates_and_schedules(store_url: str, tmp_path: Path) -> None:
    cli = CliRunner()
    env = {"PAYHUB_DATABASE_URL": store_url}
    made = cli.invoke(
        app,
        [
            "reports",
            "templates",
            "add",
            "mine",
            "--type",
            "payments",
            "--columns",
            "out_trade_no=订单号,amount",
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    shown = json.loads(cli.invoke(app, ["reports", "templates", "show", "mine"], env=env).stdout)
    assert shown["columns"] == [["out_trade_no", "订单号"], ["amount", "订单金额（元）"]]
    out = tmp_path / "mine.csv"
    cli.invoke(
        app,
        ["reports", "templates", "download", "mine", "--format", "csv", "--out", str(out)],
        env=env,
    )
    assert out.read_bytes() == "\ufeff订单号,订单金额（元）\r\n".encode()
    added = cli.invoke(
        app,
        [
            "reports",
            "schedules",
            "add",
            "nightly",
            "--type",
            "payments",
            "--frequency",
            "daily",
            "--at",
            "02:30",
            "--out",
            str(tmp_path / "nightly"),
            "--template",
            "mine",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    (schedule,) = json.loads(
        cli.invoke(app, ["reports", "schedules", "list", "--json"], env=env).stdout
    )
    assert (schedule["frequency"], schedule["at_time"], schedule["template"]) == (
        "daily",
        "02:30",
        "mine",
    )
    due = cli.invoke(app, ["reports", "run-due"], env=env)
    assert due.exit_code == 0
    assert "nothing due" in due.stdout
    bad = cli.invoke(
        app,
        [
            "reports",
            "schedules",
            "add",
            "x",
            "--type",
            "payments",
            "--frequency",
            "weekly",
            "--out",
            str(tmp_path),
        ],
        env=env,
    )
    assert bad.exit_code == 2
    assert "weekly schedule needs" in bad.output
