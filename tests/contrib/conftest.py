"""Django is configured here, once per session, before any test module imports it.

No database: payhub_django has no models, and the hubs in these tests use a
SQLite store of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

from payhub.store import Store

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="payhub-django-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="contrib_urls",
        INSTALLED_APPS=["payhub_django"],
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied per test (migrating costs more than copying)."""
    path = tmp_path_factory.mktemp("adapters") / "template.db"
    with Store(f"sqlite:///{path}") as store:
        store.upgrade()
    return path


@pytest.fixture
def store(store_template: Path, tmp_path: Path) -> Iterator[Store]:
    target = tmp_path / "payhub.db"
    target.write_bytes(store_template.read_bytes())
    with Store(f"sqlite:///{target}") as store:
        yield store
