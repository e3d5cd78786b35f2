"""A fresh Django ``default`` database per test, on SQLite or PostgreSQL.

SQLite: a file migrated once per session by ``manage.py migrate`` (Django's
tables and payhub's, the latter through payhub_django's migration), copied per
test. PostgreSQL (``PAYHUB_TEST_POSTGRES_URL``): a new schema per test,
migrated the same way, dropped after. ``Database.url`` is the same database as
a payhub store URL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from django.core.management import call_command
from django.db import connections
from sqlalchemy.engine import make_url


@dataclass
class Database:
    backend: str
    #: the same database as a payhub store URL
    url: str


def use_default(settings_dict: dict[str, Any]) -> None:
    """Point Django's ``default`` alias at another database (as Django's own test
    runner points it at the test database)."""
    connections["default"].close()
    connections.settings["default"] = connections.configure_settings(
        {"default": settings_dict}
    )["default"]
    del connections["default"]


def sqlite_settings(path: Path) -> dict[str, Any]:
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}


def postgres_server() -> sa.URL:
    value = os.environ.get("PAYHUB_TEST_POSTGRES_URL")
    if not value:
        pytest.skip("PAYHUB_TEST_POSTGRES_URL is not set: no postgres server to test against")
    return make_url(value)


@contextmanager
def postgres_schema() -> Iterator[tuple[dict[str, Any], str]]:
    """A new schema: (Django settings for it, its payhub store URL)."""
    server = postgres_server()
    name = f"payhub_dj_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        options = f"-csearch_path={name}"
        django_settings = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": server.database,
            "USER": server.username or "",
            "PASSWORD": server.password or "",
            "HOST": server.host or "",
            "PORT": str(server.port or ""),
            "OPTIONS": {"options": options},
        }
        url = server.update_query_dict({"options": options}).render_as_string(hide_password=False)
        yield django_settings, url
    finally:
        connections["default"].close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("django") / "template.db"
    use_default(sqlite_settings(path))
    call_command("migrate", verbosity=0)
    connections["default"].close()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def django_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Database]:
    """A migrated database as Django's ``default``, for this test only."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "django.db"
        shutil.copyfile(template, path)
        use_default(sqlite_settings(path))
        yield Database("sqlite", f"sqlite:///{path}")
        connections["default"].close()
        return
    with postgres_schema() as (django_settings, url):
        use_default(django_settings)
        call_command("migrate", verbosity=0)
        yield Database("postgres", url)
