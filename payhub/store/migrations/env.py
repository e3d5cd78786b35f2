"""Alembic environment of the payment store.

Run from code (:func:`payhub.store._migrate.upgrade`), which passes an open
connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from payhub.store._schema import VERSION_TABLE, metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "payhub migrations run from code: use Store.upgrade() or payhub db upgrade"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
