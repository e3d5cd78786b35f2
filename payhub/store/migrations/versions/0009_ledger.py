"""The ledger: parties, accounts, immutable entries and lines, settlement batches,
holds and withdrawals; and the seller of a payment.

``payhub_payments.seller``: the seller of a multi-seller platform (NULL: the
shop itself).

Entries and lines are never updated or deleted by payhub. On PostgreSQL a
trigger refuses UPDATE and DELETE of both (``payhub_ledger_immutable``); a
correction is a new reversing entry. (TRUNCATE is a table privilege: do not
grant it to the application's role.) See ``docs/ledger.md``.

Revision ID: 0009
Revises: 0008 (renumbered at the merge with the risk work's 0008)
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from payhub.store._types import nopad_collation

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql", "mariadb")
_IMMUTABLE = ("payhub_ledger_entries", "payhub_ledger_lines")


def _options() -> dict[str, Any]:
    dialect = op.get_bind().dialect
    if dialect.name in ("mysql", "mariadb"):
        return {
            "mysql_engine": "InnoDB",
            "mysql_charset": "utf8mb4",
            "mysql_collate": nopad_collation(dialect),
        }
    return {}


def upgrade() -> None:
    options = _options()
    op.add_column("payhub_payments", sa.Column("seller", sa.String(64), nullable=True))
    op.create_table(
        "payhub_ledger_parties",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(32)),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_payhub_ledger_parties"),
        **options,
    )
    op.create_table(
        "payhub_ledger_accounts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_ledger_accounts"),
        sa.UniqueConstraint(
            "party", "kind", "currency", name="uq_payhub_ledger_accounts_party_kind_currency"
        ),
        **options,
    )
    op.create_table(
        "payhub_ledger_entries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(191), nullable=False),
        sa.Column("cause", sa.String(24), nullable=False),
        sa.Column("reference", sa.String(191), nullable=False),
        sa.Column("party", sa.String(64)),
        sa.Column("plan", sa.String(32)),
        sa.Column("available_on", _TIME),
        sa.Column("currency", sa.String(3)),
        sa.Column("pending_minor", sa.BigInteger()),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_ledger_entries"),
        sa.UniqueConstraint("idempotency_key", name="uq_payhub_ledger_entries_idempotency_key"),
        **options,
    )
    op.create_index(
        "ix_payhub_ledger_entries_available_on_party",
        "payhub_ledger_entries",
        ["available_on", "party"],
    )
    op.create_index(
        "ix_payhub_ledger_entries_cause_reference", "payhub_ledger_entries", ["cause", "reference"]
    )
    op.create_index(
        "ix_payhub_ledger_entries_party_created_at",
        "payhub_ledger_entries",
        ["party", "created_at"],
    )
    op.create_table(
        "payhub_ledger_lines",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("entry_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_ledger_lines"),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["payhub_ledger_entries.id"], name="fk_payhub_ledger_lines_entry_id"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["payhub_ledger_accounts.id"], name="fk_payhub_ledger_lines_account_id"
        ),
        **options,
    )
    op.create_index("ix_payhub_ledger_lines_entry_id", "payhub_ledger_lines", ["entry_id"])
    op.create_index(
        "ix_payhub_ledger_lines_account_id_created_at",
        "payhub_ledger_lines",
        ["account_id", "created_at"],
    )
    op.create_table(
        "payhub_ledger_batches",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("available_on", _TIME, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("entry_id", _ID),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_ledger_batches"),
        sa.UniqueConstraint("key", name="uq_payhub_ledger_batches_key"),
        **options,
    )
    op.create_index(
        "ix_payhub_ledger_batches_party_available_on",
        "payhub_ledger_batches",
        ["party", "available_on"],
    )
    op.create_table(
        "payhub_ledger_batch_members",
        sa.Column("entry_id", _ID, autoincrement=False, nullable=False),
        sa.Column("batch_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name="pk_payhub_ledger_batch_members"),
        **options,
    )
    op.create_index(
        "ix_payhub_ledger_batch_members_batch_id", "payhub_ledger_batch_members", ["batch_id"]
    )
    op.create_table(
        "payhub_ledger_holds",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(256)),
        sa.Column("expires_at", _TIME),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_ledger_holds"),
        sa.UniqueConstraint("key", name="uq_payhub_ledger_holds_key"),
        **options,
    )
    op.create_index(
        "ix_payhub_ledger_holds_status_expires_at", "payhub_ledger_holds", ["status", "expires_at"]
    )
    op.create_index("ix_payhub_ledger_holds_party", "payhub_ledger_holds", ["party"])
    op.create_table(
        "payhub_ledger_withdrawals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.String(256)),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_ledger_withdrawals"),
        sa.UniqueConstraint("key", name="uq_payhub_ledger_withdrawals_key"),
        **options,
    )
    op.create_index(
        "ix_payhub_ledger_withdrawals_status_created_at",
        "payhub_ledger_withdrawals",
        ["status", "created_at"],
    )
    op.create_index("ix_payhub_ledger_withdrawals_party", "payhub_ledger_withdrawals", ["party"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION payhub_ledger_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'payhub ledger: % of % refused: entries and lines are immutable',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'P0001';
            END
            $$
            """
        )
        for table in _IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION payhub_ledger_immutable()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        op.execute("DROP FUNCTION IF EXISTS payhub_ledger_immutable()")
    for table in (
        "payhub_ledger_withdrawals",
        "payhub_ledger_holds",
        "payhub_ledger_batch_members",
        "payhub_ledger_batches",
        "payhub_ledger_lines",
        "payhub_ledger_entries",
        "payhub_ledger_accounts",
        "payhub_ledger_parties",
    ):
        op.drop_table(table)
    with op.batch_alter_table("payhub_payments") as batch:
        batch.drop_column("seller")
