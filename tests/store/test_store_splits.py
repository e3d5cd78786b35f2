"""Splits (分账) and payouts in the store, on every database, with no channel at all:
reservations under the caller's number, the channel's word applied once, and the
ledger posted only when the channel confirms (docs/ledger.md)."""

from __future__ import annotations

import pytest
from ledgerkit import balances, check_invariants, count, paid

from payhub import ErrorCode, Money, RefundRequest
from payhub.errors import (
    AmountError,
    InvalidRequestError,
    LedgerError,
    PaymentStateError,
    SplitError,
)
from payhub.ledger import EntryCause, WithdrawalStatus
from payhub.splits_models import (
    ReceiverKind,
    SplitLineResult,
    SplitResult,
    SplitStatus,
    TransferRequest,
    TransferResult,
    TransferStatus,
)
from payhub.store import PayoutState, SplitLineRecord, SplitState, Store
from payhub.store._schema import ledger_entries, payouts, splits
from payhub.store._splits import digest_of


def _lines(*parts: tuple[str, str, int]) -> list[SplitLineRecord]:
    return [
        SplitLineRecord(
            party=party, kind="user_id", account=account, amount=Money(amount), description="分账"
        )
        for party, account, amount in parts
    ]


def _reserve(store: Store, number: str, out_trade_no: str, *parts: tuple[str, str, int]):
    lines = _lines(*parts)
    content = {"trade": out_trade_no, "lines": [line.as_json() for line in lines]}
    return store.reserve_split(
        out_split_no=number,
        out_trade_no=out_trade_no,
        lines=lines,
        finish=False,
        digest=digest_of(content),
    )


def _answer(number: str, status: SplitStatus, *lines: tuple[str, int, SplitStatus]) -> SplitResult:
    return SplitResult(
        channel="toy-a",
        out_request_no=number,
        status=status,
        channel_split_id="CH-" + number,
        lines=tuple(
            SplitLineResult(kind="userId", account=a, amount=Money(m), status=s)
            for a, m, s in lines
        ),
    )


PLATFORM_LINE = ("platform", "2088000000000001", 100)
BOB_LINE = ("bob", "2088000000000002", 200)


def test_a_confirmed_split_moves_the_sellers_money_to_each_receiver_once(
    hub, store: Store, bank
) -> None:
    paid(hub, bank, "S1", 1000, seller="alice")
    record, existed = _reserve(store, "SP1", "S1", PLATFORM_LINE, BOB_LINE)
    assert not existed
    assert record.status is SplitState.PROCESSING
    assert record.amount == Money(300)
    assert record.channel == "toy-a"
    assert record.channel_trade_id == "toy-a-T-S1"
    # accepted, not final: nothing is posted
    store.apply_split_result("SP1", _answer("SP1", SplitStatus.PROCESSING))
    assert count(store, ledger_entries) == 1
    done = store.apply_split_result(
        "SP1",
        _answer(
            "SP1",
            SplitStatus.SUCCEEDED,
            ("2088000000000001", 100, SplitStatus.SUCCEEDED),
            ("2088000000000002", 200, SplitStatus.SUCCEEDED),
        ),
    )
    assert done.status is SplitState.SUCCEEDED
    assert done.channel_split_id == "CH-SP1"
    assert balances(store) == {
        ("toy-a", "clearing"): 1000,
        ("alice", "pending"): 700,
        ("platform", "paid_out"): 100,
        ("bob", "paid_out"): 200,
    }
    [entry] = [e for e in store.ledger.entries(reference="S1") if e.cause is EntryCause.SPLIT]
    assert entry.party == "alice"
    # a second answer (a notification, a query) changes nothing
    again = store.apply_split_result("SP1", _answer("SP1", SplitStatus.FAILED))
    assert again.status is SplitState.SUCCEEDED
    assert count(store, ledger_entries) == 2
    check_invariants(store)
    # the same call again is the stored split
    repeat, existed = _reserve(store, "SP1", "S1", PLATFORM_LINE, BOB_LINE)
    assert existed
    assert repeat.status is SplitState.SUCCEEDED


def test_the_same_number_with_other_content_is_refused_and_changes_nothing(
    hub, store: Store, bank
) -> None:
    paid(hub, bank, "S2", 1000)
    _reserve(store, "SP2", "S2", PLATFORM_LINE)
    with pytest.raises(InvalidRequestError) as caught:
        _reserve(store, "SP2", "S2", ("platform", "2088000000000001", 101))
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED
    assert count(store, splits) == 1
    assert store.split("SP2").amount == Money(100)


