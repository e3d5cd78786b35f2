"""Eligibility: each way an account can be out of a payment, and the reason given."""

from __future__ import annotations

from decimal import Decimal

import pytest
from routing_fakes import FakeChannel, ManualClock

from payhub.errors import ConfigurationError, NoEligibleChannel, UnknownChannelError
from payhub.fees import PercentageFee
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    Outcome,
    Router,
)


def pay(amount: int = 100_00, *, currency: str = "CNY", **extra: object) -> PaymentRequest:
    fields: dict[str, object] = {
        "out_trade_no": "T1",
        "amount": Money(amount, currency),
        "subject": "Gift card",
        "method": PayMethod.QR,
    }
    fields.update(extra)
    return PaymentRequest.model_validate(fields)


def reasons(router: Router, request: PaymentRequest, channels: list[FakeChannel]) -> dict[str, str]:
    with pytest.raises(NoEligibleChannel) as caught:
        router.route(request, channels)
    return caught.value.reasons


def test_every_account_eligible_by_default() -> None:
    router = Router()
    decision = router.route(pay(), [FakeChannel("a"), FakeChannel("b")])
    assert sorted(decision.names) == ["a", "b"]
    assert decision.excluded == {}


def test_disabled() -> None:
    router = Router({"a": ChannelAccountPolicy(enabled=False)})
    decision = router.route(pay(), [FakeChannel("a"), FakeChannel("b")])
    assert decision.names == ["b"]
    assert decision.excluded == {"a": "disabled"}


def test_method_not_supported() -> None:
    channel = FakeChannel("a", methods=[PayMethod.PAGE])
    assert reasons(Router(), pay(), [channel]) == {"a": "it does not support the 'qr' method"}


def test_currency_not_supported() -> None:
    channel = FakeChannel("a", currencies=["CNY"])
    assert reasons(Router(), pay(currency="USD"), [channel]) == {"a": "it does not support USD"}


def test_below_minimum_and_above_maximum() -> None:
    router = Router(
        {
            "low": ChannelAccountPolicy(min_amount=Money(200_00)),
            "high": ChannelAccountPolicy(max_amount=Money(50_00)),
        }
    )
    got = reasons(router, pay(100_00), [FakeChannel("low"), FakeChannel("high")])
    assert got == {
        "low": "amount 100.00 CNY is below its minimum 200.00 CNY",
        "high": "amount 100.00 CNY is above its maximum 50.00 CNY",
    }


def test_limits_are_inclusive() -> None:
    policy = ChannelAccountPolicy(min_amount=Money(100_00), max_amount=Money(100_00))
    assert Router({"a": policy}).route(pay(100_00), [FakeChannel("a")]).names == ["a"]


def test_limits_in_another_currency() -> None:
    router = Router({"a": ChannelAccountPolicy(max_amount=Money(100_00, "CNY"))})
    channel = FakeChannel("a", currencies=["CNY", "USD"])
    assert reasons(router, pay(1_00, currency="USD"), [channel]) == {
        "a": "its limits are in CNY, the payment in USD"
    }


def test_daily_volume_limit(clock: ManualClock) -> None:
    router = Router({"a": ChannelAccountPolicy(daily_limit=Money(300_00))}, clock=clock)
    router.record("a", Outcome.SUCCESS, amount=Money(250_00))
    assert router.route(pay(50_00), [FakeChannel("a")]).names == ["a"]  # exactly the rest
    assert reasons(router, pay(50_01), [FakeChannel("a")]) == {
        "a": "daily volume limit 300.00 CNY: 50.00 CNY left today, payment is 50.01 CNY"
    }


def test_daily_volume_resets_at_shanghai_midnight(clock: ManualClock) -> None:
    # 2026-01-01 23:59:59 +08:00 is 15:59:59 UTC.
    clock.now = 1_767_283_199.0
    router = Router({"a": ChannelAccountPolicy(daily_limit=Money(100_00))}, clock=clock)
    router.record("a", Outcome.SUCCESS, amount=Money(100_00))
    assert "daily volume limit" in reasons(router, pay(1), [FakeChannel("a")])["a"]
    clock.advance(1)  # 2026-01-02 00:00:00 in Shanghai, still 2026-01-01 in UTC
    assert router.route(pay(100_00), [FakeChannel("a")]).names == ["a"]


def test_only_successes_count_in_volume(clock: ManualClock) -> None:
    router = Router({"a": ChannelAccountPolicy(daily_limit=Money(100_00))}, clock=clock)
    router.record("a", Outcome.FAILURE, amount=Money(100_00))
    router.record("a", Outcome.BUSINESS_ERROR, amount=Money(100_00))
    assert router.route(pay(100_00), [FakeChannel("a")]).names == ["a"]


def test_add_volume_without_outcome(clock: ManualClock) -> None:
    router = Router({"a": ChannelAccountPolicy(daily_limit=Money(100_00))}, clock=clock)
    router.add_volume("a", Money(60_00))
    assert "40.00 CNY left today" in reasons(router, pay(50_00), [FakeChannel("a")])["a"]


