"""Identifiers compare byte for byte on MySQL/MariaDB: a NO PAD binary collation.

``utf8mb4_bin`` (revision 0001) is a PAD SPACE collation: trailing spaces are
ignored in comparisons, so a notification for ``"P-ORDER-1 "`` found and
credited order ``"P-ORDER-1"``. Every table moves to the server's binary NO PAD
collation, ``utf8mb4_nopad_bin`` on MariaDB (10.2+) and ``utf8mb4_0900_bin`` on
MySQL (8.0.17+): its default and every text column. The values do not change;
only more of them become distinct, so no unique key can break. Each table is
rebuilt (a copy, locking it for writes while it runs): run it on deploy.

SQLite (BINARY) and PostgreSQL (deterministic collations) already compare
byte for byte: nothing to do there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from payhub.store._types import nopad_collation

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables as of this revision (frozen: not read from the live schema).
_TABLES = (
    "payhub_payments",
    "payhub_attempts",
    "payhub_notifications",
    "payhub_refunds",
    "payhub_events",
    "payhub_anomalies",
    "payhub_audit",
)


def _convert(collation: str) -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}")


def upgrade() -> None:
    dialect = op.get_bind().dialect
    if dialect.name in ("mysql", "mariadb"):
        _convert(nopad_collation(dialect))


def downgrade() -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        _convert("utf8mb4_bin")