def test_a_split_above_what_is_left_is_refused(hub, store: Store, bank) -> None:
    paid(hub, bank, "S3", 1000, seller="alice")
    _reserve(store, "SP3a", "S3", ("bob", "2088000000000002", 800))
    with pytest.raises(SplitError) as caught:
        _reserve(store, "SP3b", "S3", ("bob", "2088000000000002", 201))
    assert caught.value.code is ErrorCode.INVALID_SPLIT
    assert count(store, splits) == 1
    _reserve(store, "SP3c", "S3", ("bob", "2088000000000002", 200))  # exactly what is left
    # a failed split gives its room back; nothing was posted for it
    store.apply_split_result("SP3a", _answer("SP3a", SplitStatus.FAILED))
    assert store.split("SP3a").status is SplitState.FAILED
    assert count(store, ledger_entries) == 1
    _reserve(store, "SP3d", "S3", ("bob", "2088000000000002", 800))


def test_refunds_count_against_the_split(hub, store: Store, bank) -> None:
    paid(hub, bank, "S4", 1000)
    hub.refund(None, RefundRequest(out_trade_no="S4", out_refund_no="R4", amount=Money(600)))
    with pytest.raises(SplitError):
        _reserve(store, "SP4", "S4", ("bob", "2088000000000002", 401))
    _reserve(store, "SP4", "S4", ("bob", "2088000000000002", 400))


def test_a_split_counts_against_refunds_and_a_failed_one_gives_it_back(
    hub, store: Store, bank
) -> None:
    from payhub.store._schema import refunds

    paid(hub, bank, "S4b", 1000)
    _reserve(store, "SP4b", "S4b", ("bob", "2088000000000002", 300))
    with pytest.raises(PaymentStateError) as caught:
        hub.refund(
            None, RefundRequest(out_trade_no="S4b", out_refund_no="R4b", amount=Money(701))
        )
    assert caught.value.code is ErrorCode.REFUND_EXCEEDS_PAID
    assert "split away" in str(caught.value)
    assert count(store, refunds) == 0
    # the split failed at the channel: its money may be refunded again
    store.apply_split_result("SP4b", _answer("SP4b", SplitStatus.FAILED))
    hub.refund(None, RefundRequest(out_trade_no="S4b", out_refund_no="R4b", amount=Money(1000)))
    assert count(store, refunds) == 1


def test_only_a_paid_payment_is_split(hub, store: Store, bank) -> None:
    with pytest.raises(PaymentStateError) as caught:
        _reserve(store, "SP5", "NOPE", PLATFORM_LINE)
    assert caught.value.code is ErrorCode.UNKNOWN_PAYMENT
    from ledgerkit import pay

    pay(hub, "S5", 1000)  # created, not paid
    with pytest.raises(PaymentStateError) as caught:
        _reserve(store, "SP5", "S5", PLATFORM_LINE)
    assert caught.value.code is ErrorCode.PAYMENT_STATE
    assert count(store, splits) == 0


def test_a_partial_split_posts_only_the_lines_that_moved(hub, store: Store, bank) -> None:
    paid(hub, bank, "S6", 1000, seller="alice")
    _reserve(store, "SP6", "S6", PLATFORM_LINE, BOB_LINE)
    record = store.apply_split_result(
        "SP6",
        _answer(
            "SP6",
            SplitStatus.PARTIAL,
            ("2088000000000001", 100, SplitStatus.SUCCEEDED),
            ("2088000000000002", 200, SplitStatus.FAILED),
        ),
    )
    assert record.status is SplitState.PARTIAL
    assert [line.status for line in record.lines] == [SplitState.SUCCEEDED, SplitState.FAILED]
    got = balances(store)
    assert got[("alice", "pending")] == 900
    assert got[("platform", "paid_out")] == 100
    assert ("bob", "paid_out") not in got
    # the failed line's 200 is free again: 1000 - 100
    _reserve(store, "SP6b", "S6", ("bob", "2088000000000002", 900))
    check_invariants(store)


def test_a_refused_split_frees_its_room_and_may_be_made_again(hub, store: Store, bank) -> None:
    paid(hub, bank, "S7", 1000)
    _reserve(store, "SP7", "S7", ("bob", "2088000000000002", 1000))
    store.refuse_split("SP7", "RECEIVER_NOT_BOUND")
    refused = store.split("SP7")
    assert refused.status is SplitState.REFUSED
    assert refused.error == "RECEIVER_NOT_BOUND"
    assert store.splits(status="processing") == []
    # the same call again: reserved again (the row is kept, never deleted)
    record, existed = _reserve(store, "SP7", "S7", ("bob", "2088000000000002", 1000))
    assert not existed
    assert record.status is SplitState.PROCESSING
    assert [s.out_split_no for s in store.splits(status="processing")] == ["SP7"]
    assert count(store, splits) == 1
    # other content under a refused number is still refused
    store.refuse_split("SP7", "RECEIVER_NOT_BOUND")
    with pytest.raises(InvalidRequestError) as caught:
        _reserve(store, "SP7", "S7", ("bob", "2088000000000002", 999))
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED


