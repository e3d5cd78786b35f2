"""Django fields for payhub's column types (payhub/store/_types.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db import models  # type: ignore[import-untyped]

from payhub import Money

__all__ = ["PayhubModel", "StoredJSONField", "UTCDateTimeField", "money"]


class UTCDateTimeField(models.DateTimeField):  # type: ignore[misc]  # Django ships no type hints
    """payhub's times: stored without a zone, in UTC, on every database.

    Django reads them aware on SQLite and MySQL already; PostgreSQL's
    ``timestamp without time zone`` comes back naive, and is made UTC here.
    """

    def from_db_value(self, value: datetime | None, expression: Any, connection: Any) -> Any:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class StoredJSONField(models.JSONField):  # type: ignore[misc]
    """payhub's JSON columns: PostgreSQL's ``json`` type (not ``jsonb``) comes
    back already decoded by the driver; text is decoded here."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, str | bytes):
            return json.loads(value)
        return value


def money(minor: int | None, currency: str | None) -> Money | None:
    """An amount column and its currency as :class:`~payhub.Money` (None if unknown)."""
    if minor is None or currency is None:
        return None
    return Money(minor, currency)


class PayhubModel(models.Model):  # type: ignore[misc]
    """A row of payhub's store: read with the ORM, changed only through the hub
    (its transitions keep the audit trail, the events and the ledger in step)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self).__name__}: payhub's rows change through the hub, not save()")

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__}: payhub's rows change through the hub, not delete()"
        )
