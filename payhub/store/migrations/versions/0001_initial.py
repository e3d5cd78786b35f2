"""The payment store: payments, attempts, inbox, refunds, outbox, anomalies, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from payhub.store._types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types as of this revision (not imported from the
# live schema, so that later changes there cannot rewrite history).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BLOB = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _id() -> sa.Column[int]:
    return sa.Column("id", _ID, primary_key=True, autoincrement=True)


def _payment_fk(table: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(
        "payment_id",
        _ID,
        sa.ForeignKey("payhub_payments.id", name=f"fk_{table}_payment_id"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "payhub_payments",
        _id(),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("channel", sa.String(64)),
        sa.Column("channel_trade_id", sa.String(128)),
        sa.Column("paid_at", UTCDateTime),
        sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_payments"),
        sa.UniqueConstraint("out_trade_no", name="uq_payhub_payments_out_trade_no"),
        **_OPTIONS,
    )
    op.create_index(
        "ix_payhub_payments_status_created_at", "payhub_payments", ["status", "created_at"]
    )

    op.create_table(
        "payhub_attempts",
        _id(),
        _payment_fk("payhub_attempts"),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("error_code", sa.String(48)),
        sa.Column("channel_code", sa.String(64)),
        sa.Column("message", sa.String(255)),
        sa.Column("may_exist", sa.Boolean, nullable=False),
        sa.Column("channel_trade_id", sa.String(128)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_attempts"),
        sa.UniqueConstraint("payment_id", "seq", name="uq_payhub_attempts_payment_id_seq"),
        **_OPTIONS,
    )

    op.create_table(
        "payhub_notifications",
        _id(),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("event_key", sa.String(191), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("raw_body", _BLOB, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("processed_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_notifications"),
        sa.UniqueConstraint(
            "channel", "event_key", name="uq_payhub_notifications_channel_event_key"
        ),
        **_OPTIONS,
    )
    op.create_index(
        "ix_payhub_notifications_out_trade_no_outcome",
        "payhub_notifications",
        ["out_trade_no", "outcome"],
    )

    op.create_table(
        "payhub_refunds",
        _id(),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        _payment_fk("payhub_refunds"),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel_refund_id", sa.String(128)),
        sa.Column("reason", sa.String(256)),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_refunds"),
        sa.UniqueConstraint("out_refund_no", name="uq_payhub_refunds_out_refund_no"),
        **_OPTIONS,
    )
    op.create_index("ix_payhub_refunds_payment_id", "payhub_refunds", ["payment_id"])

    op.create_table(
        "payhub_events",
        sa.Column("seq", _ID, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("out_trade_no", sa.String(64)),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("dispatched_at", UTCDateTime),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(512)),
        sa.PrimaryKeyConstraint("seq", name="pk_payhub_events"),
        sa.UniqueConstraint("id", name="uq_payhub_events_id"),
        **_OPTIONS,
    )
    op.create_index("ix_payhub_events_dispatched_at_seq", "payhub_events", ["dispatched_at", "seq"])
    op.create_index("ix_payhub_events_out_trade_no", "payhub_events", ["out_trade_no"])

    op.create_table(
        "payhub_anomalies",
        _id(),
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        _payment_fk("payhub_anomalies", nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("channel_trade_id", sa.String(128)),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("currency", sa.String(3)),
        sa.Column("source", sa.String(320), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_anomalies"),
        sa.UniqueConstraint("key", name="uq_payhub_anomalies_key"),
        **_OPTIONS,
    )
    op.create_index("ix_payhub_anomalies_out_trade_no", "payhub_anomalies", ["out_trade_no"])

    op.create_table(
        "payhub_audit",
        _id(),
        _payment_fk("payhub_audit"),
        sa.Column("from_status", sa.String(24)),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("source", sa.String(320), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_audit"),
        **_OPTIONS,
    )
    op.create_index("ix_payhub_audit_payment_id", "payhub_audit", ["payment_id"])


def downgrade() -> None:
    op.drop_table("payhub_audit")
    op.drop_table("payhub_anomalies")
    op.drop_table("payhub_events")
    op.drop_table("payhub_refunds")
    op.drop_table("payhub_notifications")
    op.drop_table("payhub_attempts")
    op.drop_table("payhub_payments")
