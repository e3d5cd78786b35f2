"""Risk rules as declarative configuration, and their pure evaluation.

A rule names what it looks at (a list, an amount, a quantity, a sliding
window of counts and amounts per buyer, IP or device, the unpaid orders of an
IP) and what it does when it matches: ``allow``, ``block`` or ``review``.
Evaluation follows Stripe Radar: the first matching *allow* rule lets the
payment through, else the first matching *block* rule refuses it, else the
first matching *review* rule holds it for a person. A rule in ``mode:
observe`` is evaluated and recorded but never changes the outcome.

Everything here is pure: the counts a window rule needs come from a state
(:mod:`payhub.risk._state`) as a :class:`Counts`.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from payhub.config import validated
from payhub.errors import InvalidRequestError
from payhub.models import PaymentRequest

__all__ = [
    "AmountRule",
    "Counts",
    "ListRule",
    "QuantityRule",
    "RiskAction",
    "RiskContext",
    "RiskHit",
    "RiskPolicy",
    "RiskRule",
    "RiskVerdict",
    "UnpaidRule",
    "VelocityRule",
    "Window",
    "evaluate",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RiskAction(enum.StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    REVIEW = "review"


_ORDER = (RiskAction.ALLOW, RiskAction.BLOCK, RiskAction.REVIEW)
_RULE = ConfigDict(extra="forbid", frozen=True)


class _Base(BaseModel):
    model_config = _RULE

    #: unique within the policy; named in the error, the audit and the review
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    action: RiskAction
    #: ``observe``: record what it would do, enforce nothing
    mode: Literal["enforce", "observe"] = "enforce"


class ListRule(_Base):
    """Matches when the buyer id, IP or device id is in the list (IPs: networks)."""

    type: Literal["list"] = "list"
    field: Literal["buyer", "ip", "device"]
    values: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _networks(self) -> ListRule:
        if self.field == "ip":
            for value in self.values:
                try:
                    ipaddress.ip_network(value, strict=False)
                except ValueError:
                    raise ValueError(f"{value!r} is not an IP address or network") from None
        return self

    def networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(v, strict=False) for v in self.values)


class AmountRule(_Base):
    """Matches an order whose amount (minor units) is above ``max_minor`` or
    below ``min_minor``; ``currency`` limits it to one currency."""

    type: Literal["amount"] = "amount"
    max_minor: int | None = Field(default=None, ge=0)
    min_minor: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _bound(self) -> AmountRule:
        if self.max_minor is None and self.min_minor is None:
            raise ValueError("an amount rule needs max_minor or min_minor")
        return self


class QuantityRule(_Base):
    """Matches an order of more than ``max_quantity`` items (of ``products``, if given)."""

    type: Literal["quantity"] = "quantity"
    max_quantity: int = Field(ge=1)
    products: tuple[str, ...] = ()


class VelocityRule(_Base):
    """Matches when the buyer, IP or device made more than ``max_count``
    payments, or more than ``max_amount_minor`` in total, within ``window``
    seconds, this one included."""

    type: Literal["velocity"] = "velocity"
    key: Literal["buyer", "ip", "device"]
    window: int = Field(ge=1, le=30 * 86400, description="seconds")
    max_count: int | None = Field(default=None, ge=0)
    max_amount_minor: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _limit(self) -> VelocityRule:
        if self.max_count is None and self.max_amount_minor is None:
            raise ValueError("a velocity rule needs max_count or max_amount_minor")
        return self


class UnpaidRule(_Base):
    """Matches when an IP holds more than ``max_unpaid`` unpaid orders created
    within ``window`` seconds, this one included (scripts lock a shop's stock
    with orders they never pay)."""

    type: Literal["unpaid"] = "unpaid"
    window: int = Field(ge=1, le=7 * 86400, description="seconds")
    max_unpaid: int = Field(ge=0)


RiskRule = Annotated[
    ListRule | AmountRule | QuantityRule | VelocityRule | UnpaidRule, Field(discriminator="type")
]


@dataclass(frozen=True)
class Window:
    """One sliding window a policy counts in: ``(key, seconds)``, and whether it
    counts unpaid orders only."""

    key: Literal["buyer", "ip", "device"]
    seconds: int
    unpaid: bool = False


class RiskPolicy(BaseModel):
    """The rules, as configuration: ``{"rules": [{"name": ..., "type": ..., ...}]}``.

    >>> RiskPolicy.from_config({"rules": [
    ...     {"name": "blocked-ips", "type": "list", "action": "block",
    ...      "field": "ip", "values": ["203.0.113.0/24"]}]})  # doctest: +ELLIPSIS
    RiskPolicy(...)
    """

    model_config = _RULE

    rules: tuple[RiskRule, ...] = ()

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: tuple[Any, ...]) -> tuple[Any, ...]:
        names = [rule.name for rule in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        return rules

    @classmethod
    def from_config(cls, config: object) -> RiskPolicy:
        """Checked through :func:`payhub.config.validated` (one ConfigurationError)."""
        return validated(cls, config, "risk")

    def model_post_init(self, context: Any) -> None:
        # Precomputed once: the order rules are tried in, and the windows counted.
        ordered = sorted(self.rules, key=lambda r: _ORDER.index(r.action))
        object.__setattr__(self, "_ordered", tuple(ordered))
        nets = {
            r.name: r.networks()
            for r in self.rules
            if isinstance(r, ListRule) and r.field == "ip"
        }
        object.__setattr__(self, "_networks", nets)
        windows: list[Window] = []
        for rule in self.rules:
            window = _window_of(rule)
            if window is not None and window not in windows:
                windows.append(window)
        object.__setattr__(self, "_windows", tuple(windows))

    @property
    def windows(self) -> tuple[Window, ...]:
        """The windows the state must count for a check (one round trip for all)."""
        return self._windows  # type: ignore[attr-defined, no-any-return]

    @property
    def ordered(self) -> tuple[Any, ...]:
        return self._ordered  # type: ignore[attr-defined, no-any-return]

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        return self._networks[name]  # type: ignore[attr-defined, no-any-return]


def _window_of(rule: Any) -> Window | None:
    if isinstance(rule, VelocityRule):
        return Window(rule.key, rule.window)
    if isinstance(rule, UnpaidRule):
        return Window("ip", rule.window, unpaid=True)
    return None


@dataclass(frozen=True)
class RiskContext:
    """What the rules look at, taken from a :class:`PaymentRequest`."""

    out_trade_no: str
    amount_minor: int
    currency: str
    buyer: str | None = None
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    device: str | None = None
    product: str | None = None
    quantity: int = 1

    @classmethod
    def of(cls, request: PaymentRequest) -> RiskContext:
        """The request's buyer context; an unparseable ``buyer.ip`` is refused."""
        hints = request.buyer
        ip = None
        if hints is not None and hints.ip:
            try:
                ip = ipaddress.ip_address(hints.ip)
            except ValueError:
                raise InvalidRequestError("buyer.ip is not an IP address") from None
        buyer = None
        if hints is not None:
            buyer = hints.account or hints.user_id or hints.openid
        return cls(
            out_trade_no=request.out_trade_no,
            amount_minor=request.amount.minor,
            currency=request.amount.currency,
            buyer=buyer,
            ip=ip,
            device=None if hints is None else hints.device_id,
            product=request.product_id,
            quantity=request.quantity or 1,
        )

    def key(self, name: str) -> str | None:
        """The value a window is keyed by (``buyer``, ``ip``, ``device``), or None."""
        if name == "ip":
            return None if self.ip is None else self.ip.compressed
        return self.buyer if name == "buyer" else self.device


