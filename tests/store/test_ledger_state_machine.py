"""A hypothesis state machine over the ledger: random sequences of payments, duplicate
payments, partial and full refunds, replays, settlement runs, holds, releases,
withdrawals and failed withdrawals, across sellers on a T+1, a daily cut-off and
an instant (秒到) plan. After every step: each entry sums to zero, every balance
equals its lines, all balances sum to zero, no forbidden negative, every due
pending entry sits in exactly one batch, and pending equals what is unbatched.
SQLite only (the writer is the same SQL on every database; the other tests run
it on all three)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from ledgerkit import check_invariants, count
from storekit import ToyBank, ToyChannel

from payhub import LedgerError, Money, PayHub, PaymentRequest, PayMethod, RefundRequest
from payhub.ledger import Account, AccountKind
from payhub.store import Store
from payhub.store._schema import (
    ledger_batch_members,
    ledger_batches,
    ledger_entries,
)
from payhub.tz import SHANGHAI

SELLERS = ("t1", "daily", "fast")
PLANS = {"t1": "T+1", "daily": "daily@22:00", "fast": "instant"}
K = AccountKind

_TEMPLATE: dict[str, Path] = {}


def _template() -> Path:
    if "path" not in _TEMPLATE:
        path = Path(tempfile.mkdtemp()) / "template.db"
        with Store(f"sqlite:///{path}") as store:
            store.upgrade()
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


class FailoverHub(PayHub):
    """Tries each toy channel in order (the routing engine's job, stubbed)."""

    def candidates(self, request):  # type: ignore[no-untyped-def]
        if request.channel is not None:
            return [self.channel(request.channel)]
        return list(self.channels.values())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 9, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        shutil.copyfile(_template(), self.dir / "l.db")
        self.clock = Clock()
        self.store = Store(
            f"sqlite:///{self.dir / 'l.db'}",
            clock=self.clock,
            ledger={
                "plans": PLANS,
                "instant_fee_rate": "0.003",
                "channel_fees": {"default": {"type": "percentage", "rate": "0.006"}},
                "seller_fees": {"default": {"type": "percentage", "rate": "0.01"}},
                "withdrawal": {"minimum": 50, "fee": {"type": "fixed", "amount": 2}},
            },
        )
        self.bank = ToyBank()
        self.hub = FailoverHub(
            channels=[ToyChannel("toy-a"), ToyChannel("toy-b")],
            store=self.store,
            http_client=self.bank.client(),
        )
        self.n = 0
        #: out_trade_no -> (amount, refunded so far)
        self.paid: dict[str, list[int]] = {}
        self.delivered: list[tuple[str, tuple[dict[str, str], bytes]]] = []
        self.holds: list[int] = []
        self.withdrawals: list[int] = []

    def teardown(self) -> None:
        self.hub.close()
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _order(self) -> str:
        self.n += 1
        return f"M{self.n}"

    def _pay_request(self, order: str, amount: int, seller: str, channel: str | None = None):
        return PaymentRequest(
            out_trade_no=order,
            amount=Money(amount),
            subject="card",
            method=PayMethod.QR,
            seller=seller,
            channel=channel,
        )

    @rule(seller=st.sampled_from(SELLERS), amount=st.integers(1, 50_000))
    def pay(self, seller: str, amount: int) -> None:
        order = self._order()
        self.hub.pay(self._pay_request(order, amount, seller, "toy-a"))
        delivery = self.bank.buyer_pays("toy-a", order)
        assert self.hub.handle_notification("toy-a", *delivery).ack.ok
        self.delivered.append(("toy-a", delivery))
        self.paid[order] = [amount, 0]

    @rule(seller=st.sampled_from(SELLERS), amount=st.integers(1, 20_000))
    def duplicate_pay(self, seller: str, amount: int) -> None:
        order = self._order()
        self.bank.fail_pay["toy-a"] = "timeout"
        self.hub.pay(self._pay_request(order, amount, seller))
        del self.bank.fail_pay["toy-a"]
        assert self.hub.handle_notification("toy-b", *self.bank.buyer_pays("toy-b", order)).ack.ok
        assert self.hub.handle_notification("toy-a", *self.bank.buyer_pays("toy-a", order)).ack.ok
        suspense = self.store.ledger.balance(Account("platform", K.SUSPENSE))
        assert suspense.minor >= amount

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        channel, delivery = data.draw(st.sampled_from(self.delivered))
        before = count(self.store, ledger_entries)
        assert self.hub.handle_notification(channel, *delivery).ack.ok
        assert count(self.store, ledger_entries) == before

    @precondition(lambda self: any(a > r for a, r in self.paid.values()))
    @rule(data=st.data(), full=st.booleans())
    def refund(self, data: st.DataObject, full: bool) -> None:
        order = data.draw(st.sampled_from(sorted(o for o, (a, r) in self.paid.items() if a > r)))
        amount, refunded = self.paid[order]
        left = amount - refunded
        part = left if full else data.draw(st.integers(1, left))
        self.n += 1
        self.hub.refund(
            None,
            RefundRequest(
                out_trade_no=order, out_refund_no=f"{order}-R{self.n}", amount=Money(part)
            ),
        )
        self.paid[order][1] += part

    @rule(hours=st.integers(1, 96))
    def settle(self, hours: int) -> None:
        self.clock.now += timedelta(hours=hours)
        self.store.ledger.settle()
        assert self.store.ledger.settle().batches == 0  # a re-run creates nothing

    @rule(seller=st.sampled_from(SELLERS), amount=st.integers(1, 30_000))
    def hold(self, seller: str, amount: int) -> None:
        # not enough available: refused, nothing written (the invariants check it)
        with contextlib.suppress(LedgerError):
            self.holds.append(self.store.ledger.hold(seller, Money(amount)).id)

    @precondition(lambda self: bool(self.holds))
    @rule(capture=st.booleans())
    def release(self, capture: bool) -> None:
        hold_id = self.holds.pop(0)
        if capture:
            self.store.ledger.capture(hold_id)
        else:
            self.store.ledger.release(hold_id)

    @rule(seller=st.sampled_from(SELLERS), amount=st.integers(1, 30_000))
    def withdraw(self, seller: str, amount: int) -> None:
        with contextlib.suppress(LedgerError):
            self.withdrawals.append(self.store.ledger.withdraw(seller, Money(amount)).id)

    @precondition(lambda self: bool(self.withdrawals))
    @rule(fail=st.booleans())
    def finish_withdrawal(self, fail: bool) -> None:
        item = self.withdrawals.pop(0)
        if fail:
            self.store.ledger.mark_withdrawal_failed(item)
        else:
            self.store.ledger.mark_withdrawal_paid(item)

    @invariant()
    def sound(self) -> None:
        check_invariants(self.store)
        e, m, b = ledger_entries, ledger_batch_members, ledger_batches
        with self.store.engine.connect() as conn:
            early = conn.execute(
                sa.select(sa.func.count())
                .select_from(m.join(e, m.c.entry_id == e.c.id).join(b, m.c.batch_id == b.c.id))
                .where(e.c.available_on > b.c.created_at)
            ).scalar_one()
            assert early == 0  # nothing settled before it was due
            unbatched = dict(
                conn.execute(
                    sa.select(e.c.party, sa.func.sum(e.c.pending_minor))
                    .where(
                        e.c.pending_minor.is_not(None), ~sa.exists().where(m.c.entry_id == e.c.id)
                    )
                    .group_by(e.c.party)
                ).all()
            )
        for seller in SELLERS:
            pending = self.store.ledger.balance(Account(seller, K.PENDING)).minor
            assert pending == int(unbatched.get(seller) or 0)


LedgerMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=14,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class TestLedgerMachine(LedgerMachine.TestCase):  # type: ignore[misc, valid-type]
    pass
