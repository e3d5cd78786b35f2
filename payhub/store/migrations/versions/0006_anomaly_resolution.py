"""Anomaly resolution and refunds of duplicate payments.

``payhub_anomalies.resolved_by`` and ``resolution``: who resolved an anomaly
(an operator's name, or ``payhub`` when a refund of the duplicate settled it)
and why. Older resolved rows keep NULL.

``payhub_refunds.anomaly_id``: a refund of a duplicate or late payment
(``hub.refund_duplicate``) names the anomaly it returns. Such a refund goes to
the channel that took the duplicate and never counts against what may still be
refunded of the payment itself. NULL for every refund of a payment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEX = "ix_payhub_refunds_anomaly_id"


def upgrade() -> None:
    op.add_column("payhub_anomalies", sa.Column("resolved_by", sa.String(128), nullable=True))
    op.add_column("payhub_anomalies", sa.Column("resolution", sa.String(512), nullable=True))
    op.add_column(
        "payhub_refunds",
        sa.Column(
            "anomaly_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
    )
    op.create_index(_INDEX, "payhub_refunds", ["anomaly_id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="payhub_refunds")
    with op.batch_alter_table("payhub_refunds") as batch:
        batch.drop_column("anomaly_id")
    with op.batch_alter_table("payhub_anomalies") as batch:
        batch.drop_column("resolution")
        batch.drop_column("resolved_by")
