"""Each candidate's own request constraints (issue 11, points 7 and 23).

Failover must never move a payment to an account whose channel refuses it (WeChat
Pay takes 6-32 character order numbers); an account whose constraints refuse the
request drops out with the reason, a pinned one raises before any channel call,
and an amount no account may carry is an AmountError.
"""

from __future__ import annotations

from typing import Any

import pytest
from routing_fakes import ManualClock
from test_routing_hub_flow import Bank, Toy, priority_router, request

from payhub.errors import (
    AmountError,
    InvalidRequestError,
    NoEligibleChannel,
    ProtocolError,
)
from payhub.hub import PayHub
from payhub.models import AttemptOutcome, PayMethod
from payhub.money import Money
from payhub.routing import Router


class ShortNumbers(Toy):
    """An account with WeChat Pay's order-number rule: 6 to 32 characters."""

    def order_number_problem(self, out_trade_no: str) -> str | None:
        if not 6 <= len(out_trade_no) <= 32:
            return f"out_trade_no must be 6-32 characters, not {len(out_trade_no)}"
        return None


class Capped(Toy):
    """An account whose channel takes at most 500.00 per payment."""

    def max_amount_minor(self) -> int:
        return 500_00


def hub_of(bank: Bank, router: Router | None, *channels: Toy, **options: Any) -> PayHub:
    return PayHub(channels=list(channels), http_client=bank.client(), router=router, **options)


def test_failover_skips_an_account_whose_rules_refuse_the_order_number(
    clock: ManualClock,
) -> None:
    bank = Bank()
    bank.answers["a"] = 503  # the first choice is down
    router = priority_router(clock)
    hub = hub_of(bank, router, Toy("a"), ShortNumbers("b"), Toy("c"))
    decision = router.route(request("T1"), hub.channels.values())
    assert decision.names == ["a", "c"]
    assert decision.excluded == {"b": "out_trade_no must be 6-32 characters, not 2"}
    result = hub.pay(request("T1"))
    assert result.channel == "c"
    assert bank.tried == ["a", "c"]  # b was never asked
    assert [(a.channel, a.outcome) for a in result.attempts] == [
        ("a", AttemptOutcome.RETRYABLE_FAILURE),
        ("c", AttemptOutcome.SUCCEEDED),
    ]
    # A number b accepts goes to b as before.
    bank.seen.clear()
    assert hub.pay(request("T1-LONGER")).channel == "b"
    hub.close()


def test_without_another_account_the_real_failure_is_raised_with_the_reason(
    clock: ManualClock,
) -> None:
    bank = Bank()
    bank.answers["a"] = 503
    hub = hub_of(bank, priority_router(clock, "ab"), Toy("a"), ShortNumbers("b"))
    with pytest.raises(ProtocolError, match="HTTP 503") as caught:
        hub.pay(request("T1"))
    # Not b's refusal of the number: a's failure, and why b was not tried.
    assert caught.value.retryable
    assert any("not tried: b (out_trade_no must be 6-32" in n for n in caught.value.__notes__)
    assert bank.tried == ["a"]
    hub.close()


@pytest.mark.parametrize("routed", [True, False], ids=["router", "no-router"])
def test_a_pinned_account_that_refuses_raises_before_any_call(
    clock: ManualClock, routed: bool
) -> None:
    bank = Bank()
    router = priority_router(clock, "ab") if routed else None
    hub = hub_of(bank, router, Toy("a"), ShortNumbers("b"))
    with pytest.raises(InvalidRequestError, match="'b' cannot take this payment: out_trade_no"):
        hub.pay(request("T1", channel="b"))
    hub2 = hub_of(bank, priority_router(clock, "ac") if routed else None, Toy("a"), Capped("c"))
    with pytest.raises(AmountError, match=r"above 'c'.s limit of 500\.00 CNY") as caught:
        hub2.pay(request("T2-0001", channel="c", amount=Money(500_01)))
    assert not caught.value.retryable
    assert bank.tried == []
    hub.close()
    hub2.close()


@pytest.mark.parametrize("routed", [True, False], ids=["router", "no-router"])
def test_an_amount_above_every_limit_is_an_amount_error(clock: ManualClock, routed: bool) -> None:
    bank = Bank()
    router = priority_router(clock, "cdp") if routed else None
    page_only = Toy("p", methods=[PayMethod.PAGE])  # could not take a QR payment anyway
    hub = hub_of(bank, router, Capped("c"), Capped("d"), page_only)
    with pytest.raises(AmountError, match="above the limit of every channel account") as caught:
        hub.pay(request("T3-0001", amount=Money(600_00)))
    assert not caught.value.retryable
    assert bank.tried == []
    # Under the limit it is paid as usual.
    assert hub.pay(request("T3-0002", amount=Money(500_00))).channel == "c"
    hub.close()


def test_an_amount_one_account_takes_goes_there(clock: ManualClock) -> None:
    bank = Bank()
    router = priority_router(clock, "ca")
    hub = hub_of(bank, router, Capped("c"), Toy("a"))
    decision = router.route(request("T4-0001", amount=Money(600_00)), hub.channels.values())
    assert decision.names == ["a"]
    assert "above 'c'" in decision.excluded["c"]
    assert hub.pay(request("T4-0001", amount=Money(600_00))).channel == "a"
    hub.close()


def test_other_refusals_stay_no_eligible_channel(clock: ManualClock) -> None:
    bank = Bank()
    hub = hub_of(bank, priority_router(clock, "cb"), Capped("c"), ShortNumbers("b"))
    with pytest.raises(NoEligibleChannel) as caught:
        hub.pay(request("T5", amount=Money(600_00)))
    assert set(caught.value.reasons) == {"b", "c"}
    hub.close()