def test_a_split_after_settlement_takes_from_available(hub, store: Store, bank) -> None:
    store.configure_ledger({"plans": {"alice": "instant"}})
    paid(hub, bank, "S8", 1000, seller="alice")
    _reserve(store, "SP8", "S8", BOB_LINE)
    store.apply_split_result(
        "SP8",
        _answer("SP8", SplitStatus.SUCCEEDED, ("2088000000000002", 200, SplitStatus.SUCCEEDED)),
    )
    got = balances(store)
    assert got[("alice", "available")] == 800
    assert got[("bob", "paid_out")] == 200
    check_invariants(store)


# -- payouts ---------------------------------------------------------------------------


def _transfer(number: str, amount: int, account: str = "2088000000000009") -> TransferRequest:
    return TransferRequest(
        out_transfer_no=number,
        kind=ReceiverKind.USER_ID,
        account=account,
        amount=Money(amount),
        remark="提现",
    )


def _withdrawal(hub, store: Store, bank, number: str) -> int:
    store.configure_ledger(
        {"plans": {"w": "instant"}, "withdrawal": {"fee": {"type": "fixed", "amount": 10}}}
    )
    paid(hub, bank, number, 1000, seller="w")
    return store.ledger.withdraw("w", Money(500)).id


def _payout(store: Store, withdrawal: int, request: TransferRequest):
    content = {"withdrawal": withdrawal, "request": request.model_dump(mode="json")}
    return store.reserve_payout("toy-a", withdrawal, request, digest_of(content))


def _sent(number: str, status: TransferStatus, reason: str | None = None) -> TransferResult:
    return TransferResult(
        channel="toy-a",
        out_transfer_no=number,
        status=status,
        channel_transfer_id="ORD-" + number,
        fail_reason=reason,
    )


def test_a_confirmed_payout_marks_the_withdrawal_paid(hub, store: Store, bank) -> None:
    withdrawal = _withdrawal(hub, store, bank, "P1")
    record, existed = _payout(store, withdrawal, _transfer("PO1", 490))
    assert not existed
    assert record.status is PayoutState.PROCESSING
    store.apply_payout_result("PO1", _sent("PO1", TransferStatus.PROCESSING))
    assert store.ledger.withdrawals()[0].status is WithdrawalStatus.PENDING
    done = store.apply_payout_result("PO1", _sent("PO1", TransferStatus.SUCCEEDED))
    assert done.status is PayoutState.SUCCEEDED
    assert done.channel_transfer_id == "ORD-PO1"
    [w] = store.ledger.withdrawals()
    assert w.status is WithdrawalStatus.PAID
    assert w.note == "payout PO1 (ORD-PO1)"
    got = balances(store)
    assert got[("platform", "paid_out")] == 490
    assert ("w", "withdrawing") not in got
    # a later answer changes nothing; the same call returns the stored payout
    assert store.apply_payout_result("PO1", _sent("PO1", TransferStatus.FAILED)).status is (
        PayoutState.SUCCEEDED
    )
    again, existed = _payout(store, withdrawal, _transfer("PO1", 490))
    assert existed
    assert again.status is PayoutState.SUCCEEDED
    check_invariants(store)


def test_a_failed_payout_returns_the_withdrawal(hub, store: Store, bank) -> None:
    withdrawal = _withdrawal(hub, store, bank, "P2")
    _payout(store, withdrawal, _transfer("PO2", 490))
    record = store.apply_payout_result("PO2", _sent("PO2", TransferStatus.FAILED, "PAYEE_CANCEL"))
    assert record.status is PayoutState.FAILED
    assert record.error == "PAYEE_CANCEL"
    [w] = store.ledger.withdrawals()
    assert w.status is WithdrawalStatus.FAILED
    assert balances(store)[("w", "available")] == 1000
    check_invariants(store)


