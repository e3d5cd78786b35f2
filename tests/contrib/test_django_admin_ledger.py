"""payhub_django's admin for the ledger, settlements, holds, withdrawals, risk
reviews and reconciliation differences, on SQLite and on PostgreSQL (a real
server, a schema per test): the pages show money in yuan, the actions go
through hub.ledger, the hub's review API and the reconciler, each is recorded
in the admin history, and a refusal is a message on the page, never a 500."""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from djangodb import Database
from payhub_django import set_hub
from payhub_django.models import (
    Hold,
    LedgerAccount,
    LedgerEntry,
    ReconDifference,
    RiskReview,
    SettlementBatch,
    Withdrawal,
)

from payhub import Money, PayHub, PaymentRequest, PayMethod
from payhub.channels._bills import BillStream
from payhub.ledger import HoldStatus, WithdrawalStatus
from payhub.models import BillRecord
from payhub.recon import Reconciler
from payhub.risk import RiskEngine
from payhub.store import ReviewStatus, Store

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from storekit import ToyBank, ToyChannel

ADMIN = "/admin/payhub_django"
RULES = {"rules": [{"name": "big", "type": "amount", "action": "review", "max_minor": 5000}]}


@pytest.fixture
def bank() -> ToyBank:
    return ToyBank()


@pytest.fixture
def hub(django_db: Database, bank: ToyBank) -> Iterator[PayHub]:
    """The process's hub (with a review rule) on the very database the admin reads."""
    with PayHub(
        channels=[ToyChannel("toy-a")],
        store=Store(django_db.url),
        http_client=bank.client(),
        risk=RiskEngine.from_config(RULES),
    ) as hub:
        hub._owns_store = True
        assert hub.store is not None
        hub.store.configure_ledger(
            {
                "plans": {"seller-h": "instant"},
                "withdrawal": {"minimum": 100, "fee": {"type": "fixed", "amount": 10}},
            }
        )
        set_hub(hub)
        yield hub
        set_hub(None)


@pytest.fixture
def operator(django_db: Database) -> Client:
    User.objects.create_superuser("wang.fang", "wang@example.com", "pw")
    client = Client()
    client.login(username="wang.fang", password="pw")
    return client


def paid(hub: PayHub, bank: ToyBank, out_trade_no: str, minor: int, seller: str | None = None):  # type: ignore[no-untyped-def]
    hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no,
            amount=Money(minor),
            subject="card",
            method=PayMethod.QR,
            seller=seller,
        )
    )
    assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", out_trade_no)).ack.ok


def act(client: Client, model: str, name: str, pks: list[int], **fields: str):  # type: ignore[no-untyped-def]
    return client.post(f"{ADMIN}/{model}/", {"action": name, "_selected_action": pks, **fields})


def said(client: Client, model: str) -> list[tuple[str, str]]:
    """The messages (level, text) the operator sees after an action."""
    text = shown_after(client, model)
    found = re.findall(r'<li class="(error|success|warning)">(.*?)</li>', text, re.S)
    return [(level, html.unescape(message).strip()) for level, message in found]


def shown_after(client: Client, model: str) -> str:
    """The changelist as the operator sees it after an action (its messages)."""
    page = client.get(f"{ADMIN}/{model}/")
    assert page.status_code == 200
    return page.content.decode()


def history(obj: object) -> list[str]:
    return [
        e.get_change_message()
        for e in LogEntry.objects.filter(object_id=str(obj.pk)).order_by("id")  # type: ignore[attr-defined]
        if e.content_type.model_class() is type(obj)
    ]


# -- read-only pages ---------------------------------------------------------------------


