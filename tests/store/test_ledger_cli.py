"""``payhub ledger``, ``settle``, ``holds`` and ``withdrawals``: tables, ``--json``, errors."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from ledgerkit import paid
from typer.testing import CliRunner

import payhub.cli as cli
from payhub.store import Store

runner = CliRunner()


def invoke(*args: str) -> object:
    return runner.invoke(cli.app, list(args))


def test_balance_settle_hold_withdraw_from_the_command_line(
    hub, store: Store, bank, store_url: str, tmp_path: Path
) -> None:
    paid(hub, bank, "CLI1", 1000, seller="alice")
    paid(hub, bank, "CLI2", 250, seller="bob")
    result = invoke("ledger", "balance", "--party", "alice", "--url", store_url)
    assert result.exit_code == 0, result.output
    assert "pending" in result.output
    assert "10.00" in result.output
    result = invoke("ledger", "balance", "--json", "--url", store_url)
    rows = json.loads(result.output)
    assert {(r["party"], r["kind"], r["balance"]) for r in rows} == {
        ("alice", "pending", 1000),
        ("bob", "pending", 250),
        ("toy-a", "clearing", 1250),
    }
    result = invoke("ledger", "entries", "--party", "bob", "--json", "--url", store_url)
    [entry] = json.loads(result.output)
    assert entry["cause"] == "payment"
    assert {ln["account"]: ln["amount"] for ln in entry["lines"]} == {
        "bob:pending:CNY": -250,
        "toy-a:clearing:CNY": 250,
    }
    later = (store.now() + timedelta(days=5)).isoformat()
    result = invoke("settle", "run", "--at", later, "--json", "--url", store_url)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["batches"], report["entries"], report["amounts"]) == (2, 2, {"CNY": 1250})
    again = json.loads(invoke("settle", "run", "--at", later, "--json", "--url", store_url).output)
    assert again["batches"] == 0
    batches = json.loads(invoke("settle", "list", "--json", "--url", store_url).output)
    alice = next(b for b in batches if b["party"] == "alice")
    shown = json.loads(
        invoke("settle", "show", str(alice["id"]), "--json", "--url", store_url).output
    )
    assert (shown["amount"], len(shown["members"])) == (1000, 1)
    table = invoke("settle", "list", "--url", store_url)
    assert "settlement batches" in table.output
    result = invoke("holds", "create", "alice", "300", "--reason", "dispute", "--url", store_url)
    assert result.exit_code == 0, result.output
    [hold] = json.loads(invoke("holds", "list", "--json", "--url", store_url).output)
    assert (hold["amount"], hold["status"]) == (300, "active")
    assert invoke("holds", "release", str(hold["id"]), "--url", store_url).exit_code == 0
    result = invoke("withdrawals", "create", "alice", "400", "--url", store_url)
    assert result.exit_code == 0, result.output
    [item] = json.loads(invoke("withdrawals", "list", "--json", "--url", store_url).output)
    assert invoke("withdrawals", "paid", str(item["id"]), "--url", store_url).exit_code == 0
    assert store.ledger.withdrawals()[0].status.value == "paid"


def test_refusals_are_clear_and_exit_nonzero(store_url: str) -> None:
    result = invoke("withdrawals", "create", "nobody", "400", "--url", store_url)
    assert result.exit_code == 1
    assert "may not go negative" in result.output
    result = invoke("settle", "run", "--at", "2026-03-12T00:00", "--url", store_url)
    assert result.exit_code == 2
    assert "offset" in result.output
    result = invoke("settle", "show", "12345", "--url", store_url)
    assert result.exit_code == 1
    assert "no settlement batch" in result.output
    result = invoke("holds", "release", "7", "--url", store_url)
    assert result.exit_code == 1
