"""A leaner inbox: the parsed copy only for deferred refunds, and a flag for them.

``payhub_notifications.payload`` becomes nullable: the inbox keeps the raw body
of every notification, and the parsed JSON copy only where it is read again
(a refund notification deferred until its payment arrives). Older rows keep
theirs.

``payhub_payments.deferred_refunds``: true while refund notifications wait
for this payment to be paid, so that paying it looks for them only then.
Set here for payments that already have some.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payhub_notifications") as batch:
        batch.alter_column("payload", existing_type=sa.JSON(), nullable=True)
    op.add_column(
        "payhub_payments",
        sa.Column("deferred_refunds", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE payhub_payments SET deferred_refunds = TRUE WHERE out_trade_no IN "
        "(SELECT out_trade_no FROM payhub_notifications WHERE outcome = 'deferred')"
    )


def downgrade() -> None:
    with op.batch_alter_table("payhub_payments") as batch:
        batch.drop_column("deferred_refunds")
    op.execute("UPDATE payhub_notifications SET payload = '{}' WHERE payload IS NULL")
    with op.batch_alter_table("payhub_notifications") as batch:
        batch.alter_column("payload", existing_type=sa.JSON(), nullable=False)
