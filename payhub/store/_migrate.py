"""Alembic, driven from code: the migrations ship inside payhub.

No ``alembic.ini`` is needed; the configuration is built here and the
connection handed to ``env.py``. ``payhub db upgrade`` and
:meth:`Store.upgrade` both end here.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from payhub.store._schema import VERSION_TABLE

__all__ = ["alembic_config", "current_revision", "upgrade"]

SCRIPT_LOCATION = "payhub.store:migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
