"""Refunds whose answer was lost (a timeout): ``sync_pending`` and ``sync_refund``
ask the channel and apply its answer, and never release a reservation on a guess.

Runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from storekit import ToyBank, ToyChannel, paid

from payhub import (
    AsyncPayHub,
    ChannelError,
    ChannelTimeout,
    ErrorCode,
    Money,
    PaymentRequest,
    PaymentStateError,
    PayMethod,
    RefundRequest,
    RefundStatus,
)
from payhub.store import PaymentState, RefundState, Store


def timed_out_refund(
    hub, bank: ToyBank, out_trade_no: str, out_refund_no: str, amount: int, fault: str
) -> None:
    """A refund through the hub whose answer never comes back."""
    bank.fail_refund["toy-a"] = fault
    with pytest.raises(ChannelTimeout):
        hub.refund(
            None,
            RefundRequest(
                out_trade_no=out_trade_no, out_refund_no=out_refund_no, amount=Money(amount)
            ),
        )
    bank.fail_refund.clear()


def events(store: Store, out_trade_no: str) -> list[str]:
    return [e.type for e in store.events(out_trade_no=out_trade_no)]


def test_a_refund_made_but_unanswered_is_completed(hub, store: Store, bank: ToyBank) -> None:
    seen: list[str] = []
    hub.subscribe("*", lambda e: seen.append(e.type))
    paid(hub, bank, "RS1")
    timed_out_refund(hub, bank, "RS1", "RRS1", 400, "lost")  # the bank made it
    assert store.refund("RRS1").status is RefundState.PENDING
    assert store.payment("RS1").refunded == Money(0)
    assert seen == ["payment.succeeded"]
    report = hub.sync_pending(older_than=timedelta(0))
    assert (report.checked, report.refunds_checked) == (0, 1)
    assert report.refunds_changed == {"RRS1": RefundState.SUCCEEDED}
    assert report.refund_errors == {}
    refund = store.refund("RRS1")
    assert (refund.status, refund.channel_refund_id) == (RefundState.SUCCEEDED, "R-RRS1")
    payment = store.payment("RS1")
    assert (payment.status, payment.refunded) == (PaymentState.PARTIALLY_REFUNDED, Money(400))
    assert seen == ["payment.succeeded", "payment.refunded"]
    assert store.audit("RS1")[-1].to_status is PaymentState.PARTIALLY_REFUNDED
    # Nothing pending any more: a second sweep asks nothing and changes nothing.
    again = hub.sync_pending(older_than=timedelta(0))
    assert (again.refunds_checked, again.refunds_changed) == (0, {})
    assert events(store, "RS1").count("payment.refunded") == 1
    # The bank made the refund once; a later hub.refund with the number gives the stored result.
    assert [r[1] for r in bank.refunds] == ["RRS1"]


def test_a_refund_the_channel_never_got_stays_reserved(hub, store: Store, bank: ToyBank) -> None:
    paid(hub, bank, "RS2")
    timed_out_refund(hub, bank, "RS2", "RRS2", 700, "timeout")  # never reached the bank
    report = hub.sync_pending(older_than=timedelta(0))
    assert report.refunds_checked == 1
    assert report.refunds_changed == {}
    assert "knows no such refund" in report.refund_errors["RRS2"]
    assert "same out_refund_no" in report.refund_errors["RRS2"]
    assert store.refund("RRS2").status is RefundState.PENDING
    # Still reserved: 700 of 1000 cannot be refunded twice.
    with pytest.raises(PaymentStateError) as info:
        hub.refund(
            None, RefundRequest(out_trade_no="RS2", out_refund_no="RRS2b", amount=Money(400))
        )
    assert info.value.code is ErrorCode.REFUND_EXCEEDS_PAID
    # The documented way out: repeat the refund with the same number.
    hub.refund(
        None, RefundRequest(out_trade_no="RS2", out_refund_no="RRS2", amount=Money(700))
    )
    assert store.refund("RRS2").status is RefundState.SUCCEEDED
    assert hub.sync_pending(older_than=timedelta(0)).refund_errors == {}


@pytest.mark.parametrize("answer", ["failed", "closed"])
def test_a_refund_the_channel_failed_is_released(
    hub, store: Store, bank: ToyBank, answer: str
) -> None:
    paid(hub, bank, "RS3")
    timed_out_refund(hub, bank, "RS3", "RRS3", 1000, "timeout")
    bank.refund_states["RRS3"] = answer
    report = hub.sync_pending(older_than=timedelta(0))
    assert report.refunds_changed == {"RRS3": RefundState.FAILED}
    assert report.refund_errors == {}
    assert store.refund("RRS3").status is RefundState.FAILED
    assert store.payment("RS3").status is PaymentState.PAID
    assert "refund.failed" in events(store, "RS3")
    # Released: the whole amount may be refunded again under a new number.
    hub.refund(
        None, RefundRequest(out_trade_no="RS3", out_refund_no="RRS3b", amount=Money(1000))
    )
    assert store.payment("RS3").status is PaymentState.REFUNDED


def test_a_refund_still_processing_stays_pending_quietly(hub, store: Store, bank) -> None:
    paid(hub, bank, "RS4")
    timed_out_refund(hub, bank, "RS4", "RRS4", 300, "lost")
    bank.refund_states["RRS4"] = "pending"
    report = hub.sync_pending(older_than=timedelta(0))
    assert (report.refunds_checked, report.refunds_changed, report.refund_errors) == (1, {}, {})
    assert store.refund("RRS4").status is RefundState.PENDING
    assert store.payment("RS4").refunded == Money(0)
    del bank.refund_states["RRS4"]  # the bank finishes it
    assert hub.sync_refund("RRS4").status is RefundState.SUCCEEDED
    assert store.payment("RS4").refunded == Money(300)


def test_an_answer_with_another_amount_is_not_applied(hub, store: Store, bank) -> None:
    paid(hub, bank, "RS5")
    timed_out_refund(hub, bank, "RS5", "RRS5", 300, "lost")
    bank.refund_query_amount["RRS5"] = 900
    report = hub.sync_pending(older_than=timedelta(0))
    assert report.refunds_changed == {}
    assert "9.00" in report.refund_errors["RRS5"]
    assert "3.00" in report.refund_errors["RRS5"]
    assert store.refund("RRS5").status is RefundState.PENDING
    assert store.payment("RS5").refunded == Money(0)
    assert "payment.refunded" not in events(store, "RS5")


def test_refund_sweep_respects_older_than_and_can_be_off(hub, store: Store, bank) -> None:
    paid(hub, bank, "RS6")
    timed_out_refund(hub, bank, "RS6", "RRS6", 100, "lost")
    assert hub.sync_pending(older_than=timedelta(minutes=10)).refunds_checked == 0
    assert hub.sync_pending(older_than=timedelta(0), refunds=False).refunds_checked == 0
    assert store.refund("RRS6").status is RefundState.PENDING
    later = Store(store.url, clock=lambda: datetime.now(UTC) + timedelta(minutes=11))
    try:
        assert [r.out_refund_no for r in later.pending_refunds(timedelta(minutes=10))] == ["RRS6"]
        assert later.pending_refunds(timedelta(minutes=12)) == []
    finally:
        later.close()


def test_pending_refunds_oldest_first_and_limited(hub, store: Store, bank) -> None:
    for n in range(3):
        paid(hub, bank, f"RS7-{n}")
        timed_out_refund(hub, bank, f"RS7-{n}", f"RRS7-{n}", 100, "lost")
    hub.refund(None, RefundRequest(out_trade_no="RS7-0", out_refund_no="RRS7-x", amount=Money(1)))
    pending = store.pending_refunds()
    assert [(r.out_refund_no, r.out_trade_no) for r in pending] == [
        ("RRS7-0", "RS7-0"),
        ("RRS7-1", "RS7-1"),
        ("RRS7-2", "RS7-2"),
    ]
    assert [r.out_refund_no for r in store.pending_refunds(limit=2)] == ["RRS7-0", "RRS7-1"]
    report = hub.sync_pending(older_than=timedelta(0), limit=2)
    assert sorted(report.refunds_changed) == ["RRS7-0", "RRS7-1"]
    assert store.refund("RRS7-2").status is RefundState.PENDING


def test_sync_refund_single(hub, store: Store, bank) -> None:
    paid(hub, bank, "RS8")
    timed_out_refund(hub, bank, "RS8", "RRS8", 250, "lost")
    record = hub.sync_refund("RRS8")
    assert (record.out_refund_no, record.status) == ("RRS8", RefundState.SUCCEEDED)
    asked = len(bank.refunds)
    # A refund no longer pending is returned as stored; nothing is asked or applied.
    assert hub.sync_refund("RRS8").status is RefundState.SUCCEEDED
    assert len(bank.refunds) == asked
    with pytest.raises(PaymentStateError) as info:
        hub.sync_refund("NO-SUCH-REFUND")
    assert info.value.code is ErrorCode.UNKNOWN_REFUND


def test_refund_query_failures_are_reported_and_change_nothing(hub, store: Store, bank) -> None:
    paid(hub, bank, "RS9")
    timed_out_refund(hub, bank, "RS9", "RRS9", 100, "lost")
    hub._channels.pop("toy-a")  # the account was removed from the configuration
    report = hub.sync_pending(older_than=timedelta(0))
    assert report.refund_errors == {"RRS9": "toy-a: not configured"}
    assert store.refund("RRS9").status is RefundState.PENDING


def test_refund_query_network_failure_is_reported(store: Store, bank: ToyBank) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/refund_query":
            raise httpx.ConnectError("refused", request=request)
        return bank.handle(request)

    from payhub import PayHub

    with PayHub(
        channels=[ToyChannel("toy-a")],
        store=store,
        http_client=httpx.Client(transport=httpx.MockTransport(down)),
    ) as hub:
        paid(hub, bank, "RS10")
        timed_out_refund(hub, bank, "RS10", "RRS10", 100, "lost")
        report = hub.sync_pending(older_than=timedelta(0))
    assert report.refunds_checked == 1
    assert report.refund_errors["RRS10"].startswith("toy-a: ")
    assert store.refund("RRS10").status is RefundState.PENDING


def test_async_hub_sweeps_refunds(store: Store, bank: ToyBank) -> None:
    async def main() -> None:
        seen: list[str] = []
        async with AsyncPayHub(
            channels=[ToyChannel("toy-a")],
            store=store,
            http_client=httpx.AsyncClient(transport=bank.transport()),
        ) as hub:
            hub.subscribe("*", seen.append)
            for number in ("A1", "A2"):
                await hub.pay(
                    PaymentRequest(
                        out_trade_no=f"RS-{number}",
                        amount=Money(1000),
                        subject="c",
                        method=PayMethod.QR,
                    )
                )
                headers, body = bank.buyer_pays("toy-a", f"RS-{number}")
                assert (await hub.handle_notification("toy-a", headers, body)).ack.ok
            for number, fault in (("A1", "lost"), ("A2", "timeout")):
                bank.fail_refund["toy-a"] = fault
                with pytest.raises(ChannelTimeout):
                    await hub.refund(
                        None,
                        RefundRequest(
                            out_trade_no=f"RS-{number}",
                            out_refund_no=f"RRS-{number}",
                            amount=Money(500),
                        ),
                    )
            bank.fail_refund.clear()
            report = await hub.sync_pending(older_than=timedelta(0))
            assert report.refunds_changed == {"RRS-A1": RefundState.SUCCEEDED}
            assert list(report.refund_errors) == ["RRS-A2"]
            # A retry of RRS-A2 is made now; one told "pending" is settled by a query.
            bank.repeats_answer_pending = True
            again = RefundRequest(out_trade_no="RS-A2", out_refund_no="RRS-A2", amount=Money(500))
            assert (await hub.refund(None, again)).status is RefundStatus.SUCCEEDED
            assert (await hub.sync_refund("RRS-A1")).status is RefundState.SUCCEEDED
            with pytest.raises(PaymentStateError):
                await hub.sync_refund("NO-SUCH")
        refunded = [e.out_trade_no for e in seen if e.type == "payment.refunded"]
        assert sorted(refunded) == ["RS-A1", "RS-A2"]  # each once

    asyncio.run(main())
    assert store.payment("RS-A1").refunded == Money(500)
    assert store.refund("RRS-A2").status is RefundState.SUCCEEDED


# -- refund_context: fixed before the first send, kept, resent, queried with ---------------


class StampChannel(ToyChannel):
    """A toy channel that, like UnionPay, finds a refund again only with something
    fixed before its first send (UnionPay: the refund's txnTime)."""

    stamps = 0

    def refund_context(self, request: RefundRequest) -> dict[str, str]:
        StampChannel.stamps += 1
        return {"stamp": f"S{StampChannel.stamps}"}


def test_refund_context_is_fixed_once_kept_and_resent(store: Store, bank: ToyBank) -> None:
    from payhub import PayHub

    with PayHub(channels=[StampChannel("toy-a")], store=store, http_client=bank.client()) as hub:
        paid(hub, bank, "RS11")
        timed_out_refund(hub, bank, "RS11", "RRS11", 100, "timeout")
        stamp = store.refund("RRS11").channel_context
        assert stamp == {"stamp": f"S{StampChannel.stamps}"}
        assert hub.sync_refund("RRS11").status is RefundState.PENDING  # never reached the bank
        hub.refund(
            None, RefundRequest(out_trade_no="RS11", out_refund_no="RRS11", amount=Money(100))
        )
    # The first send, the query and the retry all carried the one stamp.
    assert bank.contexts_seen == [
        ("/refund", "RRS11", stamp),
        ("/refund_query", "RRS11", stamp),
        ("/refund", "RRS11", stamp),
    ]
    assert store.refund("RRS11").status is RefundState.SUCCEEDED


def test_number_used_on_a_retry_is_not_a_refusal(hub, store: Store, bank: ToyBank) -> None:
    """As UnionPay answers a resent orderId: the refund was made by the first try."""
    bank.reused_refund_numbers_refused = True
    paid(hub, bank, "RS12")
    timed_out_refund(hub, bank, "RS12", "RRS12", 400, "lost")
    result = hub.refund(
        None, RefundRequest(out_trade_no="RS12", out_refund_no="RRS12", amount=Money(400))
    )
    assert result.status is RefundStatus.SUCCEEDED
    assert store.refund("RRS12").status is RefundState.SUCCEEDED
    assert store.payment("RS12").refunded == Money(400)
    assert "refund.failed" not in events(store, "RS12")


def test_number_used_on_a_retry_the_channel_cannot_find_stays_reserved(
    hub, store: Store, bank: ToyBank
) -> None:
    bank.reused_refund_numbers_refused = True
    paid(hub, bank, "RS13")
    timed_out_refund(hub, bank, "RS13", "RRS13", 400, "lost")
    bank.refund_states["RRS13"] = "not_found"  # its query cannot find it (UnionPay: no txnTime)
    with pytest.raises(ChannelError) as info:
        hub.refund(
            None, RefundRequest(out_trade_no="RS13", out_refund_no="RRS13", amount=Money(400))
        )
    assert info.value.code is ErrorCode.ORDER_NUMBER_USED
    assert store.refund("RRS13").status is RefundState.PENDING  # not released on a guess


def test_number_used_on_a_new_refund_releases_it(hub, store: Store, bank: ToyBank) -> None:
    """The first send told 'number used': another transaction has it; nothing was refunded."""
    paid(hub, bank, "RS14")
    bank.fail_refund["toy-a"] = "used"
    with pytest.raises(ChannelError) as info:
        hub.refund(
            None, RefundRequest(out_trade_no="RS14", out_refund_no="RRS14", amount=Money(1000))
        )
    assert info.value.code is ErrorCode.ORDER_NUMBER_USED
    assert store.refund("RRS14").status is RefundState.FAILED
    assert store.payment("RS14").refunded == Money(0)


def test_a_retry_answered_pending_is_settled_by_a_query(hub, store: Store, bank: ToyBank) -> None:
    bank.repeats_answer_pending = True  # as Alipay: fund_change N, "no money moved by this call"
    paid(hub, bank, "RS15")
    timed_out_refund(hub, bank, "RS15", "RRS15", 500, "lost")
    result = hub.refund(
        None, RefundRequest(out_trade_no="RS15", out_refund_no="RRS15", amount=Money(500))
    )
    assert result.status is RefundStatus.SUCCEEDED
    assert [path for path, number, _ in bank.contexts_seen if number == "RRS15"] == [
        "/refund",
        "/refund",
        "/refund_query",
    ]
    assert store.payment("RS15").refunded == Money(500)
    assert events(store, "RS15").count("payment.refunded") == 1


def test_a_refused_retry_of_a_refund_made_returns_what_the_channel_has(
    hub, store: Store, bank: ToyBank
) -> None:
    paid(hub, bank, "RS16")
    timed_out_refund(hub, bank, "RS16", "RRS16", 300, "lost")  # made; the answer lost
    bank.fail_refund["toy-a"] = "refuse"  # the retry is refused (no balance now)
    result = hub.refund(
        None, RefundRequest(out_trade_no="RS16", out_refund_no="RRS16", amount=Money(300))
    )
    assert result.status is RefundStatus.SUCCEEDED
    assert store.refund("RRS16").status is RefundState.SUCCEEDED
    assert store.payment("RS16").refunded == Money(300)


def test_a_refused_retry_of_a_refund_never_made_stays_reserved(
    hub, store: Store, bank: ToyBank
) -> None:
    """The first send's outcome is unknown to the hub: a refusal of the retry does
    not prove it failed, so nothing is released on it."""
    paid(hub, bank, "RS17")
    timed_out_refund(hub, bank, "RS17", "RRS17", 300, "timeout")
    bank.fail_refund["toy-a"] = "refuse"
    with pytest.raises(ChannelError) as info:
        hub.refund(
            None, RefundRequest(out_trade_no="RS17", out_refund_no="RRS17", amount=Money(300))
        )
    assert info.value.code is ErrorCode.INSUFFICIENT_BALANCE
    assert store.refund("RRS17").status is RefundState.PENDING
    bank.fail_refund.clear()
    report = hub.sync_pending(older_than=timedelta(0))
    assert "knows no such refund" in report.refund_errors["RRS17"]
    # A person who knows it was never made releases it.
    store.fail_refund("RRS17", "never made: checked in the merchant console")
    assert store.refund("RRS17").status is RefundState.FAILED
    assert "refund.failed" in events(store, "RS17")
