"""payhub.risk: declarative rules evaluated allow, then block, then review
(Stripe Radar's order), observe mode, and the in-process windows."""

from __future__ import annotations

import pytest

from payhub import ConfigurationError, InvalidRequestError, Money, PaymentRequest
from payhub.models import BuyerHints
from payhub.risk import (
    InMemoryRiskState,
    RiskAction,
    RiskContext,
    RiskEngine,
    RiskPolicy,
    evaluate,
)


def request(no: str = "R1", amount: int = 1000, **buyer: str) -> PaymentRequest:
    hints = BuyerHints(**buyer) if buyer else None
    return PaymentRequest(
        out_trade_no=no, amount=Money(amount), subject="card", method="qr", buyer=hints
    )


def policy(*rules: dict[str, object]) -> RiskPolicy:
    return RiskPolicy.from_config({"rules": list(rules)})


def test_allow_wins_over_block_and_block_over_review() -> None:
    rules = policy(
        {"name": "big", "type": "amount", "action": "review", "max_minor": 500},
        {"name": "bad-net", "type": "list", "action": "block", "field": "ip",
         "values": ["203.0.113.0/24"]},
        {"name": "vip", "type": "list", "action": "allow", "field": "buyer", "values": ["alice"]},
    )
    bad_ip = RiskContext.of(request(ip="203.0.113.9", account="bob"))
    assert evaluate(rules, bad_ip).action is RiskAction.BLOCK
    assert evaluate(rules, bad_ip).rule == "bad-net"
    vip = RiskContext.of(request(ip="203.0.113.9", account="alice"))
    assert evaluate(rules, vip).action is RiskAction.ALLOW
    assert evaluate(rules, vip).rule == "vip"
    ok_ip = RiskContext.of(request(ip="198.51.100.1", account="bob"))
    verdict = evaluate(rules, ok_ip)
    assert (verdict.action, verdict.rule) == (RiskAction.REVIEW, "big")
    small = RiskContext.of(request(amount=100, ip="198.51.100.1"))
    assert evaluate(rules, small).action is RiskAction.ALLOW


def test_ipv6_networks_and_exact_addresses() -> None:
    rules = policy({"name": "v6", "type": "list", "action": "block", "field": "ip",
                    "values": ["2001:db8::/32", "192.0.2.7"]})
    assert evaluate(rules, RiskContext.of(request(ip="2001:db8::1"))).action is RiskAction.BLOCK
    assert evaluate(rules, RiskContext.of(request(ip="192.0.2.7"))).action is RiskAction.BLOCK
    assert evaluate(rules, RiskContext.of(request(ip="192.0.2.8"))).action is RiskAction.ALLOW


def test_observe_mode_records_but_never_enforces() -> None:
    rules = policy(
        {"name": "try-block", "type": "amount", "action": "block", "max_minor": 10,
         "mode": "observe"},
        {"name": "review-big", "type": "amount", "action": "review", "max_minor": 500},
    )
    verdict = evaluate(rules, RiskContext.of(request(amount=1000)))
    assert (verdict.action, verdict.rule) == (RiskAction.REVIEW, "review-big")
    assert [h.rule for h in verdict.observed] == ["try-block"]
    only_observed = evaluate(rules, RiskContext.of(request(amount=100)))
    assert only_observed.action is RiskAction.ALLOW
    assert [h.rule for h in only_observed.observed] == ["try-block"]


def test_quantity_per_product() -> None:
    rules = policy({"name": "cards", "type": "quantity", "action": "block", "max_quantity": 3,
                    "products": ["steam-100"]})

    def ctx(product: str, quantity: int) -> RiskContext:
        return RiskContext.of(request().model_copy(
            update={"product_id": product, "quantity": quantity}))

    assert evaluate(rules, ctx("steam-100", 4)).action is RiskAction.BLOCK
    assert evaluate(rules, ctx("steam-100", 3)).action is RiskAction.ALLOW
    assert evaluate(rules, ctx("other", 50)).action is RiskAction.ALLOW


def test_velocity_counts_and_amounts_in_a_sliding_window() -> None:
    clock = [1_000_000]
    engine = RiskEngine(
        policy(
            {"name": "ip-5-min", "type": "velocity", "action": "block", "key": "ip",
             "window": 300, "max_count": 2},
            {"name": "buyer-amount", "type": "velocity", "action": "review", "key": "buyer",
             "window": 60, "max_amount_minor": 2500},
        ),
        InMemoryRiskState(),
        clock_ms=lambda: clock[0],
    )
    assert engine.check(request("A1", ip="192.0.2.1", account="b")).action is RiskAction.ALLOW
    assert engine.check(request("A2", ip="192.0.2.1", account="c")).action is RiskAction.ALLOW
    # the same order again (a retry) is counted once
    assert engine.check(request("A2", ip="192.0.2.1", account="c")).action is RiskAction.ALLOW
    third = engine.check(request("A3", ip="192.0.2.1", account="d"))
    assert (third.action, third.rule) == (RiskAction.BLOCK, "ip-5-min")
    assert engine.check(request("A4", ip="192.0.2.2", account="b")).action is RiskAction.ALLOW
    over = engine.check(request("A5", amount=600, ip="192.0.2.3", account="b"))
    assert (over.action, over.rule) == (RiskAction.REVIEW, "buyer-amount")
    clock[0] += 301_000  # both windows have slid past every earlier payment
    assert engine.check(request("A6", ip="192.0.2.1", account="b")).action is RiskAction.ALLOW


def test_unpaid_orders_per_ip_stop_counting_once_settled() -> None:
    engine = RiskEngine(
        policy({"name": "unpaid", "type": "unpaid", "action": "block", "window": 900,
                "max_unpaid": 2}),
        clock_ms=lambda: 5_000_000,
    )
    for no in ("U1", "U2"):
        assert engine.check(request(no, ip="192.0.2.5")).action is RiskAction.ALLOW
    assert engine.check(request("U3", ip="192.0.2.5")).action is RiskAction.BLOCK
    engine.settle("U1")
    engine.settle("U3")
    assert engine.check(request("U4", ip="192.0.2.5")).action is RiskAction.ALLOW


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([{"name": "x", "type": "list", "action": "block", "field": "ip", "values": ["nope"]}],
         "not an IP address"),
        ([{"name": "x", "type": "velocity", "action": "block", "key": "ip", "window": 60}],
         "max_count or max_amount_minor"),
        ([{"name": "x", "type": "amount", "action": "block", "max_minor": 1},
          {"name": "x", "type": "amount", "action": "review", "max_minor": 2}], "unique"),
        ([{"name": "x", "type": "amount", "action": "deny", "max_minor": 1}], "action"),
        ([{"name": "x", "type": "amount", "action": "block", "max_minor": 1.5}], "max_minor"),
    ],
)
def test_bad_rules_are_one_configuration_error(rules: list[object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        RiskPolicy.from_config({"rules": rules})
    assert info.value.message.startswith("risk: ")


def test_an_unparseable_buyer_ip_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"buyer\.ip"):
        RiskContext.of(request(ip="999.1.1.1"))
