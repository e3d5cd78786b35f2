"""payhub_django's admin for splits (分账) and payouts, on SQLite and on
PostgreSQL (a real server, a schema per test): the hub splits payments and pays
withdrawals out against the sandbox's Alipay over its signed wire protocol, on
the very database the admin reads; the pages show the records in yuan (a
split's lines on its page), filter and search them, never change them, and the
sync action settles a processing one through hub.sync_split / hub.sync_payout."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from djangodb import Database
from payhub_django import set_hub
from payhub_django.models import Payout, Split, Withdrawal
from payhub_sandbox import ManualClock, Sandbox, create_app

from payhub import Money, PayHub, PaymentRequest
from payhub.channels.alipay import AlipayChannel
from payhub.ledger import WithdrawalStatus
from payhub.splits import Share
from payhub.splits import split as plan_split
from payhub.splits_models import ReceiverBinding, ReceiverKind, SplitReceiver, TransferRequest
from payhub.store import PayoutState, SplitState, Store

ADMIN = "/admin/payhub_django"
SANDBOX = "http://sandbox.test"
APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
PLATFORM_ACCOUNT = "2088000000000011"
AGENT_ACCOUNT = "2088000000000022"
SELLER_PAYEE = "2088000000000033"
STILL = (
    "still processing (not settled at the channel yet, or the channel could not be asked); "
    "ask again later, or let payhub sync"
)
RECEIVERS = {
    "platform": SplitReceiver(kind=ReceiverKind.USER_ID, account=PLATFORM_ACCOUNT),
    "agent": SplitReceiver(kind=ReceiverKind.USER_ID, account=AGENT_ACCOUNT),
}


@dataclass
class World:
    box: Sandbox
    clock: ManualClock
    hub: PayHub

    def paid(self, out_trade_no: str, minor: int = 10000) -> None:
        """A payment made for splitting, paid by the buyer, known paid to the store."""
        self.hub.pay(
            PaymentRequest(
                out_trade_no=out_trade_no,
                amount=Money(minor),
                subject="礼品卡",
                method="qr",
                seller="alice",
                split=True,
            )
        )
        self.box.alipay.scan(APP_ID, out_trade_no)
        self.box.alipay.pay(APP_ID, out_trade_no)
        record = self.hub.sync_payment(out_trade_no)
        assert record is not None
        assert record.status.is_paid

    def split(self, out_trade_no: str, out_split_no: str) -> SplitState:
        """platform 10.00 fixed, agent 10% (9.00 of 100.00), alice keeps the rest."""
        plan = plan_split(
            Money(10000),
            [
                Share.fixed("platform", Money(1000)),
                Share.ratio("agent", Decimal("0.1")),
                Share.remainder("alice"),
            ],
        )
        return self.hub.split(out_trade_no, out_split_no, plan, RECEIVERS).status

    def payout(self, out_payout_no: str, minor: int) -> tuple[int, PayoutState]:
        """A withdrawal of alice's, paid out to her Alipay account."""
        withdrawal = self.hub.ledger.withdraw("alice", Money(minor))
        request = TransferRequest(
            out_transfer_no=out_payout_no,
            kind=ReceiverKind.USER_ID,
            account=SELLER_PAYEE,
            amount=Money(minor),
            remark="提现",
        )
        return withdrawal.id, self.hub.payout("alipay", withdrawal.id, request).status


