"""Properties of route() over generated accounts, health, rules and payments."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from routing_fakes import FakeChannel, ManualClock

from payhub.errors import InvalidRequestError, NoEligibleChannel
from payhub.fees import FixedFee, PercentageFee
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money
from payhub.routing import (
    BreakerConfig,
    ChannelAccountPolicy,
    Outcome,
    Router,
    RoutingDecision,
    RoutingRule,
    Strategy,
)

PROPERTY = settings(max_examples=300, deadline=None, database=None)
NAMES = [f"acct-{i}" for i in range(8)]
METHODS = [PayMethod.QR, PayMethod.WAP, PayMethod.PAGE]
BREAKER = BreakerConfig(consecutive_failures=2)


@dataclass
class Account:
    name: str
    channel: FakeChannel
    policy: ChannelAccountPolicy
    failures: int  # recorded, in a row
    volume: int  # recorded successes today
    probe_taken: bool


# Strategies are built once: building them inside each draw is what makes tests slow.
AMOUNTS = st.integers(min_value=1, max_value=2000_00)
SOMETIMES = st.sampled_from([False, False, True])
LOWS = st.integers(1, 500_00)
HIGH_ABOVE_LOW = st.integers(0, 2500_00)
FEES = (
    st.none()
    | st.builds(lambda r: PercentageFee(Decimal(r) / 10_000), st.integers(0, 300))
    | st.builds(lambda m: FixedFee(Money(m)), st.integers(0, 500))
)
DAILY_LIMITS = st.builds(Money, st.integers(0, 5000_00))
SMALL = st.integers(0, 5)
# Weighted so that most scenarios leave some candidates, and every exclusion still occurs.
METHOD_SETS = st.sampled_from([set(METHODS)] * 8 + [{PayMethod.QR}, {PayMethod.WAP}, set()])
CURRENCY_SETS = st.sampled_from([{"CNY"}] * 6 + [{"CNY", "USD"}, {"USD"}])
CURRENCIES = st.sampled_from(["CNY"] * 4 + ["USD"])
ENABLED = st.sampled_from([True] * 5 + [False])
VOLUMES = st.sampled_from([0, 0, 100_00, 4000_00])
ORDER_NOS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20)


@st.composite
def policies(draw: st.DrawFn) -> ChannelAccountPolicy:
    low = draw(LOWS) if draw(SOMETIMES) else None
    extra = draw(HIGH_ABOVE_LOW) if draw(SOMETIMES) else None
    return ChannelAccountPolicy(
        enabled=draw(ENABLED),
        priority=draw(SMALL),
        min_amount=None if low is None else Money(low),
        max_amount=None if extra is None else Money((low or 1) + extra),
        daily_limit=draw(DAILY_LIMITS) if draw(SOMETIMES) else None,
        fee=draw(FEES),
        weight=draw(SMALL),
    )


@st.composite
def accounts(draw: st.DrawFn) -> list[Account]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=len(NAMES), unique=True))
    result = []
    for name in names:
        methods = draw(METHOD_SETS)
        currencies = draw(CURRENCY_SETS)
        result.append(
            Account(
                name=name,
                channel=FakeChannel(name, methods=methods, currencies=currencies),
                policy=draw(policies()),
                failures=draw(st.integers(0, 2)),
                volume=draw(VOLUMES),
                probe_taken=draw(st.booleans()),
            )
        )
    return result


@st.composite
def rules(draw: st.DrawFn) -> list[RoutingRule]:
    count = draw(st.sampled_from([0, 0, 0, 1, 2]))
    return [
        RoutingRule(
            name=f"rule-{index}",
            action=draw(st.sampled_from(["pin", "exclude"])),
            accounts=draw(st.sets(st.sampled_from(NAMES), min_size=1, max_size=4)),
            methods=draw(st.none() | st.sets(st.sampled_from(METHODS), min_size=1)),
            metadata=draw(st.sampled_from([{}, {"shop": "vip"}])),
        )
        for index in range(count)
    ]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Router, list[Account], PaymentRequest, Strategy, float]:
    clock = ManualClock()
    all_accounts = draw(accounts())
    router = Router(
        {a.name: a.policy for a in all_accounts},
        strategy=draw(st.sampled_from(list(Strategy))),
        rules=draw(rules()),
        breaker=BREAKER,
        clock=clock,
    )
    for account in all_accounts:
        if account.volume:
            router.record(account.name, Outcome.SUCCESS, amount=Money(account.volume))
        for _ in range(account.failures):
            router.record(account.name, Outcome.FAILURE)
    elapsed = draw(st.sampled_from([0.0, 10.0, 30.0]))  # open, open, half-open
    clock.advance(elapsed)
    for account in all_accounts:
        if account.failures >= 2 and elapsed >= 30 and account.probe_taken:
            router.health.acquire_probe(account.name, now=router.now(), breaker=BREAKER)
    pinned = draw(st.sampled_from([None] * 8 + [a.name for a in all_accounts]))
    request = PaymentRequest(
        out_trade_no=draw(ORDER_NOS),
        amount=Money(draw(AMOUNTS), draw(CURRENCIES)),
        subject="Card",
        method=draw(st.sampled_from(METHODS)),
        metadata=draw(st.sampled_from([{}, {"shop": "vip"}])),
        channel=pinned,
    )
    return router, all_accounts, request, router.strategy, elapsed


def eligible(account: Account, request: PaymentRequest, elapsed: float) -> bool:
    """An independent statement of the eligibility rules (rules and pins aside)."""
    policy, amount = account.policy, request.amount
    if not policy.enabled or not account.channel.supports(request.method, amount.currency):
        return False
    limits = [m for m in (policy.min_amount, policy.max_amount, policy.daily_limit) if m]
    if any(m.currency != amount.currency for m in limits):
        return False
    if policy.min_amount is not None and amount < policy.min_amount:
        return False
    if policy.max_amount is not None and amount > policy.max_amount:
        return False
    used = account.volume if amount.currency == "CNY" else 0
    if policy.daily_limit is not None and used + amount.minor > policy.daily_limit.minor:
        return False
    if account.failures >= 2:  # the circuit opened
        return elapsed >= 30 and not account.probe_taken
    return True


def decide(
    router: Router, all_accounts: list[Account], request: PaymentRequest
) -> RoutingDecision | dict[str, str]:
    try:
        return router.route(request, [a.channel for a in all_accounts])
    except NoEligibleChannel as exc:
        return exc.reasons
    except InvalidRequestError:
        # Only a pinned account whose channel refuses the request raises this.
        pinned = next(a for a in all_accounts if a.name == request.channel)
        assert not pinned.channel.supports(request.method, request.amount.currency)
        return {a.name: "refused" for a in all_accounts}


Scenario = tuple[Router, list[Account], PaymentRequest, Strategy, float]


@PROPERTY
@given(scenarios())
def test_route_properties(scenario: Scenario) -> None:
    """One generated scenario, three properties (generating scenarios is the slow part)."""
    partition(scenario)
    only_eligible(scenario)
    ordered(scenario)


def partition(scenario: Scenario) -> None:
    """Candidates and excluded accounts partition all accounts; no candidate: all have a reason."""
    router, all_accounts, request, _, _ = scenario
    names = {a.name for a in all_accounts}
    outcome = decide(router, all_accounts, request)
    if isinstance(outcome, dict):
        assert set(outcome) == names
        assert all(outcome.values())
        return
    candidates = outcome.names
    assert len(candidates) == len(set(candidates))
    assert set(candidates).isdisjoint(outcome.excluded)
    assert set(candidates) | set(outcome.excluded) == names


def only_eligible(scenario: Scenario) -> None:
    """route() never returns an ineligible account, and returns every eligible one."""
    router, all_accounts, request, _, elapsed = scenario
    outcome = decide(router, all_accounts, request)
    by_name = {a.name: a for a in all_accounts}
    if isinstance(outcome, dict):
        return
    for candidate in outcome.candidates:
        account = by_name[candidate.name]
        assert eligible(account, request, elapsed), candidate
        assert request.channel in (None, candidate.name)
        assert candidate.probe == (account.failures >= 2)
        rule_names = [
            r.name
            for r in router.rules
            if r.matches(request.method, request.amount, request.metadata)
            and r.action == "exclude"
            and candidate.name in r.accounts
        ]
        assert not rule_names
    # Conversely, an eligible account not pinned or ruled away is a candidate.
    for account in all_accounts:
        reason = outcome.excluded.get(account.name, "")
        if eligible(account, request, elapsed) and "rule" not in reason and "pinned" not in reason:
            assert account.name in outcome.names


def ordered(scenario: Scenario) -> None:
    """The order follows the strategy, never the order the channels were given in."""
    router, all_accounts, request, strategy, _ = scenario
    outcome = decide(router, all_accounts, request)
    if isinstance(outcome, dict):
        return
    if strategy is Strategy.LOWEST_FEE:
        keys = [
            (c.fee is None, c.fee.minor if c.fee else 0, router.policies[c.name].priority)
            for c in outcome.candidates
        ]
        assert keys == sorted(keys)
    if strategy is Strategy.PRIORITY:
        priorities = [router.policies[name].priority for name in outcome.names]
        assert priorities == sorted(priorities)
    again = router.route(request, [a.channel for a in reversed(all_accounts)])
    assert again.names == outcome.names
    assert again.excluded == outcome.excluded
