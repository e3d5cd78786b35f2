"""Reconciliation end to end: payhub's channels against the sandbox's bills with
planted differences, on every store backend (SQLite, PostgreSQL, MariaDB).

The day: four payments and one refund, of which the shop saw everything but
one payment's notification (lost). The sandbox's bill of the day then has a
trade the shop never heard of, a wrong fee, a missing refund and a duplicated
row. Reconciliation must find exactly those, repair the lost notification by
a channel query through the normal transition path, keep the rest in the
queue, and give the same answer when run again, repairing nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from payhub_sandbox import CHINA_TZ, Sandbox, create_app
from typer.testing import CliRunner

from payhub import PayHub, models
from payhub.errors import InvalidRequestError
from payhub.fees import FeeSchedule, PercentageFee
from payhub.money import Money
from payhub.recon import Reconciler, ReconConfig, write_csv
from payhub.recon._export import difference_rows
from payhub.store import Store
from payhub.store._schema import audit

alipay_channel = pytest.importorskip("payhub.channels.alipay")
wechat_channel = pytest.importorskip("payhub.channels.wechat")

BASE = "http://sandbox.test"
APP_ID, SELLER_ID = "2021000000000001", "2088000000000001"
MCHID, APPID = "1900000001", "wxd678efh567hg6787"
API_V3_KEY = b"0123456789abcdefABCDEF0123456789"
SERIAL = "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F"


class Shop:
    """Where the sandbox's notifications land; the test hands them to the hub."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(200, text="success")


@dataclass
class Day:
    channel: str
    merchant: str
    box: Sandbox
    shop: Shop
    hub: PayHub
    store: Store

    def deliver(self) -> None:
        """Deliver what is due and let the hub handle every new notification."""
        seen = len(self.shop.requests)
        self.box.deliver_due(force=True)
        for sent in self.shop.requests[seen:]:
            self.hub.handle_notification(self.channel, sent.headers, sent.content)

    def pay(self, out_trade_no: str, minor: int, *, notify: bool = True) -> None:
        self.hub.pay(
            models.PaymentRequest(
                out_trade_no=out_trade_no,
                amount=Money(minor),
                subject="gift card",
                method="qr",
                channel=self.channel,
            )
        )
        self.box.channel(self.channel).pay(self.merchant, out_trade_no)
        if notify:
            self.deliver()

    def refund(self, out_trade_no: str, out_refund_no: str, minor: int, total: int) -> None:
        self.hub.refund(
            self.channel,
            models.RefundRequest(
                out_trade_no=out_trade_no,
                out_refund_no=out_refund_no,
                amount=Money(minor),
                total=Money(total),
            ),
        )
        self.deliver()  # WeChat's refund settles and notifies here
        refund = self.store.refund(out_refund_no)
        if refund is not None and refund.status.value == "pending":
            self.hub.sync_refund(out_refund_no)

    @property
    def today(self) -> Any:
        return datetime.now(CHINA_TZ).date()


@pytest.fixture(params=["alipay", "wechat"])
def day(request, store: Store, merchant_keys, platform_keys) -> Iterator[Day]:
    channel = request.param
    shop = Shop()
    box = Sandbox(  # the real clock: payhub stamps requests and checks answers with it
        time_factor=60,
        notify_transport=shop.transport,
        base_url=BASE,
        bills_ready_immediately=True,
        alipay_platform_key=platform_keys.private,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    if channel == "alipay":
        box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID, fee_rate="0.006")
        target = alipay_channel.AlipayChannel.from_config(
            "alipay",
            {
                "app_id": APP_ID,
                "app_private_key": merchant_keys.private_pem,
                "alipay_public_key": box.alipay_public_key_pem,
                "environment": "sandbox",
                "gateway": f"{BASE}/gateway.do",
                "bill_download_hosts": [BASE],
                "seller_id": SELLER_ID,
                "notify_url": "http://shop.test/alipay/notify",
            },
        )
        merchant = APP_ID
    else:
        box.add_wechat_merchant(
            MCHID, APPID, SERIAL, merchant_keys.public_pem, API_V3_KEY, "public_key"
        )
        target = wechat_channel.WechatPayChannel.from_config(
            "wechat",
            {
                "mch_id": MCHID,
                "app_id": APPID,
                "merchant_private_key": merchant_keys.private_pem,
                "merchant_serial_no": SERIAL,
                "api_v3_key": API_V3_KEY.decode(),
                "environment": "sandbox",
                "base_url": BASE,
                "notify_url": "http://shop.test/wechat/notify",
                "refund_notify_url": "http://shop.test/wechat/refund-notify",
                "wechatpay_public_key": box.wechat_public_key_pem,
                "wechatpay_public_key_id": box.wechat_public_key_id,
            },
        )
        merchant = MCHID
    hub = PayHub(channels=[target], store=store, http_client=http)
    try:
        yield Day(channel, merchant, box, shop, hub, store)
    finally:
        hub.close()
        http.close()
        box.stop()


