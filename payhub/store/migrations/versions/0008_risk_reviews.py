"""Risk reviews: the review queue, the risk audit, and the hold on a payment.

``payhub_payments.risk_hold``: a risk rule held the payment for review; its
credit writes ``payment.review`` instead of ``payment.succeeded`` until a
person approves it. False for every older payment.

``payhub_risk_reviews``: one row per held payment (open, approved, declined;
who decided, when, why, and the refund a decline sent).

``payhub_risk_audit``: every risk decision and review action (block, review,
observe, approve, decline), written in the transaction of what it records and
never updated or deleted. A blocked payment has no payment row, so this table
names the order number, not a payment id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from payhub.store._types import ExactString, UTCDateTime, nopad_collation

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
    op.add_column(
        "payhub_payments",
        sa.Column("risk_hold", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "payhub_risk_reviews",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "payment_id",
            _ID,
            sa.ForeignKey("payhub_payments.id", name="fk_payhub_risk_reviews_payment_id"),
            nullable=False,
        ),
        sa.Column("out_trade_no", ExactString(64), nullable=False),
        sa.Column("status", ExactString(16), nullable=False),
        sa.Column("rule", ExactString(64), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("decided_by", ExactString(128)),
        sa.Column("note", ExactString(512)),
        sa.Column("out_refund_no", ExactString(64)),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_risk_reviews"),
        sa.UniqueConstraint("out_trade_no", name="uq_payhub_risk_reviews_out_trade_no"),
        **_options(),
    )
    op.create_index(
        "ix_payhub_risk_reviews_status_created_at",
        "payhub_risk_reviews",
        ["status", "created_at"],
    )
    op.create_table(
        "payhub_risk_audit",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("out_trade_no", ExactString(64), nullable=False),
        sa.Column("action", ExactString(16), nullable=False),
        sa.Column("rule", ExactString(64)),
        sa.Column("actor", ExactString(128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_risk_audit"),
        **_options(),
    )
    op.create_index("ix_payhub_risk_audit_out_trade_no", "payhub_risk_audit", ["out_trade_no"])
    op.create_index("ix_payhub_risk_audit_at", "payhub_risk_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_payhub_risk_audit_at", table_name="payhub_risk_audit")
    op.drop_index("ix_payhub_risk_audit_out_trade_no", table_name="payhub_risk_audit")
    op.drop_table("payhub_risk_audit")
    op.drop_index("ix_payhub_risk_reviews_status_created_at", table_name="payhub_risk_reviews")
    op.drop_table("payhub_risk_reviews")
    with op.batch_alter_table("payhub_payments") as batch:
        batch.drop_column("risk_hold")
