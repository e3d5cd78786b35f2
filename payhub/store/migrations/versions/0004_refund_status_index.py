"""An index on payhub_refunds (status, created_at).

``sync_pending`` looks for refunds still pending after a while (a refund whose
answer was lost); without the index that lookup scans every refund.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NAME = "ix_payhub_refunds_status_created_at"


def upgrade() -> None:
    op.create_index(_NAME, "payhub_refunds", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="payhub_refunds")
