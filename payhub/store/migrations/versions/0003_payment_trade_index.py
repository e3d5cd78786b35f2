"""An index on payhub_payments (channel, channel_trade_id).

A refund notification may name its payment only by the channel's trade id
(UnionPay's origQryId); without the index that lookup scans every payment.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NAME = "ix_payhub_payments_channel_channel_trade_id"


def upgrade() -> None:
    op.create_index(_NAME, "payhub_payments", ["channel", "channel_trade_id"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="payhub_payments")
