"""payhub_django the Django way: migrate creates payhub's tables, the models read
them, the admin lists them (yuan, Asia/Shanghai) and its actions go through the
hub. On SQLite and on PostgreSQL (a real server, a schema per test)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.test import Client
from djangodb import Database, postgres_schema, sqlite_settings, use_default
from payhub_django import set_hub
from payhub_django.models import Anomaly, Event, Payment, Refund

from payhub import PayHub, PaymentRequest, PayMethod
from payhub.money import Money
from payhub.store import AnomalyStatus, PaymentState, RefundState, Store
from payhub.store._schema import payments as payments_table

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
import storekit
from alembic.script import ScriptDirectory
from storekit import ToyBank, ToyChannel, notification

from payhub.store._migrate import alembic_config

#: The newest migration: a fresh store is created at it.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

PAYMENTS = "/admin/payhub_django/payment/"
ANOMALIES = "/admin/payhub_django/anomaly/"


@pytest.fixture
def bank() -> ToyBank:
    return ToyBank()


@pytest.fixture
def hub(django_db: Database, bank: ToyBank) -> Iterator[PayHub]:
    """The process's hub, on the very database Django's admin reads."""
    with PayHub(
        channels=[ToyChannel("toy-a")], store=Store(django_db.url), http_client=bank.client()
    ) as hub:
        hub._owns_store = True
        set_hub(hub)
        yield hub
        set_hub(None)


@pytest.fixture
def operator(django_db: Database) -> Client:
    User.objects.create_superuser("wang.fang", "wang@example.com", "pw")
    client = Client()
    client.login(username="wang.fang", password="pw")
    return client


def paid(hub: PayHub, bank: ToyBank, out_trade_no: str, minor: int = 1000) -> Payment:
    storekit.paid(hub, bank, out_trade_no, minor)
    return Payment.objects.get(out_trade_no=out_trade_no)


def action(client: Client, url: str, name: str, pks: list[int], **fields: str):  # type: ignore[no-untyped-def]
    return client.post(url, {"action": name, "_selected_action": pks, **fields})


# -- tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_migrate_creates_payhubs_tables(backend: str, tmp_path: Path) -> None:
    """An empty database: ``manage.py migrate`` brings payhub's store to its head
    revision through payhub's own migrations; unapplying leaves the tables."""

    def check(url: str) -> None:
        with Store(url) as store:
            assert store.current_revision() is None
        call_command("migrate", verbosity=0)
        with Store(url) as store:
            assert store.current_revision() == HEAD
            assert store.pending_payments(timedelta(0)) == []
        assert Payment.objects.count() == 0
        call_command("migrate", "payhub_django", "zero", verbosity=0)
        with Store(url) as store:
            assert store.current_revision() == HEAD  # payhub never downgrades a store
        call_command("migrate", "payhub_django", verbosity=0)  # and again: a no-op

    if backend == "sqlite":
        path = tmp_path / "empty.db"
        use_default(sqlite_settings(path))
        check(f"sqlite:///{path}")
        connections["default"].close()
        return
    with postgres_schema() as (django_settings, url):
        use_default(django_settings)
        check(url)


