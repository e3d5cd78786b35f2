"""payhub_payments.channel_context: what the paying channel needs to find the trade again.

A JSON-encoded object (``PaymentResult.channel_context``, e.g. UnionPay's
``{"txnTime": ...}``), so that queries from another process or after a restart
(``sync_pending``) find the trade. Nullable: older rows keep NULL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payhub_payments", sa.Column("channel_context", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payhub_payments") as batch:
        batch.drop_column("channel_context")