def test_bad_payouts_are_typed_and_change_nothing(hub, store: Store, bank) -> None:
    withdrawal = _withdrawal(hub, store, bank, "P3")
    with pytest.raises(AmountError):
        _payout(store, withdrawal, _transfer("PO3", 491))  # above the withdrawal's net
    with pytest.raises(AmountError):
        _payout(store, withdrawal, _transfer("PO3", 100))  # a payout pays it whole
    with pytest.raises(LedgerError) as caught:
        _payout(store, 987654, _transfer("PO3", 490))
    assert caught.value.code is ErrorCode.LEDGER_NOT_FOUND
    assert count(store, payouts) == 0
    _payout(store, withdrawal, _transfer("PO3", 490))
    with pytest.raises(InvalidRequestError) as caught:
        _payout(store, withdrawal, _transfer("PO3", 490, account="2088000000000008"))
    assert caught.value.code is ErrorCode.ORDER_NUMBER_USED
    with pytest.raises(LedgerError) as caught:
        _payout(store, withdrawal, _transfer("PO4", 490))
    assert caught.value.code is ErrorCode.LEDGER_STATE
    assert count(store, payouts) == 1
    store.refuse_payout("PO3", "PAYEE_NAME_MISMATCH")
    assert store.payout("PO3").status is PayoutState.REFUSED
    assert store.ledger.withdrawals()[0].status is WithdrawalStatus.PENDING
    # a refused payout does not hold the withdrawal: another number may pay it
    record, existed = _payout(store, withdrawal, _transfer("PO4", 490))
    assert not existed
    assert record.status is PayoutState.PROCESSING
    store.refuse_payout("PO4", "INSUFFICIENT_BALANCE")
    # and the refused number itself may be made again
    again, existed = _payout(store, withdrawal, _transfer("PO3", 490))
    assert not existed
    assert again.status is PayoutState.PROCESSING
    # a withdrawal already ended cannot be paid out
    store.ledger.mark_withdrawal_failed(withdrawal, "by hand")
    with pytest.raises(LedgerError) as caught:
        _payout(store, withdrawal, _transfer("PO5", 490))
    assert caught.value.code is ErrorCode.LEDGER_STATE


# -- through the hub: a channel without splits or transfers --------------------------


def test_a_channel_without_splits_is_refused_before_anything_is_stored(
    hub, store: Store, bank
) -> None:
    from payhub.splits import SplitPart
    from payhub.splits_models import SplitReceiver

    store.configure_ledger({"plans": {"w": "instant"}})
    paid(hub, bank, "N1", 1000, seller="w")
    receiver = SplitReceiver(kind=ReceiverKind.USER_ID, account="2088000000000002")
    with pytest.raises(InvalidRequestError) as caught:
        hub.split("N1", "SPN", [SplitPart("bob", Money(100))], {"bob": receiver})
    assert caught.value.code is ErrorCode.NOT_SUPPORTED
    withdrawal = store.ledger.withdraw("w", Money(500))
    with pytest.raises(InvalidRequestError) as caught:
        hub.payout("toy-a", withdrawal.id, _transfer("PON", 500))
    assert caught.value.code is ErrorCode.NOT_SUPPORTED
    assert count(store, splits) == 0
    assert count(store, payouts) == 0
    assert count(store, ledger_entries) == 2  # the payment and the withdrawal, nothing else


def test_the_async_hub_refuses_the_same_way(store: Store, bank) -> None:
    import asyncio

    from storekit import ToyChannel

    from payhub import AsyncPayHub
    from payhub.splits import SplitPart
    from payhub.splits_models import SplitReceiver

    async def run() -> None:
        async with AsyncPayHub(channels=[ToyChannel("toy-a")], store=store) as hub:
            receiver = SplitReceiver(kind=ReceiverKind.USER_ID, account="2088000000000002")
            with pytest.raises(PaymentStateError) as caught:
                await hub.split("NOPE", "SPA", [SplitPart("bob", Money(1))], {"bob": receiver})
            assert caught.value.code is ErrorCode.UNKNOWN_PAYMENT
            with pytest.raises(InvalidRequestError) as refused:
                await hub.payout("toy-a", 1, _transfer("POA", 500))
            assert refused.value.code is ErrorCode.NOT_SUPPORTED

    asyncio.run(run())
    assert count(store, splits) == 0


def test_a_split_from_pending_then_a_refund_then_settlement_add_up(
    hub, store: Store, bank
) -> None:
    """The split's pending movement counts when a later refund asks what is left
    of the payment, and nets in the payment's settlement batch."""
    from datetime import timedelta

    paid(hub, bank, "S9", 1000, seller="alice")
    _reserve(store, "SP9", "S9", ("bob", "2088000000000002", 300))
    store.apply_split_result(
        "SP9",
        _answer("SP9", SplitStatus.SUCCEEDED, ("2088000000000002", 300, SplitStatus.SUCCEEDED)),
    )
    hub.refund(None, RefundRequest(out_trade_no="S9", out_refund_no="R9", amount=Money(600)))
    got = balances(store)
    assert got[("alice", "pending")] == 100
    assert ("alice", "receivable") not in got
    check_invariants(store)
    report = store.ledger.settle(store.now() + timedelta(days=30))
    assert report.batches == 1
    got = balances(store)
    assert got[("alice", "available")] == 100
    assert ("alice", "pending") not in got
    check_invariants(store)
