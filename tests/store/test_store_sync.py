"""Lost-notification recovery (防掉单) and the checked browser return, through the same path."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from storekit import ToyBank, ToyChannel, return_params

from payhub import Money, PaymentRequest, PayMethod, SignatureError
from payhub.store import AnomalyKind, PaymentState, Store, TransitionCause


def pay(hub, out_trade_no: str, amount: int = 1000, channel: str | None = None) -> None:
    hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no,
            amount=Money(amount),
            subject="top-up",
            method=PayMethod.QR,
            channel=channel,
        )
    )


def test_sync_pending_recovers_a_lost_notification(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "S1")
    pay(hub, "S2")
    pay(hub, "S3")
    bank.trades[("toy-a", "S1")].status = "paid"  # its notification was lost
    bank.trades[("toy-a", "S2")].status = "closed"  # the buyer never paid
    seen: list[str] = []
    hub.subscribe("*", lambda e: seen.append(f"{e.type}:{e.out_trade_no}"))
    progress: list[str] = []
    report = hub.sync_pending(
        older_than=timedelta(0), progress=lambda p: progress.append(p.out_trade_no)
    )
    assert report.checked == 3
    assert report.changed == {"S1": PaymentState.PAID, "S2": PaymentState.CLOSED}
    assert report.errors == {}
    assert progress == ["S1", "S2", "S3"]
    assert sorted(seen) == ["payment.closed:S2", "payment.succeeded:S1"]
    assert store.audit("S1")[-1].cause is TransitionCause.SYNC
    # Nothing left to do: a second run changes nothing.
    assert hub.sync_pending(older_than=timedelta(0)).changed == {}


def test_sync_respects_older_than(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "S4")
    bank.trades[("toy-a", "S4")].status = "paid"
    assert hub.sync_pending(older_than=timedelta(minutes=10)).checked == 0
    later = Store(store._url, clock=lambda: datetime.now(UTC) + timedelta(minutes=11))
    try:
        assert [p.out_trade_no for p in later.pending_payments(timedelta(minutes=10))] == ["S4"]
    finally:
        later.close()


def test_sync_finds_a_payment_at_a_channel_that_timed_out(hub, store, bank) -> None:
    bank.fail_pay["toy-a"] = "timeout"
    pay(hub, "S5")  # toy-b took it; toy-a may hold a trade
    bank.trades[("toy-a", "S5")].status = "paid"  # the buyer paid there
    bank.trades[("toy-b", "S5")].status = "closed"
    report = hub.sync_pending(older_than=timedelta(0))
    # The paid answer is applied first: the closed trade at toy-b does not close it.
    assert report.changed == {"S5": PaymentState.PAID}
    assert store.payment("S5").channel == "toy-a"


def test_sync_records_a_duplicate_payment(hub, store, bank) -> None:
    bank.fail_pay["toy-a"] = "timeout"
    pay(hub, "S6")
    bank.trades[("toy-a", "S6")].status = "paid"
    bank.trades[("toy-b", "S6")].status = "paid"
    hub.sync_pending(older_than=timedelta(0))
    record = store.payment("S6")
    assert record.status is PaymentState.PAID
    assert [a.kind for a in store.anomalies("S6")] == [AnomalyKind.DUPLICATE_PAYMENT]


def test_sync_reports_channel_failures(hub, store, bank) -> None:
    pay(hub, "S7")
    hub._channels.pop("toy-a")  # the account was removed from the configuration
    report = hub.sync_pending(older_than=timedelta(0))
    assert "S7" in report.errors
    assert store.payment("S7").status is PaymentState.PENDING


def test_return_is_checked_by_a_query(hub, store: Store, bank: ToyBank) -> None:
    pay(hub, "S8")
    # The buyer came back, but has not paid: the return proves nothing.
    assert hub.check_return("toy-a", return_params("S8")).status is PaymentState.PENDING
    bank.trades[("toy-a", "S8")].status = "paid"
    record = hub.check_return("toy-a", return_params("S8"))
    assert record.status is PaymentState.PAID
    assert store.audit("S8")[-1].cause is TransitionCause.RETURN
    with pytest.raises(SignatureError):
        hub.check_return("toy-a", {**return_params("S8"), "sign": "0" * 64})
    # verify_return alone never changes the store.
    hub.verify_return("toy-a", return_params("S8"))


def test_sync_without_amount_never_credits(hub, store, bank, monkeypatch) -> None:
    pay(hub, "S9")
    bank.trades[("toy-a", "S9")].status = "paid"
    original = ToyChannel.query

    def no_amount(self, out_trade_no, **kw):
        result = yield from original(self, out_trade_no, **kw)
        return result.model_copy(update={"amount": None})

    monkeypatch.setattr(ToyChannel, "query", no_amount)
    hub.sync_pending(older_than=timedelta(0))
    assert store.payment("S9").status is PaymentState.PENDING


def test_notification_return_and_sync_racing_make_one_transition(
    hub, store: Store, bank: ToyBank
) -> None:
    payments = [f"S10-{n}" for n in range(6)]
    for out_trade_no in payments:
        pay(hub, out_trade_no)
    seen: list[str] = []
    hub.subscribe("payment.succeeded", lambda e: seen.append(e.out_trade_no))
    for out_trade_no in payments:
        headers, body = bank.buyer_pays("toy-a", out_trade_no)
        barrier = threading.Barrier(3)
        errors: list[BaseException] = []

        def run(fn, barrier=barrier, errors=errors) -> None:
            barrier.wait()
            try:
                fn()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        jobs = [
            lambda h=headers, b=body: hub.handle_notification("toy-a", h, b),
            lambda o=out_trade_no: hub.check_return("toy-a", return_params(o)),
            lambda: hub.sync_pending(older_than=timedelta(0)),
        ]
        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        transitions = [a for a in store.audit(out_trade_no) if a.to_status is PaymentState.PAID]
        assert len(transitions) == 1, store.audit(out_trade_no)
        assert [e.type for e in store.events(out_trade_no=out_trade_no)] == ["payment.succeeded"]
    assert sorted(seen) == sorted(payments)
