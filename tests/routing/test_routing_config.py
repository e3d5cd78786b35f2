"""Policies, breaker configuration, Router.from_config and the public export list."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError
from routing_fakes import FakeChannel, ManualClock

import payhub.routing
from payhub.errors import ConfigurationError
from payhub.fees import PercentageFee
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    InMemoryHealthStore,
    Router,
    RuleAction,
    Strategy,
)


def test_exports_are_sorted_and_public() -> None:
    assert payhub.routing.__all__ == sorted(payhub.routing.__all__)
    for name in payhub.routing.__all__:
        value = getattr(payhub.routing, name)
        if isinstance(value, type):
            assert value.__module__ == "payhub.routing", name


def test_policy_defaults() -> None:
    policy = ChannelAccountPolicy()
    assert policy.enabled
    assert policy.priority == 100
    assert policy.weight == 1
    assert policy.fee is None
    assert policy.limits_currency is None


def test_policy_is_frozen_and_strict() -> None:
    policy = ChannelAccountPolicy()
    with pytest.raises(ValidationError):
        policy.priority = 1
    with pytest.raises(ValidationError):
        ChannelAccountPolicy(bogus=1)


def test_policy_amounts_are_money_never_floats() -> None:
    with pytest.raises(Exception, match="floats and strings are refused"):
        ChannelAccountPolicy(max_amount=12.5)
    policy = ChannelAccountPolicy.model_validate({"max_amount": {"minor": 500, "currency": "CNY"}})
    assert policy.max_amount == Money(500)


def test_policy_limit_checks() -> None:
    with pytest.raises(ConfigurationError, match="mix currencies"):
        ChannelAccountPolicy(min_amount=Money(1, "CNY"), max_amount=Money(100, "USD"))
    with pytest.raises(ConfigurationError, match="above max_amount"):
        ChannelAccountPolicy(min_amount=Money(2), max_amount=Money(1))
    with pytest.raises(ConfigurationError, match="must not be negative"):
        ChannelAccountPolicy(daily_limit=Money(-1))
    with pytest.raises(ValidationError):
        ChannelAccountPolicy(weight=-1)


def test_policy_fee_must_be_a_fee_rule() -> None:
    with pytest.raises(ConfigurationError, match=r"fee must be a payhub\.fees rule"):
        ChannelAccountPolicy(fee="0.6%")
    with pytest.raises(ConfigurationError, match=r"rate"):
        ChannelAccountPolicy.model_validate({"fee": {"type": "percentage", "rate": 0.006}})


def test_breaker_config_checks() -> None:
    config = BreakerConfig()
    assert (config.bucket_ms, config.cool_down_ms, config.probe_lease_ms) == (5000, 30000, 30000)
    with pytest.raises(ConfigurationError, match="whole number of milliseconds"):
        BreakerConfig(window=timedelta(milliseconds=100), buckets=7)
    with pytest.raises(ConfigurationError, match="positive"):
        BreakerConfig(cool_down=timedelta(0))
    with pytest.raises(ValidationError):
        BreakerConfig(failure_rate=0)


def test_router_rejects_a_non_policy() -> None:
    with pytest.raises(ConfigurationError, match="not a ChannelAccountPolicy"):
        Router({"a": {"priority": 1}})  # type: ignore[dict-item]


def test_router_policies_are_read_only() -> None:
    router = Router({"a": ChannelAccountPolicy()})
    with pytest.raises(TypeError):
        router.policies["b"] = ChannelAccountPolicy()  # type: ignore[index]


def test_router_from_config() -> None:
    clock = ManualClock()
    store = InMemoryHealthStore()
    router = Router.from_config(
        {
            "strategy": "priority",
            "explore_share": 0.2,
            "fail_open": False,
            "accounts": {
                "alipay-a": {
                    "priority": 2,
                    "max_amount": {"minor": 500_00, "currency": "CNY"},
                    "fee": {"type": "percentage", "rate": "0.006"},
                },
                "alipay-b": {"priority": 1, "enabled": False},
            },
            "default_account": None,
            "rules": [
                {
                    "name": "no-wap",
                    "action": "exclude",
                    "accounts": ["alipay-a"],
                    "methods": ["wap"],
                }
            ],
            "breaker": {"consecutive_failures": 2, "window": 30, "buckets": 6, "cool_down": 10},
        },
        health=store,
        clock=clock,
    )
    assert router.strategy is Strategy.PRIORITY
    assert router.health is store
    assert router.explore_share == 0.2
    assert not router.fail_open
    assert router.default_policy is None
    assert router.policies["alipay-a"].fee == PercentageFee(Decimal("0.006"))
    assert router.rules[0].action is RuleAction.EXCLUDE
    assert router.breaker.cool_down == timedelta(seconds=10)
    request = PaymentRequest(out_trade_no="T", amount=Money(100), subject="s", method=PayMethod.QR)
    decision = router.route(
        request, [FakeChannel("alipay-a"), FakeChannel("alipay-b"), FakeChannel("x")]
    )
    assert decision.names == ["alipay-a"]
    assert decision.excluded == {
        "alipay-b": "disabled",
        "x": "no routing policy is configured for it",
    }


def test_router_from_empty_config() -> None:
    router = Router.from_config({})
    assert router.strategy is Strategy.LOWEST_FEE
    assert router.default_policy == ChannelAccountPolicy()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"stratgy": "priority"}, "unknown keys"),
        ({"strategy": "cheapest"}, "unknown routing strategy"),
        ({"accounts": {"a": {"priority": "high"}}}, r"routing\.accounts\.a: priority"),
        ({"accounts": {"a": {"fee": {"type": "percent"}}}}, r"routing\.accounts\.a: fee\.type"),
        ({"rules": [{"name": "r", "action": "pin"}]}, r"routing\.rules\[0\]: accounts"),
        ({"breaker": {"cool_down": 0}}, r"routing\.breaker: cool_down"),
    ],
)
def test_router_from_config_errors(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Router.from_config(config)


def test_period_is_the_shanghai_day(clock: ManualClock) -> None:
    router = Router(clock=clock)
    # 2026-01-31 16:00 UTC is 2026-02-01 00:00 in Shanghai.
    clock.now = 1_769_875_200.0
    period = router.period(router.now())
    assert (period.day, period.month) == ("20260201", "202602")
    clock.advance(-0.001)
    period = router.period(router.now())
    assert (period.day, period.month) == ("20260131", "202601")


def test_repr() -> None:
    assert repr(Router()) == "<Router lowest_fee over 0 policies, InMemoryHealthStore>"