def config(channel: str) -> ReconConfig:
    # both sandboxes charge 0.6 %: 1,000 fen cost 6 fen, exactly
    fees = FeeSchedule({channel: PercentageFee(Decimal("0.006"))})
    return ReconConfig(sla_days=2, fees=fees, boundary_slack=timedelta(0))


def planted_day(day: Day) -> None:
    day.pay("RECON-1", 1000)
    day.pay("RECON-2", 2000)
    day.pay("RECON-3", 1500)
    day.refund("RECON-1", "RECON-R1", 500, 1000)
    day.pay("RECON-4", 500, notify=False)  # the shop never hears of it: a lost notification
    assert day.store.payment("RECON-4").status.value == "pending"
    plant = day.box.plant_bill_difference
    plant(day.channel, day.merchant, day.today, "unknown_trade", out_trade_no="STRANGER-1")
    plant(day.channel, day.merchant, day.today, "wrong_fee", out_trade_no="RECON-2", fee=Money(99))
    plant(day.channel, day.merchant, day.today, "missing_refund", out_refund_no="RECON-R1")
    plant(day.channel, day.merchant, day.today, "duplicate_row", out_trade_no="RECON-3")


def later(day: Day, days: int = 3) -> Any:
    return lambda: datetime.now(CHINA_TZ) + timedelta(days=days)


def open_kinds(reconciler: Reconciler, day: Day) -> dict[str, str]:
    return {
        (item["out_refund_no"] or item["out_trade_no"]): item["kind"]
        for item in reconciler.items(channel=day.channel, bill_date=day.today)
    }


def test_every_planted_difference_is_found_and_the_lost_notification_repaired(day: Day) -> None:
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    result = reconciler.run(day.channel, day.today)

    assert result.status == "done"
    assert result.rows == 6  # RECON-1..4, STRANGER-1, RECON-3 again (RECON-R1 is not billed)
    assert result.counts == {
        "matched": 2,  # RECON-1, RECON-3
        "missing_in_store": 2,  # STRANGER-1, RECON-4 (pending here)
        "fee_mismatch": 1,  # RECON-2
        "duplicate_row": 1,  # RECON-3's second row
        "missing_at_channel": 1,  # RECON-R1, past the SLA
    }
    assert open_kinds(reconciler, day) == {
        "STRANGER-1": "missing_in_store",
        "RECON-2": "fee_mismatch",
        "RECON-3": "duplicate_row",
        "RECON-R1": "missing_at_channel",
    }
    assert result.open == 4
    assert not result.clean

    # RECON-4 was confirmed by a query and applied through the transition path:
    # paid, with an audit row of cause "sync" and a payment.succeeded event.
    (repaired,) = result.repaired
    payment = day.store.payment("RECON-4")
    assert payment.status.value == "paid"
    with day.store.engine.connect() as conn:
        causes = [row.cause for row in conn.execute(audit.select().order_by(audit.c.id))]
    assert causes.count("sync") == 1
    assert "payment.succeeded" in {e.type for e in day.store.events(out_trade_no="RECON-4")}
    (repair,) = reconciler.repairs(repaired)
    assert (repair["action"], repair["operator"]) == ("sync", "auto")

    fee_item = next(i for i in reconciler.items() if i["kind"] == "fee_mismatch")
    assert (fee_item["bill_fee_minor"], fee_item["expected_fee_minor"]) == (99, 12)


def test_a_re_run_gives_the_same_answer_and_repairs_nothing_twice(day: Day) -> None:
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    first = reconciler.run(day.channel, day.today)
    items = {i["id"] for i in reconciler.items(status=None)}
    second = reconciler.run(day.channel, day.today)

    assert second.run_id != first.run_id
    assert second.repaired == []
    assert second.open == first.open == 4
    # RECON-4 is now matched: the repair holds
    assert second.counts == {**first.counts, "matched": 3, "missing_in_store": 1}
    assert {i["id"] for i in reconciler.items(status=None)} == items  # nothing recorded twice
    with day.store.engine.connect() as conn:
        assert [row.cause for row in conn.execute(audit.select())].count("sync") == 1


def test_within_the_sla_a_missing_refund_is_only_expected(day: Day) -> None:
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel))  # now: the same day
    result = reconciler.run(day.channel, day.today)
    assert "missing_at_channel" not in result.counts
    assert result.counts["expected"] == 1
    # ... and it becomes missing once the SLA has passed
    late = Reconciler(day.hub, config(day.channel), clock=later(day)).run(day.channel, day.today)
    assert late.counts["missing_at_channel"] == 1


