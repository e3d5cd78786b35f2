"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from payhub.errors import ConfigurationError

__all__ = ["BigId", "Blob", "ExactString", "UTCDateTime", "nopad_collation"]

#: An auto-incrementing 64-bit key (SQLite only auto-increments INTEGER PRIMARY KEY).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Raw notification bodies: MySQL's BLOB stops at 64 KiB.
Blob = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def nopad_collation(dialect: Dialect) -> str:
    """The utf8mb4 collation of MySQL/MariaDB text: binary and NO PAD.

    ``utf8mb4_bin`` is a PAD SPACE collation: ``'P-ORDER-1 ' = 'P-ORDER-1'``
    is true under it, so a lookup of one finds the other. MariaDB (10.2 and
    later) has ``utf8mb4_nopad_bin``; MySQL 8.0.17 and later
    ``utf8mb4_0900_bin``. Older servers have no NO PAD binary utf8mb4
    collation and are refused.
    """
    version = tuple(dialect.server_version_info or ())
    if getattr(dialect, "is_mariadb", False):
        if version and version < (10, 2):
            raise ConfigurationError("store: MariaDB 10.2 or later is needed (utf8mb4_nopad_bin)")
        return "utf8mb4_nopad_bin"
    if version and version < (8, 0, 17):
        raise ConfigurationError("store: MySQL 8.0.17 or later is needed (utf8mb4_0900_bin)")
    return "utf8mb4_0900_bin"


class ExactString(sa.TypeDecorator[str]):
    """A VARCHAR compared byte for byte on every database: case, and trailing spaces.

    SQLite (BINARY) and PostgreSQL (deterministic collations) already compare
    so; on MySQL/MariaDB the column gets the server's NO PAD binary collation
    (:func:`nopad_collation`; migration 0005).
    """

    impl = sa.String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        length = cast(sa.String, self.impl_instance).length
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(
                mysql.VARCHAR(length, collation=nopad_collation(dialect))
            )
        return dialect.type_descriptor(sa.String(length))


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, stored naive in UTC (microseconds kept).

    Naive datetimes are refused on the way in; values come back aware (UTC).
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            return value.replace(tzinfo=None)
        if value.utcoffset() is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