def test_volume_is_per_currency(clock: ManualClock) -> None:
    router = Router({"a": ChannelAccountPolicy(daily_limit=Money(100_00))}, clock=clock)
    router.record("a", Outcome.SUCCESS, amount=Money(100_00, "USD"))
    assert router.route(pay(100_00), [FakeChannel("a")]).names == ["a"]


def test_circuit_open(clock: ManualClock) -> None:
    router = Router(breaker=BreakerConfig(consecutive_failures=1), clock=clock)
    router.record("a", Outcome.FAILURE)
    clock.advance(10)
    assert reasons(router, pay(), [FakeChannel("a")]) == {
        "a": "circuit open (cool-down ends in 20.0 s)"
    }


def test_half_open_with_probe_in_flight(clock: ManualClock) -> None:
    router = Router(breaker=BreakerConfig(consecutive_failures=1), clock=clock)
    router.record("a", Outcome.FAILURE)
    clock.advance(30)
    (candidate,) = router.route(pay(), [FakeChannel("a")]).candidates
    assert candidate.probe
    assert router.admit(candidate)
    assert reasons(router, pay(), [FakeChannel("a")]) == {
        "a": "circuit half-open and its one probe is in flight"
    }


def test_no_policy_without_default() -> None:
    router = Router({"a": ChannelAccountPolicy()}, default_policy=None)
    decision = router.route(pay(), [FakeChannel("a"), FakeChannel("b")])
    assert decision.excluded == {"b": "no routing policy is configured for it"}


def test_request_pinned_to_an_account() -> None:
    decision = Router().route(pay(channel="b"), [FakeChannel("a"), FakeChannel("b")])
    assert decision.names == ["b"]
    assert decision.excluded == {"a": "the request is pinned to 'b'"}


def test_pinned_account_must_still_be_eligible() -> None:
    router = Router({"b": ChannelAccountPolicy(enabled=False)})
    assert reasons(router, pay(channel="b"), [FakeChannel("a"), FakeChannel("b")]) == {
        "a": "the request is pinned to 'b'",
        "b": "disabled",
    }


def test_pinned_to_an_unknown_account() -> None:
    with pytest.raises(UnknownChannelError, match="'zz'"):
        Router().route(pay(channel="zz"), [FakeChannel("a")])


def test_each_account_gets_its_first_reason(clock: ManualClock) -> None:
    router = Router(
        {
            "off": ChannelAccountPolicy(enabled=False, max_amount=Money(1)),
            "small": ChannelAccountPolicy(max_amount=Money(1)),
            "page": ChannelAccountPolicy(),
        },
        clock=clock,
    )
    channels = [FakeChannel("off"), FakeChannel("small"), FakeChannel("page", methods=[])]
    with pytest.raises(NoEligibleChannel) as caught:
        router.route(pay(), channels)
    assert caught.value.reasons == {
        "off": "disabled",
        "small": "amount 100.00 CNY is above its maximum 0.01 CNY",
        "page": "it does not support the 'qr' method",
    }
    assert "small: amount 100.00 CNY is above its maximum" in caught.value.message
    assert caught.value.code.name == "NO_ELIGIBLE_CHANNEL"


def test_no_channels_at_all() -> None:
    with pytest.raises(NoEligibleChannel, match="none configured") as caught:
        Router().route(pay(), [])
    assert caught.value.reasons == {}


def test_duplicate_account_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="two channel accounts named 'a'"):
        Router().route(pay(), [FakeChannel("a"), FakeChannel("a")])


def test_fee_rule_in_another_currency_leaves_the_fee_unknown() -> None:
    router = Router(
        {"a": ChannelAccountPolicy(fee=PercentageFee(Decimal("0.01"), minimum=Money(1)))}
    )
    channel = FakeChannel("a", currencies=["USD"])
    (candidate,) = router.route(pay(currency="USD"), [channel]).candidates
    assert candidate.fee is None


def test_every_write_is_seen_by_the_next_route(clock: ManualClock) -> None:
    # The in-memory store serves reads from snapshots; each write must drop them.
    router = Router(
        {"a": ChannelAccountPolicy(daily_limit=Money(100_00))},
        breaker=BreakerConfig(consecutive_failures=2),
        clock=clock,
    )
    assert router.route(pay(60_00), [FakeChannel("a")]).names == ["a"]
    router.record("a", Outcome.SUCCESS, amount=Money(50_00))
    assert router.route(pay(50_00), [FakeChannel("a")]).names == ["a"]
    router.add_volume("a", Money(1))
    assert "49.99 CNY left today" in reasons(router, pay(50_00), [FakeChannel("a")])["a"]
    router.record("a", Outcome.FAILURE)
    assert router.route(pay(1_00), [FakeChannel("a")]).names == ["a"]
    router.record("a", Outcome.FAILURE)
    assert "circuit open" in reasons(router, pay(1_00), [FakeChannel("a")])["a"]
    router.reset("a")
    assert router.route(pay(1_00), [FakeChannel("a")]).names == ["a"]
