"""Signed checkpoints: a chain rewritten with valid links, or cut short and
regrown, passes the chain check alone but not the checkpoints; a forged
checkpoint is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from payhub import SignatureError, audit, cli
from payhub.store import Store
from payhub.store._chain import GENESIS, link
from payhub.store._schema import CHAINED, chain_head, metadata

runner = CliRunner()
VERDICT = {"action": "block", "rule": "r", "reason": "x", "hits": []}


def decisions(store: Store, prefix: str, count: int) -> None:
    """``count`` risk decisions: one audit row each."""
    for n in range(count):
        store.record_risk(f"{prefix}-{n}", VERDICT, hold=False)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "cp.key", tmp_path / "cp.pub"
    result = runner.invoke(
        cli.app, ["audit", "keygen", "--private-key", str(private), "--public-key", str(public)]
    )
    assert result.exit_code == 0, result.output
    assert private.stat().st_mode & 0o077 == 0
    return private, public


def checkpoint(store_url: str, directory: Path, private: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["audit", "checkpoint", "--url", store_url, "--dir", str(directory),
         "--private-key", str(private)],
    )
    assert result.exit_code == 0, result.output


def verify(store_url: str, directory: Path, public: Path) -> tuple[int, str]:
    result = runner.invoke(
        cli.app,
        ["audit", "verify", "--url", store_url, "--checkpoints", str(directory),
         "--public-key", str(public)],
    )
    return result.exit_code, result.output


def rechain(store: Store, keep: int, extra: int) -> None:
    """What an attacker with the database can do: cut the chain after row
    ``keep``, append ``extra`` made-up rows, and recompute every link and the head."""
    risk = metadata.tables["payhub_risk_audit"]
    with store.engine.begin() as conn:
        for name in CHAINED:
            table = metadata.tables[name]
            conn.execute(table.delete().where(table.c.chain_seq > keep))
        rows = []
        for name in CHAINED:
            table = metadata.tables[name]
            for r in conn.execute(sa.select(table)).mappings():
                rows.append((int(r["chain_seq"]), name, r))
        previous, seq = GENESIS, 0
        for seq, name, r in sorted(rows, key=lambda x: x[0]):
            previous = link(previous, name, seq, [r[f] for f in CHAINED[name]])
        for n in range(extra):
            seq += 1
            values = {"out_trade_no": f"FAKE-{n}", "action": "approve", "rule": None,
                      "actor": "mallory", "detail": {}, "at": store.now()}
            previous = link(previous, risk.name, seq, [values[f] for f in CHAINED[risk.name]])
            conn.execute(risk.insert().values(**values, chain_seq=seq, chain_hash=previous.hex()))
        conn.execute(chain_head.update().values(seq=seq, hash=previous.hex()))


def test_a_rewritten_chain_passes_alone_but_not_against_checkpoints(
    store: Store, store_url: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    directory = tmp_path / "anchors"
    decisions(store, "CP", 4)
    checkpoint(store_url, directory, private)  # row 4
    decisions(store, "CQ", 2)
    checkpoint(store_url, directory, private)  # row 6
    assert verify(store_url, directory, public)[0] == 0
    rechain(store, keep=3, extra=3)  # rows 4..6 replaced, links valid
    assert store.verify_chain().ok  # the chain alone cannot tell
    code, output = verify(store_url, directory, public)
    assert code == 1
    assert "broken at sequence number 4" in output
    assert "checkpoint" in output


def test_a_chain_cut_below_a_checkpoint_is_found(
    store: Store, store_url: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    directory = tmp_path / "anchors"
    decisions(store, "CT", 6)
    checkpoint(store_url, directory, private)  # row 6
    rechain(store, keep=4, extra=0)  # truncated to 4, head moved back: consistent
    assert store.verify_chain().ok
    code, output = verify(store_url, directory, public)
    assert code == 1
    assert "broken at sequence number 5" in output
    assert "ends at 4" in output


def test_a_forged_checkpoint_is_refused(
    store: Store, store_url: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    directory = tmp_path / "anchors"
    decisions(store, "CF", 2)
    checkpoint(store_url, directory, private)
    path = directory / audit.CHECKPOINT_FILE
    line = json.loads(path.read_text())
    line["seq"] = 1  # claims another row, keeps the signature
    path.write_text(json.dumps(line) + "\n")
    code, output = verify(store_url, directory, public)
    assert code == 1
    assert "line 1" in output
    assert "does not verify" in output


def test_a_checkpoint_by_another_key_is_refused(
    store: Store, store_url: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, public = keys
    other = tmp_path / "other.key"
    audit.generate_keys(other, tmp_path / "other.pub")
    directory = tmp_path / "anchors"
    decisions(store, "CK", 1)
    audit.write_checkpoint(store, directory, audit.load_private_key(other))
    with pytest.raises(SignatureError, match="does not verify"):
        audit.verify(store, directory, audit.load_public_key(public))


def test_checkpoints_are_appended(
    store: Store, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    directory = tmp_path / "anchors"
    key = audit.load_private_key(private)
    decisions(store, "CA", 1)
    first = audit.write_checkpoint(store, directory, key)
    second = audit.write_checkpoint(store, directory, key)
    read = audit.read_checkpoints(directory, audit.load_public_key(public))
    assert [(c.seq, c.hash) for c in read] == [(first.seq, first.hash), (second.seq, second.hash)]
    assert first.seq == 1
    assert audit.verify(store, directory, audit.load_public_key(public)).checkpoints == 2


def test_keygen_never_overwrites(keys: tuple[Path, Path]) -> None:
    private, public = keys
    before = private.read_bytes()
    result = runner.invoke(
        cli.app, ["audit", "keygen", "--private-key", str(private), "--public-key", str(public)]
    )
    assert result.exit_code != 0
    assert private.read_bytes() == before
