"""The audit chain on every database: payments, notifications and risk
decisions link their audit rows; changing, deleting, reordering or cutting and
re-appending rows directly in SQL is found, at its first broken sequence
number; concurrent writers keep the chain linear."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from storekit import ToyBank, paid
from typer.testing import CliRunner

from payhub import cli
from payhub.store import Store
from payhub.store._chain import GENESIS, canonical, link
from payhub.store._schema import CHAINED, audit, chain_head, metadata, risk_audit

runner = CliRunner()
VERDICT = {"action": "block", "rule": "bad-net", "reason": "IP is in a listed network", "hits": []}


def chained(hub, store: Store, bank: ToyBank, payments: int = 3) -> int:
    """Payments paid through the hub, then a risk block. Payment n (from 0) is
    rows 3n+1 (audit: pending), 3n+2 (its ledger entry), 3n+3 (audit: paid)."""
    for n in range(payments):
        paid(hub, bank, f"CH-{n}")
    store.record_risk("CH-blocked", VERDICT, hold=False)
    return 3 * payments + 1


def sql(store: Store, *statements: str | sa.Executable) -> None:
    with store.engine.begin() as conn:
        for s in statements:
            conn.execute(sa.text(s) if isinstance(s, str) else s)


def test_every_audit_row_is_linked_in_order(hub, store: Store, bank: ToyBank) -> None:
    rows = chained(hub, store, bank)
    report = store.verify_chain()
    assert report.ok, report.broken
    assert (report.rows, report.head.seq) == (rows, rows)
    with store.engine.connect() as conn:
        seqs = sorted(
            r[0]
            for name in CHAINED
            for r in conn.execute(sa.select(metadata.tables[name].c.chain_seq))
        )
        last = conn.execute(
            sa.select(risk_audit.c.chain_hash).where(risk_audit.c.chain_seq == rows)
        ).scalar()
    assert seqs == list(range(1, rows + 1))
    assert last == report.head.hash


def test_canonical_form_is_the_documented_one() -> None:
    """The bytes docs/audit.md specifies, so that an auditor can recompute a link."""
    from datetime import UTC, datetime

    at = datetime(2026, 12, 8, 1, 2, 3, 4, tzinfo=UTC)
    fields = ("P-1", "review", None, "payhub", {"z": 1, "a": ["é", True]}, at)
    assert canonical("payhub_risk_audit", 7, fields) == (
        '["payhub-chain/1","payhub_risk_audit",7,"P-1","review",null,"payhub",'
        '{"a":["é",true],"z":1},"2026-12-08T01:02:03.000004Z"]'
    ).encode()
    import hashlib

    assert link(GENESIS, "payhub_risk_audit", 7, fields) == hashlib.sha256(
        bytes(32) + canonical("payhub_risk_audit", 7, fields)
    ).digest()


def test_a_changed_row_is_found(hub, store: Store, bank: ToyBank) -> None:
    chained(hub, store, bank)
    sql(store, "UPDATE payhub_audit SET source = 'forged' WHERE chain_seq = 4")
    report = store.verify_chain()
    assert report.broken is not None
    assert report.broken.seq == 4


def test_a_changed_json_detail_is_found(hub, store: Store, bank: ToyBank) -> None:
    rows = chained(hub, store, bank)
    sql(store, risk_audit.update().values(detail={"action": "allow"}))
    assert store.verify_chain().broken.seq == rows  # type: ignore[union-attr]


def test_a_deleted_row_is_found(hub, store: Store, bank: ToyBank) -> None:
    chained(hub, store, bank)
    sql(store, "DELETE FROM payhub_audit WHERE chain_seq = 4")
    report = store.verify_chain()
    assert report.broken is not None
    assert report.broken.seq == 4
    assert "missing" in report.broken.reason


def test_reordered_rows_are_found(hub, store: Store, bank: ToyBank) -> None:
    """Rows 3 and 4 swap places (their sequence numbers and links move with the content)."""
    chained(hub, store, bank)
    sql(
        store,
        "UPDATE payhub_audit SET chain_seq = -3 WHERE chain_seq = 3",
        "UPDATE payhub_audit SET chain_seq = 3 WHERE chain_seq = 4",
        "UPDATE payhub_audit SET chain_seq = 4 WHERE chain_seq = -3",
    )
    assert store.verify_chain().broken.seq == 3  # type: ignore[union-attr]


def test_reordered_content_keeping_links_is_found(hub, store: Store, bank: ToyBank) -> None:
    """The content of rows 3 and 6 swapped, sequence numbers and links left in place."""
    chained(hub, store, bank)
    with store.engine.begin() as conn:
        rows = {
            r.chain_seq: r
            for r in conn.execute(sa.select(audit).where(audit.c.chain_seq.in_([3, 6])))
        }
        for seq, other in ((3, 6), (6, 3)):
            values = {f: rows[other]._mapping[f] for f in CHAINED["payhub_audit"]}
            conn.execute(audit.update().where(audit.c.chain_seq == seq).values(**values))
    assert store.verify_chain().broken.seq == 3  # type: ignore[union-attr]


def test_a_cut_tail_is_found(hub, store: Store, bank: ToyBank) -> None:
    rows = chained(hub, store, bank)
    sql(store, f"DELETE FROM payhub_risk_audit WHERE chain_seq = {rows}")
    report = store.verify_chain()
    assert report.broken is not None
    assert report.broken.seq == rows
    assert "head" in report.broken.reason


def test_cut_then_appended_rows_are_found(hub, store: Store, bank: ToyBank) -> None:
    """The tail cut and a row appended in its place with a made-up link, head moved on."""
    rows = chained(hub, store, bank)
    sql(
        store,
        "DELETE FROM payhub_audit WHERE chain_seq >= 4",
        "DELETE FROM payhub_risk_audit",
        risk_audit.insert().values(
            out_trade_no="CH-x", action="approve", rule=None, actor="mallory", detail={},
            at=sa.func.current_timestamp(), chain_seq=4, chain_hash="ab" * 32,
        ),
        chain_head.update().values(seq=rows, hash="ab" * 32),
    )
    assert store.verify_chain().broken.seq == 4  # type: ignore[union-attr]


def test_a_changed_ledger_entry_is_found(
    hub, store: Store, bank: ToyBank, database
) -> None:
    """An entry's pending amount changed directly (on PostgreSQL the ledger's
    trigger is disabled first, as the tables' owner could)."""
    chained(hub, store, bank)
    statements = ["UPDATE payhub_ledger_entries SET pending_minor = 1 WHERE chain_seq = 5"]
    if database.backend == "postgres":
        trigger = "payhub_ledger_entries_immutable"
        statements = [
            f"ALTER TABLE payhub_ledger_entries DISABLE TRIGGER {trigger}",
            *statements,
            f"ALTER TABLE payhub_ledger_entries ENABLE TRIGGER {trigger}",
        ]
    sql(store, *statements)
    report = store.verify_chain()
    assert report.broken is not None
    assert report.broken.seq == 5
    assert "payhub_ledger_entries" in report.broken.reason


