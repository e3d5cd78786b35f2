"""Reconciliation: runs, differences and their audited repairs.

``payhub_recon_runs``: one row per ``payhub reconcile`` of a channel's day
(counts per class, status; a run left ``running`` by a crash is resumed).
``payhub_recon_items``: one row per difference of a channel's day, unique by
(channel, day, class, key), so a re-run finds the same differences and never
records one twice. ``payhub_recon_repairs``: who repaired what, how and why.
``payhub_payments`` gets an index on (channel, paid_at): a run reads the
channel's payments of its day.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from payhub.store._types import UTCDateTime, nopad_collation

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Frozen copies of the column types as of this revision.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
_PAID_INDEX = "ix_payhub_payments_channel_paid_at"


def upgrade() -> None:
    dialect = op.get_bind().dialect
    options = dict(_OPTIONS)
    if dialect.name in ("mysql", "mariadb"):
        # identifiers compare byte for byte, as every table since 0005
        options["mysql_collate"] = nopad_collation(dialect)
    op.create_index(_PAID_INDEX, "payhub_payments", ["channel", "paid_at"])
    op.create_table(
        "payhub_recon_runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("bill_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("error", sa.String(512)),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_recon_runs"),
        sa.Index("ix_payhub_recon_runs_channel_bill_date", "channel", "bill_date"),
        **options,
    )
    op.create_table(
        "payhub_recon_items",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("bill_date", sa.Date, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("out_trade_no", sa.String(64)),
        sa.Column("out_refund_no", sa.String(64)),
        sa.Column("channel_trade_id", sa.String(128)),
        sa.Column("bill_amount_minor", sa.BigInteger),
        sa.Column("store_amount_minor", sa.BigInteger),
        sa.Column("currency", sa.String(3)),
        sa.Column("bill_fee_minor", sa.BigInteger),
        sa.Column("expected_fee_minor", sa.BigInteger),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_run_id", _ID, nullable=False),
        sa.Column("last_run_id", _ID, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolution", sa.String(512)),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_recon_items"),
        sa.UniqueConstraint(
            "channel",
            "bill_date",
            "kind",
            "key",
            name="uq_payhub_recon_items_channel_bill_date_kind_key",
        ),
        sa.Index(
            "ix_payhub_recon_items_status_channel_bill_date", "status", "channel", "bill_date"
        ),
        **options,
    )
    op.create_table(
        "payhub_recon_repairs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "item_id",
            _ID,
            sa.ForeignKey("payhub_recon_items.id", name="fk_payhub_recon_repairs_item_id"),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("outcome", sa.JSON, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_recon_repairs"),
        sa.Index("ix_payhub_recon_repairs_item_id", "item_id"),
        **options,
    )


def downgrade() -> None:
    op.drop_table("payhub_recon_repairs")
    op.drop_table("payhub_recon_items")
    op.drop_table("payhub_recon_runs")
    op.drop_index(_PAID_INDEX, table_name="payhub_payments")
