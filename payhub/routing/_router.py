"""The router: which channel accounts may take a payment, and in which order.

``route()`` runs, for each configured account, in this order: the request's
own pin (``PaymentRequest.channel``), the routing rules, the account policy
(enabled), the channel's own request constraints
(:meth:`Channel.request_problem`: method, currency, its amount limit, its
order-number rules), the policy's per-payment limits, then one read of the
health store for the accounts still in (circuit state, daily volume); the
survivors are ranked by the strategy. Each account that drops out gets one
reason, the first check it failed.

A request pinned to an account whose constraints refuse it raises
:class:`InvalidRequestError` (:class:`AmountError` for its amount limit) at
once, naming the reason; so does a payment whose amount is above the limit of
every account that could otherwise take it. Neither is retryable.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, ClassVar, Final, NamedTuple, TypeVar

from pydantic import BaseModel

from payhub.channels._base import Channel
from payhub.config import validated
from payhub.errors import (
    AmountError,
    ConfigurationError,
    CurrencyMismatchError,
    InvalidRequestError,
    NetworkError,
    NoEligibleChannel,
    UnknownChannelError,
)
from payhub.fees import FeeRule
from payhub.models import PaymentRequest
from payhub.money import Money
from payhub.routing._health import (
    CLOSED_HEALTH,
    AccountHealth,
    CircuitState,
    HealthStore,
    InMemoryHealthStore,
    Outcome,
    VolumePeriod,
)
from payhub.routing._policy import (
    BreakerConfig,
    ChannelAccountPolicy,
    FailoverPolicy,
    RoutingRule,
    RuleAction,
    Strategy,
    _ms,
    parse_strategy,
)

__all__ = ["Candidate", "Router", "RoutingDecision"]

logger = logging.getLogger("payhub.routing")


_DAY_MS: Final = 86_400_000
# China has kept UTC+8, without daylight saving, since 1991: the Asia/Shanghai
# day is the UTC+8 day, computed without a time-zone database on the hot path.
_SHANGHAI_OFFSET_MS: Final = 8 * 3_600_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_FEE_CACHE_SIZE: Final = 8192
_MISSING: Final[Any] = object()
_DEFAULT_POLICY: Final = ChannelAccountPolicy()


class Candidate(NamedTuple):
    """One account a payment may go to.

    ``fee`` is what the account's fee rule charges for this amount (None
    without a rule). ``probe``: the circuit is half-open and this attempt
    would be its one probe; :meth:`Router.admit` takes the probe lease.
    (A named tuple: it is made ten times per payment, on the hot path.)
    """

    name: str
    channel: Channel
    fee: Money | None
    probe: bool = False


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The ranked candidates of one payment, and why every other account is out."""

    strategy: Strategy
    candidates: tuple[Candidate, ...]
    excluded: Mapping[str, str]
    #: The router's clock, in ms, when the decision was made (the failover deadline counts from it).
    decided_at: int

    @property
    def names(self) -> list[str]:
        return [candidate.name for candidate in self.candidates]