def test_in_memory_sqlite_is_refused_with_the_fix() -> None:
    use_default({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    with pytest.raises(Exception, match=r"TEST'\]\['NAME'\] to a file path"):
        call_command("migrate", verbosity=0)
    connections["default"].close()


def test_no_model_change_is_left_out_of_the_migrations(django_db: Database) -> None:
    call_command("makemigrations", "payhub_django", "--check", "--dry-run", verbosity=0)


# -- models -----------------------------------------------------------------------------


def test_models_read_what_the_hub_wrote(hub: PayHub, bank: ToyBank) -> None:
    payment = paid(hub, bank, "A1001", 1234)
    assert payment.amount == Money(1234)
    assert payment.status == PaymentState.PAID.value
    assert payment.paid_at is not None
    assert payment.paid_at.utcoffset().total_seconds() == 0
    assert [a.channel for a in payment.attempts.all()] == ["toy-a"]
    assert [(e.from_status, e.to_status) for e in payment.audit.all()][-1] == ("pending", "paid")
    event = Event.objects.get(type="payment.succeeded")
    assert event.out_trade_no == "A1001"
    assert event.payload["out_trade_no"] == "A1001"
    with pytest.raises(TypeError, match="through the hub"):
        payment.save()
    with pytest.raises(TypeError, match="through the hub"):
        payment.delete()


# -- the admin --------------------------------------------------------------------------


def test_payments_list_in_yuan_and_shanghai_time(
    hub: PayHub, bank: ToyBank, operator: Client, django_db: Database
) -> None:
    paid(hub, bank, "A1001", 1234)
    # 2024-05-31 17:30 UTC is 2024-06-01 01:30 in Asia/Shanghai.
    engine = sa.create_engine(django_db.url)
    with engine.begin() as conn:
        conn.execute(
            payments_table.update().values(created_at=datetime(2024, 5, 31, 17, 30, tzinfo=UTC))
        )
    engine.dispose()
    page = operator.get(PAYMENTS)
    assert page.status_code == 200
    text = page.content.decode()
    assert "A1001" in text
    assert "12.34 CNY" in text
    assert "June 1, 2024, 1:30 a.m." in text
    # The date hierarchy's days are Shanghai days, on every database.
    june_first = operator.get(PAYMENTS, {"created_at__year": 2024, "created_at__month": 6,
                                         "created_at__day": 1})
    assert "A1001" in june_first.content.decode()
    may_31 = operator.get(PAYMENTS, {"created_at__year": 2024, "created_at__month": 5,
                                     "created_at__day": 31})
    assert "A1001" not in may_31.content.decode()
    # Searching by the exact order number, and filtering by status.
    assert "A1001" in operator.get(PAYMENTS, {"q": "A1001"}).content.decode()
    assert "A1001" not in operator.get(PAYMENTS, {"status__exact": "closed"}).content.decode()


def test_the_admin_never_edits_a_payment(hub: PayHub, bank: ToyBank, operator: Client) -> None:
    payment = paid(hub, bank, "A1002")
    page = operator.get(f"{PAYMENTS}{payment.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # a view page, no form to save
    assert operator.post(f"{PAYMENTS}add/", {}).status_code == 403
    assert operator.post(f"{PAYMENTS}{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Payment.objects.filter(pk=payment.pk).exists()


def test_refund_action_asks_then_refunds_through_the_hub(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    payment = paid(hub, bank, "A1003", 1000)
    form = action(operator, PAYMENTS, "refund_payment", [payment.pk])
    assert form.status_code == 200
    text = form.content.decode()
    assert "refundable 10.00 CNY" in text
    assert 'name="confirm"' in text
    assert not Refund.objects.exists()  # nothing happens before the confirmation
    done = action(
        operator, PAYMENTS, "refund_payment", [payment.pk],
        confirm="Refund", out_refund_no="RF1003A", amount="3.50", reason="buyer asked",
    )
    assert done.status_code == 302
    refund = hub.store.refund("RF1003A")
    assert (refund.amount, refund.status, refund.reason) == (
        Money(350), RefundState.SUCCEEDED, "buyer asked"
    )
    assert Payment.objects.get(pk=payment.pk).refunded_minor == 350
    entry = LogEntry.objects.get(object_id=str(payment.pk))
    assert "RF1003A" in entry.get_change_message()
    assert entry.user.username == "wang.fang"


@pytest.mark.parametrize(
    ("amount", "message"),
    [("1.234", "more than 2 decimals"), ("0", "more than zero"), ("20.00", "exceed")],
)
def test_a_refused_refund_changes_nothing(
    hub: PayHub, bank: ToyBank, operator: Client, amount: str, message: str
) -> None:
    payment = paid(hub, bank, "A1004", 1000)
    page = action(
        operator, PAYMENTS, "refund_payment", [payment.pk],
        confirm="Refund", out_refund_no="RF1004", amount=amount, reason="x",
    )
    assert page.status_code == 200  # the form again, with why
    assert message in page.content.decode()
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment.pk).refunded_minor == 0
    assert not LogEntry.objects.exists()


def test_sync_action_queries_the_channel(hub: PayHub, bank: ToyBank, operator: Client) -> None:
    hub.pay(PaymentRequest(out_trade_no="A1005", amount=Money(500), subject="card",
                           method=PayMethod.QR))
    bank.buyer_pays("toy-a", "A1005")  # the notification is lost
    payment = Payment.objects.get(out_trade_no="A1005")
    assert payment.status == "pending"
    page = action(operator, PAYMENTS, "sync_payments", [payment.pk])
    assert page.status_code == 302
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    followed = operator.get(PAYMENTS)
    assert "A1005: paid" in followed.content.decode()


def test_resolve_anomaly_action_keeps_who_and_why(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    hub.pay(PaymentRequest(out_trade_no="A1006", amount=Money(1000), subject="card",
                           method=PayMethod.QR))
    hub.handle_notification("toy-a", *notification("A1006", amount=999))
    anomaly = Anomaly.objects.get()
    assert (anomaly.kind, anomaly.status, anomaly.amount) == ("amount_mismatch", "open", Money(999))
    page = operator.get(ANOMALIES)
    assert "9.99 CNY" in page.content.decode()
    form = action(operator, ANOMALIES, "resolve_anomalies", [anomaly.pk])
    assert form.status_code == 200
    assert "reason" in form.content.decode()
    # The reason is required.
    again = action(operator, ANOMALIES, "resolve_anomalies", [anomaly.pk], confirm="Resolve")
    assert again.status_code == 200
    assert hub.store.anomaly(anomaly.pk).status == AnomalyStatus.OPEN
    done = action(
        operator, ANOMALIES, "resolve_anomalies", [anomaly.pk],
        confirm="Resolve", reason="buyer refunded by bank transfer",
    )
    assert done.status_code == 302
    record = hub.store.anomaly(anomaly.pk)
    assert (record.status, record.resolved_by, record.resolution) == (
        AnomalyStatus.RESOLVED, "wang.fang", "buyer refunded by bank transfer"
    )
    assert Event.objects.filter(type="anomaly.resolved").count() == 1


def test_actions_need_the_change_permission(
    hub: PayHub, bank: ToyBank, django_db: Database
) -> None:
    from django.contrib.auth.models import Permission

    payment = paid(hub, bank, "A1007")
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client = Client()
    client.login(username="clerk", password="pw")
    page = client.get(PAYMENTS)
    assert page.status_code == 200
    assert "refund_payment" not in page.content.decode()
    action(client, PAYMENTS, "refund_payment", [payment.pk], confirm="Refund",
           out_refund_no="RF1007", amount="1.00", reason="x")
    assert not Refund.objects.exists()


def test_an_unconfigured_hub_is_a_message_not_a_crash(
    hub: PayHub, bank: ToyBank, operator: Client
) -> None:
    payment = paid(hub, bank, "A1008")
    set_hub(None)  # and no settings.PAYHUB in these tests
    page = action(operator, PAYMENTS, "sync_payments", [payment.pk])
    assert page.status_code == 302
    shown = operator.get(PAYMENTS).content.decode()
    assert "is not configured: payhub_django: set settings.PAYHUB" in shown
