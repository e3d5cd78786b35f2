"""Ranking strategies: lowest fee, priority, weighted split, success rate; overrides."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest
from routing_fakes import FakeChannel, ManualClock

from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.fees import FixedFee, FixedPlusPercentageFee, PercentageFee, TierBasis, TieredFee
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    Outcome,
    Router,
    Strategy,
)


def pay(amount: int = 100_00, *, order: str = "T1", **extra: object) -> PaymentRequest:
    fields: dict[str, object] = {
        "out_trade_no": order,
        "amount": Money(amount),
        "subject": "Gift card",
        "method": PayMethod.QR,
    }
    fields.update(extra)
    return PaymentRequest.model_validate(fields)


def channels(*names: str) -> list[FakeChannel]:
    return [FakeChannel(name) for name in names]


def percent(rate: str) -> PercentageFee:
    return PercentageFee(Decimal(rate))


# -- lowest fee ------------------------------------------------------------------


def test_lowest_fee_is_the_default_and_picks_the_cheapest() -> None:
    router = Router(
        {
            "alipay": ChannelAccountPolicy(fee=percent("0.006")),
            "wechat": ChannelAccountPolicy(fee=percent("0.0038")),
            "unionpay": ChannelAccountPolicy(fee=FixedFee(Money(50))),
        }
    )
    decision = router.route(pay(100_00), channels("alipay", "wechat", "unionpay"))
    assert decision.strategy is Strategy.LOWEST_FEE
    assert decision.names == ["wechat", "unionpay", "alipay"]  # 0.38, 0.50, 0.60
    assert [c.fee for c in decision.candidates] == [Money(38), Money(50), Money(60)]


def test_lowest_fee_depends_on_the_amount() -> None:
    router = Router(
        {
            "percent": ChannelAccountPolicy(fee=percent("0.01")),
            "fixed": ChannelAccountPolicy(fee=FixedPlusPercentageFee(Money(30), Decimal("0.002"))),
        }
    )
    assert router.route(pay(10_00), channels("percent", "fixed")).names == ["percent", "fixed"]
    assert router.route(pay(1000_00), channels("percent", "fixed")).names == ["fixed", "percent"]


def test_lowest_fee_ties_broken_by_priority_then_name() -> None:
    router = Router(
        {
            "c": ChannelAccountPolicy(fee=percent("0.006"), priority=2),
            "b": ChannelAccountPolicy(fee=percent("0.006"), priority=1),
            "a": ChannelAccountPolicy(fee=percent("0.006"), priority=2),
        }
    )
    assert router.route(pay(), channels("c", "b", "a")).names == ["b", "a", "c"]


def test_accounts_without_a_fee_rule_come_after_priced_ones() -> None:
    router = Router(
        {
            "unknown": ChannelAccountPolicy(priority=0),
            "dear": ChannelAccountPolicy(fee=percent("0.02"), priority=9),
        }
    )
    decision = router.route(pay(), channels("unknown", "dear"))
    assert decision.names == ["dear", "unknown"]
    assert decision.candidates[1].fee is None


def test_fee_rule_from_configuration_mapping() -> None:
    policy = ChannelAccountPolicy.model_validate(
        {"fee": {"type": "percentage", "rate": "0.006", "min": 1}}
    )
    assert policy.fee == PercentageFee(Decimal("0.006"), minimum=Money(1))


def test_monthly_volume_tiers_use_the_recorded_volume(clock: ManualClock) -> None:
    tiered = TieredFee(
        [(Money(1000_00), percent("0.006")), (None, percent("0.002"))],
        by=TierBasis.MONTHLY_VOLUME,
    )
    router = Router(
        {
            "tiered": ChannelAccountPolicy(fee=tiered),
            "flat": ChannelAccountPolicy(fee=percent("0.004")),
        },
        clock=clock,
    )
    assert router.route(pay(), channels("tiered", "flat")).names == ["flat", "tiered"]
    router.record("tiered", Outcome.SUCCESS, amount=Money(1000_00))
    decision = router.route(pay(), channels("tiered", "flat"))
    assert decision.names == ["tiered", "flat"]
    assert decision.candidates[0].fee == Money(20)


def test_fees_are_cached_per_amount_but_stay_exact() -> None:
    router = Router({"a": ChannelAccountPolicy(fee=percent("0.006"))})
    for amount in (100_00, 123_45, 100_00, 123_45):
        (candidate,) = router.route(pay(amount), channels("a")).candidates
        assert candidate.fee == percent("0.006").compute(Money(amount))


# -- priority --------------------------------------------------------------------


def test_priority_lower_number_first_ties_by_name() -> None:
    router = Router(
        {
            "a": ChannelAccountPolicy(priority=5, fee=percent("0.001")),
            "b": ChannelAccountPolicy(priority=1, fee=percent("0.01")),
            "c": ChannelAccountPolicy(priority=5),
        },
        strategy=Strategy.PRIORITY,
    )
    assert router.route(pay(), channels("c", "a", "b")).names == ["b", "a", "c"]


# -- overrides -------------------------------------------------------------------


def priced_router() -> Router:
    return Router(
        {
            "cheap": ChannelAccountPolicy(fee=percent("0.001"), priority=2),
            "first": ChannelAccountPolicy(fee=percent("0.01"), priority=1),
        }
    )


def test_request_metadata_overrides_the_strategy() -> None:
    router = priced_router()
    request = pay(metadata={Router.METADATA_KEY: "priority"})
    decision = router.route(request, channels("cheap", "first"))
    assert decision.strategy is Strategy.PRIORITY
    assert decision.names == ["first", "cheap"]


def test_argument_overrides_metadata() -> None:
    router = priced_router()
    request = pay(metadata={Router.METADATA_KEY: "priority"})
    decision = router.route(request, channels("cheap", "first"), strategy=Strategy.LOWEST_FEE)
    assert decision.names == ["cheap", "first"]
    assert router.route(request, channels("cheap", "first"), strategy="lowest_fee").names == [
        "cheap",
        "first",
    ]


def test_unknown_strategy_in_metadata_is_the_callers_error() -> None:
    request = pay(metadata={Router.METADATA_KEY: "cheapest"})
    with pytest.raises(InvalidRequestError, match="unknown routing strategy 'cheapest'"):
        priced_router().route(request, channels("cheap"))


def test_unknown_strategy_in_configuration() -> None:
    with pytest.raises(ConfigurationError, match="unknown routing strategy"):
        Router(strategy="fastest")


# -- weighted --------------------------------------------------------------------


def weighted_router(weights: dict[str, int]) -> Router:
    return Router(
        {name: ChannelAccountPolicy(weight=weight) for name, weight in weights.items()},
        strategy=Strategy.WEIGHTED,
    )


def test_weighted_is_stable_per_out_trade_no() -> None:
    router = weighted_router({"a": 1, "b": 2, "c": 3, "d": 4})
    accounts = channels("a", "b", "c", "d")
    for index in range(200):
        order = f"ORDER-{index}"
        first = router.route(pay(order=order), accounts).names
        # A retry, another router instance (another process), another channel order:
        again = weighted_router({"a": 1, "b": 2, "c": 3, "d": 4}).route(
            pay(order=order), list(reversed(accounts))
        )
        assert again.names == first


def test_weighted_order_survives_an_account_dropping_out() -> None:
    router = weighted_router({"a": 1, "b": 2, "c": 3, "d": 4})
    for index in range(200):
        request = pay(order=f"ORDER-{index}")
        full = router.route(request, channels("a", "b", "c", "d")).names
        without_b = router.route(request, channels("a", "c", "d")).names
        assert without_b == [name for name in full if name != "b"]


def test_weighted_distribution_follows_the_weights() -> None:
    weights = {"a": 1, "b": 2, "c": 3, "d": 4}
    router = weighted_router(weights)
    accounts = channels(*weights)
    firsts = Counter(
        router.route(pay(order=f"ORDER-{index}"), accounts).names[0] for index in range(10_000)
    )
    for name, weight in weights.items():
        expected = 10_000 * weight / 10
        # 4 standard deviations of a binomial count: fails by chance about once in 15 000 runs
        # (and never, in fact: the ids and the hash are fixed).
        sigma = (10_000 * weight / 10 * (1 - weight / 10)) ** 0.5
        assert abs(firsts[name] - expected) < 4 * sigma, (name, firsts)


def test_weight_zero_is_only_a_fallback() -> None:
    router = weighted_router({"main": 1, "spare": 0})
    for index in range(100):
        assert router.route(pay(order=f"O{index}"), channels("spare", "main")).names == [
            "main",
            "spare",
        ]


# -- success rate ----------------------------------------------------------------


def success_router(clock: ManualClock, **options: object) -> Router:
    breaker = BreakerConfig(consecutive_failures=1000, min_samples=1000)
    return Router(
        {name: ChannelAccountPolicy() for name in ("good", "fair", "poor")},
        strategy=Strategy.SUCCESS_RATE,
        breaker=breaker,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def feed(router: Router, name: str, successes: int, failures: int) -> None:
    for _ in range(successes):
        router.record(name, Outcome.SUCCESS)
    for _ in range(failures):
        router.record(name, Outcome.FAILURE)


def test_success_rate_exploits_the_best(clock: ManualClock) -> None:
    router = success_router(clock, explore_share=0.0)
    feed(router, "good", 95, 5)
    feed(router, "fair", 80, 20)
    feed(router, "poor", 10, 10)
    assert router.route(pay(), channels("poor", "fair", "good")).names == ["good", "fair", "poor"]


def test_success_rate_uses_the_sliding_window(clock: ManualClock) -> None:
    router = success_router(clock, explore_share=0.0)
    feed(router, "good", 0, 50)  # a bad minute, long ago
    feed(router, "fair", 50, 50)
    clock.advance(61)
    feed(router, "good", 10, 0)
    assert router.route(pay(), channels("fair", "good")).names == ["good", "fair"]


def test_success_rate_unseen_account_counts_as_one_half(clock: ManualClock) -> None:
    router = success_router(clock, explore_share=0.0)
    feed(router, "good", 3, 0)  # 4/5
    feed(router, "poor", 1, 3)  # 2/6
    names = router.route(pay(), channels("poor", "fair", "good")).names
    assert names == ["good", "fair", "poor"]


def test_success_rate_explores_with_an_injected_rng(clock: ManualClock) -> None:
    router = success_router(clock, explore_share=0.2, rng=random.Random(7))
    feed(router, "good", 100, 0)
    feed(router, "fair", 50, 50)
    feed(router, "poor", 0, 100)
    firsts = Counter(
        router.route(pay(order=f"O{index}"), channels("good", "fair", "poor")).names[0]
        for index in range(3000)
    )
    # 80 % exploit (good) + 20 % explore uniformly over 3 accounts.
    assert 0.82 < firsts["good"] / 3000 < 0.91
    assert 0.04 < firsts["fair"] / 3000 < 0.10
    assert 0.04 < firsts["poor"] / 3000 < 0.10


def test_success_rate_seeded_rng_is_reproducible(clock: ManualClock) -> None:
    def run() -> list[list[str]]:
        router = success_router(clock, explore_share=0.5, rng=random.Random(42))
        feed(router, "good", 10, 0)
        return [router.route(pay(), channels("good", "fair", "poor")).names for _ in range(50)]

    assert run() == run()


def test_success_rate_exploration_is_stable_per_out_trade_no(clock: ManualClock) -> None:
    router = success_router(clock, explore_share=0.3)
    feed(router, "good", 100, 0)
    feed(router, "fair", 60, 40)
    explored = 0
    for index in range(1000):
        request = pay(order=f"O{index}")
        first = router.route(request, channels("good", "fair", "poor")).names
        assert router.route(request, channels("good", "fair", "poor")).names == first
        explored += first[0] != "good"
    # About 30 % explore, two thirds of those pick another account than "good".
    assert 150 < explored < 260


def test_explore_share_must_be_a_share() -> None:
    with pytest.raises(ConfigurationError, match="explore_share"):
        Router(explore_share=1.5)