def test_accounts_entries_and_batches_in_yuan(hub: PayHub, bank: ToyBank, operator: Client) -> None:
    paid(hub, bank, "L1001", 1234)
    paid(hub, bank, "L1002", 766)
    pending = LedgerAccount.objects.get(party="shop", kind="pending")
    assert pending.balance == Money(2000)
    text = shown_after(operator, "ledgeraccount")
    assert "shop" in text
    assert "20.00 CNY" in text
    entry = LedgerEntry.objects.get(cause="payment", reference="L1001")
    page = operator.get(f"{ADMIN}/ledgerentry/{entry.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "12.34 CNY" in text  # the lines, inline, as debit and credit
    assert 'name="_save"' not in text
    assert sum(line.amount_minor for line in entry.lines.all()) == 0

    assert hub.store is not None
    hub.ledger.settle(hub.store.now() + timedelta(days=30))
    batch = SettlementBatch.objects.get(party="shop")
    assert (batch.amount, batch.entry_count) == (Money(2000), 2)
    assert "20.00 CNY" in shown_after(operator, "settlementbatch")
    page = operator.get(f"{ADMIN}/settlementbatch/{batch.pk}/change/").content.decode()
    assert "L1001" in page
    assert "L1002" in page
    assert "7.66 CNY" in page
    assert {m.entry.reference for m in batch.members.all()} == {"L1001", "L1002"}


def test_every_new_page_renders(hub: PayHub, bank: ToyBank, operator: Client) -> None:
    paid(hub, bank, "S1001", 9000, seller="seller-h")  # held for review too
    hold = hub.ledger.hold("seller-h", Money(100), reason="dispute")
    withdrawal = hub.ledger.withdraw("seller-h", Money(200))
    objects = {
        "ledgeraccount": LedgerAccount.objects.get(party="seller-h", kind="available").pk,
        "ledgerentry": LedgerEntry.objects.get(reference="S1001").pk,
        "hold": hold.id,
        "withdrawal": withdrawal.id,
        "riskreview": RiskReview.objects.get().pk,
        "recondifference": ghost_difference(hub).pk,
    }
    for model, pk in objects.items():
        listed = operator.get(f"{ADMIN}/{model}/")
        assert listed.status_code == 200, model
        page = operator.get(f"{ADMIN}/{model}/{pk}/change/")
        assert page.status_code == 200, model
        assert 'name="_save"' not in page.content.decode(), model
    assert "87.00 CNY" in shown_after(operator, "ledgeraccount")  # 90 paid, 1 frozen, 2 out


def test_the_admin_never_edits_the_ledger(hub: PayHub, bank: ToyBank, operator: Client) -> None:
    paid(hub, bank, "L1003", 1000)
    entry = LedgerEntry.objects.get(reference="L1003")
    assert (
        operator.post(f"{ADMIN}/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert operator.post(f"{ADMIN}/ledgerentry/add/", {}).status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


# -- holds --------------------------------------------------------------------------------


def test_release_and_capture_holds_through_the_ledger(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    paid(hub, bank, "H1001", 1000, seller="seller-h")
    first = hub.ledger.hold("seller-h", Money(300), reason="dispute")
    second = hub.ledger.hold("seller-h", Money(200), reason="chargeback")
    assert "3.00 CNY" in shown_after(operator, "hold")

    assert act(operator, "hold", "release_holds", [first.id]).status_code == 302
    assert said(operator, "hold") == [
        ("success", f"Hold {first.id} seller-h: released through payhub: 3.00 CNY back to seller-h")
    ]
    assert hub.ledger.holds(status="released")[0].id == first.id
    available = LedgerAccount.objects.get(party="seller-h", kind="available")
    assert available.balance == Money(800)
    form = act(operator, "hold", "capture_holds", [second.id])
    assert form.status_code == 200  # capturing asks why first
    assert Hold.objects.get(pk=second.id).status == "active"
    done = act(
        operator, "hold", "capture_holds", [second.id], confirm="Capture", note="chargeback lost"
    )
    assert done.status_code == 302
    assert Hold.objects.get(pk=second.id).status == HoldStatus.CAPTURED.value
    assert LedgerAccount.objects.get(party="platform", kind="captured").balance == Money(200)
    assert history(Hold.objects.get(pk=first.id)) == [
        "released through payhub: 3.00 CNY back to seller-h"
    ]
    assert history(Hold.objects.get(pk=second.id)) == [
        "captured through payhub: 2.00 CNY from seller-h (chargeback lost)"
    ]
    assert LogEntry.objects.get(object_id=str(second.id)).user.username == "wang.fang"

    # Releasing a captured hold is refused by the ledger: a message, nothing changed.
    page = act(operator, "hold", "release_holds", [second.id])
    assert page.status_code == 302
    assert said(operator, "hold")[-1] == (
        "error",
        f"Hold {second.id} seller-h: hold {second.id} is already captured",
    )
    assert Hold.objects.get(pk=second.id).status == "captured"
    assert len(history(Hold.objects.get(pk=second.id))) == 1


def test_a_refused_hold_action_is_a_message(hub: PayHub, bank: ToyBank, operator: Client) -> None:
    paid(hub, bank, "H1002", 1000, seller="seller-h")
    hold = hub.ledger.hold("seller-h", Money(100))
    hub.ledger.release(hold.id)  # released meanwhile, by someone else
    page = act(operator, "hold", "capture_holds", [hold.id], confirm="Capture", note="fraud")
    assert page.status_code == 302
    assert said(operator, "hold") == [
        ("error", f"Hold {hold.id} seller-h: hold {hold.id} is already released")
    ]
    assert Hold.objects.get(pk=hold.id).status == "released"
    assert not LogEntry.objects.exists()
    assert LedgerAccount.objects.get(party="seller-h", kind="available").balance == Money(1000)


# -- withdrawals --------------------------------------------------------------------------


def test_mark_withdrawals_paid_and_failed_with_a_note(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    paid(hub, bank, "W1001", 1000, seller="seller-h")
    first = hub.ledger.withdraw("seller-h", Money(500))
    second = hub.ledger.withdraw("seller-h", Money(300))
    assert "5.00 CNY" in shown_after(operator, "withdrawal")

    form = act(operator, "withdrawal", "mark_paid", [first.id])
    assert form.status_code == 200
    assert 'name="note"' in form.content.decode()
    again = act(operator, "withdrawal", "mark_paid", [first.id], confirm="Mark paid")
    assert again.status_code == 200  # the note is required
    assert Withdrawal.objects.get(pk=first.id).status == "pending"

    done = act(
        operator,
        "withdrawal",
        "mark_paid",
        [first.id],
        confirm="Mark paid",
        note="ICBC ref 2024060100001",
    )
    assert done.status_code == 302
    record = Withdrawal.objects.get(pk=first.id)
    assert (record.status, record.note) == (WithdrawalStatus.PAID.value, "ICBC ref 2024060100001")
    assert LedgerAccount.objects.get(party="platform", kind="paid_out").balance == Money(490)

    done = act(
        operator,
        "withdrawal",
        "mark_failed",
        [second.id],
        confirm="Mark failed",
        note="account closed",
    )
    assert done.status_code == 302
    assert Withdrawal.objects.get(pk=second.id).status == "failed"
    # 1000 paid, 500 withdrawn and paid out; the failed 300 and its fee came back.
    assert LedgerAccount.objects.get(party="seller-h", kind="available").balance == Money(500)
    assert history(Withdrawal.objects.get(pk=second.id)) == [
        "marked failed through payhub: 3.00 CNY back (account closed)"
    ]

    # Marking a failed withdrawal paid is refused: a message, nothing changed.
    refused = act(
        operator, "withdrawal", "mark_paid", [second.id], confirm="Mark paid", note="late"
    )
    assert refused.status_code == 302
    (level, message) = said(operator, "withdrawal")[-1]
    assert level == "error"
    assert message.startswith(f"Withdrawal {second.id} seller-h: ")
    assert Withdrawal.objects.get(pk=second.id).status == "failed"
    assert len(history(Withdrawal.objects.get(pk=second.id))) == 1


# -- risk reviews -------------------------------------------------------------------------


def test_approve_and_decline_reviews_as_the_operator(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    paid(hub, bank, "R1001", 9000)
    paid(hub, bank, "R1002", 8000)
    assert set(RiskReview.objects.values_list("out_trade_no", "status")) == {
        ("R1001", "open"),
        ("R1002", "open"),
    }
    ok = RiskReview.objects.get(out_trade_no="R1001")
    form = act(operator, "riskreview", "approve_reviews", [ok.pk])
    assert form.status_code == 200
    assert 'name="confirm"' in form.content.decode()
    assert RiskReview.objects.get(pk=ok.pk).status == "open"  # nothing before confirming
    done = act(
        operator,
        "riskreview",
        "approve_reviews",
        [ok.pk],
        confirm="Approve",
        note="buyer called back",
    )
    assert done.status_code == 302
    [record] = hub.reviews(status=ReviewStatus.APPROVED)
    assert record.out_trade_no == "R1001"
    ok = RiskReview.objects.get(pk=ok.pk)
    assert (ok.decided_by, ok.note) == ("wang.fang", "buyer called back")

    bad = RiskReview.objects.get(out_trade_no="R1002")
    done = act(operator, "riskreview", "decline_reviews", [bad.pk], confirm="Decline")
    assert done.status_code == 302
    bad = RiskReview.objects.get(pk=bad.pk)
    assert (bad.status, bad.decided_by) == ("declined", "wang.fang")
    assert hub.store is not None
    refund = hub.store.refund(bad.out_refund_no)
    assert refund is not None
    assert refund.amount == Money(8000)
    [message] = history(bad)
    assert message.startswith("declined through payhub by wang.fang; refund ")


def test_a_refused_review_decision_is_a_message(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    hub.pay(
        PaymentRequest(
            out_trade_no="R1003", amount=Money(9000), subject="card", method=PayMethod.QR
        )
    )  # held, but not paid yet
    review = RiskReview.objects.get(out_trade_no="R1003")
    page = act(operator, "riskreview", "approve_reviews", [review.pk], confirm="Approve")
    assert page.status_code == 302
    [(level, message)] = said(operator, "riskreview")
    assert level == "error"
    assert "decided once it is paid" in message
    assert RiskReview.objects.get(pk=review.pk).status == "open"
    assert not LogEntry.objects.exists()


# -- reconciliation -----------------------------------------------------------------------


def ghost_difference(hub: PayHub) -> ReconDifference:
    """A bill of 2024-06-01 with a trade the store never heard of: one open difference."""
    bill_day = date(2024, 6, 1)
    ghost = BillRecord(
        channel="toy-a",
        bill_date=bill_day,
        kind="payment",
        channel_trade_id="T-GHOST-1",
        out_trade_no="GHOST1",
        amount=Money(1500),
        raw={},
    )
    Reconciler(hub).run_bill(
        BillStream(None, None, channel="toy-a", bill_date=bill_day, records=[ghost])
    )
    return ReconDifference.objects.get(out_trade_no="GHOST1")


def test_ignore_a_difference_with_a_reason(hub: PayHub, operator: Client) -> None:
    item = ghost_difference(hub)
    assert (item.kind, item.status, item.bill_amount) == ("missing_in_store", "open", Money(1500))
    assert "15.00 CNY" in shown_after(operator, "recondifference")

    again = act(operator, "recondifference", "ignore_differences", [item.pk], confirm="Ignore")
    assert again.status_code == 200  # the reason is required
    assert ReconDifference.objects.get(pk=item.pk).status == "open"
    done = act(
        operator,
        "recondifference",
        "ignore_differences",
        [item.pk],
        confirm="Ignore",
        reason="test order made in the channel's console",
    )
    assert done.status_code == 302
    item = ReconDifference.objects.get(pk=item.pk)
    assert (item.status, item.resolved_by, item.resolution) == (
        "ignored",
        "wang.fang",
        "test order made in the channel's console",
    )
    assert [r["action"] for r in Reconciler(hub).repairs(item.pk)] == ["ignore"]
    assert history(item) == ["ignored through payhub: test order made in the channel's console"]

    # Ignoring it again is refused by the reconciler: a message, nothing changed.
    refused = act(
        operator,
        "recondifference",
        "ignore_differences",
        [item.pk],
        confirm="Ignore",
        reason="twice",
    )
    assert refused.status_code == 302
    assert said(operator, "recondifference")[-1] == (
        "error",
        f"M{str(item)[1:]}: difference {item.pk} is already ignored",
    )
    assert len(Reconciler(hub).repairs(item.pk)) == 1


# -- permissions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "name", "fields"),
    [
        ("hold", "release_holds", {}),
        ("withdrawal", "mark_paid", {"confirm": "Mark paid", "note": "x"}),
        ("riskreview", "approve_reviews", {"confirm": "Approve"}),
        ("recondifference", "ignore_differences", {"confirm": "Ignore", "reason": "x"}),
    ],
)
def test_each_action_needs_the_change_permission(
    hub: PayHub, bank: ToyBank, django_db: Database, model: str, name: str, fields: dict[str, str]
) -> None:
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename=f"view_{model}"))
    client = Client()
    client.login(username="clerk", password="pw")
    page = client.get(f"{ADMIN}/{model}/")
    assert page.status_code == 200
    assert name not in page.content.decode()
    # Even posted by hand, the action is not run.
    paid(hub, bank, "P1001", 9000, seller="seller-h")
    hold = hub.ledger.hold("seller-h", Money(100))
    withdrawal = hub.ledger.withdraw("seller-h", Money(200))
    pk = {
        "hold": hold.id,
        "withdrawal": withdrawal.id,
        "riskreview": RiskReview.objects.get().pk,
        "recondifference": ghost_difference(hub).pk,
    }[model]
    act(client, model, name, [pk], **fields)
    assert Hold.objects.get(pk=hold.id).status == "active"
    assert Withdrawal.objects.get(pk=withdrawal.id).status == "pending"
    assert RiskReview.objects.get().status == "open"
    if model == "recondifference":
        assert ReconDifference.objects.get().status == "open"
    assert not LogEntry.objects.exists()
