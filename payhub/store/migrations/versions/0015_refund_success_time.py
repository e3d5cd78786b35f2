"""A refund's success time at the channel: the day reconciliation bills it on.

``payhub_refunds.succeeded_at``: when the channel says the refund succeeded
(its notification's or answer's success time; the time payhub learnt it when
the channel does not say). A channel's bill lists a refund on the day it
succeeded there, not on the day payhub heard of it (``updated_at``): a refund
that succeeded at 23:50 and was learnt at 00:10 belongs to the first day.
Refunds already succeeded get their ``updated_at``: the best time known.
An index on (channel, succeeded_at): a run reads a channel's refunds of a day.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from payhub.store._types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_INDEX = "ix_payhub_refunds_channel_succeeded_at"


def upgrade() -> None:
    op.add_column("payhub_refunds", sa.Column("succeeded_at", UTCDateTime))
    op.execute(
        "UPDATE payhub_refunds SET succeeded_at = updated_at WHERE status = 'succeeded'"
    )
    op.create_index(_INDEX, "payhub_refunds", ["channel", "succeeded_at"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="payhub_refunds")
    with op.batch_alter_table("payhub_refunds") as batch:
        batch.drop_column("succeeded_at")
