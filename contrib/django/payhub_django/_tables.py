"""payhub's tables created by ``manage.py migrate`` (this app's migration 0001)."""

from __future__ import annotations

from typing import Any

from payhub.store import Store
from payhub_django._database import sqlalchemy_url

__all__ = ["upgrade_store"]


def upgrade_store(apps: Any, schema_editor: Any) -> None:
    """Run payhub's own Alembic migrations on the database Django is migrating.

    Django's ``migrate`` reaches here only for a database the routers allow
    payhub_django on. Going back (``migrate payhub_django zero``) leaves the
    tables as they are: payhub never downgrades a store.
    """
    with Store(sqlalchemy_url(schema_editor.connection)) as store:
        store.upgrade()
