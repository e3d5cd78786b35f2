"""The audit chain, and buyer data encrypted field by field.

``payhub_audit``, ``payhub_risk_audit`` and ``payhub_ledger_entries`` get
``chain_seq`` (the row's place in the one audit chain, unique) and
``chain_hash`` (its SHA-256 link, hex);
``payhub_chain_head`` holds the last sequence number and link (one row, id 1).
Rows already there are chained here, oldest first: by their time (``at``,
an entry's ``created_at``), then in the order the tables are named here, then
id (the ledger's trigger is disabled on PostgreSQL meanwhile); the chain starts at
the genesis link (32 zero bytes). The canonical form is
``payhub.store._chain.canonical`` (tag ``payhub-chain/1``, docs/audit.md); the
fields of each table are fixed here so that a later table added to the chain
does not change what this migration does.

``payhub_notifications.key_id``: the key that encrypted the row's
``raw_body`` and ``payload`` (AES-256-GCM, docs/security.md); NULL for a row
stored in clear (every older row, until ``payhub db rotate-keys``).
``buyer_hash``: HMAC-SHA256 of the payer's id at the channel, for lookups by
equality without decrypting; NULL when unknown or no key is configured.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from payhub.store._chain import GENESIS, link
from payhub.store._types import ExactString, UTCDateTime, nopad_collation

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: as payhub.store._schema.CHAINED named them when this migration was written
_FIELDS: dict[str, tuple[str, ...]] = {
    "payhub_audit": ("payment_id", "from_status", "to_status", "cause", "source", "at"),
    "payhub_risk_audit": ("out_trade_no", "action", "rule", "actor", "detail", "at"),
    "payhub_ledger_entries": (
        "idempotency_key", "cause", "reference", "party", "plan", "available_on", "currency",
        "pending_minor", "digest", "created_at",
    ),
}
#: each table's time: older rows are chained in its order
_TIME = {"payhub_audit": "at", "payhub_risk_audit": "at", "payhub_ledger_entries": "created_at"}
_TIMES = frozenset({"at", "created_at", "available_on"})
#: the ledger's PostgreSQL trigger refuses UPDATE of entries (migration 0010)
_IMMUTABLE = "payhub_ledger_entries_immutable"
_HEAD = "payhub_chain_head"
_BUYER_INDEX = "ix_payhub_notifications_buyer_hash"


def _options() -> dict[str, Any]:
    dialect = op.get_bind().dialect
    if dialect.name in ("mysql", "mariadb"):
        return {
            "mysql_engine": "InnoDB",
            "mysql_charset": "utf8mb4",
            "mysql_collate": nopad_collation(dialect),
        }
    return {}


def _table(name: str) -> sa.Table:
    cols: list[sa.Column[Any]] = [
        sa.Column("id", sa.BigInteger),
        sa.Column("chain_seq", sa.BigInteger),
        sa.Column("chain_hash", sa.String(64)),
    ]
    for field in _FIELDS[name]:
        if field in _TIMES:
            cols.append(sa.Column(field, UTCDateTime()))
        elif field == "detail":
            cols.append(sa.Column(field, sa.JSON()))
        else:
            cols.append(sa.Column(field))
    return sa.Table(name, sa.MetaData(), *cols)


def _chain_existing() -> tuple[int, str]:
    conn = op.get_bind()
    rows: list[tuple[Any, int, int, str, tuple[Any, ...]]] = []
    for order, name in enumerate(_FIELDS):
        table = _table(name)
        fields = [table.c[f] for f in _FIELDS[name]]
        when = _FIELDS[name].index(_TIME[name])
        for r in conn.execute(sa.select(table.c.id, *fields)):
            values = tuple(r[1:])
            rows.append((values[when], order, int(r.id), name, values))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    previous, seq = GENESIS, 0
    for _, _, row_id, name, values in rows:
        seq += 1
        previous = link(previous, name, seq, values)
        table = _table(name)
        conn.execute(
            table.update().where(table.c.id == row_id),
            {"chain_seq": seq, "chain_hash": previous.hex()},
        )
    return seq, previous.hex()


def upgrade() -> None:
    for name in _FIELDS:
        op.add_column(name, sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        op.add_column(name, sa.Column("chain_hash", ExactString(64), nullable=True))
    op.create_table(
        _HEAD,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", ExactString(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_chain_head"),
        **_options(),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(f"ALTER TABLE payhub_ledger_entries DISABLE TRIGGER {_IMMUTABLE}")
    seq, head = _chain_existing()
    if postgres:
        op.execute(f"ALTER TABLE payhub_ledger_entries ENABLE TRIGGER {_IMMUTABLE}")
    op.get_bind().execute(
        sa.table(_HEAD, sa.column("id"), sa.column("seq"), sa.column("hash")).insert(),
        {"id": 1, "seq": seq, "hash": head},
    )
    for name in _FIELDS:
        with op.batch_alter_table(name) as batch:
            batch.alter_column("chain_seq", existing_type=sa.BigInteger(), nullable=False)
            batch.alter_column("chain_hash", existing_type=ExactString(64), nullable=False)
            batch.create_unique_constraint(f"uq_{name}_chain_seq", ["chain_seq"])
    op.add_column("payhub_notifications", sa.Column("key_id", ExactString(16), nullable=True))
    op.add_column("payhub_notifications", sa.Column("buyer_hash", ExactString(64), nullable=True))
    op.create_index(_BUYER_INDEX, "payhub_notifications", ["buyer_hash"])


def downgrade() -> None:
    op.drop_index(_BUYER_INDEX, table_name="payhub_notifications")
    with op.batch_alter_table("payhub_notifications") as batch:
        batch.drop_column("buyer_hash")
        batch.drop_column("key_id")
    op.drop_table(_HEAD)
    for name in _FIELDS:
        with op.batch_alter_table(name) as batch:
            batch.drop_constraint(f"uq_{name}_chain_seq", type_="unique")
            batch.drop_column("chain_hash")
            batch.drop_column("chain_seq")