def test_the_queue_resolves_each_difference_once_with_operator_and_reason(day: Day) -> None:
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    reconciler.run(day.channel, day.today)
    duplicate = next(i for i in reconciler.items() if i["kind"] == "duplicate_row")

    with pytest.raises(InvalidRequestError, match="reason"):
        reconciler.resolve(duplicate["id"], "ignore", operator="alice", reason=" ")
    with pytest.raises(InvalidRequestError, match="not adjust"):
        reconciler.resolve(duplicate["id"], "adjust", operator="alice", reason="x")
    with pytest.raises(InvalidRequestError, match="reserved"):
        reconciler.resolve(duplicate["id"], "ignore", operator="auto", reason="x")
    assert reconciler.item(duplicate["id"])["status"] == "open"  # nothing changed

    done = reconciler.resolve(
        duplicate["id"], "ignore", operator="alice", reason="channel bill glitch, ticket 42"
    )
    assert (done["status"], done["resolved_by"]) == ("ignored", "alice")
    with pytest.raises(InvalidRequestError, match="already ignored"):
        reconciler.resolve(duplicate["id"], "ignore", operator="bob", reason="again")
    (repair,) = reconciler.repairs(duplicate["id"])
    assert (repair["operator"], repair["reason"]) == ("alice", "channel bill glitch, ticket 42")

    # the stranger's trade cannot be synced: no payment to apply an answer to
    stranger = next(i for i in reconciler.items() if i["out_trade_no"] == "STRANGER-1")
    with pytest.raises(InvalidRequestError, match="takes create, ignore"):
        reconciler.resolve(stranger["id"], "sync", operator="alice", reason="try")
    assert reconciler.open_count(day.channel, day.today) == 3
    # a re-run keeps the person's decision
    assert Reconciler(day.hub, config(day.channel), clock=later(day)).run(
        day.channel, day.today
    ).open == 3


def test_a_crashed_run_is_resumed_and_records_nothing_twice(day: Day) -> None:
    planted_day(day)
    small = ReconConfig(
        sla_days=2, fees=config(day.channel).fees, boundary_slack=timedelta(0), batch_size=2
    )

    def crash(rows: int) -> None:
        if rows >= 4:
            raise KeyboardInterrupt  # the process dies mid-bill

    with pytest.raises(KeyboardInterrupt):
        Reconciler(day.hub, small, clock=later(day)).run(day.channel, day.today, progress=crash)
    (crashed,) = Reconciler(day.hub, small).runs(day.channel, day.today)
    assert crashed["status"] == "running"
    assert 0 < crashed["rows_read"] <= 4  # committed with the batches that had differences

    resumed = Reconciler(day.hub, small, clock=later(day)).run(day.channel, day.today)
    assert resumed.resumed
    assert resumed.run_id == crashed["id"]
    assert resumed.status == "done"
    assert resumed.open == 4
    assert len(Reconciler(day.hub, small).items(status=None)) == 5  # 4 open + RECON-4 repaired


def test_differences_export_as_csv(day: Day, tmp_path: Path) -> None:
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    reconciler.run(day.channel, day.today)
    target = tmp_path / "diffs.csv"
    assert write_csv(target, difference_rows(reconciler.items())) == 4
    text = target.read_text(encoding="utf-8-sig")
    assert "fee_mismatch" in text
    assert ",20.00,20.00,0.99,0.12," in text  # RECON-2: amounts in yuan, exact


