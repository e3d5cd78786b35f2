"""A refund answer about another trade is never taken as this refund's (issue 11, point 12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storekit import ToyBank, ToyChannel

from payhub import Money, PayHub, PaymentRequest, PayMethod, ProtocolError, RefundRequest
from payhub.channels import Flow
from payhub.models import RefundResult
from payhub.store import PaymentState, RefundState, Store


class ConfusedToy(ToyChannel):
    """Answers refunds as the bank says, but naming whatever ``names`` tells it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.names: dict[str, str] = {}

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        result = yield from super().refund(request)
        return result.model_copy(update=self.names)


@pytest.fixture
def confused(store: Store, bank: ToyBank) -> Iterator[tuple[PayHub, ConfusedToy]]:
    channel = ConfusedToy("toy-a")
    with PayHub(channels=[channel], store=store, http_client=bank.client()) as hub:
        yield hub, channel


def paid(hub: PayHub, bank: ToyBank, out_trade_no: str) -> None:
    hub.pay(
        PaymentRequest(
            out_trade_no=out_trade_no, amount=Money(1000), subject="card", method=PayMethod.QR
        )
    )
    assert hub.handle_notification("toy-a", *bank.buyer_pays("toy-a", out_trade_no)).ack.ok


@pytest.mark.parametrize(
    "names",
    [
        {"channel_trade_id": "toy-a-T-SOMEONE-ELSE"},
        {"out_trade_no": "A2"},
        {"out_refund_no": "ANOTHER-REFUND"},
    ],
    ids=["trade-id", "out-trade-no", "out-refund-no"],
)
def test_an_answer_naming_another_trade_raises_and_applies_nothing(
    confused: tuple[PayHub, ConfusedToy], store: Store, bank: ToyBank, names: dict[str, str]
) -> None:
    hub, channel = confused
    paid(hub, bank, "A1")
    paid(hub, bank, "A2")
    channel.names = names
    with pytest.raises(ProtocolError, match="stays pending") as caught:
        hub.refund(None, RefundRequest(out_trade_no="A1", out_refund_no="RA1", amount=Money(300)))
    assert not caught.value.retryable
    refund = store.refund("RA1")
    assert refund is not None
    assert refund.status is RefundState.PENDING  # reserved: its real outcome is unknown
    for number in ("A1", "A2"):
        record = store.payment(number)
        assert (record.status, record.refunded) == (PaymentState.PAID, Money(0))
    # The channel's refund query (which names the right trade) settles it.
    assert hub.sync_refund("RA1").status is RefundState.SUCCEEDED
    assert store.payment("A1").refunded == Money(300)


def test_the_result_is_what_the_store_recorded(
    confused: tuple[PayHub, ConfusedToy], store: Store, bank: ToyBank
) -> None:
    hub, _ = confused
    paid(hub, bank, "A3")
    result = hub.refund(
        None, RefundRequest(out_trade_no="A3", out_refund_no="RA3", amount=Money(300))
    )
    stored = store.refund("RA3")
    assert (result.status.value, stored.status.value) == ("succeeded", "succeeded")
    assert result.amount == stored.amount