def test_a_row_past_the_head_is_found(hub, store: Store, bank: ToyBank) -> None:
    rows = chained(hub, store, bank)
    sql(
        store,
        risk_audit.insert().values(
            out_trade_no="CH-x", action="approve", rule=None, actor="mallory", detail={},
            at=sa.func.current_timestamp(), chain_seq=rows + 1, chain_hash="cd" * 32,
        ),
    )
    assert store.verify_chain().broken.seq == rows + 1  # type: ignore[union-attr]


def test_an_empty_chain_is_sound(store: Store) -> None:
    report = store.verify_chain()
    assert report.ok
    assert report.rows == 0


def test_concurrent_writers_keep_the_chain_linear(store_url: str) -> None:
    """Four threads with their own stores write risk audit rows at once; one
    more pays through a hub: every sequence number once, every link sound."""
    writers, each = 4, 12
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with Store(store_url) as mine:
                for i in range(each):
                    mine.record_risk(f"CC-{n}-{i}", VERDICT, hold=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Store(store_url) as store:
        report = store.verify_chain()
    assert report.ok, report.broken
    assert report.rows == writers * each


def test_cli_verify_names_the_first_broken_sequence_number(
    hub, store: Store, bank: ToyBank, store_url: str
) -> None:
    rows = chained(hub, store, bank)
    result = runner.invoke(cli.app, ["audit", "verify", "--url", store_url])
    assert result.exit_code == 0, result.output
    assert f"{rows} rows" in result.output
    sql(store, "UPDATE payhub_audit SET to_status = 'refunded' WHERE chain_seq = 4")
    result = runner.invoke(cli.app, ["audit", "verify", "--url", store_url])
    assert result.exit_code == 1
    assert "broken at sequence number 4" in result.output


def test_migration_chains_the_rows_already_there(tmp_path: Path) -> None:
    """Rows written before 0009 are chained oldest first by the migration."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Store(url) as store:
        store.upgrade("0009")
        sql(
            store,
            "INSERT INTO payhub_payments (id, out_trade_no, amount_minor, currency, subject, "
            "method, status, created_at, updated_at) VALUES (1, 'OLD-1', 100, 'CNY', 's', 'qr', "
            "'paid', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
            "INSERT INTO payhub_audit (payment_id, from_status, to_status, cause, source, at) "
            "VALUES (1, 'pending', 'paid', 'notification', 'toy:n', '2026-01-02 00:00:00.000000')",
            "INSERT INTO payhub_audit (payment_id, from_status, to_status, cause, source, at) "
            "VALUES (1, NULL, 'pending', 'pay', 'pay:OLD-1', '2026-01-01 00:00:00.000000')",
            "INSERT INTO payhub_risk_audit (out_trade_no, action, rule, actor, detail, at) "
            "VALUES ('OLD-2', 'block', 'r', 'payhub', '{\"a\": 1}', '2026-01-01 12:00:00.000000')",
        )
        store.upgrade()
        report = store.verify_chain()
        assert report.ok, report.broken
        assert report.rows == 3
        with store.engine.connect() as conn:
            order = conn.execute(
                sa.select(audit.c.to_status).order_by(audit.c.chain_seq)
            ).scalars().all()
        assert order == ["pending", "paid"]
        store.record_risk("NEW-1", VERDICT, hold=False)
        assert store.verify_chain().rows == 4
