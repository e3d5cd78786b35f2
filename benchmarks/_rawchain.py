"""The audit chain's work done raw, for the raw baselines: lock the head row,
hash the row's canonical form after the previous link, advance the head; and
the payment's ledger entry written raw and chained (:func:`raw_payment_entry`),
as ``bench_store.py`` and ``e2e_apps.py`` both write it.

The canonical form is payhub's (``payhub.store._chain.canonical``): hashing is
the work being matched, not what is measured against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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


_ENTRY = (
    "INSERT INTO payhub_ledger_entries (idempotency_key, cause, reference, party, plan,"
    " available_on, currency, pending_minor, digest, created_at, chain_seq, chain_hash)"
    " VALUES ({p}, 'payment', {p}, 'shop', 'D+1', {p}, 'CNY', {p}, {p}, {p}, {p}, {p})"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_ACCOUNTS = (
    "INSERT INTO payhub_ledger_accounts (party, kind, currency, balance_minor, version,"
    " created_at) VALUES ('alipay', 'clearing', 'CNY', {p}, 1, {p}), ('shop', 'pending', 'CNY',"
    " {p}, 1, {p}) ON CONFLICT (party, kind, currency) DO UPDATE SET"
    " balance_minor = payhub_ledger_accounts.balance_minor + excluded.balance_minor,"
    " version = payhub_ledger_accounts.version + 1 RETURNING id, kind"
)
_LINES = (
    "INSERT INTO payhub_ledger_lines (entry_id, account_id, amount_minor, currency, created_at)"
    " VALUES ({p}, {p}, {p}, 'CNY', {p}), ({p}, {p}, {p}, 'CNY', {p})"
)
_DIGEST = "0" * 64  # the lines' digest: a constant, the raw side skips computing it


def raw_payment_entry(cur: Any, p: str, out_trade_no: str, amount: int, now: datetime) -> None:
    """A payment's ledger entry, chained, as payhub's default ledger posts it:
    Alipay clearing +amount against the shop's pending balance, paid out D+1 (the
    next day at midnight, Asia/Shanghai); the two balances upserted, the two lines
    inserted. ``now``: naive UTC, as the raw sides store times."""
    aware = now.replace(tzinfo=UTC)
    available = (aware + timedelta(hours=8)).replace(hour=0, minute=0, second=0, microsecond=0)
    available = available + timedelta(days=1) - timedelta(hours=8)
    key = f"payment:{out_trade_no}"
    fields = (key, "payment", out_trade_no, "shop", "D+1", available, "CNY", amount, _DIGEST, aware)
    seq, digest = raw_link(cur, p, "payhub_ledger_entries", fields)
    naive = available.replace(tzinfo=None)
    cur.execute(_ENTRY.format(p=p), (key, out_trade_no, naive, amount, _DIGEST, now, seq, digest))
    (entry,) = cur.fetchone()
    cur.execute(_ACCOUNTS.format(p=p), (amount, now, amount, now))
    ids = {kind: account for account, kind in cur.fetchall()}
    cur.execute(
        _LINES.format(p=p),
        (entry, ids["clearing"], amount, now, entry, ids["pending"], -amount, now),
    )
