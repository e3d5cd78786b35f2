"""Alembic, driven from code: the migrations ship inside payhub.

No ``alembic.ini`` is needed; the configuration is built here and the
connection handed to ``env.py``. ``payhub db upgrade`` and
:meth:`Store.upgrade` both end here.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

from payhub.store._schema import VERSION_TABLE

__all__ = ["alembic_config", "current_revision", "upgrade"]

SCRIPT_LOCATION = "payhub.store:migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate on one connection without the store's statement and lock time
    limits (a table rebuild may take minutes); the connection is then closed,
    never handed back to the pool with the limits lifted."""
    config = alembic_config(engine)
    with engine.connect() as conn:
        try:
            with conn.begin():
                _lift_time_limits(conn)
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        finally:
            conn.invalidate()


def _lift_time_limits(conn: Connection) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql("SET statement_timeout = 0")
        conn.exec_driver_sql("SET lock_timeout = 0")
    elif name in ("mysql", "mariadb"):
        mariadb = getattr(conn.dialect, "is_mariadb", False)
        limit = "max_statement_time" if mariadb else "max_execution_time"
        conn.exec_driver_sql(
            f"SET SESSION {limit} = 0, innodb_lock_wait_timeout = @@GLOBAL.innodb_lock_wait_timeout"
        )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
