"""Rules: pin or exclude accounts by method, amount range, request metadata."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from routing_fakes import FakeChannel

from payhub.errors import ConfigurationError, NoEligibleChannel
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import ChannelAccountPolicy, Router, RoutingRule, RuleAction, Strategy


def pay(
    amount: int = 100_00, *, method: PayMethod = PayMethod.QR, **extra: object
) -> PaymentRequest:
    fields: dict[str, object] = {
        "out_trade_no": "T1",
        "amount": Money(amount),
        "subject": "Gift card",
        "method": method,
    }
    fields.update(extra)
    return PaymentRequest.model_validate(fields)


ACCOUNTS = [FakeChannel("alipay"), FakeChannel("wechat"), FakeChannel("unionpay")]


def route(
    *rules: RoutingRule, request: PaymentRequest | None = None
) -> tuple[list[str], dict[str, str]]:
    router = Router(
        {
            "alipay": ChannelAccountPolicy(priority=1),
            "wechat": ChannelAccountPolicy(priority=2),
            "unionpay": ChannelAccountPolicy(priority=3),
        },
        strategy=Strategy.PRIORITY,
        rules=rules,
    )
    decision = router.route(request or pay(), ACCOUNTS)
    return decision.names, dict(decision.excluded)


def test_exclude_by_method() -> None:
    rule = RoutingRule(
        name="no-wap-wechat",
        action=RuleAction.EXCLUDE,
        accounts={"wechat"},
        methods={PayMethod.WAP},
    )
    assert route(rule, request=pay(method=PayMethod.QR))[0] == ["alipay", "wechat", "unionpay"]
    names, excluded = route(rule, request=pay(method=PayMethod.WAP))
    assert names == ["alipay", "unionpay"]
    assert excluded == {"wechat": "excluded by rule 'no-wap-wechat'"}


def test_pin_by_amount_range_inclusive() -> None:
    rule = RoutingRule(
        name="big-to-unionpay",
        action="pin",
        accounts={"unionpay"},
        min_amount=Money(1000_00),
    )
    assert route(rule, request=pay(999_99))[0] == ["alipay", "wechat", "unionpay"]
    names, excluded = route(rule, request=pay(1000_00))
    assert names == ["unionpay"]
    assert excluded == {
        "alipay": "not pinned by rule 'big-to-unionpay'",
        "wechat": "not pinned by rule 'big-to-unionpay'",
    }


def test_amount_range_upper_bound() -> None:
    rule = RoutingRule(
        name="small-not-unionpay", action="exclude", accounts={"unionpay"}, max_amount=Money(10_00)
    )
    assert route(rule, request=pay(10_00))[0] == ["alipay", "wechat"]
    assert route(rule, request=pay(10_01))[0] == ["alipay", "wechat", "unionpay"]


def test_amount_range_in_another_currency_does_not_match() -> None:
    rule = RoutingRule(
        name="usd", action="exclude", accounts={"alipay"}, max_amount=Money(1, "USD")
    )
    assert route(rule)[0] == ["alipay", "wechat", "unionpay"]


def test_pin_by_metadata() -> None:
    rule = RoutingRule(name="vip-shop", action="pin", accounts={"wechat"}, metadata={"shop": "vip"})
    assert route(rule, request=pay(metadata={"shop": "normal"}))[0] == [
        "alipay",
        "wechat",
        "unionpay",
    ]
    assert route(rule, request=pay(metadata={"shop": "vip", "x": "y"}))[0] == ["wechat"]


def test_every_condition_must_hold() -> None:
    rule = RoutingRule(
        name="both",
        action="exclude",
        accounts={"alipay"},
        methods={PayMethod.QR},
        metadata={"risk": "high"},
    )
    assert route(rule, request=pay(metadata={"risk": "high"}))[0] == ["wechat", "unionpay"]
    assert "alipay" in route(rule, request=pay(method=PayMethod.WAP, metadata={"risk": "high"}))[0]
    assert "alipay" in route(rule, request=pay(metadata={"risk": "low"}))[0]


def test_two_pins_intersect_and_excludes_apply_too() -> None:
    rules = (
        RoutingRule(name="p1", action="pin", accounts={"alipay", "wechat"}),
        RoutingRule(name="p2", action="pin", accounts={"wechat", "unionpay"}),
    )
    names, excluded = route(*rules)
    assert names == ["wechat"]
    assert excluded["alipay"] == "not pinned by rule 'p1' and 'p2'"
    exclude = RoutingRule(name="x", action="exclude", accounts={"wechat"})
    with pytest.raises(NoEligibleChannel) as caught:
        route(*rules, exclude)
    assert caught.value.reasons["wechat"] == "excluded by rule 'x'"


def test_rules_run_before_eligibility_and_ranking() -> None:
    # A pin to a disabled account leaves nothing, and says why for each.
    router = Router(
        {"alipay": ChannelAccountPolicy(enabled=False)},
        rules=[RoutingRule(name="only-alipay", action="pin", accounts={"alipay"})],
    )
    with pytest.raises(NoEligibleChannel) as caught:
        router.route(pay(), ACCOUNTS)
    assert caught.value.reasons == {
        "alipay": "disabled",
        "wechat": "not pinned by rule 'only-alipay'",
        "unionpay": "not pinned by rule 'only-alipay'",
    }


def test_rule_validation() -> None:
    with pytest.raises(ValidationError):
        RoutingRule(name="empty", action="pin", accounts=set())
    with pytest.raises(ValidationError):
        RoutingRule(name="bad", action="route", accounts={"a"})
    with pytest.raises(ConfigurationError, match="min_amount is above max_amount"):
        RoutingRule(
            name="inverted",
            action="pin",
            accounts={"a"},
            min_amount=Money(2),
            max_amount=Money(1),
        )
