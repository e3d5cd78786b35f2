"""Least privilege on PostgreSQL: the grants of the application's role.

Two roles (docs/security.md): the migrator owns payhub's tables (it runs
``payhub db upgrade``); the application's role may read every table, insert
into every table, update only the tables whose rows change (payments,
refunds, inbox, outbox, anomalies, reviews, the chain head) and update or
delete no row of the append-only tables (the audit, the risk audit, ledger
entries: :data:`~payhub.store._schema.APPEND_ONLY`). It may delete nothing
and truncate nothing, and owns nothing: an owner could grant itself anything.
"""

from __future__ import annotations

import re

from payhub.errors import ConfigurationError
from payhub.store._schema import APPEND_ONLY, VERSION_TABLE, metadata

__all__ = ["grant_statements"]

_NAME = re.compile(r"[a-z_][a-z0-9_$]{0,62}", re.ASCII)


def _ident(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"{what} {name!r}: use a plain lower-case PostgreSQL name (a-z, 0-9, _)"
        )
    return f'"{name}"'


def grant_statements(app_role: str, *, migrator: str, schema: str = "public") -> list[str]:
    """The statements, to run as ``migrator`` after every migration, that give
    ``app_role`` exactly what payhub's application code needs."""
    app, owner, where = (
        _ident(app_role, "role"), _ident(migrator, "role"), _ident(schema, "schema"),
    )
    if app == owner:
        raise ConfigurationError("the application's role must not be the migrator")
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {app}",
        f"REVOKE CREATE ON SCHEMA {where} FROM {app}",
        f"GRANT USAGE ON SCHEMA {where} TO {app}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {where} TO {app}",
        f'GRANT SELECT ON {where}."{VERSION_TABLE}" TO {app}',
    ]
    for table in metadata.sorted_tables:
        rights = "SELECT, INSERT" if table.name in APPEND_ONLY else "SELECT, INSERT, UPDATE"
        statements.append(f'GRANT {rights} ON {where}."{table.name}" TO {app}')
    return statements
