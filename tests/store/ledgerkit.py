"""Helpers for the ledger tests: paying through the toy hub, and checking the ledger's
invariants straight from its tables (not through the API under test)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from payhub import Money, PaymentRequest, PayMethod
from payhub.ledger import AccountKind
from payhub.store import Store
from payhub.store._schema import (
    ledger_accounts,
    ledger_batch_members,
    ledger_entries,
    ledger_lines,
)


def pay(hub: Any, out_trade_no: str, amount: int = 1000, seller: str | None = None) -> None:
    hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no,
            amount=Money(amount),
            subject="gift card",
            method=PayMethod.QR,
            seller=seller,
        )
    )


def paid(hub: Any, bank: Any, out_trade_no: str, amount: int = 1000, seller: str | None = None):
    """Paid at toy-a and its notification applied; returns the hub's outcome."""
    pay(hub, out_trade_no, amount, seller)
    outcome = hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", out_trade_no))
    assert outcome.ack.ok
    return outcome


def balances(store: Store) -> dict[tuple[str, str], int]:
    """(party, kind) -> normal-side balance, CNY, from the account rows."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ledger_accounts.c.party, ledger_accounts.c.kind, ledger_accounts.c.balance_minor
            ).where(ledger_accounts.c.currency == "CNY")
        ).all()
    return {(p, k): int(b) for p, k, b in rows if int(b) != 0}


def count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def check_invariants(store: Store) -> None:
    """Every entry sums to zero per currency; every account's balance and version
    equal what its lines say; all balances (signed) sum to zero; no forbidden negative;
    no entry is in two batches (the primary key says so; checked anyway)."""
    e, ln, a, m = ledger_entries, ledger_lines, ledger_accounts, ledger_batch_members
    with store.engine.connect() as conn:
        unbalanced = conn.execute(
            sa.select(ln.c.entry_id, ln.c.currency)
            .group_by(ln.c.entry_id, ln.c.currency)
            .having(sa.func.sum(ln.c.amount_minor) != 0)
        ).all()
        assert unbalanced == []
        empty = conn.execute(
            sa.select(sa.func.count())
            .select_from(e)
            .where(~sa.exists().where(ln.c.entry_id == e.c.id))
        ).scalar_one()
        assert empty == 0
        sums = {
            int(i): (int(s), int(n))
            for i, s, n in conn.execute(
                sa.select(
                    ln.c.account_id, sa.func.sum(ln.c.amount_minor), sa.func.count()
                ).group_by(ln.c.account_id)
            )
        }
        total: dict[str, int] = {}
        for row in conn.execute(sa.select(a)).mappings():
            kind = AccountKind(row["kind"])
            signed, lines = sums.get(int(row["id"]), (0, 0))
            assert int(row["balance_minor"]) == signed * kind.side.value, dict(row)
            assert int(row["version"]) == lines, dict(row)
            if kind.non_negative:
                assert int(row["balance_minor"]) >= 0, dict(row)
            total[row["currency"]] = total.get(row["currency"], 0) + signed
        assert all(v == 0 for v in total.values()), total
        twice = conn.execute(
            sa.select(m.c.entry_id).group_by(m.c.entry_id).having(sa.func.count() > 1)
        ).all()
        assert twice == []