def _unit(*parts: str) -> float:
    """A stable, uniform number in (0, 1) from ``parts`` (the same in every process)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 18446744073709551616.0


class Router:
    """Chooses and orders the channel accounts of each payment; remembers their health.

    >>> router = Router({"alipay-a": ChannelAccountPolicy(priority=1)})  # doctest: +SKIP
    >>> decision = router.route(request, hub.channels.values())  # doctest: +SKIP

    ``policies`` maps account names to their policy; an account without one
    gets ``default_policy`` (``None``: such accounts are excluded).
    ``strategy`` is the default ranking; a request overrides it with
    ``metadata["payhub.routing"] = "priority"`` (etc.) and a caller with
    ``route(..., strategy=...)``, which wins over both. ``explore_share`` is
    the share of payments :attr:`Strategy.SUCCESS_RATE` sends to a random
    candidate; the draw is a stable hash of ``out_trade_no`` unless ``rng``
    is given. ``clock`` returns POSIX seconds (``time.time``); breaker times
    and the Asia/Shanghai day of the volume limits come from it.

    ``fail_open``: when the health store is unavailable (it raises
    :class:`NetworkError`), route as if every circuit were closed and no
    volume used, record nothing, and log a warning, rather than stop taking
    payments; ``False`` raises instead.
    """

    #: ``request.metadata[Router.METADATA_KEY]`` overrides the strategy for one payment.
    METADATA_KEY: ClassVar[str] = "payhub.routing"

    def __init__(
        self,
        policies: Mapping[str, ChannelAccountPolicy] | None = None,
        *,
        strategy: Strategy | str = Strategy.LOWEST_FEE,
        rules: Sequence[RoutingRule] = (),
        health: HealthStore | None = None,
        breaker: BreakerConfig | None = None,
        default_policy: ChannelAccountPolicy | None = _DEFAULT_POLICY,
        explore_share: float = 0.1,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        fail_open: bool = True,
    ) -> None:
        policies = dict(policies or {})
        for name, policy in policies.items():
            if not isinstance(policy, ChannelAccountPolicy):
                raise ConfigurationError(
                    f"routing policy of {name!r} is not a ChannelAccountPolicy"
                )
        if not 0.0 <= explore_share <= 1.0:
            raise ConfigurationError("explore_share must be between 0 and 1")
        try:
            self.strategy = parse_strategy(strategy)
        except InvalidRequestError as exc:
            raise ConfigurationError(exc.message) from None
        self.policies: Mapping[str, ChannelAccountPolicy] = MappingProxyType(policies)
        self.rules: tuple[RoutingRule, ...] = tuple(rules)
        self.health: HealthStore = InMemoryHealthStore() if health is None else health
        self.breaker = BreakerConfig() if breaker is None else breaker
        self.default_policy = default_policy
        self._accounts = {name: _Account(policy) for name, policy in policies.items()}
        self._default_account = None if default_policy is None else _Account(default_policy)
        self.explore_share = explore_share
        self._rng = rng
        self._clock = clock
        self.fail_open = fail_open
        self._period_cache: tuple[int, VolumePeriod] = (-1, VolumePeriod("", ""))
        self._fees: dict[tuple[str, int, str], Money | None] = {}

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        health: HealthStore | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Router:
        """Build a router from plain configuration (what ``PayHub.from_config`` reads)::

            {"strategy": "lowest_fee", "explore_share": 0.1, "fail_open": true,
             "accounts": {"alipay-a": {"priority": 1,
                                       "max_amount": {"minor": 500000, "currency": "CNY"},
                                       "fee": {"type": "percentage", "rate": "0.006"}}},
             "default_account": {...} or null,
             "rules": [{"name": "no-qr-on-b", "action": "exclude", "accounts": ["alipay-b"],
                        "methods": ["qr"]}],
             "breaker": {"consecutive_failures": 5, "window": 60, "cool_down": 30}}

        Durations are seconds; amounts ``{"minor": int, "currency": str}``; a
        fee is a :func:`payhub.fees.parse_fee_rule` mapping. Every key is
        optional. A mistake raises :class:`ConfigurationError` saying where.
        """
        known = {
            "strategy",
            "explore_share",
            "fail_open",
            "accounts",
            "default_account",
            "rules",
            "breaker",
        }
        unknown = set(config) - known
        if unknown:
            raise ConfigurationError(f"routing: unknown keys {sorted(unknown)}")
        policies = {
            name: _validated(ChannelAccountPolicy, value, f"routing.accounts.{name}")
            for name, value in dict(config.get("accounts") or {}).items()
        }
        default_config = config.get("default_account", {})
        default = (
            None
            if default_config is None
            else _validated(ChannelAccountPolicy, default_config, "routing.default_account")
        )
        rules = [
            _validated(RoutingRule, value, f"routing.rules[{index}]")
            for index, value in enumerate(config.get("rules") or ())
        ]
        breaker = _validated(BreakerConfig, config.get("breaker") or {}, "routing.breaker")
        return cls(
            policies,
            strategy=config.get("strategy", Strategy.LOWEST_FEE),
            rules=rules,
            health=health,
            breaker=breaker,
            default_policy=default,
            explore_share=config.get("explore_share", 0.1),
            rng=rng,
            clock=clock,
            fail_open=config.get("fail_open", True),
        )

    def __repr__(self) -> str:
        return (
            f"<Router {self.strategy.value} over {len(self.policies)} policies, "
            f"{type(self.health).__name__}>"
        )

    # -- time -------------------------------------------------------------------

    def now(self) -> int:
        """The router's clock in integer milliseconds."""
        return int(self._clock() * 1000)

    def period(self, now: int) -> VolumePeriod:
        """The Asia/Shanghai day and month that ``now`` (ms) falls in."""
        day_number = (now + _SHANGHAI_OFFSET_MS) // _DAY_MS
        cached_day, period = self._period_cache
        if cached_day != day_number:
            day = date.fromordinal(_EPOCH_ORDINAL + day_number)
            period = VolumePeriod(f"{day:%Y%m%d}", f"{day:%Y%m}")
            self._period_cache = (day_number, period)
        return period

    # -- routing ----------------------------------------------------------------

    def route(
        self,
        request: PaymentRequest,
        channels: Iterable[Channel],
        *,
        strategy: Strategy | str | None = None,
    ) -> RoutingDecision:
        """Rank the accounts of ``channels`` able to take ``request``.

        Raises :class:`NoEligibleChannel` (``reasons``: account -> why) when
        none can, :class:`UnknownChannelError` when the request is pinned to
        an account not in ``channels``, and :class:`InvalidRequestError` for
        an unknown strategy name in the request's metadata, or when the
        pinned account's request constraints refuse the request
        (:class:`AmountError` when every account able to take it otherwise
        refuses its amount).
        """
        chosen = self._strategy(request, strategy)
        amount = request.amount
        method, currency, minor = request.method, amount.currency, amount.minor
        pinned_to = request.channel
        excluded: dict[str, str] = {}
        survivors: list[tuple[Channel, _Account]] = []
        exclude_by, pins = self._rules(request) if self.rules else ({}, None)
        accounts, default, fees = self._accounts, self._default_account, self._fees
        seen: set[str] = set()
        #: accounts that refused the amount (their limit); accounts offering method and currency
        over_limit: list[str] = []
        supporting = 0
        for channel in channels:
            name = channel.name
            if name in seen:
                raise ConfigurationError(f"two channel accounts named {name!r}")
            seen.add(name)
            if pinned_to is not None and name != pinned_to:
                excluded[name] = f"the request is pinned to {pinned_to!r}"
                continue
            if name in exclude_by:
                excluded[name] = f"excluded by rule {exclude_by[name]!r}"
                continue
            if pins is not None and name not in pins[0]:
                excluded[name] = f"not pinned by rule {pins[1]}"
                continue
            account = accounts.get(name, default)
            if account is None:
                excluded[name] = "no routing policy is configured for it"
                continue
            if not account.enabled:
                excluded[name] = "disabled"
                continue
            if not channel.supports(method, currency):
                problem: str | None = _unsupported(channel, request)
            else:
                supporting += 1
                problem = channel.request_problem(request)
                if problem is not None and minor > channel.max_amount_minor():
                    over_limit.append(name)
            if problem is not None:
                if name == pinned_to:
                    raise refused_request(channel, request, problem)
                excluded[name] = problem
                continue
            if account.currency is not None:
                if account.currency != currency:
                    excluded[name] = (
                        f"its limits are in {account.currency}, the payment in {currency}"
                    )
                    continue
                if minor < account.low:
                    excluded[name] = (
                        f"amount {amount} is below its minimum {Money(account.low, currency)}"
                    )
                    continue
                if account.high is not None and minor > account.high:
                    excluded[name] = (
                        f"amount {amount} is above its maximum {Money(account.high, currency)}"
                    )
                    continue
            survivors.append((channel, account))
        if pinned_to is not None and pinned_to not in seen:
            raise UnknownChannelError(f"no channel account named {pinned_to!r}")

        now = self.now()
        items: list[_Item] = []
        if survivors:
            breaker = self.breaker
            try:
                healths = self.health.read(
                    [channel.name for channel, _ in survivors],
                    now=now,
                    breaker=breaker,
                    currency=currency,
                    period=self.period(now),
                    window=chosen is Strategy.SUCCESS_RATE,
                )
            except NetworkError as exc:
                if not self.fail_open:
                    raise
                logger.warning("routing without health: %s", exc.message)
                healths = [CLOSED_HEALTH] * len(survivors)
            for (channel, account), health in zip(survivors, healths, strict=True):
                name = channel.name
                probe = False
                if health.opened_at is not None:
                    state = health.state(now, breaker)
                    if state is CircuitState.OPEN:
                        left = (health.opened_at + breaker.cool_down_ms - now) / 1000
                        excluded[name] = f"circuit open (cool-down ends in {left:.1f} s)"
                        continue
                    if health.probe_in_flight(now):
                        excluded[name] = "circuit half-open and its one probe is in flight"
                        continue
                    probe = True
                daily = account.daily
                if daily is not None and health.daily_volume + minor > daily:
                    left_today = Money(max(daily - health.daily_volume, 0), currency)
                    excluded[name] = (
                        f"daily volume limit {Money(daily, currency)}: {left_today} left "
                        f"today, payment is {amount}"
                    )
                    continue
                if account.fee is None:
                    fee = None
                elif account.fee_by_volume:
                    fee = _compute_fee(account.fee, amount, Money(health.monthly_volume, currency))
                else:
                    # Shops sell a few fixed denominations: the same amounts come back all day.
                    fee = fees.get((name, minor, currency), _MISSING)
                    if fee is _MISSING:
                        fee = self._cache_fee(name, account.fee, amount)
                items.append((channel, account, health, fee, probe))
        if not items:
            detail = "; ".join(f"{name}: {why}" for name, why in excluded.items())
            if over_limit and len(over_limit) == supporting:
                raise AmountError(
                    f"amount {amount} is above the limit of every channel account that "
                    f"could take this payment ({detail})"
                )
            raise NoEligibleChannel(
                f"no channel account can take this payment ({detail or 'none configured'})",
                reasons=excluded,
            )
        if len(items) > 1:
            self._rank(chosen, items, request)
        candidates = tuple(Candidate(item[0].name, item[0], item[3], item[4]) for item in items)
        return RoutingDecision(chosen, candidates, excluded, now)

    def _strategy(self, request: PaymentRequest, strategy: Strategy | str | None) -> Strategy:
        if strategy is not None:
            return parse_strategy(strategy)
        override = request.metadata.get(self.METADATA_KEY)
        return self.strategy if override is None else parse_strategy(override)

    def _rules(
        self, request: PaymentRequest
    ) -> tuple[dict[str, str], tuple[frozenset[str], str] | None]:
        """Accounts excluded (-> rule name), and the pinned set with the pin rules' names."""
        exclude_by: dict[str, str] = {}
        pinned: frozenset[str] | None = None
        pin_names: list[str] = []
        for rule in self.rules:
            if not rule.matches(request.method, request.amount, request.metadata):
                continue
            if rule.action is RuleAction.EXCLUDE:
                for name in rule.accounts:
                    exclude_by.setdefault(name, rule.name)
            else:
                pinned = rule.accounts if pinned is None else pinned & rule.accounts
                pin_names.append(repr(rule.name))
        return exclude_by, None if pinned is None else (pinned, " and ".join(pin_names))

    def _cache_fee(self, name: str, rule: FeeRule, amount: Money) -> Money | None:
        fee = _compute_fee(rule, amount, None)
        if len(self._fees) >= _FEE_CACHE_SIZE:
            self._fees.clear()
        self._fees[name, amount.minor, amount.currency] = fee
        return fee

    def _rank(self, strategy: Strategy, items: list[_Item], request: PaymentRequest) -> None:
        """Sort ``items`` in place, best first."""
        if strategy is Strategy.LOWEST_FEE:
            items.sort(key=_fee_key)
        elif strategy is Strategy.PRIORITY:
            items.sort(key=_priority_key)
        elif strategy is Strategy.WEIGHTED:
            order = request.out_trade_no
            items.sort(key=lambda item: _weighted_key(item, order))
        else:
            items.sort(key=_success_key)
            if self._explores(request):
                pick = self._explore_pick(request, sorted(item[0].name for item in items))
                items.sort(key=lambda item: item[0].name != pick)

    def _explores(self, request: PaymentRequest) -> bool:
        if self._rng is not None:
            return self._rng.random() < self.explore_share
        draw = _unit("explore", request.out_trade_no)
        return draw < self.explore_share

    def _explore_pick(self, request: PaymentRequest, names: list[str]) -> str:
        if self._rng is not None:
            return names[self._rng.randrange(len(names))]
        return names[int(_unit("explore-pick", request.out_trade_no) * len(names))]

    # -- outcomes ---------------------------------------------------------------

    def admit(self, candidate: Candidate) -> bool:
        """May an attempt go to ``candidate`` now? Takes the probe lease of a half-open one.

        False means another caller holds the probe: skip the candidate.
        """
        if not candidate.probe:
            return True
        try:
            return self.health.acquire_probe(candidate.name, now=self.now(), breaker=self.breaker)
        except NetworkError as exc:
            if not self.fail_open:
                raise
            logger.warning("%s: probing without a lease: %s", candidate.name, exc.message)
            return True

    def attempts(
        self, decision: RoutingDecision, failover: FailoverPolicy | None = None
    ) -> Iterator[Candidate]:
        """The candidates to try, in order: admitted ones only, within ``failover``'s limits.

        Stops after ``max_attempts`` candidates were yielded, or once the
        deadline (from ``decision.decided_at``) has passed.
        """
        failover = FailoverPolicy() if failover is None else failover
        deadline = decision.decided_at + _ms(failover.deadline)
        tried = 0
        for candidate in decision.candidates:
            if tried >= failover.max_attempts or self.now() >= deadline:
                return
            if not self.admit(candidate):
                continue
            tried += 1
            yield candidate

    def time_left(self, decision: RoutingDecision, failover: FailoverPolicy | None = None) -> float:
        """Seconds left before ``failover``'s deadline (never negative).

        Cap each attempt's timeout with it, so that a slow channel cannot carry
        the payment past the deadline.
        """
        failover = FailoverPolicy() if failover is None else failover
        return max(decision.decided_at + _ms(failover.deadline) - self.now(), 0) / 1000

    def record(
        self, account: str, outcome: Outcome, *, amount: Money | None = None
    ) -> CircuitState:
        """Tell the router how an attempt at ``account`` went; the circuit's state after it.

        ``amount`` (with a success) is added to the account's daily and monthly
        volume. With ``fail_open`` and the store unavailable, nothing is
        recorded and CLOSED is returned.
        """
        outcome = Outcome(outcome)
        now = self.now()
        try:
            before, after = self.health.record(
                account,
                outcome,
                now=now,
                breaker=self.breaker,
                period=self.period(now),
                volume=amount if outcome is Outcome.SUCCESS else None,
            )
        except NetworkError as exc:
            if not self.fail_open:
                raise
            # A payment that went through must not fail for want of bookkeeping.
            logger.warning("%s: %s not recorded: %s", account, outcome.value, exc.message)
            return CircuitState.CLOSED
        if before is not after:
            log = logger.warning if after is CircuitState.OPEN else logger.info
            log("%s: circuit %s -> %s after %s", account, before.value, after.value, outcome.value)
        return after

    def add_volume(self, account: str, amount: Money) -> None:
        """Count a payment in ``account``'s volume without a health outcome.

        For a hub that counts volume when a payment is confirmed paid rather
        than when its trade is created.
        """
        self.health.add_volume(account, amount, period=self.period(self.now()))

    def reset(self, account: str) -> None:
        """Close ``account``'s circuit and forget its failures (an operator's action)."""
        self.health.reset(account)


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], value: object, path: str) -> _M:
    return validated(model, value, path)


