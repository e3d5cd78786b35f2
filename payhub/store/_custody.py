"""The audit chain's verification and the encrypted fields' upkeep (part of
:class:`~payhub.store.Store`): ``payhub audit verify`` and ``payhub db
rotate-keys`` end here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payhub.errors import ConfigurationError
from payhub.store._base import StoreBase
from payhub.store._chain import ChainHead, ChainReport, read_head, walk
from payhub.store._crypt import opened_body, opened_payload
from payhub.store._records import InboxOutcome, InboxRecord
from payhub.store._schema import CHAINED, metadata, notifications

__all__ = ["CustodyJob"]

_ROTATE_BATCH = 200


class CustodyJob(StoreBase):
    """Audit chain verification, key rotation and lookups by buyer."""

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn = conn.execution_options(payhub_readonly=True)  # noqa: PLW2901
            with conn.begin():
                yield conn

    def chain_head(self) -> ChainHead:
        """The audit chain's last sequence number and link (0 and zeros if empty)."""
        return self._read(lambda conn: read_head(conn) or ChainHead(0, bytes(32).hex()))

    def verify_chain(self, checkpoints: Mapping[int, str] | None = None) -> ChainReport:
        """Walk the whole audit chain, a page at a time, and report its first
        broken sequence number (docs/audit.md). ``checkpoints``: sequence number
        → link, from verified signed checkpoints."""
        tables = [metadata.tables[name] for name in CHAINED]
        return self._guard(lambda: walk(self._reading, tables, checkpoints=checkpoints))

    def inbox_of_buyer(self, payer: str) -> list[InboxRecord]:
        """The notifications that named ``payer`` (the payer's id at the channel),
        found by its keyed hash; needs the encryption keys."""
        keys = self._field_keys
        if keys is None:
            raise ConfigurationError("store: lookups by buyer need store.encryption keys")
        stmt = (
            sa.select(notifications)
            .where(notifications.c.buyer_hash == keys.lookup_hash(payer))
            .order_by(notifications.c.id)
        )
        return self._read(
            lambda conn: [
                InboxRecord(
                    channel=r["channel"],
                    event_key=r["event_key"],
                    kind=r["kind"],
                    out_trade_no=r["out_trade_no"],
                    outcome=InboxOutcome(r["outcome"]),
                    received_at=r["received_at"],
                    raw_body=opened_body(keys, r),
                )
                for r in conn.execute(stmt).mappings()
            ]
        )

    def rotate_keys(self) -> int:
        """Re-encrypt every inbox row not under the current key (older keys,
        or stored in clear) with it, a batch per transaction. Returns how many."""
        keys = self._field_keys
        if keys is None:
            raise ConfigurationError("store: rotate-keys needs store.encryption keys")
        current = keys.current
        stale = sa.or_(notifications.c.key_id.is_(None), notifications.c.key_id != current)

        def batch(conn: Connection) -> int:
            rows = conn.execute(
                sa.select(notifications)
                .where(stale)
                .order_by(notifications.c.id)
                .limit(_ROTATE_BATCH)
                .with_for_update()
            ).mappings().all()
            for r in rows:
                body = opened_body(keys, r)
                payload = opened_payload(keys, r)
                channel, key = r["channel"], r["event_key"]
                conn.execute(
                    notifications.update().where(notifications.c.id == r["id"]),
                    {
                        "raw_body": keys.seal(body, "raw_body", channel, key),
                        "payload": None if payload is None else keys.seal_json(
                            payload, channel, key
                        ),
                        "key_id": current,
                    },
                )
            return len(rows)

        total = 0
        while True:
            done = self.run(batch)
            total += done
            if done < _ROTATE_BATCH:
                return total
