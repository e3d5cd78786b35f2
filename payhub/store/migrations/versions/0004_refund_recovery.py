"""Refund recovery: payhub_refunds.channel_context and an index on (status, created_at).

``channel_context`` is a JSON-encoded object (``RefundRequest.refund_context``,
e.g. UnionPay's ``{"txnTime": ...}``), fixed before the refund is first sent,
so that a retry is the same transaction at the channel and a refund query finds
the refund from another process or after a restart. Nullable: older rows keep
NULL.

``sync_pending`` looks for refunds still pending after a while (a refund whose
answer was lost); without the index that lookup scans every refund.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NAME = "ix_payhub_refunds_status_created_at"


def upgrade() -> None:
    op.add_column("payhub_refunds", sa.Column("channel_context", sa.Text(), nullable=True))
    op.create_index(_NAME, "payhub_refunds", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="payhub_refunds")
    with op.batch_alter_table("payhub_refunds") as batch:
        batch.drop_column("channel_context")
