"""Risk rules: allow, block or review a payment before any channel is called.

Rules are declarative configuration (:class:`RiskPolicy`), evaluated as Stripe
Radar does: allow rules first, then block, then review; each may run in
``observe`` mode. Window rules (velocity per buyer, IP or device; unpaid
orders per IP) count in a :class:`RiskState`: in this process
(:class:`InMemoryRiskState`) or in Redis (:class:`RedisRiskState`, one round
trip per check). See ``docs/risk.md``.
"""

from payhub.risk._engine import RiskEngine
from payhub.risk._rules import (
    AmountRule,
    Counts,
    ListRule,
    QuantityRule,
    RiskAction,
    RiskContext,
    RiskHit,
    RiskPolicy,
    RiskRule,
    RiskVerdict,
    UnpaidRule,
    VelocityRule,
    Window,
    evaluate,
)
from payhub.risk._state import InMemoryRiskState, RedisRiskState, RiskState

__all__ = [
    "AmountRule",
    "Counts",
    "InMemoryRiskState",
    "ListRule",
    "QuantityRule",
    "RedisRiskState",
    "RiskAction",
    "RiskContext",
    "RiskEngine",
    "RiskHit",
    "RiskPolicy",
    "RiskRule",
    "RiskState",
    "RiskVerdict",
    "UnpaidRule",
    "VelocityRule",
    "Window",
    "evaluate",
]
