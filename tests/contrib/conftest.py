"""Django is configured here, once per session, before any test module imports it.

The admin's apps are installed for payhub_django's admin tests; their database
(``default``) is pointed at a fresh one per test by ``django_db`` in
test_django_admin.py. The notification-view tests touch no database: their
hubs use a SQLite store of their own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

# A fresh Django database per test (payhub_django's admin tests).
from djangodb import django_db, sqlite_template  # noqa: F401

from payhub.store import Store

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="payhub-django-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="contrib_urls",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "payhub_django",
        ],
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        # A placeholder file; each admin test gets its own database.
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(Path(tempfile.mkdtemp(prefix="payhub-django-")) / "unused.db"),
            }
        },
        USE_TZ=True,
        TIME_ZONE="UTC",
        # the admin tests log in; the default hasher is slow on purpose
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
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