@pytest.fixture
def world(django_db: Database, platform_keys: Any, merchant_keys: Any) -> Iterator[World]:
    """The sandbox's Alipay and the process's hub on the database the admin reads."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        time_factor=60,
        clock=clock,
        notify_transport=httpx.MockTransport(lambda r: httpx.Response(200, text="success")),
        base_url=SANDBOX,
    )
    app_cert = box.issue_alipay_app_cert(APP_ID, merchant_keys.public_pem)
    box.add_alipay_merchant(APP_ID, app_cert, SELLER_ID)
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    channel = AlipayChannel.from_config(
        "alipay",
        {
            "app_id": APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "environment": "sandbox",
            "gateway": f"{SANDBOX}/gateway.do",
            "seller_id": SELLER_ID,
            "notify_url": "http://shop.test/alipay/notify",
            "app_cert": app_cert,
            "alipay_cert": box.alipay_cert_pem,
            "alipay_root_cert": box.alipay_root_cert_pem,
        },
    )
    store = Store(django_db.url, ledger={"plans": {"alice": "instant"}})
    with PayHub(channels=[channel], http_client=http, store=store) as hub:
        hub._owns_store = True
        hub.bind_receivers(
            "alipay",
            "B1",
            [
                ReceiverBinding(kind=ReceiverKind.USER_ID, account=PLATFORM_ACCOUNT),
                ReceiverBinding(kind=ReceiverKind.USER_ID, account=AGENT_ACCOUNT),
            ],
        )
        box.splits.set_balance("alipay", APP_ID, Money(100000))
        set_hub(hub)
        yield World(box, clock, hub)
        set_hub(None)
    http.close()
    box.stop()


@pytest.fixture
def operator(django_db: Database) -> Client:
    User.objects.create_superuser("wang.fang", "wang@example.com", "pw")
    client = Client()
    client.login(username="wang.fang", password="pw")
    return client


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def listed(client: Client, model: str, query: str = "") -> list[str]:
    """The numbers in the changelist's rows (first column), top to bottom."""
    text = page(client, f"{ADMIN}/{model}/{query}")
    return re.findall(r'<th class="field-out_\w+_no"><a href="[^"]*">([^<]+)</a>', text)


def act(client: Client, model: str, name: str, pks: list[int]):  # type: ignore[no-untyped-def]
    return client.post(f"{ADMIN}/{model}/", {"action": name, "_selected_action": pks})


def said(client: Client, model: str) -> list[tuple[str, str]]:
    """The messages (level, text) the operator sees after an action."""
    text = page(client, f"{ADMIN}/{model}/")
    found = re.findall(r'<li class="(error|success|warning|info)">(.*?)</li>', text, re.S)
    return [(level, html.unescape(message).strip()) for level, message in found]


def history(obj: object) -> list[str]:
    return [
        e.get_change_message()
        for e in LogEntry.objects.filter(object_id=str(obj.pk)).order_by("id")  # type: ignore[attr-defined]
        if e.content_type.model_class() is type(obj)
    ]


# -- pages --------------------------------------------------------------------------------


def test_splits_and_payouts_list_in_yuan_and_a_split_shows_its_lines(
    world: World, operator: Client
) -> None:
    world.paid("P1")
    assert world.split("P1", "SP1") is SplitState.SUCCEEDED
    withdrawal_id, status = world.payout("PO1", 5000)
    assert status is PayoutState.SUCCEEDED

    split = Split.objects.get(out_split_no="SP1")
    assert (split.out_trade_no, split.channel, split.status) == ("P1", "alipay", "succeeded")
    assert split.amount == Money(1900)
    text = page(operator, f"{ADMIN}/split/")
    assert listed(operator, "split") == ["SP1"]
    assert "19.00 CNY" in text
    assert "P1" in text
    detail = page(operator, f"{ADMIN}/split/{split.pk}/change/")
    assert 'name="_save"' not in detail
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", detail)
    assert [html.unescape(r).split("</td><td>") for r in rows] == [
        ["platform", "user_id", PLATFORM_ACCOUNT, "10.00 CNY", "分账", "succeeded", ""],
        ["agent", "user_id", AGENT_ACCOUNT, "9.00 CNY", "分账", "succeeded", ""],
    ]
    assert split.digest not in detail  # the content hash stays out of the page

    payout = Payout.objects.select_related("withdrawal").get(out_payout_no="PO1")
    assert payout.withdrawal.pk == withdrawal_id
    assert (payout.status, payout.party, payout.amount) == ("succeeded", "alice", Money(5000))
    assert Withdrawal.objects.get(pk=withdrawal_id).status == WithdrawalStatus.PAID.value
    text = page(operator, f"{ADMIN}/payout/")
    assert listed(operator, "payout") == ["PO1"]
    assert "50.00 CNY" in text
    assert f"withdrawal {withdrawal_id} alice" in text
    detail = page(operator, f"{ADMIN}/payout/{payout.pk}/change/")
    assert 'name="_save"' not in detail
    assert SELLER_PAYEE in detail
    assert "50.00 CNY" in detail


