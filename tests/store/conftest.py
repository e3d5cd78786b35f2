"""The ``store`` fixture: every store test runs on SQLite, PostgreSQL and MariaDB/MySQL.

SQLite uses a fresh file per test. PostgreSQL and MySQL use the servers named
by ``PAYHUB_TEST_POSTGRES_URL`` / ``PAYHUB_TEST_MYSQL_URL``: each test session
creates its own schema (PostgreSQL) or database (MySQL), migrates it once,
empties the tables before each test and drops it at the end, so parallel runs
never share rows. A backend whose variable is unset is skipped, saying so; a
backend whose variable is set but whose server is down fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from storekit import ToyBank, ToyChannel

from payhub import PayHub
from payhub.store import Store
from payhub.store._schema import metadata

ENV = {"postgres": "PAYHUB_TEST_POSTGRES_URL", "mysql": "PAYHUB_TEST_MYSQL_URL"}


@dataclass
class Database:
    backend: str
    #: for SQLite the migrated template file; else the URL of this session's schema
    url: str
    template: Path | None = None

    def fresh_url(self, tmp_path: Path) -> str:
        if self.template is None:
            return self.url
        target = tmp_path / "payhub.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"


def _server_url(backend: str) -> str:
    value = os.environ.get(ENV[backend])
    if not value:
        pytest.skip(f"{ENV[backend]} is not set: no {backend} server to test against")
    return value


@contextmanager
def _postgres(name: str) -> Iterator[str]:
    server = make_url(_server_url("postgres"))
    admin = sa.create_engine(server)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        yield server.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


@contextmanager
def _mysql(name: str) -> Iterator[str]:
    server = make_url(_server_url("mysql"))
    admin = sa.create_engine(server)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@pytest.fixture(
    scope="session",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    backend: str = request.param
    if backend == "sqlite":
        template = tmp_path_factory.mktemp("store") / "template.db"
        with Store(f"sqlite:///{template}") as store:
            store.upgrade()
        yield Database(backend, f"sqlite:///{template}", template)
        return
    name = f"payhub_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    make = _postgres if backend == "postgres" else _mysql
    with make(name) as url:
        with Store(url) as store:
            store.upgrade()
        yield Database(backend, url)


def _empty(store: Store) -> None:
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # TRUNCATE: the ledger's immutability trigger refuses DELETE (by design)
            names = ", ".join(table.name for table in metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {names}")
            return
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def store_url(database: Database, tmp_path: Path) -> str:
    """A migrated, empty store database, as a URL (for other processes too)."""
    url = database.fresh_url(tmp_path)
    if database.template is None:
        with Store(url) as store:
            _empty(store)
    return url


@pytest.fixture
def store(store_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The store; ``@pytest.mark.external_refunds`` builds it accepting refunds
    payhub did not ask for (made in a channel's merchant console)."""
    external = request.node.get_closest_marker("external_refunds") is not None
    with Store(store_url, external_refunds=external) as store:
        yield store


@pytest.fixture
def bank() -> ToyBank:
    return ToyBank()


class FailoverHub(PayHub):
    """Tries every toy channel in order (the routing engine's job, stubbed)."""

    def candidates(self, request):  # type: ignore[no-untyped-def]
        if request.channel is not None:
            return [self.channel(request.channel)]
        return list(self.channels.values())


@pytest.fixture
def hub(store: Store, bank: ToyBank) -> Iterator[FailoverHub]:
    with FailoverHub(
        channels=[ToyChannel("toy-a"), ToyChannel("toy-b")], store=store, http_client=bank.client()
    ) as hub:
        yield hub