@dataclass(frozen=True)
class Counts:
    """What the state counted per window, this payment included: (count, amount)."""

    values: Mapping[Window, tuple[int, int]] = field(default_factory=dict)

    def of(self, window: Window) -> tuple[int, int]:
        return self.values.get(window, (0, 0))


@dataclass(frozen=True)
class RiskHit:
    rule: str
    action: RiskAction
    observed: bool  #: the rule is in observe mode: recorded, not enforced
    reason: str


@dataclass(frozen=True)
class RiskVerdict:
    """The outcome of one check: the action taken, the rule that decided, every hit."""

    action: RiskAction
    rule: str | None
    reason: str | None
    hits: tuple[RiskHit, ...] = ()

    @property
    def observed(self) -> tuple[RiskHit, ...]:
        return tuple(hit for hit in self.hits if hit.observed)

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "rule": self.rule,
            "reason": self.reason,
            "hits": [
                {
                    "rule": h.rule,
                    "action": h.action.value,
                    "observed": h.observed,
                    "reason": h.reason,
                }
                for h in self.hits
            ],
        }


def _match(policy: RiskPolicy, rule: Any, ctx: RiskContext, counts: Counts) -> str | None:
    """Why ``rule`` matches ``ctx``, or None."""
    if isinstance(rule, ListRule):
        if rule.field == "ip":
            ip = ctx.ip
            if ip is not None and any(ip in net for net in policy.networks(rule.name)):
                return "IP is in a listed network"
            return None
        value = ctx.buyer if rule.field == "buyer" else ctx.device
        return f"{rule.field} is listed" if value is not None and value in rule.values else None
    if isinstance(rule, AmountRule):
        if rule.currency is not None and rule.currency != ctx.currency:
            return None
        if rule.max_minor is not None and ctx.amount_minor > rule.max_minor:
            return f"amount {ctx.amount_minor} above {rule.max_minor} (minor units)"
        if rule.min_minor is not None and ctx.amount_minor < rule.min_minor:
            return f"amount {ctx.amount_minor} below {rule.min_minor} (minor units)"
        return None
    if isinstance(rule, QuantityRule):
        if rule.products and ctx.product not in rule.products:
            return None
        if ctx.quantity > rule.max_quantity:
            return f"quantity {ctx.quantity} above {rule.max_quantity}"
        return None
    window = _window_of(rule)
    assert window is not None
    if ctx.key(window.key) is None:
        return None
    count, amount = counts.of(window)
    if isinstance(rule, UnpaidRule):
        if count > rule.max_unpaid:
            return f"{count} unpaid orders from this IP in {rule.window}s (max {rule.max_unpaid})"
        return None
    assert isinstance(rule, VelocityRule)
    if rule.max_count is not None and count > rule.max_count:
        return f"{count} payments per {rule.key} in {rule.window}s (max {rule.max_count})"
    if rule.max_amount_minor is not None and amount > rule.max_amount_minor:
        return (
            f"{amount} (minor units) per {rule.key} in {rule.window}s "
            f"(max {rule.max_amount_minor})"
        )
    return None


def evaluate(policy: RiskPolicy, ctx: RiskContext, counts: Counts | None = None) -> RiskVerdict:
    """Allow, then block, then review; observe-mode rules recorded, never enforced."""
    counts = counts or Counts()
    hits: list[RiskHit] = []
    decided: RiskHit | None = None
    for rule in policy.ordered:
        if decided is not None and rule.mode == "enforce":
            continue
        why = _match(policy, rule, ctx, counts)
        if why is None:
            continue
        hit = RiskHit(rule.name, rule.action, rule.mode == "observe", why)
        hits.append(hit)
        if decided is None and not hit.observed:
            decided = hit
    if decided is None:
        return RiskVerdict(RiskAction.ALLOW, None, None, tuple(hits))
    return RiskVerdict(decided.action, decided.rule, decided.reason, tuple(hits))


