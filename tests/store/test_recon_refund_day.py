"""A refund belongs to the bill of the day it succeeded at the channel.

The channel's bill lists a refund on the day the channel says it succeeded;
payhub may hear of it later (a notification after midnight, a query the next
morning). Reconciliation must look for it in the bill of that first day, and
not call it missing from the bill of the day payhub happened to learn it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from storekit import ToyBank, ToyChannel, notification, paid

from payhub import PayHub
from payhub.channels import BillStream
from payhub.models import BillRecord, BillRecordKind
from payhub.money import Money
from payhub.recon import Reconciler, ReconConfig
from payhub.store import Store
from payhub.tz import SHANGHAI

DAY = date(2026, 3, 1)
CONFIG = ReconConfig(sla_days=0, boundary_slack=timedelta(0), auto_repair=False)


def payment_row() -> BillRecord:
    return BillRecord(
        channel="toy-a",
        kind=BillRecordKind.PAYMENT,
        channel_trade_id="toy-a-T-DAY-1",
        out_trade_no="DAY-1",
        amount=Money(1000),
        raw={},
    )


def refund_row() -> BillRecord:
    return BillRecord(
        channel="toy-a",
        kind=BillRecordKind.REFUND,
        channel_trade_id="toy-a-T-DAY-1",
        out_trade_no="DAY-1",
        out_refund_no="DAY-R1",
        amount=Money(-300),
        raw={},
    )


def bill(day: date, *rows: BillRecord) -> BillStream:
    return BillStream.of(rows, channel="toy-a", bill_date=day)


def test_a_refund_learnt_after_midnight_is_billed_on_the_day_it_succeeded(
    store_url: str, bank: ToyBank
) -> None:
    clock = [datetime(2026, 3, 1, 10, 0, tzinfo=SHANGHAI)]
    with Store(store_url, clock=lambda: clock[0], external_refunds=True) as store, PayHub(
        channels=[ToyChannel("toy-a")], store=store, http_client=bank.client()
    ) as hub:
        paid(hub, bank, "DAY-1")
        # the channel refunded at 23:50; its notification reached payhub at 00:10
        clock[0] = datetime(2026, 3, 2, 0, 10, tzinfo=SHANGHAI)
        succeeded = datetime(2026, 3, 1, 23, 50, tzinfo=SHANGHAI)
        outcome = hub.handle_notification(
            "toy-a",
            *notification(
                "DAY-1", kind="refund", refund_amount=300, out_refund_no="DAY-R1", paid_at=succeeded
            ),
        )
        assert outcome.ack.ok
        refund = store.refund("DAY-R1")
        assert refund is not None
        assert refund.status.value == "succeeded"

        week_later = datetime(2026, 3, 9, tzinfo=SHANGHAI)
        reconciler = Reconciler(None, CONFIG, store=store, clock=lambda: week_later)
        # the second day's bill does not have it, rightly: no difference there
        second = reconciler.run_bill(bill(DAY + timedelta(days=1)))
        assert second.counts == {"matched": 0}
        assert second.clean
        # the first day's bill has it: matched
        first = reconciler.run_bill(bill(DAY, payment_row(), refund_row()))
        assert first.counts == {"matched": 2}
        # and were the first day's bill without it, it would be missing there
        without = reconciler.run_bill(bill(DAY, payment_row()))
        assert without.counts == {"matched": 1, "missing_at_channel": 1}
        (item,) = reconciler.items(channel="toy-a", bill_date=DAY)
        assert (item["out_refund_no"], item["kind"]) == ("DAY-R1", "missing_at_channel")


def test_a_refund_whose_channel_names_no_time_is_billed_when_payhub_learnt_it(
    store_url: str, bank: ToyBank
) -> None:
    clock = [datetime(2026, 3, 1, 10, 0, tzinfo=SHANGHAI)]
    with Store(store_url, clock=lambda: clock[0], external_refunds=True) as store, PayHub(
        channels=[ToyChannel("toy-a")], store=store, http_client=bank.client()
    ) as hub:
        paid(hub, bank, "DAY-1")
        clock[0] = datetime(2026, 3, 1, 15, 0, tzinfo=SHANGHAI)
        hub.handle_notification(
            "toy-a",
            *notification("DAY-1", kind="refund", refund_amount=300, out_refund_no="DAY-R1"),
        )
        week_later = datetime(2026, 3, 9, tzinfo=SHANGHAI)
        reconciler = Reconciler(None, CONFIG, store=store, clock=lambda: week_later)
        result = reconciler.run_bill(bill(DAY, payment_row()))
        assert result.counts == {"matched": 1, "missing_at_channel": 1}
