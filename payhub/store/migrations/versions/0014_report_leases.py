"""Report runs hold a lease: a run whose process died is reclaimed (payhub.reports).

``payhub_report_runs`` gets ``owner`` (who runs it: host, process id and a
random token) and ``heartbeat_at`` (renewed while the file is written); a
``running`` run whose heartbeat is older than the lease, or a ``pending`` one
never started within it, is marked failed by the next ``payhub reports run``
or ``run-due``. ``attempt`` numbers the runs of one schedule period: the
abandoned one keeps its record, the period is run again as attempt 2, so the
unique key becomes (schedule_id, period_start, attempt). The new key is made
before the old is dropped: MySQL wants an index for the schedule's foreign key
at every moment.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from payhub.store._types import ExactString, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TABLE = "payhub_report_runs"
_OLD = "uq_payhub_report_runs_schedule_id_period_start"
_NEW = "uq_payhub_report_runs_schedule_id_period_start_attempt"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.add_column(sa.Column("owner", ExactString(128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
    with op.batch_alter_table(_TABLE) as batch:
        batch.create_unique_constraint(_NEW, ["schedule_id", "period_start", "attempt"])
        batch.drop_constraint(_OLD, type_="unique")


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.create_unique_constraint(_OLD, ["schedule_id", "period_start"])
        batch.drop_constraint(_NEW, type_="unique")
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("attempt")
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner")
