"""Splits (分账) and payouts: the hub's record of each, by the caller's number.

``payhub_splits``: one row per ``hub.split`` (unique ``out_split_no``, the
channel's out_request_no / out_order_no), with the SHA-256 of its content, its
status (processing / succeeded / failed / partial / refused) and lines.
``payhub_payouts``: one row per ``hub.payout`` (unique ``out_payout_no``; one
live payout per withdrawal, checked under the withdrawal's lock). Rows are
never deleted (a refusal is ``refused``). Real names are never stored.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from payhub.store._types import UTCDateTime, nopad_collation

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Frozen copies of the column types as of this revision.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    dialect = op.get_bind().dialect
    options = dict(_OPTIONS)
    if dialect.name in ("mysql", "mariadb"):
        # identifiers compare byte for byte, as every table since 0005
        options["mysql_collate"] = nopad_collation(dialect)
    op.create_table(
        "payhub_splits",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("out_split_no", sa.String(32), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("channel_trade_id", sa.String(128), nullable=False),
        sa.Column("seller", sa.String(64)),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("finish", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel_split_id", sa.String(128)),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("error", sa.String(256)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_splits"),
        sa.UniqueConstraint("out_split_no", name="uq_payhub_splits_out_split_no"),
        sa.Index("ix_payhub_splits_status_updated_at", "status", "updated_at"),
        sa.Index("ix_payhub_splits_out_trade_no", "out_trade_no"),
        **options,
    )
    op.create_table(
        "payhub_payouts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("out_payout_no", sa.String(32), nullable=False),
        sa.Column("withdrawal_id", _ID, nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("payee_kind", sa.String(16), nullable=False),
        sa.Column("payee_account", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel_transfer_id", sa.String(128)),
        sa.Column("package_info", sa.String(512)),
        sa.Column("error", sa.String(256)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_payouts"),
        sa.UniqueConstraint("out_payout_no", name="uq_payhub_payouts_out_payout_no"),
        sa.Index("ix_payhub_payouts_status_updated_at", "status", "updated_at"),
        sa.Index("ix_payhub_payouts_withdrawal_id", "withdrawal_id"),
        **options,
    )


def downgrade() -> None:
    op.drop_table("payhub_payouts")
    op.drop_table("payhub_splits")