def test_filters_and_search(world: World, operator: Client) -> None:
    world.paid("P2")
    world.paid("P3")
    assert world.split("P2", "SP2") is SplitState.SUCCEEDED
    world.box.splits.faults.set(
        "alipay", "processing_success", merchant_id=APP_ID, count=1, seconds=600
    )
    assert world.split("P3", "SP3") is SplitState.PROCESSING
    assert listed(operator, "split") == ["SP3", "SP2"]
    assert listed(operator, "split", "?status__exact=processing") == ["SP3"]
    assert listed(operator, "split", "?status__exact=succeeded") == ["SP2"]
    assert listed(operator, "split", "?channel__exact=alipay") == ["SP3", "SP2"]
    assert listed(operator, "split", "?channel__exact=wechat") == []
    assert listed(operator, "split", "?q=P2") == ["SP2"]  # by order number
    assert listed(operator, "split", "?q=SP3") == ["SP3"]  # by split number
    assert listed(operator, "split", "?q=SP") == []  # exact, never a LIKE scan

    assert world.payout("PO2", 2000)[1] is PayoutState.SUCCEEDED
    world.box.splits.faults.set("alipay", "processing_failure", count=1, seconds=120)
    assert world.payout("PO3", 1000)[1] is PayoutState.PROCESSING
    assert listed(operator, "payout", "?status__exact=processing") == ["PO3"]
    assert listed(operator, "payout", "?status__exact=succeeded&channel__exact=alipay") == ["PO2"]
    assert listed(operator, "payout", "?q=PO2") == ["PO2"]


def test_the_admin_never_changes_a_split_or_a_payout(world: World, operator: Client) -> None:
    world.paid("P4")
    assert world.split("P4", "SP4") is SplitState.SUCCEEDED
    world.payout("PO4", 1000)
    for model, obj in (("split", Split.objects.get()), ("payout", Payout.objects.get())):
        url = f"{ADMIN}/{model}/{obj.pk}"
        assert operator.post(f"{url}/delete/", {"post": "yes"}).status_code == 403, model
        assert operator.post(f"{url}/change/", {"status": "failed"}).status_code == 403, model
        assert operator.post(f"{ADMIN}/{model}/add/", {}).status_code == 403, model
        assert "delete_selected" not in page(operator, f"{ADMIN}/{model}/"), model
        with pytest.raises(TypeError, match="through the hub"):
            obj.save()
        with pytest.raises(TypeError, match="through the hub"):
            obj.delete()
    assert Split.objects.get().status == "succeeded"
    assert Payout.objects.get().status == "succeeded"


# -- the sync action ----------------------------------------------------------------------


def test_sync_settles_a_processing_split(world: World, operator: Client) -> None:
    world.paid("P5")
    world.paid("P6")
    assert world.split("P5", "SP5") is SplitState.SUCCEEDED
    world.box.splits.faults.set(
        "alipay", "processing_success", merchant_id=APP_ID, count=1, seconds=600
    )
    assert world.split("P6", "SP6") is SplitState.PROCESSING
    done, waiting = Split.objects.get(out_split_no="SP5"), Split.objects.get(out_split_no="SP6")

    # still processing at the channel: asked, and it stays processing
    assert act(operator, "split", "sync_splits", [waiting.pk]).status_code == 302
    assert said(operator, "split") == [("warning", f"SP6: {STILL}")]
    assert Split.objects.get(pk=waiting.pk).status == "processing"

    world.clock.advance(600 / 60)
    assert act(operator, "split", "sync_splits", [done.pk, waiting.pk]).status_code == 302
    assert said(operator, "split") == [
        ("info", "SP5: already succeeded, nothing asked"),
        ("success", "SP6: synced through payhub: succeeded"),
    ]
    assert Split.objects.get(pk=waiting.pk).status == "succeeded"
    assert world.hub.store is not None
    record = world.hub.store.split("SP6")
    assert record is not None
    assert [line.status for line in record.lines] == [SplitState.SUCCEEDED] * 2
    assert history(Split.objects.get(pk=waiting.pk)) == [
        "synced through payhub: processing",
        "synced through payhub: succeeded",
    ]
    assert history(Split.objects.get(pk=done.pk)) == []  # nothing asked, nothing recorded
    assert LogEntry.objects.filter(user__username="wang.fang").count() == 2


