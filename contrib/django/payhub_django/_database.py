"""A Django database connection's settings as a SQLAlchemy URL, so payhub's
Alembic migrations run on the very database Django migrates (a test database
included)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

__all__ = ["sqlalchemy_url"]

#: PostgreSQL connection options that mean the same to psycopg under SQLAlchemy
_PG_OPTIONS = (
    "options",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "connect_timeout",
)


def sqlalchemy_url(connection: Any) -> str:
    """The URL of a Django connection's database (password included: never print it).

    SQLite, PostgreSQL (psycopg 3, or psycopg2) and MySQL/MariaDB (mysqlclient,
    as Django uses). An in-memory SQLite database is refused: payhub's store
    needs a file (give ``DATABASES[...]["TEST"]["NAME"]`` a path for tests).
    """
    settings = connection.settings_dict
    vendor = connection.vendor
    if vendor == "sqlite":
        if connection.is_in_memory_db():
            raise ImproperlyConfigured(
                f"payhub's tables need a SQLite file, not an in-memory database "
                f"(DATABASES[{connection.alias!r}]); for tests set "
                "DATABASES[alias]['TEST']['NAME'] to a file path"
            )
        return URL.create("sqlite", database=str(settings["NAME"])).render_as_string(
            hide_password=False
        )
    options = settings.get("OPTIONS") or {}
    if vendor == "postgresql":
        driver = "postgresql+psycopg" if _has_module("psycopg") else "postgresql+psycopg2"
        query = {key: str(options[key]) for key in _PG_OPTIONS if key in options}
    elif vendor == "mysql":
        driver, query = "mysql+mysqldb", {"charset": "utf8mb4"}
    else:
        raise ImproperlyConfigured(
            f"payhub's store runs on SQLite, PostgreSQL or MySQL/MariaDB, not {vendor}"
        )
    port = settings.get("PORT")
    url = URL.create(
        driver,
        username=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=int(port) if port else None,
        database=settings.get("NAME") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def _has_module(name: str) -> bool:
    from importlib.util import find_spec  # noqa: PLC0415

    return find_spec(name) is not None
