"""Reports: stored runs, column templates and schedules (payhub.reports).

``payhub_report_runs``: one row per report run (pending, running, succeeded
with its file's path, rows, size and SHA-256, or failed with an error). Its
parameters never hold a password. A scheduled run names its schedule and the
period it covers; ``(schedule_id, period_start)`` is unique, so a period is
exported once however many processes run ``payhub reports run-due``.

``payhub_report_templates``: user-defined column sets (the built-in ones live
in the code). ``payhub_report_schedules``: daily, weekly and monthly exports,
with ``next_run_at`` advanced in the transaction that claims a run.

On MySQL/MariaDB the new tables take the binary NO PAD collation of 0005.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from payhub.store._types import UTCDateTime, nopad_collation

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copies of the column types as of this revision.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _options() -> dict[str, Any]:
    dialect = op.get_bind().dialect
    if dialect.name not in ("mysql", "mariadb"):
        return {}
    return {
        "mysql_engine": "InnoDB",
        "mysql_charset": "utf8mb4",
        "mysql_collate": nopad_collation(dialect),
    }


def upgrade() -> None:
    options = _options()
    op.create_table(
        "payhub_report_templates",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("report_type", sa.String(48), nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_report_templates"),
        sa.UniqueConstraint("name", name="uq_payhub_report_templates_name"),
        **options,
    )
    op.create_table(
        "payhub_report_schedules",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("report_type", sa.String(48), nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("template", sa.String(64)),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("frequency", sa.String(8), nullable=False),
        sa.Column("at_time", sa.String(5), nullable=False),
        sa.Column("day", sa.Integer),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("output_dir", sa.String(1024), nullable=False),
        sa.Column("retention_days", sa.Integer),
        sa.Column("password_env", sa.String(128)),
        sa.Column("part_rows", sa.Integer),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("next_run_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_report_schedules"),
        sa.UniqueConstraint("name", name="uq_payhub_report_schedules_name"),
        **options,
    )
    op.create_index(
        "ix_payhub_report_schedules_enabled_next_run_at",
        "payhub_report_schedules",
        ["enabled", "next_run_at"],
    )
    op.create_table(
        "payhub_report_runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("report_type", sa.String(48), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "schedule_id",
            _ID,
            sa.ForeignKey(
                "payhub_report_schedules.id", name="fk_payhub_report_runs_schedule_id"
            ),
        ),
        sa.Column("period_start", UTCDateTime),
        sa.Column("path", sa.String(1024)),
        sa.Column("rows", sa.BigInteger),
        sa.Column("parts", sa.Integer),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("error", sa.String(1024)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("expired_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_payhub_report_runs"),
        sa.UniqueConstraint(
            "schedule_id", "period_start", name="uq_payhub_report_runs_schedule_id_period_start"
        ),
        **options,
    )
    op.create_index(
        "ix_payhub_report_runs_status_created_at", "payhub_report_runs", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_payhub_report_runs_status_created_at", table_name="payhub_report_runs")
    op.drop_table("payhub_report_runs")
    op.drop_index(
        "ix_payhub_report_schedules_enabled_next_run_at", table_name="payhub_report_schedules"
    )
    op.drop_table("payhub_report_schedules")
    op.drop_table("payhub_report_templates")
