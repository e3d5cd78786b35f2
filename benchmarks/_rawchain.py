"""The audit chain's work done raw, for the raw baselines: lock the head row,
hash the row's canonical form after the previous link, advance the head.

The canonical form is payhub's (``payhub.store._chain.canonical``): hashing is
the work being matched, not what is measured against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from payhub.store._chain import canonical


def raw_link(cur: Any, p: str, table: str, fields: Sequence[Any]) -> tuple[int, str]:
    """Lock the head (``p``: the driver's placeholder), return the next row's
    (chain_seq, chain_hash) and advance the head to it, in ``cur``'s transaction."""
    lock = " FOR UPDATE" if p == "%s" else ""
    cur.execute(f"SELECT seq, hash FROM payhub_chain_head WHERE id = 1{lock}")
    seq, previous = cur.fetchone()
    seq += 1
    digest = hashlib.sha256(bytes.fromhex(previous) + canonical(table, seq, fields)).hexdigest()
    cur.execute(f"UPDATE payhub_chain_head SET seq = {p}, hash = {p} WHERE id = 1", (seq, digest))
    return seq, digest