def test_sync_settles_a_processing_payout(world: World, operator: Client) -> None:
    world.paid("P7")
    world.box.splits.faults.set("alipay", "processing_failure", count=1, seconds=120)
    withdrawal_id, status = world.payout("PO7", 3000)
    assert status is PayoutState.PROCESSING
    payout = Payout.objects.get(out_payout_no="PO7")
    world.clock.advance(2)
    assert act(operator, "payout", "sync_payouts", [payout.pk]).status_code == 302
    assert said(operator, "payout") == [("success", "PO7: synced through payhub: failed")]
    assert Payout.objects.get(pk=payout.pk).status == "failed"
    # the channel gave up: the withdrawal went back to alice's available balance
    assert Withdrawal.objects.get(pk=withdrawal_id).status == WithdrawalStatus.FAILED.value
    assert history(Payout.objects.get(pk=payout.pk)) == ["synced through payhub: failed"]


@pytest.mark.parametrize(("model", "name"), [("split", "sync_splits"), ("payout", "sync_payouts")])
def test_sync_needs_the_change_permission(
    world: World, django_db: Database, model: str, name: str
) -> None:
    world.paid("P8")
    world.box.splits.faults.set(
        "alipay", "processing_success", merchant_id=APP_ID, count=1, seconds=600
    )
    assert world.split("P8", "SP8") is SplitState.PROCESSING
    world.box.splits.faults.set("alipay", "processing_success", count=1, seconds=120)
    assert world.payout("PO8", 1000)[1] is PayoutState.PROCESSING
    world.clock.advance(600 / 60)  # both settled at the channel
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename=f"view_{model}"))
    client = Client()
    client.login(username="clerk", password="pw")
    assert name not in page(client, f"{ADMIN}/{model}/")
    pk = (Split if model == "split" else Payout).objects.get().pk
    act(client, model, name, [pk])  # posted by hand: not run
    assert Split.objects.get().status == "processing"
    assert Payout.objects.get().status == "processing"
    assert not LogEntry.objects.exists()


def test_a_channel_that_cannot_be_asked_is_a_warning_not_a_500(
    world: World, operator: Client
) -> None:
    world.paid("P9")
    world.box.splits.faults.set(
        "alipay", "processing_success", merchant_id=APP_ID, count=1, seconds=600
    )
    assert world.split("P9", "SP9") is SplitState.PROCESSING
    world.clock.advance(600 / 60)  # settled at the channel, but its gateway is down
    world.box.set_fault("alipay", "system_error", code="40004", count=1)
    split = Split.objects.get()
    assert act(operator, "split", "sync_splits", [split.pk]).status_code == 302
    assert said(operator, "split") == [("warning", f"SP9: {STILL}")]
    assert Split.objects.get().status == "processing"
    assert act(operator, "split", "sync_splits", [split.pk]).status_code == 302  # back up
    assert said(operator, "split") == [("success", "SP9: synced through payhub: succeeded")]
    assert Split.objects.get().status == "succeeded"


def test_an_unconfigured_hub_is_a_message(world: World, operator: Client) -> None:
    world.paid("P10")
    world.box.splits.faults.set(
        "alipay", "processing_success", merchant_id=APP_ID, count=1, seconds=600
    )
    assert world.split("P10", "SP10") is SplitState.PROCESSING
    set_hub(None)
    assert act(operator, "split", "sync_splits", [Split.objects.get().pk]).status_code == 302
    [(level, message)] = said(operator, "split")
    assert level == "error"
    assert message.startswith("Payhub is not configured: ")  # capitalised by the admin
    assert Split.objects.get().status == "processing"
    assert not LogEntry.objects.exists()