def test_the_cli_exits_non_zero_while_differences_are_open(
    day: Day, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payhub._cli_recon import reconcile_app

    planted_day(day)
    Reconciler(day.hub, config(day.channel), clock=later(day)).run(day.channel, day.today)
    runner = CliRunner()
    url = day.store.engine.url.render_as_string(hide_password=False)
    listed = runner.invoke(reconcile_app, ["list", "--url", url, "--json"])
    assert listed.exit_code == 1, listed.output
    rows = json.loads(listed.output)
    assert {r["kind"] for r in rows} == {
        "missing_in_store",
        "fee_mismatch",
        "duplicate_row",
        "missing_at_channel",
    }
    for row in rows:
        done = runner.invoke(
            reconcile_app,
            ["resolve", str(row["id"]), "--action", "ignore", "--operator", "qa",
             "--reason", "test", "--url", url],
        )
        assert done.exit_code == 0, done.output
    shown = runner.invoke(reconcile_app, ["show", str(rows[0]["id"]), "--url", url, "--json"])
    assert json.loads(shown.output)["repairs"][0]["operator"] == "qa"
    assert runner.invoke(reconcile_app, ["list", "--url", url]).exit_code == 0


# -- against the ledger ------------------------------------------------------------------


def priced(day: Day) -> None:
    """The ledger books the channel's fee at 0.6 %: what the bill is held to."""
    day.store.configure_ledger(
        {"channel_fees": {"rules": {day.channel: {"type": "percentage", "rate": "0.006"}}}}
    )


def test_fees_are_held_to_the_ledgers_fee_lines_and_every_payment_to_its_entry(
    day: Day,
) -> None:
    priced(day)
    planted_day(day)
    no_schedule = ReconConfig(sla_days=2, boundary_slack=timedelta(0))
    result = Reconciler(day.hub, no_schedule, clock=later(day)).run(day.channel, day.today)
    # RECON-2's fee is compared with the 12 fen its ledger entry booked; every
    # matched payment has its entry (no missing_in_ledger)
    assert result.counts == {
        "matched": 2,
        "missing_in_store": 2,
        "fee_mismatch": 1,
        "duplicate_row": 1,
        "missing_at_channel": 1,
    }
    fee_item = next(i for i in Reconciler(day.hub).items() if i["kind"] == "fee_mismatch")
    assert (fee_item["bill_fee_minor"], fee_item["expected_fee_minor"]) == (99, 12)
    # the repaired RECON-4 was posted by the sync path: a re-run matches it, entry and all
    again = Reconciler(day.hub, no_schedule, clock=later(day)).run(day.channel, day.today)
    assert again.counts["matched"] == 3
    assert "missing_in_ledger" not in again.counts


def test_adjust_posts_one_ledger_adjustment_entry(day: Day) -> None:
    from payhub.ledger import Account, AccountKind

    priced(day)
    planted_day(day)
    reconciler = Reconciler(day.hub, config(day.channel), clock=later(day))
    reconciler.run(day.channel, day.today)
    fees = Account(day.channel, AccountKind.CHANNEL_FEES, "CNY")
    booked = day.store.ledger.balance(fees)
    fee_item = next(i for i in reconciler.items() if i["kind"] == "fee_mismatch")

    done = reconciler.resolve(
        fee_item["id"], "adjust", operator="alice", reason="the channel's fee is right"
    )
    assert done["status"] == "adjusted"
    assert day.store.ledger.balance(fees) == booked + Money(99 - 12)
    (entry,) = day.store.ledger.entries(cause="adjustment")
    assert entry.reference == f"recon:{fee_item['id']}"
    assert sum(line.amount.minor for line in entry.lines) == 0  # double entry
    (repair,) = reconciler.repairs(fee_item["id"])
    assert repair["outcome"]["ledger_entry_id"] == entry.id
    with pytest.raises(InvalidRequestError, match="already adjusted"):
        reconciler.resolve(fee_item["id"], "adjust", operator="bob", reason="again")
    assert len(day.store.ledger.entries(cause="adjustment")) == 1

    # a refund the channel never made: it still holds the 5.00, held in suspense
    clearing = Account(day.channel, AccountKind.CLEARING, "CNY")
    before = day.store.ledger.balance(clearing)
    missing = next(i for i in reconciler.items() if i["kind"] == "missing_at_channel")
    reconciler.resolve(missing["id"], "adjust", operator="alice", reason="refund failed")
    assert day.store.ledger.balance(clearing) == before + Money(500)
    assert len(day.store.ledger.entries(cause="adjustment")) == 2


def test_a_bill_that_does_not_add_up_voids_its_run(store: Store) -> None:
    """The real WeChat refund bill with its fee total changed: the run is refused,
    and the differences it showed (72 refunds the store never heard of) are void."""
    import gzip

    from payhub.channels import BillStream
    from payhub.channels.wechat._bill import iter_trade_bill

    fixtures = Path(__file__).parent.parent / "fixtures" / "wechat"
    real = fixtures / "tradebill_refund_2020-04-01.csv.gz"
    text = gzip.decompress(real.read_bytes()).decode("utf-8")
    reconciler = Reconciler(None, ReconConfig(batch_size=10), store=store)
    day = datetime(2020, 4, 1).date()

    broken = gzip.compress(text.replace("`-112.22000", "`-112.23000").encode("utf-8"))
    bill = BillStream.spool(broken, iter_trade_bill, channel="wechat", bill_date=day)
    with bill:
        result = reconciler.run_bill(bill)
    assert result.status == "refused"
    assert "手续费" in (result.error or "")
    assert reconciler.items(status=None) == []
    assert not result.clean

    # the bill as published adds up: 72 refunds the store does not have
    good = BillStream.spool(real.read_bytes(), iter_trade_bill, channel="wechat", bill_date=day)
    with good:
        accepted = reconciler.run_bill(good)
    assert accepted.status == "done"
    assert accepted.counts["missing_in_store"] == 72
    assert accepted.open == 72