def _compute_fee(rule: FeeRule, amount: Money, monthly: Money | None) -> Money | None:
    try:
        return rule.compute(amount, monthly_volume=monthly)
    except CurrencyMismatchError:
        return None  # the rule prices another currency: the fee is unknown


def refused_request(channel: Channel, request: PaymentRequest, reason: str) -> InvalidRequestError:
    """The error for a request pinned to ``channel`` whose constraints refuse it:
    :class:`AmountError` for its amount limit, else :class:`InvalidRequestError`."""
    message = f"channel account {channel.name!r} cannot take this payment: {reason}"
    if (
        channel.supports(request.method, request.amount.currency)
        and request.amount.minor > channel.max_amount_minor()
    ):
        return AmountError(message)
    return InvalidRequestError(message)


def _unsupported(channel: Channel, request: PaymentRequest) -> str:
    currency = request.amount.currency
    if request.method not in channel.methods:
        return f"it does not support the {request.method.value!r} method"
    if currency not in channel.currencies:
        return f"it does not support {currency}"
    return f"it does not support {request.method.value!r} payments in {currency}"


class _Account:
    """A policy flattened to plain attributes for the hot path."""

    __slots__ = (
        "currency",
        "daily",
        "enabled",
        "fee",
        "fee_by_volume",
        "high",
        "low",
        "priority",
        "weight",
    )

    def __init__(self, policy: ChannelAccountPolicy) -> None:
        self.enabled = policy.enabled
        self.priority = policy.priority
        self.weight = policy.weight
        #: the currency of the limits; None: no limits, any currency
        self.currency = policy.limits_currency
        self.low = 0 if policy.min_amount is None else policy.min_amount.minor
        self.high = None if policy.max_amount is None else policy.max_amount.minor
        self.daily = None if policy.daily_limit is None else policy.daily_limit.minor
        self.fee = policy.fee
        self.fee_by_volume = policy.fee_needs_monthly_volume


# (channel, account, health, fee, probe)
_Item = tuple[Channel, _Account, AccountHealth, Money | None, bool]


def _fee_key(item: _Item) -> tuple[bool, int, int, str]:
    fee = item[3]
    # An account whose fee is unknown comes after every priced one.
    return (fee is None, 0 if fee is None else fee.minor, item[1].priority, item[0].name)


def _priority_key(item: _Item) -> tuple[int, str]:
    return (item[1].priority, item[0].name)


def _weighted_key(item: _Item, out_trade_no: str) -> tuple[float, int, str]:
    # Weighted rendezvous hashing: the account with the smallest -ln(u)/w wins,
    # with probability w / sum(w); the full order is stable per out_trade_no and
    # the relative order of two accounts never depends on the others.
    weight = item[1].weight
    name = item[0].name
    if weight == 0:
        return (math.inf, item[1].priority, name)
    return (-math.log(_unit("weighted", name, out_trade_no)) / weight, 0, name)


def _success_key(item: _Item) -> tuple[float, int, str]:
    # Laplace's rule: an account with no outcomes in the window counts as 1/2.
    health = item[2]
    rate = (health.successes + 1) / (health.successes + health.failures + 2)
    return (-rate, item[1].priority, item[0].name)
